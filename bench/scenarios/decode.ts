import type { BinlogPosition } from '../../connectors/binlog/config.js';
import { binlogHead, positionAtLeast } from '../../connectors/binlog/server-position.js';
import { MysqlBinlogSource } from '../../connectors/binlog/source.js';
import { binlogSourceConfigFrom } from '../../connectors/source-factory.js';
import { BENCH_MIGRATION, benchConfig } from '../adapter.js';
import { childModule, runChild } from '../child.js';
import { writeLoadOutputSchema } from '../children/write-load.js';
import type { ScenarioContext } from '../context.js';
import { BenchError } from '../errors.js';
import type { ResultsOf } from '../results-schema.js';
import { rate } from '../stats.js';
import { debeziumDecoder } from './debezium-decoder.js';

type Decode = ResultsOf<'decode'>['readers'][number];

/**
 * A binlog reader measured on a binlog range another process wrote. The embedded reader is
 * below; the Debezium connector reads the same range through Kafka Connect.
 */
export interface BinlogDecoder {
  readonly name: string;
  /** `rowChanges`: how many row changes the range holds (the write load counted them). */
  decode(ctx: ScenarioContext, from: BinlogPosition, to: BinlogPosition, rowChanges: number): Promise<Decode>;
}

/** The embedded reader from `from` to `to`, delivering into a sink that only counts. */
export const embeddedDecoder: BinlogDecoder = {
  name: 'embedded',
  async decode(ctx, from, to) {
    const config = benchConfig({
      server: ctx.server,
      database: ctx.fixture.dataset.database,
      dataDir: ctx.fixture.adapterDir,
    });
    const source = new MysqlBinlogSource(
      { ...binlogSourceConfigFrom(config, BENCH_MIGRATION.tables), snapshotMode: 'never' },
      { logger: ctx.logger },
    );
    let rows = 0;
    let transactions = 0;
    const t0 = performance.now();
    await source.start({ phase: 'stream', snapshotCompleted: true, ...from }, async (tx) => {
      rows += tx.events.length;
      // A big transaction arrives in fragments: count it once, at its last.
      if (tx.fragment === undefined || tx.fragment.last) transactions++;
    });
    try {
      const deadline = Date.now() + 600_000;
      for (;;) {
        const seen = source.seenPosition();
        if (seen && positionAtLeast(seen, to) && source.idle()) break;
        if (Date.now() > deadline)
          throw new BenchError(
            'BENCH_DECODE_TIMEOUT',
            'the binlog reader did not reach the end of the range',
          );
        await new Promise((r) => setTimeout(r, 5));
      }
      return { reader: 'embedded', rowChanges: rate(rows, performance.now() - t0), transactions };
    } finally {
      await source.stop();
    }
  },
};

/** The readers `--decoders` can name. */
export const DECODERS: Partial<Record<string, BinlogDecoder>> = {
  embedded: embeddedDecoder,
  debezium: debeziumDecoder,
};

/**
 * Binlog decode rates: the bank workload writes `decodeOps` operations as fast as it can (its
 * own process), then each reader reads exactly that binlog range.
 */
export async function decodeScenario(
  ctx: ScenarioContext,
  decoders: readonly BinlogDecoder[],
): Promise<ResultsOf<'decode'>> {
  const from = await binlogHead(ctx.fixture.pool, 'mariadb');
  const writes = await runChild(
    childModule('write-load'),
    {
      server: ctx.server,
      database: ctx.fixture.dataset.database,
      seed: ctx.seed + 7,
      opsPerSec: 100_000,
      maxOps: ctx.settings.decodeOps,
      concurrency: 8,
    },
    writeLoadOutputSchema,
  );
  const to = await binlogHead(ctx.fixture.pool, 'mariadb');
  ctx.logger.info({ ops: writes.ops, rowChanges: writes.rowChanges }, 'binlog range written');
  const readers: Decode[] = [];
  for (const decoder of decoders) readers.push(await decoder.decode(ctx, from, to, writes.rowChanges));
  return { range: { ops: writes.ops, rowChanges: writes.rowChanges }, readers };
}
