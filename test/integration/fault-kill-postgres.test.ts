import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initDefinition } from '../../definition/init/index.js';
import { exited, runProcess, sleep } from '../fault/run-process.js';
import { REPO_INDEX } from '../support/typecheck.js';
import { count, until } from './support/big-transaction.js';
import {
  dropPgState,
  LEGACY_PG,
  pgQuery,
  pgReachable,
  pgRunTarget,
  slotReleased,
} from './support/postgres.js';

/**
 * kill -9 of a real `run` on PostgreSQL while one connection commits small transactions back
 * to back: the pgoutput reader hands the sink those that arrive while it stores one, and the
 * event store appends them as groups. Each kill lands among groups in flight; the slot must
 * never be acknowledged past a stored group, nor a group stored twice. Afterwards the event
 * store holds every update exactly once and each document equals its row.
 */

const pgUp = await pgReachable();
const {
  database: DATABASE,
  url: URL,
  cdcName: CDC_NAME,
  slot: SLOT,
} = pgRunTarget(`t_killpg_${process.pid}`);
const ROWS = 10;
const KILLS = 3;
const WRITES_PER_SEC = 2000;

let dir: string;

beforeAll(async () => {
  if (!pgUp) return;
  dir = mkdtempSync(join(tmpdir(), 'killpg-'));
  await dropPgState(DATABASE, [SLOT]);
  await pgQuery('postgres', `CREATE DATABASE ${DATABASE}`);
  await pgQuery(
    DATABASE,
    'CREATE TABLE items (id int PRIMARY KEY, v int NOT NULL)',
    'ALTER TABLE items REPLICA IDENTITY FULL',
    `INSERT INTO items SELECT g, 0 FROM generate_series(1, ${ROWS}) g`,
  );
  await initDefinition(URL, { out: join(dir, 'migration.ts'), importFrom: REPO_INDEX });
});

afterAll(async () => {
  if (!pgUp) return;
  await dropPgState(DATABASE, [SLOT]);
  rmSync(dir, { recursive: true, force: true });
});

describe.skipIf(!pgUp)('kill -9 of run on PostgreSQL while transactions are stored in groups', () => {
  it('stores every update once and the documents equal the rows', async () => {
    const env = {
      ...process.env,
      CQRS_LEGACY_URL: URL,
      CQRS_DATA_DIR: join(dir, 'data'),
      CQRS_DEFINITION: join(dir, 'migration.ts'),
      CQRS_CDC_NAME: CDC_NAME,
      CQRS_API_PORT: '0',
      CQRS_ADMIN_PORT: '0',
      LOG_LEVEL: 'warn',
    };
    const writer = new pg.Client({ ...LEGACY_PG, database: DATABASE });
    await writer.connect();
    let updates = 0;
    let writing = false;
    let writes: Promise<void> = Promise.resolve();
    // Paced, so the final run catches up in seconds; fast enough that commits wait for a store
    // in progress and are stored in groups.
    const write = async () => {
      const started = performance.now();
      while (writing) {
        await writer.query('UPDATE items SET v = v + 1 WHERE id = $1', [(updates % ROWS) + 1]);
        updates++;
        const ahead = started + (updates * 1000) / WRITES_PER_SEC - performance.now();
        if (ahead > 0) await sleep(ahead);
      }
    };
    try {
      for (let kill = 1; kill <= KILLS; kill++) {
        const run = runProcess(env);
        await until('the API', 120_000, run, () => run.url() !== null);
        if (!writing) {
          writing = true;
          writes = write();
        }
        // A while of streaming: the writer commits far faster than one store per commit.
        await sleep(1500 + kill * 500);
        run.child.kill('SIGKILL');
        await exited(run.child);
        console.info(`kill ${kill} after ${updates} updates`);
        await slotReleased(SLOT);
      }
    } finally {
      writing = false;
      await writes;
      await writer.end();
    }
    expect(updates).toBeGreaterThan(1000);

    const run = runProcess(env);
    const events = () => new Database(join(dir, 'data', 'events.db'), { readonly: true });
    try {
      await until('the API', 120_000, run, () => run.url() !== null);
      // The snapshot's rows, then one event per update.
      await until('every update in the event store', 120_000, run, () => {
        const db = events();
        try {
          return count(db, 'SELECT COUNT(*) FROM events') >= ROWS + updates;
        } finally {
          db.close();
        }
      });
      await sleep(1000);
      const db = events();
      try {
        expect(count(db, 'SELECT COUNT(*) FROM events')).toBe(ROWS + updates);
        expect(count(db, "SELECT COUNT(*) FROM events WHERE type = 'ItemsUpdated'")).toBe(updates);
        expect(count(db, 'SELECT COUNT(*) FROM dead_letters')).toBe(0);
      } finally {
        db.close();
      }
      const legacy = (await pgQuery(DATABASE, 'SELECT id, v FROM items ORDER BY id')).map((r) => [
        String(r.id),
        Number(r.v),
      ]);
      const readModels = new Database(join(dir, 'data', 'read-models.db'), { readonly: true });
      try {
        const documents = () =>
          (
            readModels
              .prepare('SELECT key, doc FROM rm_doc__items ORDER BY CAST(key AS INTEGER)')
              .all() as Array<{
              key: string;
              doc: string;
            }>
          ).map((d) => [d.key, (JSON.parse(d.doc) as { v: number }).v]);
        await until(
          'the documents',
          60_000,
          run,
          () => JSON.stringify(documents()) === JSON.stringify(legacy),
        );
        expect(documents()).toEqual(legacy);
      } finally {
        readModels.close();
      }
    } finally {
      run.child.kill('SIGTERM');
      await exited(run.child);
    }
  }, 600_000);
});
