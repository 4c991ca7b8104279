import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { Pool } from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmbeddedPipeline } from '../../cli/pipeline.js';
import { type OpenedLegacyDb, openLegacyDb } from '../../connectors/legacy/index.js';
import { legacyAnswer, readModelAnswer } from '../../definition/endpoint-calls.js';
import { createBankDatabase, dropDatabase, openPool } from '../../examples/bank/db.js';
import { generateBank } from '../../examples/bank/generate.js';
import { legacyAccountIds } from '../../examples/bank/legacy-queries.js';
import bank from '../../examples/bank/migration.js';
import { type Config, loadConfig } from '../../lib/config.js';
import { silentLogger } from '../../lib/logger.js';
import type { VersionRecord } from '../../projectors/stores/read-model-versions.js';
import { VersionedReadModels } from '../../projectors/stores/versioned-read-models.js';

/**
 * Blue/green replay of an embedded read model, offline (no `run` on the data directory): the
 * `replay` command builds version 2 of account-summary beside version 1 while readers keep
 * reading, verifies it against the legacy bank and switches; the served answers are the same
 * before and after; rollback returns to version 1; a version whose document was corrupted
 * before its switch is refused; drop needs --force and never takes the live version.
 */
const conn = { host: '127.0.0.1', port: 3307, user: 'cqrs', password: 'cqrs' };
const database = `h1_rpl_${Math.random().toString(36).slice(2, 8)}`;
const legacyUrl = `mysql://cqrs:cqrs@127.0.0.1:3307/${database}`;
const dataDir = mkdtempSync(join(tmpdir(), 'cqrs-h1-rpl-'));
const serverId = 8000 + Math.floor(Math.random() * 1000);
const RM = 'account-summary';
const SUMMARY = bank.endpoints.find((e) => e.key === 'accounts.summary');
let pool: Pool;
let legacyDb: OpenedLegacyDb;
let ids: number[] = [];
let config: Config;

function cli(args: string[]) {
  return new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', 'cli/main.ts', ...args],
      {
        env: {
          ...process.env,
          CQRS_LEGACY_URL: legacyUrl,
          CQRS_DATA_DIR: dataDir,
          CQRS_DEFINITION: 'examples/bank/migration.ts',
          CQRS_CDC_SERVER_ID: String(serverId),
          LOG_LEVEL: 'error',
        },
        maxBuffer: 64 * 1024 * 1024,
      },
      (err, stdout, stderr) =>
        resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

/** The summary answer of every account, from the live versions of a fresh read-only connection. */
async function servedSummaries(): Promise<Map<number, unknown>> {
  const db = new Database(join(dataDir, 'read-models.db'), { readonly: true });
  try {
    const readModels = new VersionedReadModels(bank, db).readModels;
    const out = new Map<number, unknown>();
    for (const id of ids) {
      out.set(id, await readModelAnswer(SUMMARY!.definition, { accountId: id }, readModels));
    }
    return out;
  } finally {
    db.close();
  }
}

async function versions(): Promise<VersionRecord[]> {
  const listed = await cli(['read-model', 'versions', RM, '--json']);
  expect(listed.stderr).toBe('');
  return JSON.parse(listed.stdout) as VersionRecord[];
}

const live = (list: VersionRecord[]) => list.find((v) => v.state === 'live')?.version;

describe('replay into a new read-model version (embedded, offline)', () => {
  let before: Map<number, unknown>;

  beforeAll(async () => {
    await createBankDatabase(conn, database, { dropExisting: true });
    pool = openPool(conn, database);
    await generateBank(pool, { seed: 5, scale: 'tiny' });
    legacyDb = openLegacyDb(legacyUrl);
    ids = await legacyAccountIds(legacyDb);
    config = loadConfig({
      env: {},
      overrides: {
        legacy: { url: legacyUrl },
        cdc: { serverId },
        dataDir,
        projector: { pollIntervalMs: 20 },
      },
    });
    const pipeline = await startEmbeddedPipeline({ config, migration: bank, logger: silentLogger });
    try {
      expect(await pipeline.waitForCatchUp(60_000)).toBe(true);
    } finally {
      await pipeline.stop();
    }
    before = await servedSummaries();
  }, 180_000);

  afterAll(async () => {
    await legacyDb?.close();
    await pool?.end();
    await dropDatabase(conn, database);
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('builds version 2 while readers keep reading, verifies it with zero diffs and switches', async () => {
    // Readers on their own connection the whole time the replay writes.
    let reads = 0;
    let failedReads = 0;
    let replaying = true;
    const reader = (async () => {
      const db = new Database(join(dataDir, 'read-models.db'), { readonly: true });
      const readModels = new VersionedReadModels(bank, db).readModels;
      while (replaying) {
        for (const id of ids.slice(0, 10)) {
          try {
            const doc = await readModels[RM]?.get(String(id));
            if (doc === null) failedReads++;
            else reads++;
          } catch {
            failedReads++;
          }
        }
        await new Promise((r) => setImmediate(r));
      }
      db.close();
    })();
    const run = await cli(['replay', RM]);
    replaying = false;
    await reader;
    expect(run.stderr).toMatch(/replay account-summary v2: \d+\/\d+ events \(100%\), \d+ events\/s/);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('built account-summary version 2');
    expect(run.stdout).toMatch(/verified account-summary version 2: \d+ keys of accounts\.summary/);
    expect(run.stdout).not.toMatch(/\d+ (mismatch|missing|error)/);
    expect(run.stdout).toContain('documents differing from live version 1: 0');
    expect(run.stdout).toContain('switched account-summary from version 1 to 2');
    expect(reads).toBeGreaterThan(0);
    expect(failedReads).toBe(0);

    const list = await versions();
    expect(live(list)).toBe(2);
    expect(list.find((v) => v.version === 1)?.state).toBe('retired');
    // The served answers are the same, and the legacy ones.
    const after = await servedSummaries();
    expect(after).toEqual(before);
    for (const id of ids.slice(0, 5)) {
      expect(after.get(id)).toEqual(await legacyAnswer(SUMMARY!.definition, { accountId: id }, legacyDb));
    }
    // Version 2 is its own table: the switch changed what is served, not what version 1 holds.
    const db = new Database(join(dataDir, 'read-models.db'), { readonly: true });
    try {
      const count = (t: string) => db.prepare(`SELECT COUNT(*) FROM "${t}"`).pluck().get();
      expect(count('rm_doc__account-summary__v2')).toBe(count('rm_doc__account-summary'));
      expect(count('rm_doc__account-summary')).toBe(ids.length);
    } finally {
      db.close();
    }
  }, 300_000);

  it('rolls back to version 1 in one step', async () => {
    const back = await cli(['read-model', 'rollback', RM]);
    expect(back.stderr).toBe('');
    expect(back.stdout).toContain('rolled account-summary back from version 2 to 1');
    expect(live(await versions())).toBe(1);
    expect(await servedSummaries()).toEqual(before);
  }, 120_000);

  it('refuses to switch to a version with a drifted document, and says which', async () => {
    const built = await cli(['replay', RM, '--no-switch']);
    expect(built.code).toBe(0);
    expect(built.stdout).toContain('built account-summary version 3');
    expect(built.stdout).toContain('not switched (--no-switch)');
    const victim = ids[3] as number;
    const db = new Database(join(dataDir, 'read-models.db'));
    db.prepare(
      `UPDATE "rm_doc__account-summary__v3" SET doc = json_set(doc, '$.balance.available', '-1.0000') WHERE key = ?`,
    ).run(String(victim));
    db.close();

    const refused = await cli(['read-model', 'switch', RM, '3']);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/\d+ mismatch/);
    expect(refused.stderr).toContain(
      `mismatch reconcile.accounts.summary accountId=${victim}: balance.available`,
    );
    expect(refused.stderr).toContain(`documents differing from live version 1: 1 (${victim})`);
    expect(refused.stderr).toContain('not switched');
    const list = await versions();
    expect(live(list)).toBe(1);
    expect(list.find((v) => v.version === 3)?.state).toBe('ready');
    expect(await servedSummaries()).toEqual(before);
  }, 180_000);

  it('drops a version only with --force, never the live one', async () => {
    const asked = await cli(['read-model', 'drop', RM, '3']);
    expect(asked.code).toBe(1);
    expect(asked.stderr).toContain('add --force');
    const live1 = await cli(['read-model', 'drop', RM, '1', '--force']);
    expect(live1.code).toBe(1);
    expect(live1.stderr).toContain('VERSION_DROP_REFUSED');
    const dropped = await cli(['read-model', 'drop', RM, '3', '--force']);
    expect(dropped.stderr).toBe('');
    expect(dropped.stdout).toContain('dropped account-summary version 3');
    expect((await versions()).map((v) => v.version)).toEqual([1, 2]);
    const db = new Database(join(dataDir, 'read-models.db'), { readonly: true });
    try {
      expect(
        db.prepare("SELECT name FROM sqlite_master WHERE name LIKE '%account-summary__v3%'").all(),
      ).toEqual([]);
    } finally {
      db.close();
    }
  }, 120_000);

  it('freezes a --to version (numbered after the highest kept one) at that point and refuses to switch to it without --force', async () => {
    const run = await cli(['replay', RM, '--to', '10']);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('built account-summary version 3');
    expect(run.stdout).toContain('frozen');
    const frozen = (await versions()).find((v) => v.version === 3);
    expect(frozen).toMatchObject({ state: 'ready', frozen: true });
    const refused = await cli(['read-model', 'switch', RM, '3']);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('VERSION_FROZEN');
    expect(refused.stderr).toContain('it would serve a past state');
    expect(live(await versions())).toBe(1);
  }, 180_000);

  it('keeps the built versions current when run starts again, and leaves the frozen one as it was', async () => {
    const id = ids[0] as number;
    const db = new Database(join(dataDir, 'read-models.db'), { readonly: true });
    const balance = (version: number) =>
      db
        .prepare(
          `SELECT json_extract(doc, '$.balance.available') FROM "${version === 1 ? 'rm_doc__account-summary' : `rm_doc__account-summary__v${version}`}" WHERE key = ?`,
        )
        .pluck()
        .get(String(id));
    const frozenBefore = balance(3);
    const pipeline = await startEmbeddedPipeline({ config, migration: bank, logger: silentLogger });
    try {
      await pool.query('UPDATE balances SET available = ? WHERE account_id = ?', ['9876.5400', id]);
      expect(await pipeline.waitForCatchUp(60_000)).toBe(true);
      expect(balance(1)).toBe('9876.5400');
      expect(balance(2)).toBe('9876.5400');
      expect(balance(3)).toBe(frozenBefore);
    } finally {
      await pipeline.stop();
      db.close();
    }
  }, 180_000);

  it('replays beside the in-thread projector of a live pipeline under legacy writes, then switches and rolls back', async () => {
    // The bank imported here has no definition file: the pipeline's projector runs in this thread.
    const pipeline = await startEmbeddedPipeline({ config, migration: bank, logger: silentLogger });
    let writing = true;
    let writes = 0;
    const writer = (async () => {
      while (writing) {
        await pool.query('UPDATE balances SET available = available + 1 WHERE account_id = ?', [
          ids[10 + (writes % 10)],
        ]);
        writes++;
        await new Promise((r) => setTimeout(r, 5));
      }
    })();
    try {
      const port = pipeline.readModelVersions;
      const job = port.replay(RM, {});
      expect(job).toMatchObject({ version: 4, state: 'running' });
      const deadline = Date.now() + 60_000;
      while (port.job(RM)?.state === 'running' && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 20));
      expect(port.job(RM)).toMatchObject({ version: 4, state: 'done' });
      writing = false;
      await writer;
      expect(writes).toBeGreaterThan(0);
      expect(await pipeline.waitForCatchUp(60_000)).toBe(true);
      const db = new Database(join(dataDir, 'read-models.db'), { readonly: true });
      try {
        const differ = (a: string, b: string) =>
          db
            .prepare(`SELECT COUNT(*) FROM (SELECT key, doc FROM "${a}" EXCEPT SELECT key, doc FROM "${b}")`)
            .pluck()
            .get();
        expect(differ('rm_doc__account-summary', 'rm_doc__account-summary__v4')).toBe(0);
        expect(differ('rm_doc__account-summary__v4', 'rm_doc__account-summary')).toBe(0);
      } finally {
        db.close();
      }
      expect(await port.switchTo(RM, 4, false)).toEqual({ from: 1, to: 4 });
      // The read side serves version 4 from the next read, without a restart.
      expect(pipeline.versions.liveVersion(RM)).toBe(4);
      const id = ids[10] as number;
      expect(await readModelAnswer(SUMMARY!.definition, { accountId: id }, pipeline.readModels)).toEqual(
        await legacyAnswer(SUMMARY!.definition, { accountId: id }, legacyDb),
      );
      expect(await port.rollback(RM)).toEqual({ from: 4, to: 1 });
      expect(pipeline.versions.liveVersion(RM)).toBe(1);
    } finally {
      writing = false;
      await writer;
      await pipeline.stop();
    }
  }, 180_000);
});
