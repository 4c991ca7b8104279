import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmbeddedPipeline } from '../../cli/pipeline.js';
import { dropDatabase } from '../../examples/bank/db.js';
import bank from '../../examples/bank/migration.js';
import { loadConfig } from '../../lib/config.js';
import { silentLogger } from '../../lib/logger.js';
import { expectBalanceInReadModel, startRun } from './support/live-run.js';

/**
 * One writer per data directory: `rebuild` (or a second `run`) beside a live `run` is refused
 * with the reason, and the running pipeline keeps capturing; a lock left by a killed process is
 * taken over. (`reconcile` and `report` only read: read-only-beside-run.test.ts.)
 */
const run = promisify(execFile);
const server = { host: '127.0.0.1', port: 3307, user: 'cqrs', password: 'cqrs' };
const database = `t_lock_${process.pid}`;
const url = `mysql://cqrs:cqrs@127.0.0.1:3307/${database}`;
const dir = mkdtempSync(join(tmpdir(), 'cqrs-lock-'));
const env = {
  ...process.env,
  CQRS_LEGACY_URL: url,
  CQRS_DATA_DIR: join(dir, 'data'),
  CQRS_DEFINITION: 'examples/bank/migration.ts',
  CQRS_CDC_SERVER_ID: String(8100 + (process.pid % 800)),
  CQRS_API_PORT: '0',
  CQRS_ADMIN_PORT: '0',
  LOG_LEVEL: 'warn',
};
let child: ChildProcess | undefined;

beforeAll(async () => {
  await bank.sample?.create({ url, scale: 'tiny', seed: 4, force: true, progress: () => undefined });
});

afterAll(async () => {
  child?.kill('SIGTERM');
  await dropDatabase(server, database).catch(() => undefined);
  rmSync(dir, { recursive: true, force: true });
});

describe('data directory lock', () => {
  it('refuses rebuild beside a live run, which keeps capturing', async () => {
    const { child: runner, ...urls } = await startRun(env);
    child = runner;

    const refused = await run(process.execPath, ['--import', 'tsx', 'cli/main.ts', 'rebuild'], {
      env,
    }).then(
      () => null,
      (err: { code?: number; stderr?: string }) => err,
    );
    expect(refused?.code).toBe(1);
    expect(refused?.stderr).toMatch(/error \[DATA_DIR_LOCKED\]: .* is in use by `run` \(pid \d+/);
    expect(refused?.stderr).toMatch(/fix: one process at a time owns a data directory: stop it first/);

    // The live pipeline still captures: a balance change reaches its read model.
    await expectBalanceInReadModel(urls, { ...server, database }, 1, '4242.4200');
    expect(runner.exitCode).toBeNull();
    runner.kill('SIGTERM');
    await new Promise((resolve) => runner.once('exit', resolve));
  });

  it('takes over a lock whose process is gone', async () => {
    const dead = spawn(process.execPath, ['-e', '']);
    await new Promise((resolve) => dead.once('exit', resolve));
    const dataDir = join(dir, 'stale');
    const config = loadConfig({ env: {}, overrides: { legacy: { url }, dataDir, cdc: { serverId: 8950 } } });
    mkdirSync(dataDir, { recursive: true });
    writeFileSync(
      join(dataDir, 'adapter.lock'),
      JSON.stringify({ pid: dead.pid, role: 'run', since: 'earlier' }),
    );
    const pipeline = await startEmbeddedPipeline({ config, migration: bank, logger: silentLogger });
    try {
      expect(await pipeline.waitForCatchUp(60_000)).toBe(true);
    } finally {
      await pipeline.stop();
    }
  });
});
