import { randomBytes } from 'node:crypto';
import mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MysqlBinlogSource } from '../../connectors/binlog/source.js';
import type { Row, SourceTransaction } from '../../connectors/change-event.js';
import {
  type OpenedLegacyDb,
  openLegacyDb,
  parseLegacyUrl,
  redactUrl,
} from '../../connectors/legacy/index.js';
import { openMysqlLegacyDb } from '../../connectors/legacy/mysql.js';
import { openPostgresLegacyDb } from '../../connectors/legacy/postgres.js';
import { PgoutputSource } from '../../connectors/pgoutput/source.js';
import {
  createChangeSource,
  type LegacyChangeSource,
  pgoutputSourceConfigFrom,
  recordEndOf,
  type SourceProgress,
} from '../../connectors/source-factory.js';
import { configSchema } from '../../lib/config.js';
import { AdapterError, ConfigError, DefinitionError } from '../../lib/errors.js';
import { silentLogger } from '../../lib/logger.js';
import { MYSQL_TYPE_OPTIONS } from '../../lib/mysql-types.js';
import { waitFor } from './support/debezium-bank.js';
import { dropPgState, LEGACY_PG, pgQuery, pgReachable } from './support/postgres.js';

/**
 * The legacy database port on both engines: named parameters bound (never spliced), values in
 * the very form change-data-capture delivers for the same row, snapshots that hold one view,
 * and the change source picked from the URL with its catch-up probe.
 */

const MARIA = { host: '127.0.0.1', port: 3307, user: 'cqrs', password: 'cqrs' };
const suffix = randomBytes(4).toString('hex');
// Replica ids must differ between concurrently connected readers, including other test files'.
let nextServerId = 60_000 + Math.floor(Math.random() * 20_000) * 10;

async function mariaReachable(): Promise<boolean> {
  try {
    const c = await mysql.createConnection({ ...MARIA, connectTimeout: 3000 });
    await c.end();
    return true;
  } catch {
    return false;
  }
}

const mariaUp = await mariaReachable();
const pgUp = await pgReachable();
if (!mariaUp) console.warn('legacy-db: MariaDB on 3307 is not reachable; `bash scripts/legacy-db.sh up`');
if (!pgUp) console.warn('legacy-db: PostgreSQL on 5433 is not reachable; `bash scripts/legacy-pg.sh up`');

/** A sink recording what it gets, that can be held shut to keep deliveries in flight. */
function recorder() {
  const all: SourceTransaction[] = [];
  let gate: Promise<void> = Promise.resolve();
  let open: () => void = () => undefined;
  return {
    all,
    sink: async (tx: SourceTransaction) => {
      await gate;
      all.push(tx);
    },
    hold() {
      gate = new Promise((r) => {
        open = r;
      });
    },
    release: () => open(),
    afterOf: (table: string, id: number) =>
      all
        .filter((t) => !t.snapshot)
        .flatMap((t) => t.events)
        .find((e) => e.source.table === table && e.after?.id === id)?.after,
  };
}

describe('legacy URLs', () => {
  it('picks the dialect from the scheme and needs nothing else', () => {
    expect(parseLegacyUrl('mysql://u:p%40ss@db:3307/shop')).toEqual({
      dialect: 'mysql',
      host: 'db',
      port: 3307,
      user: 'u',
      password: 'p@ss',
      database: 'shop',
    });
    expect(parseLegacyUrl('mariadb://u@db').port).toBe(3306);
    expect(parseLegacyUrl('mariadb://u@db').database).toBeUndefined();
    expect(parseLegacyUrl('postgresql://u:p@[::1]/shop')).toMatchObject({
      dialect: 'postgres',
      host: '::1',
      port: 5432,
    });
    expect(() => parseLegacyUrl('oracle://u:secret@db/x')).toThrow(ConfigError);
    expect(() => parseLegacyUrl('oracle://u:secret@db/x')).toThrow(/unsupported scheme "oracle"/);
    expect(() => parseLegacyUrl('oracle://u:secret@db/x')).not.toThrow(/secret/);
    expect(() => parseLegacyUrl('postgres://u:p@db/shop?sslmode=require')).toThrow(/not supported/);
    // PostgreSQL's one option: the schema (public when absent); MySQL's database is its schema.
    expect(parseLegacyUrl('postgres://u:p@db/shop?schema=sales')).toMatchObject({
      database: 'shop',
      schema: 'sales',
    });
    expect(parseLegacyUrl('postgres://u:p@db/shop').schema).toBeUndefined();
    // Names with "-" or letters of any script are databases too; quotes and slashes are typos.
    expect(parseLegacyUrl('postgres://u:p@db/billing-prod').database).toBe('billing-prod');
    expect(parseLegacyUrl('mysql://u:p@db/boutique_%C3%A9t%C3%A9').database).toBe('boutique_été');
    expect(() => parseLegacyUrl("mysql://u:p@db/sh'op")).toThrow(/invalid database name/);
    expect(() => parseLegacyUrl(`postgres://u:p@db/${'%C3%A9'.repeat(32)}`)).toThrow(/invalid database name/);
    expect(parseLegacyUrl(`mysql://u:p@db/${'%C3%A9'.repeat(64)}`).database).toHaveLength(64);
    expect(() => parseLegacyUrl('mysql://u:p@db/shop?schema=sales')).toThrow(/not supported \(schema\)/);
    expect(() => parseLegacyUrl('postgres://u:p@db/shop?schema=sales&sslmode=require')).toThrow(
      /not supported \(sslmode\)/,
    );
    expect(() => parseLegacyUrl('postgres://u:p@db/shop?schema=a&schema=b')).toThrow(/not supported/);
    expect(() => parseLegacyUrl('postgres://u:p@db/shop?schema=x;drop')).toThrow(/invalid schema name/);
    expect(redactUrl('postgres://u:secret@db/shop')).toBe('postgres://u:***@db/shop');
  });

  it("takes a WAL insert position at a page start back to the last record's end", () => {
    const block = 8192n;
    const segment = 16n * 1024n * 1024n;
    expect(recordEndOf(3n * block + 24n, block, segment)).toBe(3n * block);
    expect(recordEndOf(2n * segment + 40n, block, segment)).toBe(2n * segment);
    expect(recordEndOf(3n * block + 200n, block, segment)).toBe(3n * block + 200n);
  });

  it('refuses a URL without a database, with a hint, instead of a sample default', () => {
    let err: unknown;
    try {
      openLegacyDb('mysql://cqrs:cqrs@127.0.0.1:3307');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).message).toMatch(/names no database/);
    expect((err as ConfigError).hint).toMatch(/mysql:\/\/user:password@127\.0\.0\.1:3307\/your_database/);
    const config = configSchema.parse({ legacy: { url: 'postgres://cqrs:cqrs@127.0.0.1:5433' } });
    expect(() => createChangeSource(config, { tables: [] })).toThrow(/names no database/);
  });
});

/** The cases both engines must pass, against a table `vals(id, note)` the caller created. */
function parameterCases(db: () => OpenedLegacyDb) {
  it('binds named parameters, a repeated name every time it appears', async () => {
    const rows = await db().query('SELECT id, note FROM vals WHERE id = :id OR (id = :id AND note = :note)', {
      id: 1,
      note: 'x',
      unused: 'extra parameters are ignored',
    });
    expect(rows).toEqual([{ id: 1, note: "it's :not a param -- nor # this" }]);
  });

  it('never binds inside literals, quoted identifiers or comments, nor a :: cast', async () => {
    const quotedId = db().dialect === 'mysql' ? '`odd:name`' : '"odd:name"';
    const rows = await db().query(
      `/* :c1 */ SELECT ':s1' AS a, 'it''s :s2' AS b, :v AS c, 7 AS ${quotedId} -- :c2
       FROM vals WHERE id = :id ${db().dialect === 'postgres' ? 'AND id::text = :id::text' : ''}`,
      { v: 'bound', id: 1 },
    );
    expect(rows).toEqual([{ a: ':s1', b: "it's :s2", c: 'bound', 'odd:name': 7 }]);
    // A parameter's value is data, never SQL.
    const injected = await db().query('SELECT COUNT(*) AS n FROM vals WHERE note = :note', {
      note: "' OR '1'='1",
    });
    expect(injected).toEqual([{ n: 0 }]);
  });

  it('names a parameter the SQL uses but was not given', async () => {
    await expect(db().query('SELECT :missing AS x, :given AS y', { given: 1 })).rejects.toThrow(
      /parameter :missing, which was not given \(given: given\)/,
    );
    await expect(db().query('SELECT :missing AS x')).rejects.toBeInstanceOf(DefinitionError);
  });

  it("picks the dialect's text and says which one is missing", async () => {
    expect(await db().query({ mysql: 'SELECT 1 AS one', postgres: 'SELECT 1 AS one' })).toEqual([{ one: 1 }]);
    const other = db().dialect === 'mysql' ? 'postgres' : 'mysql';
    await expect(db().query({ [other]: 'SELECT 1' })).rejects.toThrow(
      new RegExp(`no ${db().dialect} text \\(it has: ${other}\\)`),
    );
  });

  it('reports a failing statement as a typed error', async () => {
    const err = await db()
      .query('SELECT no_such_column FROM vals')
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AdapterError);
    expect((err as AdapterError).code).toBe('LEGACY_QUERY_FAILED');
  });
}

/** A snapshot sees one view; a failed one leaves no transaction open on the pooled connection. */
function snapshotCases(db: () => OpenedLegacyDb, commitElsewhere: (id: number) => Promise<void>) {
  it('keeps one view inside a snapshot while another connection commits', async () => {
    const count = async (q: Pick<OpenedLegacyDb, 'query'>) =>
      Number((await q.query('SELECT COUNT(*) AS n FROM vals'))[0]?.n);
    const before = await count(db());
    const seen = await db().snapshot(async (s) => {
      const first = await count(s);
      await commitElsewhere(1001);
      const second = await count(s);
      return { first, second };
    });
    expect(seen).toEqual({ first: before, second: before });
    expect(await count(db())).toBe(before + 1);
  });

  it('rolls back a failed snapshot and hands the connection back clean', async () => {
    await expect(
      db().snapshot(async (s) => {
        await s.query('SELECT 1 AS one');
        throw new Error('endpoint failed');
      }),
    ).rejects.toThrow('endpoint failed');
    // The pool has one connection: had it kept its read view, it would not see this commit.
    await commitElsewhere(1002);
    expect(await db().query('SELECT id FROM vals WHERE id = :id', { id: 1002 })).toEqual([{ id: 1002 }]);
  });
}

describe.skipIf(!mariaUp)('LegacyDb on MariaDB', () => {
  const database = `t_legacy_${suffix}`;
  const url = `mysql://cqrs:cqrs@127.0.0.1:3307/${database}`;
  let admin: mysql.Connection;
  let db: OpenedLegacyDb;
  const sources: Array<{ stop(): Promise<void> }> = [];
  const probes: SourceProgress[] = [];

  beforeAll(async () => {
    admin = await mysql.createConnection({ ...MARIA, ...MYSQL_TYPE_OPTIONS });
    await admin.query(`CREATE DATABASE ${database}`);
    await admin.query(`USE ${database}`);
    await admin.query('CREATE TABLE vals (id INT PRIMARY KEY, note VARCHAR(100))');
    await admin.query(
      `CREATE TABLE typed (id INT PRIMARY KEY, amount DECIMAL(19,4), rate DECIMAL(9,6), at DATETIME(6),
         at0 DATETIME, ts TIMESTAMP(6) NULL, d DATE, big BIGINT, small BIGINT, f FLOAT, note VARCHAR(50))`,
    );
    await admin.query("INSERT INTO vals VALUES (1, 'it''s :not a param -- nor # this'), (2, 'b')");
    db = openLegacyDb(url, { poolSize: 1 });
  });

  afterAll(async () => {
    for (const s of sources) await s.stop();
    for (const p of probes) await p.close();
    await db?.close();
    await admin?.query(`DROP DATABASE IF EXISTS ${database}`);
    await admin?.end();
  });

  it('is the mysql adapter for mysql:// and mariadb:// URLs', async () => {
    expect(db.dialect).toBe('mysql');
    const other = openMysqlLegacyDb(`mariadb://cqrs:cqrs@127.0.0.1:3307/${database}`);
    try {
      expect(await other.query('SELECT DATABASE() AS db')).toEqual([{ db: database }]);
    } finally {
      await other.close();
    }
  });

  parameterCases(() => db);

  it('refuses positional placeholders', async () => {
    await expect(db.query('SELECT id FROM vals WHERE id = ?')).rejects.toThrow(/positional placeholder \?/);
  });

  snapshotCases(
    () => db,
    async (id) => {
      await admin.query('INSERT INTO vals VALUES (?, ?)', [id, 'elsewhere']);
    },
  );

  it('returns DECIMAL, DATETIME(6) and TIMESTAMP(6) as the binlog reader delivers the same row', async () => {
    const rec = recorder();
    const source = new MysqlBinlogSource(
      {
        ...MARIA,
        database,
        serverId: nextServerId++,
        tables: ['typed'],
        snapshotMode: 'never',
      },
      { logger: silentLogger },
    );
    sources.push(source);
    await source.start(null, rec.sink);
    // Session zone far from UTC: TIMESTAMP must still read as the binlog's UTC rendering.
    await admin.query("SET time_zone = '+05:30'");
    await admin.query(
      `INSERT INTO typed VALUES
         (1, 12.3, 0.5, '2024-05-01 09:30:00.5', '2024-05-01 09:30:00', '2024-05-01 09:30:00.000001',
          '2024-05-01', 9007199254740993, 42, 1.1, 'a:b'),
         (2, -0.0001, 0, '2024-05-01 00:00:00', '2024-12-31 23:59:59', NULL, NULL, NULL, -1, NULL, NULL)`,
    );
    await waitFor('the binlog rows', () => rec.afterOf('typed', 2) !== undefined, 20_000);
    for (const id of [1, 2]) {
      const [queried] = await db.query('SELECT * FROM typed WHERE id = :id', { id });
      expect(queried).toEqual(rec.afterOf('typed', id));
    }
    const [one] = await db.query('SELECT amount, at, ts, big FROM typed WHERE id = 1');
    expect(one).toEqual({
      amount: '12.3000',
      at: '2024-05-01 09:30:00.500000',
      ts: '2024-05-01 04:00:00.000001',
      big: '9007199254740993',
    });
  });

  it('createChangeSource reads the binlog for a mysql URL, and its probe sees it catch up', async () => {
    const config = configSchema.parse({
      legacy: { url },
      cdc: { serverId: nextServerId++, name: `t_legacy_${suffix}`, snapshotMode: 'never' },
    });
    const source: LegacyChangeSource = createChangeSource(config, { tables: ['vals'], logger: silentLogger });
    sources.push(source);
    expect(source.dialect).toBe('mysql');
    expect(source.database).toBe(database);
    await source.preflight();
    const probe = source.openProgress();
    probes.push(probe);
    const rec = recorder();
    await source.start(null, rec.sink);
    await waitFor('the stream to catch up', () => probe.reachedLegacyEnd(), 20_000);

    rec.hold();
    await admin.query("INSERT INTO vals VALUES (2001, 'streamed')");
    const end = await probe.legacyEnd();
    expect(probe.reached(end)).toBe(false);
    rec.release();
    await waitFor('the row', () => rec.afterOf('vals', 2001) !== undefined, 20_000);
    await waitFor('the probe', () => probe.reached(end), 20_000);
    expect(await probe.reachedLegacyEnd()).toBe(true);
  });
});

describe.skipIf(!pgUp)('LegacyDb on PostgreSQL', () => {
  const database = `t_legacy_${suffix}`;
  const url = `postgres://${LEGACY_PG.user}:${LEGACY_PG.password}@${LEGACY_PG.host}:${LEGACY_PG.port}/${database}`;
  const valuesSlot = `t_legacy_${suffix}`;
  const sourceName = `t_legacy_src_${suffix}`;
  let db: OpenedLegacyDb;
  const sources: Array<{ stop(): Promise<void> }> = [];
  const probes: SourceProgress[] = [];
  let factorySlot = '';

  beforeAll(async () => {
    await pgQuery('postgres', `CREATE DATABASE ${database}`);
    await pgQuery(
      database,
      'CREATE TABLE vals (id int PRIMARY KEY, note text)',
      `CREATE TABLE typed (id int PRIMARY KEY, amount numeric(19,4), free numeric, at timestamp(6),
         at3 timestamp(3), at0 timestamp, tz timestamptz(6), d date, big bigint, small bigint,
         ok boolean, raw bytea, note text)`,
      'ALTER TABLE typed REPLICA IDENTITY FULL',
      // The source's preflight refuses captured tables whose updates and deletes lack a before image.
      'ALTER TABLE vals REPLICA IDENTITY FULL',
      "INSERT INTO vals VALUES (1, 'it''s :not a param -- nor # this'), (2, 'b')",
    );
    db = openLegacyDb(url, { poolSize: 1 });
    factorySlot = String(
      pgoutputSourceConfigFrom(configSchema.parse({ legacy: { url }, cdc: { name: sourceName } }), [])
        .slotName,
    );
  });

  afterAll(async () => {
    for (const s of sources) await s.stop();
    for (const p of probes) await p.close();
    await db?.close();
    await dropPgState(database, [valuesSlot, factorySlot]);
  });

  it('is the postgres adapter for postgres:// and postgresql:// URLs', async () => {
    expect(db.dialect).toBe('postgres');
    const other = openPostgresLegacyDb(url.replace(/^postgres:/, 'postgresql:'));
    try {
      expect(await other.query('SELECT current_database() AS db')).toEqual([{ db: database }]);
    } finally {
      await other.close();
    }
  });

  parameterCases(() => db);

  it('binds a repeated name once, as the same $n, and refuses $n in the text', async () => {
    // Were :id bound twice, a text and an int deduction for one value would not both hold.
    expect(await db.query('SELECT :id::int + 1 AS next, :id::text AS same', { id: 41 })).toEqual([
      { next: 42, same: '41' },
    ]);
    expect(await db.query('SELECT $$:x $1$$ AS a, $t$:y$t$ AS b', {})).toEqual([{ a: ':x $1', b: ':y' }]);
    expect(await db.query("SELECT E'\\':z' AS a, (ARRAY[1,2,3])[2:3] AS s", {})).toEqual([
      { a: "':z", s: '{2,3}' },
    ]);
    await expect(db.query('SELECT $1::int AS x')).rejects.toThrow(/positional placeholder \$1/);
  });

  snapshotCases(
    () => db,
    async (id) => {
      await pgQuery(database, `INSERT INTO vals VALUES (${id}, 'elsewhere')`);
    },
  );

  it('returns NUMERIC, TIMESTAMP(p), TIMESTAMPTZ and int8 as the pgoutput reader delivers the same row', async () => {
    const rec = recorder();
    const source = new PgoutputSource(
      { ...LEGACY_PG, database, slotName: valuesSlot, tables: ['typed'], snapshotMode: 'never' },
      { logger: silentLogger },
    );
    sources.push(source);
    await source.start(null, rec.sink);
    await pgQuery(
      database,
      "SET TimeZone = 'Asia/Kolkata'",
      `INSERT INTO typed VALUES
         (1, 12.3, 12.30, '2024-05-01 09:30:00.5', '2024-05-01 09:30:00.5', '2024-05-01 09:30:00.123456',
          '2024-05-01 09:30:00.000001+02', '2024-05-01', 9007199254740993, 42, true, '\\x0102', 'a:b'),
         (2, -0.0001, 0, '2024-05-01 00:00:00', '2024-05-01 00:00:00', '2024-05-01 00:00:00',
          NULL, NULL, NULL, -1, false, NULL, NULL)`,
    );
    await waitFor('the streamed rows', () => rec.afterOf('typed', 2) !== undefined, 30_000);
    for (const id of [1, 2]) {
      const [queried] = await db.query('SELECT * FROM typed WHERE id = :id', { id });
      expect(queried).toEqual(rec.afterOf('typed', id));
    }
    const [one] = await db.query('SELECT amount, free, at, at3, tz, big, small FROM typed WHERE id = 1');
    expect(one).toMatchObject({
      amount: '12.3000',
      free: '12.30',
      at: '2024-05-01 09:30:00.500000',
      at3: '2024-05-01 09:30:00.500',
      big: '9007199254740993',
      small: 42,
    });
  });

  it('createChangeSource reads pgoutput for a postgres URL, and its probe sees it catch up', async () => {
    const config = configSchema.parse({ legacy: { url }, cdc: { name: sourceName, snapshotChunkRows: 10 } });
    const source = createChangeSource(config, { tables: ['vals'], logger: silentLogger });
    sources.push(source);
    expect(source.dialect).toBe('postgres');
    expect(source.database).toBe(database);
    await source.preflight();
    const probe = source.openProgress();
    probes.push(probe);
    const rec = recorder();
    await source.start(null, rec.sink);
    // The snapshot holds every row of vals: delivered by now, as start resolves after it.
    const snapshotIds = rec.all.filter((t) => t.snapshot).flatMap((t) => t.events.map((e) => e.after?.id));
    expect(snapshotIds).toContain(1);
    await waitFor('the stream to catch up', () => probe.reachedLegacyEnd(), 30_000);

    rec.hold();
    await pgQuery(
      database,
      "INSERT INTO vals VALUES (2001, 'streamed')",
      "INSERT INTO vals VALUES (2002, 'two')",
    );
    const end = await probe.legacyEnd();
    expect(probe.reached(end)).toBe(false);
    rec.release();
    await waitFor('the rows', () => rec.afterOf('vals', 2002) !== undefined, 30_000);
    await waitFor('the probe', () => probe.reached(end), 30_000);
    // Other databases' writes move the server's WAL end too: the source reaches it on keepalives.
    await waitFor('the probe at the current end', () => probe.reachedLegacyEnd(), 30_000);
    const delivered: Row | null | undefined = rec.afterOf('vals', 2001);
    expect(delivered).toEqual({ id: 2001, note: 'streamed' });
  });
});
