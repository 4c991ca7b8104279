import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { SqliteAuditLog } from '../../shadow-api/audit-log.js';

/** `cqrs-migrate audit` reads the data directory's audit.db, as the operator runs it. */
const run = promisify(execFile);
const dir = mkdtempSync(join(tmpdir(), 'cqrs-audit-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('cqrs-migrate audit', () => {
  it('lists flag changes as text and JSON, filtered by --since', async () => {
    const log = new SqliteAuditLog(join(dir, 'data', 'audit.db'));
    const legacy = { defaultMode: 'legacy' as const, endpoints: {} };
    const canary = {
      defaultMode: 'legacy' as const,
      endpoints: { 'accounts.summary': { mode: 'canary' as const, percent: 5 } },
    };
    log.append({
      actor: 'ops (alice)',
      action: 'flags.patch',
      target: 'accounts.summary',
      before: legacy,
      after: canary,
      reason: 'INC-42',
    });
    log.close();
    const { CQRS_CONFIG: _ignored, ...inherited } = process.env;
    const env = { ...inherited, CQRS_DATA_DIR: join(dir, 'data'), LOG_LEVEL: 'warn' };
    const cli = (...args: string[]) =>
      run(process.execPath, ['--import', 'tsx', 'cli/main.ts', 'audit', ...args], {
        env,
        cwd: process.cwd(),
      });

    const text = await cli();
    expect(text.stdout).toMatch(
      /^\S+Z {2}ops \(alice\) {2}flags\.patch accounts\.summary: accounts\.summary legacy → canary 5% — INC-42\n$/,
    );
    const json = JSON.parse((await cli('--json')).stdout);
    expect(json).toMatchObject([{ actor: 'ops (alice)', after: canary, reason: 'INC-42' }]);
    const later = new Date(Date.now() + 60_000).toISOString();
    expect((await cli('--since', later)).stdout).toBe('No flag changes recorded.\n');
  });
});
