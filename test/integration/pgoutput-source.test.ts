import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SourceTransaction } from '../../connectors/change-event.js';
import { parseLsn } from '../../connectors/pgoutput/lsn.js';
import { PgoutputSource } from '../../connectors/pgoutput/source.js';
import { orderedSink } from '../../connectors/snapshot-delivery.js';
import { BANK_TABLES } from '../../examples/bank/generate.js';
import { createPgBankDatabase, loadPgBank, pgClient } from '../../examples/bank/postgres/db.js';
import { runPgWorkload } from '../../examples/bank/postgres/workload.js';
import type { SourceError } from '../../lib/errors.js';
import { silentLogger } from '../../lib/logger.js';
import { uniqueSuffix, waitFor } from './support/debezium-bank.js';
import { dropPgState, LEGACY_PG, pgQuery, pgReachable } from './support/postgres.js';

const pgUp = await pgReachable();
if (!pgUp)
  console.warn(
    'pgoutput-source: PostgreSQL with wal_level=logical is not reachable; start it with `bash scripts/legacy-pg.sh up`',
  );

const streamedOf = (txs: SourceTransaction[]) => txs.filter((t) => !t.snapshot);
const eventCount = (txs: SourceTransaction[]) => txs.reduce((n, t) => n + t.events.length, 0);

async function tableCounts(database: string): Promise<Record<string, number>> {
  const rows = await pgQuery(
    database,
    BANK_TABLES.map((t) => `SELECT '${t}' AS t, count(*)::int AS n FROM ${t}`).join(' UNION ALL '),
  );
  return Object.fromEntries(rows.map((r) => [String(r.t), Number(r.n)]));
}

/** The acknowledged position, read once the reader has let go of the slot (its last status update processed). */
async function slotFlushLsn(slot: string): Promise<bigint> {
  await waitFor(
    'the slot to be released',
    async () =>
      (await pgQuery('postgres', `SELECT 1 FROM pg_replication_slots WHERE slot_name = '${slot}' AND active`))
        .length === 0,
    20_000,
  );
  const [row] = await pgQuery(
    'postgres',
    `SELECT confirmed_flush_lsn::text AS lsn FROM pg_replication_slots WHERE slot_name = '${slot}'`,
  );
  return parseLsn(String(row?.lsn));
}

describe.skipIf(!pgUp)('PgoutputSource on the PostgreSQL bank', () => {
  const suffix = uniqueSuffix();
  const database = `t_pgsrc_${suffix}`;
  const slotName = `t_pgsrc_${suffix}`;
  const secondSlot = `t_pgsrc2_${suffix}`;
  const thirdSlot = `t_pgsrc3_${suffix}`;
  const fourthSlot = `t_pgsrc4_${suffix}`;
  const fifthSlot = `t_pgsrc5_${suffix}`;
  const sixthSlot = `t_pgsrc6_${suffix}`;
  const sources: PgoutputSource[] = [];
  const config = { ...LEGACY_PG, database, slotName, snapshotChunkRows: 500 };

  beforeAll(async () => {
    await createPgBankDatabase(LEGACY_PG, database);
    await loadPgBank(LEGACY_PG, database, { seed: 11, scale: 'tiny' });
  });

  afterAll(async () => {
    for (const s of sources) await s.stop();
    await dropPgState(database, [slotName, secondSlot, thirdSlot, fourthSlot, fifthSlot, sixthSlot]);
  });

  it('delivers a consistent snapshot, then every committed transaction, and resumes without loss or duplicates', async () => {
    const errors: SourceError[] = [];
    const first: SourceTransaction[] = [];
    let rejected: SourceTransaction | null = null;
    const rejectAt = 15;
    const a = new PgoutputSource(config, { logger: silentLogger, onError: (e) => errors.push(e) });
    sources.push(a);
    await a.start(null, async (tx) => {
      if (!tx.snapshot && streamedOf(first).length === rejectAt - 1) {
        rejected = tx;
        throw new Error('sink down');
      }
      first.push(tx);
    });

    // Snapshot: every row of every table once, as op 'r', in chunks of at most 500 rows.
    const counts = await tableCounts(database);
    const snapshot = first.filter((t) => t.snapshot);
    const reads = snapshot.flatMap((t) => t.events);
    expect(reads.every((e) => e.op === 'r' && e.before === null && e.transaction === null)).toBe(true);
    for (const table of BANK_TABLES) {
      expect(reads.filter((e) => e.source.table === table).length, table).toBe(counts[table]);
    }
    expect(new Set(reads.map((e) => `${e.source.table}:${JSON.stringify(e.after)}`)).size).toBe(reads.length);
    expect(snapshot.every((t) => t.events.length <= 500)).toBe(true);
    expect(reads[0]?.source.snapshot).toBe('first');
    expect(reads.at(-1)?.source.snapshot).toBe('last');
    expect(snapshot.at(-1)?.offset).toMatchObject({ phase: 'stream', snapshotCompleted: true });
    expect(snapshot.slice(0, -1).every((t) => t.offset.phase === 'snapshot')).toBe(true);

    // Writes while the reader streams; the sink rejects the 15th transaction.
    const part1 = await runPgWorkload(LEGACY_PG, database, { seed: 1, ops: 40 });
    await waitFor('the sink failure', () => errors.length > 0, 60_000);
    expect(errors[0]?.code).toBe('SINK_FAILED');
    expect(streamedOf(first)).toHaveLength(rejectAt - 1);
    const stoppedAt = a.offset();
    expect(stoppedAt).toEqual(streamedOf(first).at(-1)?.offset);
    // Nothing the sink did not accept was acknowledged to the server.
    const failedTx = rejected as SourceTransaction | null;
    expect(failedTx).not.toBeNull();
    expect(await slotFlushLsn(slotName)).toBeLessThan(parseLsn(String(failedTx?.offset.lsn)));

    // More writes while no reader runs, then a new reader from the stored offset.
    const part2 = await runPgWorkload(LEGACY_PG, database, { seed: 2, ops: 30 });
    const second: SourceTransaction[] = [];
    const b = new PgoutputSource(config, { logger: silentLogger, onError: (e) => errors.push(e) });
    sources.push(b);
    await b.start(stoppedAt, async (tx) => {
      second.push(tx);
    });
    const all = () => [...streamedOf(first), ...second];
    await waitFor('every committed transaction', () => all().length >= part1.ops + part2.ops, 60_000);
    await b.stop();
    expect(errors).toHaveLength(1);
    expect(second.some((t) => t.snapshot)).toBe(false);
    expect(second[0]?.id).toBe(failedTx?.id);

    // One unit per committed transaction, each row change once, in commit order.
    const streamed = all();
    expect(streamed).toHaveLength(part1.ops + part2.ops);
    expect(eventCount(streamed)).toBe(part1.rowChanges + part2.rowChanges);
    const xids = streamed.map((t) => Number(t.id));
    // One writer: commit order is xid order.
    expect(xids).toEqual([...xids].sort((x, y) => x - y));
    expect(new Set(xids).size).toBe(xids.length);
    for (const tx of streamed) {
      expect(tx.events.map((e) => e.transaction?.total_order)).toEqual(tx.events.map((_, i) => i + 1));
      expect(tx.events.every((e) => e.transaction?.id === tx.id && e.source.txId === Number(tx.id))).toBe(
        true,
      );
      for (const e of tx.events) {
        if (e.op === 'u' || e.op === 'd') expect(e.before, `${e.source.table} ${e.op}`).not.toBeNull();
        if (e.op === 'c' || e.op === 'u') expect(e.after).not.toBeNull();
      }
    }
    const ops = new Set(streamed.flatMap((t) => t.events.map((e) => `${e.source.table}:${e.op}`)));
    expect([...ops]).toEqual(
      expect.arrayContaining([
        'transfers:c',
        'transactions:c',
        'balances:u',
        'cards:u',
        'customers:u',
        'payments:d',
      ]),
    );
    // Offsets only move forward, and the slot is acknowledged up to the last delivered commit.
    const lsns = streamed.map((t) => parseLsn(String(t.offset.lsn)));
    expect(lsns).toEqual([...lsns].sort((x, y) => (x < y ? -1 : x > y ? 1 : 0)));
    expect(await slotFlushLsn(slotName)).toBeGreaterThanOrEqual(lsns.at(-1) as bigint);
  });

  it('resumes an interrupted snapshot after its last delivered chunk and streams from where the first attempt began', async () => {
    const cfg = { ...config, slotName: secondSlot };
    const first: SourceTransaction[] = [];
    const a = new PgoutputSource(cfg, { logger: silentLogger });
    sources.push(a);
    const failed = await a
      .start(null, async (tx) => {
        if (first.length === 2) throw new Error('sink down');
        first.push(tx);
      })
      .catch((e: unknown) => e);
    expect((failed as SourceError).code).toBe('SINK_FAILED');
    const interrupted = a.offset();
    expect(interrupted).toMatchObject({ phase: 'snapshot', snapshotCompleted: false });
    expect(interrupted).toEqual(first[1]?.offset);

    // Changes after the first attempt's view: in the new snapshot and streamed again on top.
    const writes = await runPgWorkload(LEGACY_PG, database, { seed: 3, ops: 12 });
    const second: SourceTransaction[] = [];
    const b = new PgoutputSource(cfg, { logger: silentLogger });
    sources.push(b);
    await b.start(interrupted, async (tx) => {
      second.push(tx);
    });
    const counts = await tableCounts(database);
    const total = Object.values(counts).reduce((n, c) => n + c, 0);
    const firstReads = eventCount(first);
    const reads = eventCount(second.filter((t) => t.snapshot));
    // The first attempt's chunks are not read again: only what followed its last key (give or
    // take the rows the workload inserted or deleted meanwhile, which streaming replays).
    expect(firstReads).toBeGreaterThan(0);
    expect(reads).toBeLessThanOrEqual(total - firstReads + writes.rowChanges);
    expect(reads).toBeGreaterThanOrEqual(total - firstReads - writes.rowChanges);
    const ids = (txs: SourceTransaction[]) => txs.filter((t) => t.snapshot).map((t) => t.id);
    expect(ids(second).filter((id) => ids(first).includes(id))).toEqual([]);
    expect(new Set([...ids(first), ...ids(second)].map((id) => id.replace(/^.*@/, ''))).size).toBe(1);
    await waitFor('the replayed transactions', () => streamedOf(second).length >= writes.ops, 30_000);
    await b.stop();
    expect(streamedOf(second)).toHaveLength(writes.ops);
    expect(eventCount(streamedOf(second))).toBe(writes.rowChanges);
    expect(
      streamedOf(second).every((t) => parseLsn(String(t.offset.lsn)) > parseLsn(String(interrupted?.lsn))),
    ).toBe(true);
  });

  it('streams without a snapshot in mode never, refuses a slot in use and an offset whose slot is gone', async () => {
    const cfg = { ...config, slotName: thirdSlot, snapshotMode: 'never' as const, statusIntervalSec: 1 };
    const got: SourceTransaction[] = [];
    const a = new PgoutputSource(cfg, { logger: silentLogger });
    sources.push(a);
    await a.start(null, async (tx) => {
      got.push(tx);
    });
    const writes = await runPgWorkload(LEGACY_PG, database, { seed: 4, ops: 5 });
    await waitFor('the streamed transactions', () => got.length >= writes.ops, 30_000);
    expect(got.every((t) => !t.snapshot)).toBe(true);
    expect(got).toHaveLength(writes.ops);

    // Writes outside the publication: nothing to deliver, yet the slot moves past them, so the
    // server does not keep that WAL for the reader.
    const delivered = parseLsn(String(a.offset()?.lsn));
    await pgQuery(
      database,
      'CREATE TABLE outside (id int)',
      'INSERT INTO outside SELECT generate_series(1, 5000)',
    );
    const [head] = await pgQuery(database, 'SELECT pg_current_wal_lsn()::text AS lsn');
    const confirmed = async () => {
      const [row] = await pgQuery(
        'postgres',
        `SELECT confirmed_flush_lsn::text AS lsn FROM pg_replication_slots WHERE slot_name = '${thirdSlot}'`,
      );
      return parseLsn(String(row?.lsn));
    };
    await waitFor(
      'the idle slot to move on',
      async () => (await confirmed()) >= parseLsn(String(head?.lsn)),
      20_000,
    );
    expect(a.offset()?.lsn).toBe(got.at(-1)?.offset.lsn);
    expect(parseLsn(String(head?.lsn))).toBeGreaterThan(delivered);

    const rival = new PgoutputSource(cfg, { logger: silentLogger });
    const inUse = await rival.start(a.offset(), async () => undefined).catch((e: unknown) => e);
    expect((inUse as SourceError).code).toBe('SLOT_IN_USE');
    await a.stop();

    const orphan = new PgoutputSource({ ...cfg, slotName: `t_gone_${suffix}` }, { logger: silentLogger });
    const gone = await orphan.start(a.offset(), async () => undefined).catch((e: unknown) => e);
    expect((gone as SourceError).code).toBe('SLOT_MISSING');
    expect(
      (await pgQuery('postgres', `SELECT 1 FROM pg_replication_slots WHERE slot_name = 't_gone_${suffix}'`))
        .length,
    ).toBe(0);
  });

  it('delivers a big transaction in fragments without reading ahead of the sink, and replays it whole after a failure', async () => {
    const ROWS = 30_000;
    const MAX_ROWS = 1000;
    const cfg = {
      ...config,
      slotName: fourthSlot,
      tables: ['transactions'],
      snapshotMode: 'never' as const,
      maxTransactionRows: MAX_ROWS,
      statusIntervalSec: 1,
    };
    const confirmed = async () => {
      const [row] = await pgQuery(
        'postgres',
        `SELECT confirmed_flush_lsn::text AS lsn FROM pg_replication_slots WHERE slot_name = '${fourthSlot}'`,
      );
      return parseLsn(String(row?.lsn));
    };
    const errors: SourceError[] = [];
    const first: SourceTransaction[] = [];
    const offsetsSeen = new Set<string>();
    const acknowledged: bigint[] = [];
    const a = new PgoutputSource(cfg, { logger: silentLogger, onError: (e) => errors.push(e) });
    sources.push(a);
    await a.start(null, async (tx) => {
      if (tx.fragment?.index === 20) throw new Error('sink down');
      // A slow store: without back-pressure the whole transaction would pile up meanwhile.
      await new Promise((r) => setTimeout(r, 50));
      offsetsSeen.add(JSON.stringify(a.offset()));
      acknowledged.push(await confirmed());
      first.push(tx);
    });
    const before = a.offset();
    await pgQuery(
      database,
      `INSERT INTO transactions (account_id, direction, amount, currency_code, balance_after, description, posted_at)
       SELECT a.id, 'credit', 0.01, a.currency_code, 0, 'bulk ' || s, TIMESTAMP '2025-01-01' + s * INTERVAL '1 second'
         FROM (SELECT id, currency_code FROM accounts ORDER BY id LIMIT 1) a, generate_series(1, ${ROWS}) s`,
    );
    await waitFor('the sink failure', () => errors.length > 0, 60_000);
    expect(errors[0]?.code).toBe('SINK_FAILED');
    expect(first.map((t) => t.fragment)).toEqual(
      Array.from({ length: 20 }, (_, index) => ({ index, last: false })),
    );
    expect(first.every((t) => t.events.length === MAX_ROWS && t.id === first[0]?.id)).toBe(true);
    // Unfinished fragments are no resume point and point before the transaction.
    expect([...offsetsSeen]).toEqual([JSON.stringify(before)]);
    expect(a.offset()).toEqual(before);
    expect(first.every((t) => t.offset.lsn === before?.lsn)).toBe(true);
    // Back-pressure: while the sink slept, the reader held only what one socket read carried.
    const waiting = a.stats().maxWaitingMessages;
    console.info(
      `pgoutput big transaction: at most ${waiting} messages waited for a ${MAX_ROWS}-row fragment's sink`,
    );
    expect(waiting).toBeLessThan(3 * MAX_ROWS);

    // A new reader from the stored offset: the whole transaction again, from fragment 0.
    const second: SourceTransaction[] = [];
    const b = new PgoutputSource(cfg, { logger: silentLogger, onError: (e) => errors.push(e) });
    sources.push(b);
    await b.start(before, async (tx) => {
      acknowledged.push(await confirmed());
      second.push(tx);
    });
    await waitFor('the replayed transaction', () => second.at(-1)?.fragment?.last === true, 60_000);
    await b.stop();
    expect(errors).toHaveLength(1);
    expect(second.map((t) => t.fragment?.index)).toEqual(
      Array.from({ length: ROWS / MAX_ROWS }, (_, i) => i),
    );
    expect(second.every((t) => t.id === first[0]?.id)).toBe(true);
    const events = second.flatMap((t) => t.events);
    expect(events.map((e) => e.transaction?.total_order)).toEqual(events.map((_, i) => i + 1));
    expect(new Set(events.map((e) => e.after?.description)).size).toBe(ROWS);
    const commitEnd = parseLsn(String(second.at(-1)?.offset.lsn));
    expect(b.offset()).toEqual(second.at(-1)?.offset);
    // Nothing inside the transaction was acknowledged to the server before its commit was stored.
    expect(acknowledged.every((lsn) => lsn < commitEnd)).toBe(true);
    expect(await slotFlushLsn(fourthSlot)).toBeGreaterThanOrEqual(commitEnd);
  });

  it('resumes with the transaction whose commit record directly follows the last delivered commit', async () => {
    // On a restart the server skips every transaction whose commit record starts before the
    // slot's confirmed position. Two sessions committing back to back put the second commit
    // record right at the end of the first: acknowledging one byte past that end (a status
    // update counts "last byte + 1") lost the second transaction to the next reader.
    const cfg = { ...config, slotName: fifthSlot, snapshotMode: 'never' as const };
    const errors: SourceError[] = [];
    const firstReader: SourceTransaction[] = [];
    const touches = (tx: SourceTransaction, id: number) =>
      tx.events.some((e) => e.source.table === 'customers' && (e.after as { id?: number } | null)?.id === id);
    const a = new PgoutputSource(cfg, { logger: silentLogger, onError: (e) => errors.push(e) });
    sources.push(a);
    await a.start(null, async (tx) => {
      if (touches(tx, 2)) throw new Error('sink down');
      firstReader.push(tx);
    });
    const one = pgClient(LEGACY_PG, database);
    const two = pgClient(LEGACY_PG, database);
    await one.connect();
    await two.connect();
    try {
      await two.query('BEGIN');
      await two.query("UPDATE customers SET email = 'adjacent-2@example.com' WHERE id = 2");
      await one.query("UPDATE customers SET email = 'adjacent-1@example.com' WHERE id = 1");
      await two.query('COMMIT');
    } finally {
      await one.end();
      await two.end();
    }
    await waitFor('the sink failure', () => errors.length > 0, 30_000);
    expect(firstReader.some((tx) => touches(tx, 1))).toBe(true);
    await a.stop();

    const secondReader: SourceTransaction[] = [];
    const b = new PgoutputSource(cfg, { logger: silentLogger });
    sources.push(b);
    await b.start(a.offset(), async (tx) => {
      secondReader.push(tx);
    });
    await waitFor('the second commit', () => secondReader.some((tx) => touches(tx, 2)), 15_000);
    expect(secondReader.some((tx) => touches(tx, 1))).toBe(false);
  });

  it('with streamInFlight hands an ordered sink the transactions that waited, stored as groups in commit order, and acknowledges none past a failed group', async () => {
    const cfg = { ...config, slotName: sixthSlot, tables: ['customers'], snapshotMode: 'never' as const };
    const emailOf = (tx: SourceTransaction) =>
      String((tx.events[0]?.after as { email?: string } | undefined)?.email);
    const groups: string[][] = [];
    const errors: SourceError[] = [];
    let failAt: string | null = null;
    const store = async (emails: string[]) => {
      await new Promise((r) => setTimeout(r, 20));
      if (failAt !== null && emails.includes(failAt)) throw new Error('store down');
      groups.push(emails);
    };
    const a = new PgoutputSource(cfg, { logger: silentLogger, onError: (e) => errors.push(e) });
    sources.push(a);
    await a.start(
      null,
      orderedSink(
        emailOf,
        (email) => store([email]),
        (calls) => store(calls.map((c) => c.prepared)),
      ),
      { streamInFlight: 16 },
    );
    const writer = pgClient(LEGACY_PG, database);
    await writer.connect();
    const update = async (n: number) => {
      const email = `grouped-${n}@example.com`;
      await writer.query('UPDATE customers SET email = $1 WHERE id = $2', [email, (n % 5) + 1]);
      return email;
    };
    try {
      const committed: string[] = [];
      for (let n = 1; n <= 40; n++) committed.push(await update(n));
      await waitFor('40 transactions', () => groups.flat().length >= 40, 30_000);
      expect(groups.flat()).toEqual(committed);
      // The commits outpace a 20 ms store: later transactions waited and were stored together.
      expect(groups.some((g) => g.length > 1)).toBe(true);
      expect(Math.max(...groups.map((g) => g.length))).toBeLessThanOrEqual(16);

      // A group the store refuses: the source fails, and neither its offset nor the slot moves
      // past the last stored group, so the next reader starts with the refused transactions.
      const stored = groups.length;
      failAt = 'grouped-45@example.com';
      const more: string[] = [];
      for (let n = 41; n <= 60; n++) more.push(await update(n));
      await waitFor('the store failure', () => errors.length > 0, 30_000);
      expect(errors[0]?.code).toBe('SINK_FAILED');
      const kept = groups.slice(stored).flat();
      expect(kept).toEqual(more.slice(0, kept.length));
      expect(kept).not.toContain(failAt);
      await a.stop();
      const resumedFrom = parseLsn(String(a.offset()?.lsn));
      expect(await slotFlushLsn(sixthSlot)).toBeLessThanOrEqual(resumedFrom);

      failAt = null;
      const again: string[] = [];
      const b = new PgoutputSource(cfg, { logger: silentLogger });
      sources.push(b);
      await b.start(a.offset(), async (tx) => {
        again.push(emailOf(tx));
      });
      await waitFor(
        'the refused transactions again',
        () => again.length >= more.length - kept.length,
        30_000,
      );
      await b.stop();
      expect(again).toEqual(more.slice(kept.length));
    } finally {
      await writer.end();
    }
  });
});
