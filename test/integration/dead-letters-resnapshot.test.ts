import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  deadLetterDrift,
  listDeadLetters,
  redriveDeadLetters,
  resnapshotTable,
} from '../../cli/operations.js';
import { MysqlBinlogSource } from '../../connectors/binlog/source.js';
import type { Migration } from '../../definition/migration.js';
import { SqliteEventStore } from '../../eventstore/sqlite.js';
import { loadConfig } from '../../lib/config.js';
import { lockDataDir } from '../../lib/data-lock.js';
import { silentLogger } from '../../lib/logger.js';
import { openReadModelDb } from '../../projectors/stores/sqlite.js';
import { itemsMigration } from './support/items.js';
import {
  captureToBinlogEnd,
  expectItemsEqualLegacy,
  itemsDatabase,
  MARIADB,
  projectItems,
} from './support/items-harness.js';

/**
 * Dead letters an operator can act on, and re-capturing a table on demand (issue 11, item 6),
 * through the real CLI against real MariaDB: a rule rejects rows, the rule is fixed, the
 * letters are re-driven in source order, and the read model equals legacy.
 */
const items = itemsDatabase('t_dlops');
const { name: db, dir } = items;
const url = `mysql://cqrs:cqrs@127.0.0.1:3307/${db}`;
const dataDir = join(dir, 'data');
const strict = itemsMigration({ maxNameLength: 5 });
const fixed = itemsMigration();
let serverId = 70_000 + Math.floor(Math.random() * 20_000) * 10;

async function cli(args: string[], definition = 'test/integration/fixtures/items.mjs') {
  try {
    const { stdout, stderr } = await promisify(execFile)(
      process.execPath,
      ['--import', 'tsx', 'cli/main.ts', ...args],
      {
        env: {
          ...process.env,
          CQRS_LEGACY_URL: url,
          CQRS_DATA_DIR: dataDir,
          CQRS_DEFINITION: definition,
          LOG_LEVEL: 'fatal',
        },
        timeout: 120_000,
      },
    );
    return { code: 0, out: stdout, err: stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: e.code ?? -1, out: e.stdout ?? '', err: e.stderr ?? '' };
  }
}

/**
 * The command handlers in this process, for the steps whose parsing the CLI test already
 * covers (spawning the CLI costs seconds each); `cli` runs the real program for the others.
 */
const config = () => loadConfig({ env: { CQRS_LEGACY_URL: url, CQRS_DATA_DIR: dataDir } });
const globals = { config: undefined, definition: undefined };
async function inProcess(run: (print: (line: string) => void) => number | Promise<number>) {
  let out = '';
  const code = await run((line) => {
    out += `${line}\n`;
  });
  return { code, out };
}
const list = (filter: { table?: string; reason?: string } = {}) =>
  inProcess((print) => listDeadLetters(config(), { ...globals, limit: 100, json: true, ...filter }, print));
const drift = (migration: Migration) =>
  inProcess((print) => deadLetterDrift(config(), migration, { ...globals, json: true }, print));
const redrive = (migration: Migration, force: boolean) =>
  inProcess((print) => redriveDeadLetters(config(), migration, { ...globals, force }, silentLogger, print));
const resnapshot = (where: string | undefined, force: boolean, table = 'items') =>
  inProcess((print) =>
    resnapshotTable(config(), fixed, { ...globals, table, where, force }, silentLogger, print),
  );

/** Captures with `migration`'s rules from the stored offset until the binlog's current end. */
async function capture(migration: Migration): Promise<void> {
  const store = new SqliteEventStore(join(dataDir, 'events.db'));
  const source = new MysqlBinlogSource({ ...MARIADB, database: db, serverId: serverId++, tables: ['items'] });
  try {
    await captureToBinlogEnd(items.admin, source, store, migration);
  } finally {
    await store.close();
  }
}

async function project(migration: Migration, readDb: Database.Database) {
  const store = new SqliteEventStore(join(dataDir, 'events.db'));
  try {
    return await projectItems(store, readDb, migration);
  } finally {
    await store.close();
  }
}

beforeAll(() => items.create());
afterAll(() => items.drop());

describe('dead letters and resnapshot through the CLI (MariaDB)', () => {
  it('lists, reports and re-drives rejected rows after a rule fix, in source order', async () => {
    const readDb = openReadModelDb(join(dir, 'read-1.db'));
    await items.admin.query(
      "INSERT INTO items VALUES (1, 'ok', 1), (2, 'toolong', 2), (3, 'ok3', 3), (4, 'longer', 4)",
    );
    await capture(strict); // snapshot: 2 and 4 rejected
    await items.admin.query("INSERT INTO items VALUES (5, 'sixsix', 5)"); // rejected
    await items.admin.query("UPDATE items SET name = 'sevens7', qty = 50 WHERE id = 5"); // rejected again, later
    await items.admin.query("UPDATE items SET name = 'fine' WHERE id = 2"); // valid: supersedes letter of 2
    await items.admin.query("INSERT INTO items VALUES (6, 'doomed', 6)"); // rejected
    await items.admin.query('DELETE FROM items WHERE id = 6'); // rejected (its before image)
    await capture(strict);
    const before = await project(strict, readDb);
    expect(before.has('4')).toBe(false); // the silent divergence: legacy has row 4

    const listed = await cli(['dead-letters', 'list', '--table', 'items', '--json']);
    expect(listed.code).toBe(0);
    const letters = JSON.parse(listed.out) as Array<{ id: number; op: string; redrive: unknown }>;
    expect(letters.map((l) => l.op)).toEqual(['r', 'r', 'c', 'u', 'c', 'd']);
    expect(letters.every((l) => l.redrive === null)).toBe(true);
    expect((await list({ reason: 'no such reason' })).out.trim()).toBe('[]');
    expect(JSON.parse((await list({ reason: 'op d:' })).out)).toHaveLength(1);

    // Rows 2, 4, 5 and 6: the fixed rule names each letter's aggregate.
    const report = JSON.parse((await drift(fixed)).out);
    expect(report).toMatchObject([{ table: 'items', pending: 6, aggregates: 4, redriven: 0 }]);
    expect(report[0].reasons[0]).toMatchObject({ count: 2, reason: expect.stringMatching(/longer than 5/) });

    // Still the strict rule: nothing maps, nothing is appended, the exit code says so.
    const stillStrict = await redrive(strict, true);
    expect(stillStrict.code).toBe(1);
    expect(stillStrict.out).toMatch(/0 appended, 0 skipped .* 6 still rejected/);
    // The fixed rule, dry run first: nothing is appended.
    expect((await redrive(fixed, false)).out).toMatch(/would re-drive 6 letters/);
    expect(JSON.parse((await drift(fixed)).out)[0].pending).toBe(6);

    // Beside a live run, appending is refused.
    const lock = lockDataDir(dataDir, 'run');
    try {
      const refused = await cli(['dead-letters', 'redrive', '--force']);
      expect(refused.code).toBe(1);
      expect(refused.err).toMatch(/DATA_DIR_LOCKED/);
    } finally {
      lock.release();
    }

    const redriven = await cli(['dead-letters', 'redrive', '--force']);
    expect(redriven.code).toBe(0);
    // Row 2's letter is superseded by its later valid update; the other five are appended.
    expect(redriven.out).toMatch(/5 appended, 1 skipped .* 0 still rejected/);
    const after = JSON.parse((await list()).out) as Array<{ redrive: { outcome: string } | null }>;
    expect(after.map((l) => l.redrive?.outcome)).toEqual([
      'superseded',
      'appended',
      'appended',
      'appended',
      'appended',
      'appended',
    ]);
    await expectItemsEqualLegacy(items.admin, 'items', await project(fixed, readDb));
    // A second re-drive finds nothing pending.
    expect((await redrive(fixed, true)).out).toMatch(/0 appended, 0 skipped/);
    expect(JSON.parse((await drift(fixed)).out)[0]).toMatchObject({ pending: 0, redriven: 5, superseded: 1 });
    readDb.close();
  });

  it('re-captures one table or some keys, removing rows gone from the source, refused beside a run', async () => {
    const readDb = openReadModelDb(join(dir, 'read-2.db'));
    await capture(fixed);
    await project(fixed, readDb);
    const store = new SqliteEventStore(join(dataDir, 'events.db'));
    const offset = await store.loadOffset('legacy');
    await store.close();
    await items.admin.query('UPDATE items SET qty = 99 WHERE id IN (1, 3)');
    await items.admin.query('DELETE FROM items WHERE id = 4');
    await items.admin.query("INSERT INTO items VALUES (9, 'nine', 9)");

    const lock = lockDataDir(dataDir, 'run');
    try {
      const refused = await cli(['resnapshot', '--table', 'items', '--force']);
      expect(refused.code).toBe(1);
      expect(refused.err).toMatch(/DATA_DIR_LOCKED/);
    } finally {
      lock.release();
    }
    expect((await resnapshot('id = 1', false)).out).toMatch(/would re-capture 1 rows/);
    await expect(resnapshot(undefined, true, 'nope')).rejects.toMatchObject({
      message: expect.stringMatching(/no capture rule/),
    });

    const some = await resnapshot('id = 1', true);
    expect(some.out).toMatch(/re-captured 1 rows .* 0 aggregates removed/);
    let view = await project(fixed, readDb);
    expect(view.get('1')).toEqual({ name: 'ok', qty: 99 });
    expect(view.get('3')).toMatchObject({ qty: 3 }); // not in --where

    const whole = await cli(['resnapshot', '--table', 'items', '--force']);
    expect(whole.code).toBe(0);
    expect(whole.out).toMatch(/re-captured 5 rows .* 1 aggregates removed/);
    view = await project(fixed, readDb);
    await expectItemsEqualLegacy(items.admin, 'items', view);
    // The live source's resume point is untouched.
    const after = new SqliteEventStore(join(dataDir, 'events.db'));
    expect(await after.loadOffset('legacy')).toEqual(offset);
    await after.close();
    readDb.close();
  });
});
