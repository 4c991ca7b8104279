import { randomBytes } from 'node:crypto';
import mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BinlogOffset, BinlogSourceConfigInput } from '../../connectors/binlog/config.js';
import { preflight } from '../../connectors/binlog/preflight.js';
import { MysqlBinlogSource } from '../../connectors/binlog/source.js';
import type { ChangeEvent, Row, SourceTransaction } from '../../connectors/change-event.js';
import { orderedSink } from '../../connectors/snapshot-delivery.js';
import { SourceError } from '../../lib/errors.js';
import { silentLogger } from '../../lib/logger.js';
import { MYSQL_TYPE_OPTIONS } from '../../lib/mysql-types.js';

const SERVER = { host: '127.0.0.1', port: 3307, user: 'cqrs', password: 'cqrs' };
const db = `t_binlog_${randomBytes(4).toString('hex')}`;
// Replica ids must differ between concurrently connected readers, including other test files'.
let nextServerId = 40_000 + Math.floor(Math.random() * 20_000) * 10;

let admin: mysql.Connection;

function config(extra: Partial<BinlogSourceConfigInput>): BinlogSourceConfigInput {
  return { ...SERVER, database: db, serverId: nextServerId++, name: 'legacy', ...extra };
}

/** Runs statements as one transaction and returns its GTID. */
async function tx(...statements: Array<string | [string, unknown[]]>): Promise<string> {
  await admin.query('BEGIN');
  for (const s of statements) await (typeof s === 'string' ? admin.query(s) : admin.query(s[0], s[1]));
  await admin.query('COMMIT');
  const [rows] = await admin.query('SELECT @@last_gtid AS gtid');
  return String((rows as Array<{ gtid: string }>)[0]?.gtid);
}

async function head(): Promise<{ file: string; pos: number }> {
  const [rows] = await admin.query('SHOW MASTER STATUS');
  const r = (rows as Array<{ File: string; Position: number }>)[0];
  if (!r) throw new Error('no binlog');
  return { file: r.File, pos: Number(r.Position) };
}

async function waitFor(what: string, done: () => boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A sink recording what it gets; `onTx` may act on each (e.g. stop the source). */
function recorder(onTx?: (tx: SourceTransaction, all: SourceTransaction[]) => void | Promise<void>) {
  const all: SourceTransaction[] = [];
  const sink = async (t: SourceTransaction) => {
    all.push(t);
    await onTx?.(t, all);
  };
  return {
    all,
    sink,
    streamed: () => all.filter((t) => !t.snapshot),
    snapshot: () => all.filter((t) => t.snapshot),
  };
}

/** Chunk ids without their "@<run>" suffix, which names the snapshot's stream position. */
const chunkIds = (txs: SourceTransaction[]) => txs.map((t) => t.id.replace(/@[^@]*$/, ''));

const without = (row: Row | null | undefined, key: string): Row => {
  const { [key]: _dropped, ...rest } = row ?? {};
  return rest;
};

/** Applies change events to a keyed image of the table, as an idempotent consumer would. */
function apply(state: Map<string, Row>, events: ChangeEvent[], key: (r: Row) => string): void {
  for (const e of events) {
    if (e.op === 'd' && e.before) state.delete(key(e.before));
    else if (e.after) state.set(key(e.after), e.after);
  }
}

beforeAll(async () => {
  admin = await mysql.createConnection({ ...SERVER, ...MYSQL_TYPE_OPTIONS });
  await admin.query(`CREATE DATABASE ${db} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci`);
  await admin.query(`USE ${db}`);
});

afterAll(async () => {
  await admin?.query(`DROP DATABASE IF EXISTS ${db}`);
  await admin?.end();
});

describe('MysqlBinlogSource against MariaDB', () => {
  it('snapshots existing rows as reads with exact values, then streams each transaction whole', async () => {
    await admin.query(`CREATE TABLE kinds (
      id BIGINT PRIMARY KEY, amount DECIMAL(19,4), at DATETIME(6), day DATE, big BIGINT,
      status ENUM('open','frozen','closed'), note VARCHAR(100), ratio FLOAT, flag TINYINT, payload BLOB)`);
    await admin.query(
      'CREATE TABLE entries (account_id BIGINT, seq INT, amount DECIMAL(19,4), PRIMARY KEY (account_id, seq))',
    );
    await admin.query(
      `INSERT INTO kinds VALUES
        (1, 12.34, '2024-01-02 03:04:05.123456', '2024-01-02', 9007199254740993, 'open', 'Zoë — 東京 ✓ 😀', 1.2345678, -5, x'00ff'),
        (2, -0.5, '2024-01-02 03:04:05.000001', '1999-12-31', 42, 'closed', 'plain', NULL, 0, NULL),
        (3, NULL, '2024-01-02 03:04:05.000000', NULL, NULL, NULL, NULL, NULL, NULL, NULL)`,
    );
    await admin.query(`INSERT INTO entries VALUES (1, 1, 10), (1, 2, -3.5), (2, 1, 0)`);

    const rec = recorder();
    const source = new MysqlBinlogSource(config({ tables: ['kinds', 'entries'], snapshotChunkRows: 2 }), {
      logger: silentLogger,
    });
    try {
      await source.start(null, rec.sink);

      // Snapshot: per-table keyset chunks, tables in name order, one consistent view.
      expect(chunkIds(rec.snapshot())).toEqual([
        'snapshot:entries:0',
        'snapshot:entries:1',
        'snapshot:kinds:0',
        'snapshot:kinds:1',
      ]);
      const reads = rec.snapshot().flatMap((t) => t.events);
      expect(reads.every((e) => e.op === 'r' && e.before === null && e.transaction === null)).toBe(true);
      expect(reads.map((e) => e.source.snapshot)).toEqual(['first', 'true', 'true', 'true', 'true', 'last']);
      const offsets = rec.snapshot().map((t) => t.offset as BinlogOffset);
      expect(offsets.map((o) => o.snapshotCompleted)).toEqual([false, false, false, true]);
      expect(new Set(offsets.map((o) => `${o.file}:${o.pos}`)).size).toBe(1);
      const snapRows = new Map(
        reads.filter((e) => e.source.table === 'kinds').map((e) => [e.after?.id, e.after]),
      );
      expect(snapRows.get(1)).toEqual({
        id: 1,
        amount: '12.3400',
        at: '2024-01-02 03:04:05.123456',
        day: '2024-01-02',
        big: '9007199254740993',
        status: 'open',
        note: 'Zoë — 東京 ✓ 😀',
        // A FLOAT's exact single-precision value (the text protocol alone would say 1.23457).
        ratio: 1.2345678,
        flag: -5,
        payload: 'AP8=',
      });
      expect(snapRows.get(2)).toEqual({
        id: 2,
        amount: '-0.5000',
        at: '2024-01-02 03:04:05.000001',
        day: '1999-12-31',
        big: 42,
        status: 'closed',
        note: 'plain',
        ratio: null,
        flag: 0,
        payload: null,
      });
      expect(snapRows.get(3)?.at).toBe('2024-01-02 03:04:05.000000');
      expect(reads.filter((e) => e.source.table === 'entries').map((e) => e.after)).toEqual([
        { account_id: 1, seq: 1, amount: '10.0000' },
        { account_id: 1, seq: 2, amount: '-3.5000' },
        { account_id: 2, seq: 1, amount: '0.0000' },
      ]);

      // Streaming: one SourceTransaction per committed transaction, events in binlog order.
      const gtidA = await tx(
        `INSERT INTO kinds SELECT 4, amount, at, day, big, status, note, ratio, flag, payload FROM kinds WHERE id = 1`,
        `UPDATE kinds SET amount = 7.25, status = 'frozen' WHERE id = 2`,
        `INSERT INTO entries VALUES (2, 2, 1.5)`,
        `DELETE FROM kinds WHERE id = 3`,
      );
      const gtidB = await tx('UPDATE entries SET amount = amount + 1 WHERE account_id = 1');
      await waitFor('two streamed transactions', () => rec.streamed().length >= 2);
      const [a, b] = rec.streamed() as [SourceTransaction, SourceTransaction];
      expect(a.id).toBe(gtidA);
      expect(a.events.map((e) => [e.op, e.source.table, e.transaction])).toEqual([
        ['c', 'kinds', { id: gtidA, total_order: 1, data_collection_order: 1 }],
        ['u', 'kinds', { id: gtidA, total_order: 2, data_collection_order: 2 }],
        ['c', 'entries', { id: gtidA, total_order: 3, data_collection_order: 1 }],
        ['d', 'kinds', { id: gtidA, total_order: 4, data_collection_order: 3 }],
      ]);
      const [created, updated, entry, deleted] = a.events;
      // Same values through the snapshot and the binlog path: same representation.
      expect(without(created?.after, 'id')).toEqual(without(snapRows.get(1), 'id'));
      expect(created?.before).toBeNull();
      expect(updated?.before).toEqual(snapRows.get(2));
      expect(updated?.after).toEqual({ ...snapRows.get(2), amount: '7.2500', status: 'frozen' });
      expect(entry?.after).toEqual({ account_id: 2, seq: 2, amount: '1.5000' });
      expect(deleted?.before).toEqual(snapRows.get(3));
      expect(deleted?.after).toBeNull();
      expect(created?.source).toMatchObject({
        connector: 'mariadb',
        name: 'legacy',
        db,
        table: 'kinds',
        snapshot: 'false',
        server_id: 1,
        gtid: gtidA,
        row: 0,
      });
      const posA = a.events.map((e) => e.source.pos ?? 0);
      expect(posA.every((p, i) => p > (posA[i - 1] ?? 0))).toBe(true);
      const offsetA = a.offset as BinlogOffset;
      expect(offsetA).toMatchObject({ phase: 'stream', snapshotCompleted: true, file: created?.source.file });
      expect(offsetA.pos).toBeGreaterThan(posA[3] ?? 0);
      expect(offsetA.gtid?.split(',')).toContain(gtidA);

      expect(b.id).toBe(gtidB);
      expect(b.events.map((e) => [e.op, e.source.row, e.after?.amount])).toEqual([
        ['u', 0, '11.0000'],
        ['u', 1, '-2.5000'],
      ]);
      expect(b.events[0]?.source.pos).toBe(b.events[1]?.source.pos);
      expect((b.offset as BinlogOffset).pos).toBeGreaterThan(offsetA.pos);
      expect(source.offset()).toEqual(b.offset);
    } finally {
      await source.stop();
    }
  });

  it('snapshots a table without a primary key in pages, duplicates included', async () => {
    await admin.query('CREATE TABLE n_log (msg VARCHAR(20), at DATETIME(3))');
    await admin.query(
      `INSERT INTO n_log VALUES ('same', '2024-01-02 03:04:05.100'), ('same', '2024-01-02 03:04:05.100'), ('other', NULL)`,
    );
    const rec = recorder();
    const source = new MysqlBinlogSource(config({ tables: ['n_log'], snapshotChunkRows: 2 }));
    try {
      await source.start(null, rec.sink);
      expect(rec.all.map((t, i) => [chunkIds(rec.all)[i], t.events.length])).toEqual([
        ['snapshot:n_log:0', 2],
        ['snapshot:n_log:1', 1],
      ]);
      const rows = rec.all.flatMap((t) => t.events.map((e) => e.after));
      expect(rows).toHaveLength(3);
      expect(rows).toEqual(
        expect.arrayContaining([
          { msg: 'same', at: '2024-01-02 03:04:05.100' },
          { msg: 'other', at: null },
        ]),
      );
      expect(rows.filter((r) => r?.msg === 'same')).toHaveLength(2);
    } finally {
      await source.stop();
    }
  });

  it('resumes from a stored offset: every later transaction exactly once, none repeated', async () => {
    await admin.query('CREATE TABLE r_items (id INT PRIMARY KEY, v VARCHAR(20))');
    const gtids: string[] = [];
    let stopAt: SourceTransaction | null = null;
    let first: MysqlBinlogSource | null = null;
    const rec1 = recorder(async (t, all) => {
      // Slow enough that the later transactions wait in the queue when stop() is called.
      await new Promise((r) => setTimeout(r, 20));
      if (all.length === 3) {
        stopAt = t;
        void first?.stop();
      }
    });
    const from = await head();
    for (let i = 1; i <= 6; i++)
      gtids.push(
        await tx(
          [`INSERT INTO r_items VALUES (?, 'a')`, [i]],
          [`UPDATE r_items SET v = 'b' WHERE id = ?`, [i]],
        ),
      );
    first = new MysqlBinlogSource(config({ tables: ['r_items'], snapshotMode: 'never' }));
    await first.start({ phase: 'stream', snapshotCompleted: true, ...from, gtid: null }, rec1.sink);
    await waitFor('the first source to stop itself', () => stopAt !== null);
    await first.stop();
    expect(rec1.all.map((t) => t.id)).toEqual(gtids.slice(0, 3));
    const offset = (stopAt as SourceTransaction | null)?.offset ?? null;
    expect(first.offset()).toEqual(offset);

    for (let i = 7; i <= 9; i++) gtids.push(await tx([`INSERT INTO r_items VALUES (?, 'c')`, [i]]));
    const rec2 = recorder();
    const second = new MysqlBinlogSource(config({ tables: ['r_items'], snapshotMode: 'initial' }));
    try {
      await second.start(offset, rec2.sink);
      gtids.push(await tx([`DELETE FROM r_items WHERE id = ?`, [1]]));
      await waitFor('the sentinel transaction', () => rec2.all.some((t) => t.id === gtids[9]));
      expect(rec2.all.every((t) => !t.snapshot)).toBe(true);
      expect(rec2.all.map((t) => t.id)).toEqual(gtids.slice(3));
      expect(rec2.all[0]?.events.map((e) => e.op)).toEqual(['c', 'u']);
    } finally {
      await second.stop();
    }
  });

  it('resumes an interrupted snapshot after its last delivered chunk and streams from the first attempt position', async () => {
    await admin.query('CREATE TABLE s_items (id INT PRIMARY KEY, v VARCHAR(20))');
    for (let i = 1; i <= 10; i++) await admin.query(`INSERT INTO s_items VALUES (?, 'v0')`, [i]);
    let first: MysqlBinlogSource | null = null;
    const rec1 = recorder((_t, all) => {
      if (all.length === 2) void first?.stop();
    });
    first = new MysqlBinlogSource(config({ tables: ['s_items'], snapshotChunkRows: 3 }));
    await first.start(null, rec1.sink);
    await first.stop();
    expect(chunkIds(rec1.all)).toEqual(['snapshot:s_items:0', 'snapshot:s_items:1']);
    const partial = rec1.all[1]?.offset as BinlogOffset;
    expect(partial).toMatchObject({
      phase: 'snapshot',
      snapshotCompleted: false,
      table: 's_items',
      chunk: 1,
      rows: 6,
      after: [6],
    });

    // Changes while no reader runs: rows after the last delivered key are read in a new view,
    // and streaming from the first attempt's position replays every change, before it too.
    const gtids = [
      await tx(`INSERT INTO s_items VALUES (11, 'new')`),
      await tx(`UPDATE s_items SET v = 'v1' WHERE id = 1`),
      await tx(`DELETE FROM s_items WHERE id = 2`),
      await tx(`UPDATE s_items SET v = 'v2' WHERE id = 8`),
    ];
    const rec2 = recorder();
    const second = new MysqlBinlogSource(config({ tables: ['s_items'], snapshotChunkRows: 3 }));
    try {
      await second.start(partial, rec2.sink);
      await waitFor('the replayed changes', () => rec2.streamed().length >= 4);
      const snap = rec2.snapshot();
      // Rows 1-6 are not read again: only 7-11, numbered on from the first attempt's chunks.
      expect(chunkIds(snap)).toEqual(['snapshot:s_items:2', 'snapshot:s_items:3']);
      expect(snap.flatMap((t) => t.events.map((e) => e.after?.id))).toEqual([7, 8, 9, 10, 11]);
      expect(new Set([...rec1.all, ...snap].map((t) => t.id.replace(/^.*@/, ''))).size).toBe(1);
      const done = snap[1]?.offset as BinlogOffset;
      expect(done).toEqual({
        phase: 'stream',
        snapshotCompleted: true,
        file: partial.file,
        pos: partial.pos,
        gtid: partial.gtid,
      });
      expect(snap[1]?.completesTable).toMatchObject({ table: 's_items' });
      expect(rec2.streamed().map((t) => t.id)).toEqual(gtids);
      const state = new Map<string, Row>();
      apply(
        state,
        [...rec1.all, ...rec2.all].flatMap((t) => t.events),
        (r) => String(r.id),
      );
      const [rows] = await admin.query('SELECT id, v FROM s_items ORDER BY id');
      expect([...state.values()].sort((x, y) => Number(x.id) - Number(y.id))).toEqual(rows);
    } finally {
      await second.stop();
    }
  });

  it('reports an unreachable server with a hint, and the facts of a reachable one', async () => {
    const unreachable = preflight(config({ port: 1 }));
    await expect(unreachable).rejects.toBeInstanceOf(SourceError);
    await expect(unreachable).rejects.toMatchObject({
      code: 'SOURCE_UNREACHABLE',
      hint: expect.stringMatching(/npm run legacy-db up/),
    });
    const source = new MysqlBinlogSource(config({ port: 1 }));
    await expect(source.start(null, async () => {})).rejects.toMatchObject({ code: 'SOURCE_UNREACHABLE' });

    await expect(preflight(config({ database: `${db}_missing` }))).rejects.toMatchObject({
      code: 'DATABASE_MISSING',
    });
    const facts = await preflight(config({}));
    const now = await head();
    expect(facts).toMatchObject({
      flavor: 'mariadb',
      logBin: true,
      binlogFormat: 'ROW',
      binlogRowImage: 'FULL',
    });
    expect(facts.head.file).toBe(now.file);
    expect(facts.head.pos).toBeLessThanOrEqual(now.pos);
    expect(facts.head.gtid).toMatch(/^\d+-\d+-\d+/);
  });

  it('refuses a second running source with the same replica id', async () => {
    const first = new MysqlBinlogSource(config({ snapshotMode: 'never' }));
    const serverId = nextServerId - 1;
    try {
      await first.start(null, async () => {});
      const twin = new MysqlBinlogSource(config({ snapshotMode: 'never', serverId }));
      await expect(twin.start(null, async () => {})).rejects.toMatchObject({ code: 'SERVER_ID_IN_USE' });
    } finally {
      await first.stop();
    }
    const after = new MysqlBinlogSource(config({ snapshotMode: 'never', serverId }));
    await after.start(null, async () => {});
    await after.stop();
  });

  it('surfaces a failing sink through onError and stops delivering', async () => {
    await admin.query('CREATE TABLE e_items (id INT PRIMARY KEY)');
    const errors: SourceError[] = [];
    const rec = recorder((_t, all) => {
      if (all.length === 2) throw new Error('read model full');
    });
    const source = new MysqlBinlogSource(config({ tables: ['e_items'], snapshotMode: 'never' }), {
      onError: (err) => errors.push(err),
    });
    try {
      await source.start(null, rec.sink);
      const gtids: string[] = [];
      for (let i = 1; i <= 4; i++) gtids.push(await tx([`INSERT INTO e_items VALUES (?)`, [i]]));
      await waitFor('the error', () => errors.length > 0);
      expect(errors[0]).toMatchObject({
        code: 'SINK_FAILED',
        message: expect.stringMatching(/read model full/),
      });
      await new Promise((r) => setTimeout(r, 100));
      expect(rec.all.map((t) => t.id)).toEqual(gtids.slice(0, 2));
      expect(source.offset()).toEqual(rec.all[0]?.offset);
      expect(errors).toHaveLength(1);
    } finally {
      await source.stop();
    }
  });

  it('refuses an offset whose binlog is gone unless allowed to snapshot again', async () => {
    await admin.query('CREATE TABLE g_items (id INT PRIMARY KEY)');
    await admin.query('INSERT INTO g_items VALUES (1)');
    const gone = { phase: 'stream', snapshotCompleted: true, file: 'binlog.999999', pos: 4, gtid: null };
    const strict = new MysqlBinlogSource(config({ tables: ['g_items'] }));
    await expect(strict.start(gone, async () => {})).rejects.toMatchObject({ code: 'BINLOG_PURGED' });
    const rec = recorder();
    const lenient = new MysqlBinlogSource(config({ tables: ['g_items'], snapshotMode: 'when_needed' }));
    try {
      await lenient.start(gone, rec.sink);
      expect(rec.all.map((t) => [t.id, t.events.map((e) => e.after)])).toEqual([
        [expect.stringMatching(/^snapshot:g_items:0@/), [{ id: 1 }]],
      ]);
      expect(lenient.offset()).toMatchObject({
        phase: 'stream',
        file: expect.stringMatching(/^binlog\.\d+$/),
      });
    } finally {
      await lenient.stop();
    }
  });

  it('delivers everything in order to a slow sink, pausing the binlog socket meanwhile', async () => {
    await admin.query('CREATE TABLE p_items (id INT PRIMARY KEY, v INT)');
    const rec = recorder(() => new Promise((r) => setTimeout(r, 4)));
    const source = new MysqlBinlogSource(
      config({ tables: ['p_items'], snapshotMode: 'never', maxQueuedTransactions: 4 }),
    );
    try {
      await source.start(null, rec.sink);
      const gtids: string[] = [];
      for (let i = 1; i <= 60; i++) gtids.push(await tx([`INSERT INTO p_items VALUES (?, ?)`, [i, i * 10]]));
      await waitFor('60 transactions', () => rec.all.length >= 60);
      expect(rec.all.map((t) => t.id)).toEqual(gtids);
      expect(rec.all.map((t) => t.events[0]?.after?.v)).toEqual(gtids.map((_g, i) => (i + 1) * 10));
      const stats = source.stats();
      expect(stats.pauses).toBeGreaterThan(0);
      expect(stats.maxQueued).toBeLessThanOrEqual(8);
    } finally {
      await source.stop();
    }
  });

  it('with streamInFlight hands an ordered sink the transactions that waited, which it stores as groups in commit order', async () => {
    await admin.query('CREATE TABLE grp_items (id INT PRIMARY KEY, v INT)');
    const groups: string[][] = [];
    const sink = orderedSink(
      (t) => t.id,
      async (id) => {
        groups.push([id]);
        await new Promise((r) => setTimeout(r, 20));
      },
      async (calls) => {
        groups.push(calls.map((c) => c.prepared));
        await new Promise((r) => setTimeout(r, 20));
      },
    );
    const source = new MysqlBinlogSource(config({ tables: ['grp_items'], snapshotMode: 'never' }));
    try {
      await source.start(null, sink, { streamInFlight: 16 });
      const gtids: string[] = [];
      for (let i = 1; i <= 40; i++) gtids.push(await tx([`INSERT INTO grp_items VALUES (?, ?)`, [i, i]]));
      await waitFor('40 transactions', () => groups.flat().length >= 40);
      expect(groups.flat()).toEqual(gtids);
      // The writes outpace a 20 ms store: later transactions waited and were stored together.
      expect(groups.some((g) => g.length > 1)).toBe(true);
      expect(Math.max(...groups.map((g) => g.length))).toBeLessThanOrEqual(16);
    } finally {
      await source.stop();
    }
  });

  it('decodes a few thousand streamed rows with exact values', async () => {
    await admin.query('CREATE TABLE d_rows (id INT PRIMARY KEY, amount DECIMAL(19,4), at DATETIME(6))');
    const from = await head();
    const rows = 5000;
    for (let start = 0; start < rows; start += 500) {
      const values = Array.from({ length: 500 }, (_v, i) => {
        const id = start + i + 1;
        return `(${id}, ${id}.0001, '2024-01-02 03:04:05.${String(id).padStart(6, '0')}')`;
      });
      await admin.query(`INSERT INTO d_rows VALUES ${values.join(', ')}`);
    }
    let received = 0;
    let last: Row | null = null;
    const source = new MysqlBinlogSource(config({ tables: ['d_rows'], snapshotMode: 'never' }));
    const startedAt = performance.now();
    try {
      await source.start({ phase: 'stream', snapshotCompleted: true, ...from, gtid: null }, async (t) => {
        received += t.events.length;
        last = t.events[t.events.length - 1]?.after ?? null;
      });
      await waitFor(`${rows} rows`, () => received >= rows);
      const seconds = (performance.now() - startedAt) / 1000;
      console.log(
        `binlog decode: ${rows} rows in ${seconds.toFixed(2)}s = ${Math.round(rows / seconds)} rows/s`,
      );
      expect(received).toBe(rows);
      expect(last).toEqual({ id: 5000, amount: '5000.0001', at: '2024-01-02 03:04:05.005000' });
      expect(source.stats().streamedRows).toBe(rows);
    } finally {
      await source.stop();
    }
  });
});
