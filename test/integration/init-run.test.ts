import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mysql from 'mysql2/promise';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { resnapshotTable } from '../../cli/operations.js';
import { startEmbeddedPipeline } from '../../cli/pipeline.js';
import { reconcile } from '../../compare/reconcile.js';
import { SqliteComparisonRecorder } from '../../compare/recorder.js';
import { ShadowComparator } from '../../compare/shadow-compare.js';
import { openLegacyDb } from '../../connectors/legacy/index.js';
import { legacyAnswer, readModelAnswer } from '../../definition/endpoint-calls.js';
import { initDefinition } from '../../definition/init/index.js';
import { loadDefinition } from '../../definition/load.js';
import { documentsInOrder } from '../../definition/read-models.js';
import { dropDatabase } from '../../examples/bank/db.js';
import bank from '../../examples/bank/migration.js';
import { dropShopDatabase, parseShopUrl } from '../../examples/shop/db.js';
import shop from '../../examples/shop/migration.js';
import { loadConfig } from '../../lib/config.js';
import { silentLogger } from '../../lib/logger.js';
import { REPO_INDEX } from '../support/typecheck.js';
import { dropPgState, LEGACY_PG, pgQuery, pgReachable } from './support/postgres.js';

/**
 * `cqrs-migrate init` as a new user meets it: against a live database nobody wrote a definition
 * for, the starter definition it writes type-checks, loads, and `run`s the embedded pipeline to
 * a caught-up read model whose endpoint answers equal the legacy ones for every key.
 */
const suffix = `${process.pid}_${Date.now().toString(36)}`;
const dirs: string[] = [];
const cleanups: Array<() => Promise<void>> = [];

afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

/**
 * `init` for `url` into a new directory, loaded as `run` loads it, and the embedded pipeline
 * started on it; `check` reconciles every endpoint against the legacy database.
 */
async function initAndStart(url: string, cdc: { serverId?: number; name: string }) {
  const dir = mkdtempSync(join(tmpdir(), 'cqrs-init-run-'));
  dirs.push(dir);
  const out = join(dir, 'migration.ts');
  const written = await initDefinition(url, { out, importFrom: REPO_INDEX });
  const migration = await loadDefinition(out);
  expect(migration.tables.length).toBe(written.tables);
  const config = loadConfig({
    env: {},
    overrides: {
      legacy: { url },
      cdc,
      dataDir: join(dir, 'data'),
      projector: { pollIntervalMs: 20 },
    },
  });
  const errors: Error[] = [];
  const start = () =>
    startEmbeddedPipeline({ config, migration, logger: silentLogger, onError: (e) => errors.push(e) });
  let pipeline = await start();
  const legacy = openLegacyDb(url);
  const recorder = new SqliteComparisonRecorder({ path: ':memory:' });
  return {
    written,
    migration,
    config,
    errors,
    get pipeline() {
      return pipeline;
    },
    async caughtUp(): Promise<void> {
      expect(await pipeline.waitForCatchUp(120_000)).toBe(true);
    },
    check: () =>
      reconcile({
        migration,
        legacy,
        readModels: pipeline.readModels,
        comparator: new ShadowComparator({ recorder, freshness: pipeline.freshness, recheckDelayMs: 50 }),
      }),
    /** Runs `between` with the pipeline stopped, then starts it again on the same data. */
    async restart(between: () => Promise<void>): Promise<void> {
      await pipeline.stop();
      await between();
      pipeline = await start();
    },
    async close(): Promise<void> {
      recorder.close();
      await pipeline.stop();
      await legacy.close();
    },
  };
}

/** The starter definition runs to read models whose every key matches the legacy answer. */
async function initAndRun(url: string, serverId: number) {
  const run = await initAndStart(url, { serverId, name: `init_${suffix}` });
  try {
    expect(run.written.tables).toBeGreaterThanOrEqual(8);
    expect(run.migration.endpoints.length).toBeGreaterThanOrEqual(1);
    await run.caughtUp();
    expect(await run.pipeline.eventStore.countDeadLetters()).toBe(0);
    const result = await run.check();
    expect(result.checked).toBeGreaterThan(10);
    expect(result.failures).toEqual([]);
    expect(result.byOutcome.match).toBe(result.checked);
    expect(run.errors).toEqual([]);
  } finally {
    await run.close();
  }
}

describe('init writes a definition that runs', () => {
  it('on the sample bank (MariaDB)', async () => {
    const url = `mysql://cqrs:cqrs@127.0.0.1:3307/t_init_bank_${suffix}`;
    await bank.sample?.create({ url, scale: 'tiny', seed: 5, force: true, progress: () => undefined });
    cleanups.push(() =>
      dropDatabase(
        { host: '127.0.0.1', port: 3307, user: 'cqrs', password: 'cqrs' },
        `t_init_bank_${suffix}`,
      ),
    );
    await initAndRun(url, 7100 + Math.floor(Math.random() * 800));
  });

  it('on the shop (PostgreSQL)', async (ctx) => {
    if (!(await pgReachable())) ctx.skip();
    const url = `postgres://cqrs:cqrs@127.0.0.1:5433/shop_t_init_${suffix}`;
    await shop.sample?.create({ url, scale: 'tiny', seed: 5, force: true, progress: () => undefined });
    cleanups.push(async () => {
      const { conn, database } = parseShopUrl(url);
      await dropShopDatabase(conn, database);
    });
    await initAndRun(url, 1);
  });
});

/**
 * A database nobody wrote a definition for, with what strangers' schemas have: a compound key
 * with a DATETIME(6) part, an unsigned BIGINT key, ENUM, SET, BIT, JSON, a generated column, a
 * table without a key, and a child table whose rows the server deletes by itself
 * (ON DELETE CASCADE, which the binlog does not carry).
 */
const CLINIC_SCHEMA = [
  `CREATE TABLE practitioners (
     practitioner_id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
     full_name VARCHAR(120) NOT NULL, specialty ENUM('gp','cardio') NOT NULL,
     languages SET('en','fr') NOT NULL DEFAULT 'en', active BIT(1) NOT NULL DEFAULT b'1', profile JSON NULL)`,
  `CREATE TABLE patients (
     id INT NOT NULL AUTO_INCREMENT PRIMARY KEY, family_name VARCHAR(80) NOT NULL,
     display_name VARCHAR(90) AS (UPPER(family_name)) VIRTUAL)`,
  `CREATE TABLE appointment (
     patient_id INT NOT NULL, slot DATETIME(6) NOT NULL, practitioner_id BIGINT UNSIGNED NOT NULL,
     status VARCHAR(20) NOT NULL, fee DECIMAL(20,6) NOT NULL,
     PRIMARY KEY (patient_id, slot),
     FOREIGN KEY (patient_id) REFERENCES patients(id) ON DELETE CASCADE,
     FOREIGN KEY (practitioner_id) REFERENCES practitioners(practitioner_id))`,
  'CREATE TABLE audit_log (at DATETIME NOT NULL, what VARCHAR(200) NOT NULL)',
  `INSERT INTO practitioners (full_name, specialty, languages, profile) VALUES
     ('Dr. Zoë Ångström', 'cardio', 'en,fr', '{"room": 12}'), ('Dr. O''Brien', 'gp', 'en', NULL)`,
  "INSERT INTO patients (family_name) VALUES ('Souza'), ('Tables'), ('Dubois')",
  `INSERT INTO appointment VALUES
     (1, '2026-12-01 09:00:00.123456', 1, 'booked', 120.5), (1, '2026-12-02 09:00:00', 2, 'done', 0),
     (2, '2026-12-03 10:30:00', 2, 'booked', 99999999999999.999999), (2, '2026-12-10 10:00:00.5', 1, 'booked', 0.000001),
     (3, '2026-12-04 11:00:00', 1, 'cancelled', 12.34)`,
  "INSERT INTO audit_log VALUES (NOW(), 'seeded')",
];

describe('init on a schema nobody wrote', () => {
  it('reconciles the read model keys too: a cascaded delete the binlog does not carry is found', async () => {
    const database = `t_init_clinic_${suffix}`;
    const server = { host: '127.0.0.1', port: 3307, user: 'cqrs', password: 'cqrs' };
    const admin = await mysql.createConnection(server);
    cleanups.push(async () => {
      await admin.query(`DROP DATABASE IF EXISTS \`${database}\``);
      await admin.end();
    });
    await admin.query(`CREATE DATABASE \`${database}\` CHARACTER SET utf8mb4`);
    await admin.query(`USE \`${database}\``);
    for (const sql of CLINIC_SCHEMA) await admin.query(sql);

    const url = `mysql://cqrs:cqrs@127.0.0.1:3307/${database}`;
    const run = await initAndStart(url, {
      serverId: 7100 + Math.floor(Math.random() * 800),
      name: `clinic_${suffix}`,
    });
    try {
      const entry = run.migration.endpoints[0];
      expect(entry?.key).toBe('appointment.get');
      await run.caughtUp();
      expect(await run.pipeline.eventStore.countDeadLetters()).toBe(0);
      expect(await run.check()).toMatchObject({ total: 5, checked: 5, failures: [] });
      // Listed in key order across pages (2 a page here), every document once.
      const listed: unknown[] = [];
      const view = run.pipeline.readModels.appointment;
      if (view === undefined) throw new Error('expected the appointment view');
      for await (const doc of documentsInOrder(view, ['patientId', 'slot'], 2))
        listed.push([doc.patientId, doc.slot]);
      expect(listed).toEqual([
        [1, '2026-12-01 09:00:00.123456'],
        [1, '2026-12-02 09:00:00.000000'],
        [2, '2026-12-03 10:30:00.000000'],
        [2, '2026-12-10 10:00:00.500000'],
        [3, '2026-12-04 11:00:00.000000'],
      ]);

      // A client's '… 10:30:00' is the DATETIME(6) '… 10:30:00.000000': both sides find it.
      const endpoint = entry?.definition;
      if (endpoint === undefined) throw new Error('expected the endpoint');
      const params = endpoint.params.parse({ patientId: '2', slot: '2026-12-03 10:30:00' });
      expect(
        await endpoint.readModel({ params, readModels: run.pipeline.readModels, analytics: {} }),
      ).toMatchObject({ fee: '99999999999999.999999', slot: '2026-12-03 10:30:00.000000' });

      // InnoDB deletes patient 2's two appointments itself; the binlog has only the patient row.
      await admin.query('DELETE FROM patients WHERE id = 2');
      await run.caughtUp();
      const after = await run.check();
      // The legacy listing has 3 keys left; the read model's 2 ghosts are checked as well.
      expect(after.total).toBe(5);
      expect(after.byOutcome).toMatchObject({ match: 3, missing: 2 });
      expect(after.failures.map((f) => f.requestKey).sort()).toEqual([
        'patientId=2&slot=2026-12-03+10%3A30%3A00.000000',
        'patientId=2&slot=2026-12-10+10%3A00%3A00.500000',
      ]);

      // The remedy the warning names: capture the table again, with the pipeline stopped.
      const resnapshot = { config: undefined, definition: undefined, table: 'appointment', force: true };
      await run.restart(async () => {
        expect(
          await resnapshotTable(run.config, run.migration, resnapshot, silentLogger, () => undefined),
        ).toBe(0);
      });
      await run.caughtUp();
      expect(await run.check()).toMatchObject({ total: 3, checked: 3, failures: [] });
      expect(run.errors).toEqual([]);
    } finally {
      await run.close();
    }
  });
});

describe('init on a PostgreSQL schema other than public (?schema=)', () => {
  it('captures, serves and reconciles the tables of that schema, not the same-named ones of public', async (ctx) => {
    if (!(await pgReachable())) ctx.skip();
    const database = `t_init_schema_${suffix}`;
    const name = `sch_${suffix}`;
    await pgQuery('postgres', `CREATE DATABASE "${database}"`);
    cleanups.push(() => dropPgState(database, [`cqrs_${name}`.toLowerCase()]));
    await pgQuery(
      database,
      // Mixed case: a quoted identifier everywhere the schema is named (the server folds unquoted names).
      'CREATE SCHEMA "Clinic"',
      `CREATE TABLE "Clinic".patients (id INT PRIMARY KEY, family_name TEXT NOT NULL, born DATE)`,
      // An instant key (TIMESTAMPTZ), which clients may name with any offset.
      `CREATE TABLE "Clinic".visits (patient_id INT NOT NULL REFERENCES "Clinic".patients(id),
         at TIMESTAMPTZ(3) NOT NULL, note TEXT, PRIMARY KEY (patient_id, at))`,
      'ALTER TABLE "Clinic".patients REPLICA IDENTITY FULL',
      'ALTER TABLE "Clinic".visits REPLICA IDENTITY FULL',
      // A same-named table in public, which neither init nor the reader nor the legacy SQL may read.
      'CREATE TABLE public.visits (id INT PRIMARY KEY, junk TEXT)',
      "INSERT INTO public.visits VALUES (1, 'not this one')",
      `INSERT INTO "Clinic".patients VALUES (1, 'Souza', '1980-02-29'), (2, 'Dubois', NULL)`,
      `INSERT INTO "Clinic".visits VALUES (1, '2026-12-01 09:00:00.5Z', 'first'), (1, '2026-12-02 09:00Z', NULL),
         (2, '2026-12-03 10:30Z', 'x')`,
    );
    const url = `postgres://cqrs:cqrs@127.0.0.1:5433/${database}?schema=Clinic`;
    const run = await initAndStart(url, { name });
    try {
      expect(run.written.tables).toBe(2);
      expect(run.migration.tables).toEqual(['patients', 'visits']);
      expect(run.migration.endpoints[0]?.key).toBe('visits.get');
      await run.caughtUp();
      expect(await run.pipeline.eventStore.countDeadLetters()).toBe(0);
      expect(await run.check()).toMatchObject({ total: 3, checked: 3, failures: [] });
      // Streamed changes of that schema reach the read model; the legacy SQL reads it unqualified.
      await pgQuery(
        database,
        `UPDATE "Clinic".visits SET note = 'moved' WHERE patient_id = 2`,
        `INSERT INTO "Clinic".visits VALUES (2, '2026-12-05 10:00+02', 'new')`,
        "UPDATE public.visits SET junk = 'still not this one'",
      );
      await run.caughtUp();
      expect(await run.check()).toMatchObject({ total: 4, checked: 4, failures: [] });
      const endpoint = run.migration.endpoints[0]?.definition;
      if (endpoint === undefined) throw new Error('expected the endpoint');
      // Named with another offset than it was written with, both sides find the same instant.
      const params = endpoint.params.parse({ patientId: '2', at: '2026-12-05T03:00:00-05:00' });
      expect(params).toEqual({ patientId: 2, at: '2026-12-05 08:00:00.000' });
      const answer = { note: 'new', at: '2026-12-05 08:00:00.000' };
      expect(await readModelAnswer(endpoint, params, run.pipeline.readModels)).toMatchObject(answer);
      const legacy = openLegacyDb(url);
      try {
        expect(await legacyAnswer(endpoint, params, legacy)).toMatchObject(answer);
      } finally {
        await legacy.close();
      }
      expect(run.errors).toEqual([]);
    } finally {
      await run.close();
    }
  });
});

/** pgQuery on a database whose name the examples' helpers refuse (they allow no "-"). */
async function quotedDbQuery(database: string, ...sql: string[]): Promise<void> {
  const client = new pg.Client({ ...LEGACY_PG, database });
  await client.connect();
  try {
    for (const statement of sql) await client.query(statement);
  } finally {
    await client.end();
  }
}

describe('init on PostgreSQL names that need quotes', () => {
  it('captures, serves and reconciles a table with a space in a database with a "-"', async (ctx) => {
    if (!(await pgReachable())) ctx.skip();
    const database = `t-init-names-${suffix}`;
    const name = `names_${suffix}`;
    await pgQuery('postgres', `CREATE DATABASE "${database}"`);
    cleanups.push(async () => {
      // The slot first; the examples' helpers refuse the "-" the database is named with.
      await dropPgState(database, [`cqrs_${name}`.toLowerCase()]).catch(() => undefined);
      await pgQuery('postgres', `DROP DATABASE IF EXISTS "${database}" WITH (FORCE)`);
    });
    await quotedDbQuery(
      database,
      `CREATE TABLE "Order Lines" ("Order-Id" INT NOT NULL, "Line No" TEXT NOT NULL, "prénom" TEXT,
         "select" NUMERIC(10,2), PRIMARY KEY ("Order-Id", "Line No"))`,
      'ALTER TABLE "Order Lines" REPLICA IDENTITY FULL',
      `INSERT INTO "Order Lines" VALUES (1, 'a b', 'Zoë', 1.5), (1, 'c', NULL, NULL)`,
    );
    const run = await initAndStart(`postgres://cqrs:cqrs@127.0.0.1:5433/${database}`, { name });
    try {
      expect(run.migration.tables).toEqual(['Order Lines']);
      // A stream type names a Kafka topic on the distributed path: no space in it.
      expect(run.migration.ruleOf('Order Lines')?.streamType).toBe('Order_Lines');
      await run.caughtUp();
      expect(await run.check()).toMatchObject({ total: 2, checked: 2, failures: [] });
      await quotedDbQuery(
        database,
        `UPDATE "Order Lines" SET "prénom" = 'Zoé', "select" = 99.99 WHERE "Line No" = 'a b'`,
        `DELETE FROM "Order Lines" WHERE "Line No" = 'c'`,
      );
      await run.caughtUp();
      expect(await run.check()).toMatchObject({ total: 1, checked: 1, failures: [] });
      expect(await run.pipeline.eventStore.countDeadLetters()).toBe(0);
      expect(run.errors).toEqual([]);
    } finally {
      await run.close();
    }
  });
});

describe('init on a table keyed by a UNIQUE key, not a primary key (MariaDB)', () => {
  it('captures, serves and reconciles it, through a key change and a delete', async () => {
    const database = `t-init-uq-${suffix}`;
    const admin = await mysql.createConnection({
      host: '127.0.0.1',
      port: 3307,
      user: 'cqrs',
      password: 'cqrs',
    });
    cleanups.push(async () => {
      await admin.query(`DROP DATABASE IF EXISTS \`${database}\``);
      await admin.end();
    });
    await admin.query(`CREATE DATABASE \`${database}\``);
    await admin.query(`USE \`${database}\``);
    await admin.query(`CREATE TABLE user_roles (user_id INT NOT NULL, role VARCHAR(20) NOT NULL,
      note VARCHAR(50) NULL, UNIQUE KEY uq_user_role (user_id, role))`);
    await admin.query(
      "INSERT INTO user_roles VALUES (1, 'admin', NULL), (1, 'viewer', 'x'), (2, 'admin', 'y')",
    );

    const run = await initAndStart(`mysql://cqrs:cqrs@127.0.0.1:3307/${database}`, {
      serverId: 7100 + Math.floor(Math.random() * 800),
      name: `uq_${suffix}`,
    });
    try {
      expect(run.migration.tables).toEqual(['user_roles']);
      await run.caughtUp();
      expect(await run.check()).toMatchObject({ total: 3, checked: 3, failures: [] });
      await admin.query("UPDATE user_roles SET role = 'owner', note = 'z' WHERE user_id = 2");
      await admin.query("DELETE FROM user_roles WHERE user_id = 1 AND role = 'viewer'");
      await run.caughtUp();
      // The read model's keys are listed too: the old key (2, admin) must be gone from it.
      expect(await run.check()).toMatchObject({ total: 2, checked: 2, failures: [] });
      expect(await run.pipeline.eventStore.countDeadLetters()).toBe(0);
      expect(run.errors).toEqual([]);
    } finally {
      await run.close();
    }
  });
});
