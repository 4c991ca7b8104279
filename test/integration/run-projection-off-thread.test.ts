import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dropDatabase } from '../../examples/bank/db.js';
import bank from '../../examples/bank/migration.js';
import { waitFor } from './support/debezium-bank.js';

/**
 * `run` projects in a worker thread: while a 20 000-row legacy transaction is applied to the
 * read models, the API thread keeps answering — its liveness route and a legacy-mode read,
 * polled every 50 ms. In the projector's old place (the API's thread) both waited seconds.
 */
const server = { host: '127.0.0.1', port: 3307, user: 'cqrs', password: 'cqrs' };
const database = `h2_offthread_${process.pid}`;
const url = `mysql://cqrs:cqrs@127.0.0.1:3307/${database}`;
const dir = mkdtempSync(join(tmpdir(), 'h2-offthread-'));
const ROWS = 20_000;
let child: ChildProcess | null = null;

beforeAll(async () => {
  await bank.sample?.create({ url, scale: 'tiny', seed: 9, force: true, progress: () => undefined });
});

afterAll(async () => {
  if (child?.exitCode === null) {
    const exited = new Promise((resolve) => child?.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
  }
  await dropDatabase(server, database).catch(() => undefined);
  rmSync(dir, { recursive: true, force: true });
});

function position(path: string, sql: string): number {
  const db = new Database(path, { readonly: true, fileMustExist: true });
  try {
    return Number(db.prepare(sql).pluck().get() ?? 0);
  } finally {
    db.close();
  }
}
const head = () => position(join(dir, 'events.db'), 'SELECT COALESCE(MAX(position), 0) FROM events');
const checkpoint = () =>
  position(
    join(dir, 'read-models.db'),
    "SELECT position FROM projector_checkpoints WHERE name = 'read-models'",
  );

/** Answer times of one route, requested every 50 ms until `stop`, by when each request began. */
function poll(target: string) {
  const times: Array<{ at: number; ms: number }> = [];
  let polling = true;
  const done = (async () => {
    while (polling) {
      const started = performance.now();
      const res = await fetch(target, { signal: AbortSignal.timeout(60_000) });
      await res.arrayBuffer();
      expect(res.status).toBe(200);
      times.push({ at: started, ms: performance.now() - started });
      await new Promise((r) => setTimeout(r, 50));
    }
  })();
  return {
    async stop(from: number, to: number) {
      polling = false;
      await done;
      const within = times.filter((t) => t.at >= from && t.at <= to).map((t) => t.ms);
      return { max: Math.max(0, ...within), n: within.length };
    },
  };
}

describe('run with a big legacy transaction', () => {
  it('keeps answering while the transaction is projected', async () => {
    let out = '';
    let err = '';
    child = spawn(process.execPath, ['--import', 'tsx', 'cli/main.ts', 'run'], {
      env: {
        ...process.env,
        CQRS_LEGACY_URL: url,
        CQRS_DATA_DIR: dir,
        CQRS_DEFINITION: 'examples/bank/migration.ts',
        CQRS_CDC_NAME: `h2off${process.pid}`,
        CQRS_CDC_SERVER_ID: String(9300 + (process.pid % 90)),
        CQRS_API_PORT: '0',
        CQRS_ADMIN_PORT: '0',
        CQRS_FLAGS_DEFAULT_MODE: 'legacy',
        LOG_LEVEL: 'fatal',
      },
    });
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
    });
    child.stderr?.on('data', (d: Buffer) => {
      err += d.toString();
    });
    await waitFor(
      'run to serve',
      () => {
        if (child?.exitCode !== null) throw new Error(`run exited: ${err}`);
        return out.includes('shadow API on');
      },
      180_000,
    );
    const base = /shadow API on (\S+)/.exec(out)?.[1] ?? '';
    await waitFor('the snapshot projected', () => head() > 0 && checkpoint() === head(), 120_000);
    const before = head();

    const live = poll(`${base}/health/live`);
    const legacyRead = poll(`${base}/accounts/1/summary`);
    const c = await mysql.createConnection({ ...server, database });
    try {
      // One legacy transaction of 20 000 postings, all on accounts the summary view reads.
      await c.query(
        `INSERT INTO transactions (account_id, direction, amount, currency_code, balance_after, description, posted_at)
         SELECT a.id, 'credit', 1.0000, a.currency_code, 1.0000, CONCAT('bulk ', s.seq), '2030-01-01 00:00:00'
           FROM seq_1_to_${ROWS} s JOIN accounts a ON a.id = 1 + s.seq % 40`,
      );
    } finally {
      await c.end();
    }
    // Reading, mapping and appending the transaction is the source's work, on this thread;
    // the answers measured are those asked while it was being projected.
    await waitFor('the transaction stored', () => head() >= before + ROWS, 300_000);
    const stored = performance.now();
    await waitFor('the transaction projected', () => checkpoint() === head(), 480_000);
    const projected = performance.now();
    const liveTimes = await live.stop(stored, projected);
    const readTimes = await legacyRead.stop(stored, projected);
    process.stdout.write(
      `[h2] ${ROWS}-row legacy transaction projected in ${Math.round(projected - stored)} ms; meanwhile ` +
        `max /health/live ${Math.round(liveTimes.max)} ms (${liveTimes.n} polls), ` +
        `max legacy-mode read ${Math.round(readTimes.max)} ms (${readTimes.n} polls)\n`,
    );
    expect(liveTimes.n).toBeGreaterThan(10);
    // Generous: on the API's thread the projection held both for seconds.
    expect(liveTimes.max).toBeLessThan(2000);
    expect(readTimes.max).toBeLessThan(2000);
  }, 600_000);
});
