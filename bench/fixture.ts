import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Pool } from 'mysql2/promise';
import { z } from 'zod';
import { createBankDatabase, type MysqlConnOptions, openPool } from '../examples/bank/db.js';
import {
  generateBank,
  historyShapeSchema,
  resolveScale,
  type ScaleName,
  type SkewOptions,
} from '../examples/bank/generate.js';
import { errorMessage } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';
import { BenchError } from './errors.js';

/** What a generation of the bench bank produced; kept next to the adapter's files. */
export const datasetSchema = z.object({
  database: z.string(),
  scale: z.enum(['tiny', 'small', 'bench']),
  seed: z.number().int(),
  /** Account histories; records from before the option are uniform. */
  history: historyShapeSchema.default('uniform'),
  skew: z.record(z.string(), z.unknown()).optional(),
  generatedAt: z.iso.datetime(),
  generationMs: z.number().int().nonnegative(),
  rows: z.number().int().nonnegative(),
  rowsPerSec: z.number().int().nonnegative(),
  tables: z.record(z.string(), z.number().int().nonnegative()),
});
export type Dataset = z.infer<typeof datasetSchema>;

export interface FixtureOptions {
  server: MysqlConnOptions;
  database: string;
  scale: ScaleName;
  seed: number;
  /** Root of the bench's files: dataset record and the adapter's stores. */
  dataDir: string;
  logger: Logger;
  /** Drop and regenerate `database` though this data dir holds no record of generating it. */
  force?: boolean;
}

export interface Fixture {
  dataset: Dataset;
  /** Whether this call generated the data (false: an earlier run's data was reused). */
  generated: boolean;
  /** The adapter's stores for this dataset; emptied whenever the data is regenerated. */
  adapterDir: string;
  pool: Pool;
}

/**
 * The bench bank's skew per scale: heavy accounts with 10k-100k postings and veterans with years
 * of daily ones, as in the case study. At the bench scale 1% of 200k accounts would add ~78M
 * postings (hours to load and snapshot), so 0.05% (100 accounts, ~4M postings) are heavy there;
 * the smoke scale keeps its one heavy account small so the harness test stays bounded.
 */
export const BENCH_SKEW: Record<ScaleName, SkewOptions> = {
  tiny: { heavyPostings: { min: 2_000, max: 5_000 }, veterans: 1, veteranYears: 2 },
  small: { heavyShare: 0.002 },
  bench: { heavyShare: 0.0005 },
};

const countRow = z.object({ n: z.coerce.number().int() });

async function customerCount(pool: Pool): Promise<number | null> {
  try {
    const [rows] = await pool.query('SELECT COUNT(*) AS n FROM customers');
    return countRow.parse((rows as unknown[])[0]).n;
  } catch {
    // Missing database or table: there is nothing to reuse.
    return null;
  }
}

/** Whether the pool connects, i.e. its database exists. */
async function reachable(pool: Pool): Promise<boolean> {
  try {
    await pool.query('SELECT 1');
    return true;
  } catch {
    return false;
  }
}

/** The recorded dataset, or null when there is none or it is unreadable (then the data is regenerated). */
function readDataset(path: string): Dataset | null {
  if (!existsSync(path)) return null;
  try {
    const parsed = datasetSchema.safeParse(JSON.parse(readFileSync(path, 'utf8')));
    return parsed.success ? parsed.data : null;
  } catch {
    return null;
  }
}

/**
 * The bench bank, generated once per scale and seed and reused by later runs: at the bench
 * scale generation takes minutes, and the adapter's snapshot of it longer. Reuse requires the
 * recorded dataset to match the request and the database to still hold its customers; anything
 * else regenerates the data and empties the adapter's stores, whose offsets would no longer fit.
 */
export async function prepareFixture(options: FixtureOptions): Promise<Fixture> {
  const { server, database, scale, seed, logger } = options;
  mkdirSync(options.dataDir, { recursive: true });
  const recordPath = join(options.dataDir, 'dataset.json');
  const adapterDir = join(options.dataDir, 'adapter');
  const expectedCustomers = resolveScale(scale).customers;
  const recorded = readDataset(recordPath);
  let pool = openPool(server, database, { connectionLimit: 12 });
  if (
    recorded?.database === database &&
    recorded.scale === scale &&
    recorded.seed === seed &&
    recorded.history === 'skewed' &&
    JSON.stringify(recorded.skew) === JSON.stringify(BENCH_SKEW[scale]) &&
    (await customerCount(pool)) === expectedCustomers
  ) {
    logger.info({ database, scale, generatedAt: recorded.generatedAt }, 'reusing the bench bank');
    return { dataset: recorded, generated: false, adapterDir, pool };
  }
  // Another data dir's bank, or a database that is not a bench bank at all: dropping it is the
  // caller's call, not the harness's (an earlier run with another --data-dir and the same
  // --database silently regenerated the bank under that run's read models).
  if (recorded?.database !== database && options.force !== true && (await reachable(pool))) {
    await pool.end();
    throw new BenchError(
      'BENCH_DATABASE_EXISTS',
      `database ${database} exists and ${options.dataDir} holds no record of the bench generating it`,
      { hint: 'pass --force to drop and regenerate it, or the --data-dir of the run that generated it' },
    );
  }
  await pool.end();
  rmSync(adapterDir, { recursive: true, force: true });
  rmSync(recordPath, { force: true });
  logger.info({ database, scale, seed }, 'generating the bench bank');
  try {
    await createBankDatabase(server, database, { dropExisting: true });
  } catch (cause) {
    throw new BenchError('BENCH_FIXTURE_FAILED', `cannot create ${database}: ${errorMessage(cause)}`, {
      cause,
    });
  }
  pool = openPool(server, database, { connectionLimit: 12 });
  let lastLog = 0;
  // The adapter starts from a snapshot, so the load need not go through the binlog.
  const skew = BENCH_SKEW[scale];
  const generate = { seed, scale, history: 'skewed' as const, skew, skipBinlog: true, connections: 4 };
  const result = await generateBank(pool, generate, (p) => {
    if (Date.now() - lastLog < 5000) return;
    lastLog = Date.now();
    logger.info({ table: p.table, rows: p.rows, rowsPerSec: p.rowsPerSec, etaSec: p.etaSec }, 'generating');
  });
  const dataset: Dataset = {
    database,
    scale,
    seed,
    history: 'skewed',
    skew,
    generatedAt: new Date().toISOString(),
    generationMs: result.elapsedMs,
    rows: result.rows,
    rowsPerSec: result.rowsPerSec,
    tables: result.tables,
  };
  writeFileSync(recordPath, `${JSON.stringify(dataset, null, 2)}\n`);
  logger.info({ rows: dataset.rows, generationMs: dataset.generationMs }, 'bench bank generated');
  return { dataset, generated: true, adapterDir, pool };
}
