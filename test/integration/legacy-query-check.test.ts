import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkLegacyQueries } from '../../connectors/legacy/query-check.js';
import { loadDefinition } from '../../definition/load.js';
import { dropDatabase } from '../../examples/bank/db.js';
import bank from '../../examples/bank/migration.js';
import shop from '../../examples/shop/migration.js';
import { AdapterError } from '../../lib/errors.js';
import { dropPgState, LEGACY_PG, pgQuery, pgReachable } from './support/postgres.js';

/**
 * Every endpoint's legacy SQL is prepared on the live legacy database when `run` starts: a
 * definition naming a column the database lacks is refused with the endpoint, the server's
 * message and the fix, before any change capture starts (no event store, no replication slot);
 * the bank (MariaDB) and shop (PostgreSQL) definitions pass.
 */
const exec = promisify(execFile);
const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const dir = mkdtempSync(join(tmpdir(), 'cqrs-h4-qc-'));
const server = { host: '127.0.0.1', port: 3307, user: 'cqrs', password: 'cqrs' };
const mariaDb = `h4_qc_${process.pid}`;
const mariaUrl = `mysql://cqrs:cqrs@127.0.0.1:3307/${mariaDb}`;
const pgDb = `h4_qc_${process.pid}`;
const pgUrl = `postgres://${LEGACY_PG.user}:${LEGACY_PG.password}@${LEGACY_PG.host}:${LEGACY_PG.port}/${pgDb}`;
const pgUp = await pgReachable();

/** A user's definition on disk (support/notes.ts), its endpoint's SQL reading `column`. */
function writeDefinition(name: string, column: string): string {
  const path = join(dir, `${name}.ts`);
  const notes = join(root, 'test/integration/support/notes.ts');
  writeFileSync(
    path,
    `import { notesMigration } from ${JSON.stringify(notes)};\n\nexport default notesMigration(${JSON.stringify(column)});\n`,
  );
  return path;
}

async function refusal(fn: () => Promise<unknown>): Promise<AdapterError> {
  try {
    await fn();
  } catch (err) {
    if (err instanceof AdapterError) return err;
    throw err;
  }
  throw new Error('expected a refusal');
}

/** `run` with a definition, as an operator starts it; resolves with its exit code and stderr. */
async function runCli(env: Record<string, string>): Promise<{ code: number; stderr: string }> {
  return exec(process.execPath, ['--import', 'tsx', 'cli/main.ts', 'run'], {
    cwd: root,
    env: { ...process.env, CQRS_API_PORT: '0', CQRS_ADMIN_PORT: '0', LOG_LEVEL: 'warn', ...env },
    // Loading a definition type-checks it: minutes on a loaded machine.
    timeout: 300_000,
  }).then(
    () => ({ code: 0, stderr: '' }),
    (err: { code?: number; stderr?: string }) => ({ code: err.code ?? -1, stderr: err.stderr ?? '' }),
  );
}

afterAll(async () => {
  await dropDatabase(server, mariaDb).catch(() => undefined);
  if (pgUp) await dropPgState(pgDb, [`cqrs_${pgDb}`]).catch(() => undefined);
  rmSync(dir, { recursive: true, force: true });
});

describe('legacy queries checked at start on MariaDB', () => {
  beforeAll(async () => {
    await bank.sample?.create({
      url: mariaUrl,
      scale: 'tiny',
      seed: 5,
      force: true,
      progress: () => undefined,
    });
    const c = await mysql.createConnection({ ...server, database: mariaDb });
    try {
      await c.query('CREATE TABLE notes (id INT PRIMARY KEY, body VARCHAR(40) NOT NULL)');
    } finally {
      await c.end();
    }
  }, 120_000);

  it('the bank definition passes', async () => {
    const checked = await checkLegacyQueries(mariaUrl, bank, { definition: 'examples/bank/migration.ts' });
    expect(checked.checked).toBeGreaterThan(0);
  });

  it('a missing column and a syntax error are refused with the endpoint and the server message', async () => {
    const missing = await refusal(async () =>
      checkLegacyQueries(mariaUrl, await loadDefinition(writeDefinition('missing', 'title')), {
        definition: 'missing.ts',
      }),
    );
    expect(missing.code).toBe('LEGACY_QUERY_INVALID');
    expect(missing.message).toMatch(/^1 legacy query does not match .*: notes\.get: Unknown column 'title'/);
    const broken = await refusal(async () =>
      checkLegacyQueries(mariaUrl, await loadDefinition(writeDefinition('broken', 'body FROM FROM')), {
        definition: 'broken.ts',
      }),
    );
    expect(broken.message).toMatch(/notes\.get: .*SQL syntax/);
    await expect(
      checkLegacyQueries(mariaUrl, await loadDefinition(writeDefinition('good', 'body')), {
        definition: 'good.ts',
      }),
    ).resolves.toEqual({ checked: 2, unchecked: [] });
  });

  it('run refuses to start before any capture', async () => {
    const dataDir = join(dir, 'maria-data');
    const refused = await runCli({
      CQRS_LEGACY_URL: mariaUrl,
      CQRS_DATA_DIR: dataDir,
      CQRS_DEFINITION: writeDefinition('run-missing', 'title'),
      CQRS_CDC_SERVER_ID: String(6900 + (process.pid % 90)),
    });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/error \[LEGACY_QUERY_INVALID\]: .*notes\.get: Unknown column 'title'/);
    expect(refused.stderr).toMatch(
      /fix: fix the endpoint's legacy SQL in .*run-missing\.ts .*legacy\.checkQueries/,
    );
    expect(existsSync(join(dataDir, 'events.db'))).toBe(false);
  }, 400_000);
});

describe.skipIf(!pgUp)('legacy queries checked at start on PostgreSQL', () => {
  beforeAll(async () => {
    await shop.sample?.create({ url: pgUrl, scale: 'tiny', seed: 5, force: true, progress: () => undefined });
    await pgQuery(pgDb, 'CREATE TABLE notes (id INT PRIMARY KEY, body TEXT NOT NULL)');
  }, 120_000);

  it('the shop definition passes', async () => {
    const checked = await checkLegacyQueries(pgUrl, shop, { definition: 'examples/shop/migration.ts' });
    expect(checked.checked).toBeGreaterThan(0);
  });

  it('a missing column is refused with the endpoint and the server message; run starts no slot', async () => {
    const missing = await refusal(async () =>
      checkLegacyQueries(pgUrl, await loadDefinition(writeDefinition('pg-missing', 'title')), {
        definition: 'pg-missing.ts',
      }),
    );
    expect(missing.code).toBe('LEGACY_QUERY_INVALID');
    expect(missing.message).toMatch(/notes\.get: column "title" does not exist/);
    await expect(
      checkLegacyQueries(pgUrl, await loadDefinition(writeDefinition('pg-good', 'body')), {
        definition: 'pg-good.ts',
      }),
    ).resolves.toEqual({ checked: 2, unchecked: [] });

    const refused = await runCli({
      CQRS_LEGACY_URL: pgUrl,
      CQRS_DATA_DIR: join(dir, 'pg-data'),
      CQRS_CDC_NAME: pgDb,
      CQRS_DEFINITION: writeDefinition('pg-run-missing', 'title'),
    });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(
      /error \[LEGACY_QUERY_INVALID\]: .*notes\.get: column "title" does not exist/,
    );
    const slots = await pgQuery(
      'postgres',
      `SELECT slot_name FROM pg_replication_slots WHERE slot_name = 'cqrs_${pgDb}'`,
    );
    expect(slots).toEqual([]);
  }, 400_000);
});
