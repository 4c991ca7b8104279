import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { ConfigError, SourceError, StoreError } from '../../lib/errors.js';
import {
  type ComponentDownError,
  isRetriable,
  type SupervisionPolicy,
  Supervisor,
} from '../../lib/supervisor.js';
import { ProjectionError } from '../../projectors/runner.js';

const policy = (over: Partial<SupervisionPolicy> = {}): SupervisionPolicy => ({
  failureBudgetMs: 5000,
  exitOnFailure: true,
  initialDelayMs: 1,
  maxDelayMs: 5,
  stableMs: 10_000,
  ...over,
});

async function until(what: string, check: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

const event = {
  position: 7,
  version: 1,
  recordedAt: '',
  streamType: 'account',
  streamId: 'account-1',
  type: 'AccountOpened',
  data: {},
  metadata: {
    op: 'c' as const,
    table: 'accounts',
    sourcePosition: 'x',
    sourceOrder: 'x',
    sourceTxId: 't',
    sourceTsMs: 0,
    snapshot: false,
  },
};

/** A real SQLITE_BUSY: a second connection writes while the first holds BEGIN IMMEDIATE. */
function sqliteBusy(): unknown {
  const dir = mkdtempSync(join(tmpdir(), 'cqrs-busy-'));
  const a = new Database(join(dir, 'busy.db'));
  const b = new Database(join(dir, 'busy.db'), { timeout: 0 });
  a.exec('CREATE TABLE t (x)');
  a.exec('BEGIN IMMEDIATE');
  try {
    b.exec('INSERT INTO t VALUES (1)');
    return null;
  } catch (err) {
    return err;
  } finally {
    a.exec('ROLLBACK');
    b.close();
    a.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('isRetriable', () => {
  it('retries lost connections, unreachable servers and a busy SQLite, also when wrapped', () => {
    const lost = new SourceError('BINLOG_READ_FAILED', 'reading the binlog failed: Connection lost', {
      cause: Object.assign(new Error('Connection lost: The server closed the connection.'), {
        code: 'PROTOCOL_CONNECTION_LOST',
      }),
    });
    expect(isRetriable(lost)).toBe(true);
    expect(isRetriable(new SourceError('SOURCE_UNREACHABLE', 'ECONNREFUSED'))).toBe(true);
    const busy = sqliteBusy();
    expect((busy as { code?: string }).code).toMatch(/^SQLITE_(BUSY|LOCKED)/);
    expect(isRetriable(busy)).toBe(true);
    expect(isRetriable(new ProjectionError(event, 'accounts', busy))).toBe(true);
    expect(isRetriable(new SourceError('SINK_FAILED', 'append failed', { cause: busy }))).toBe(true);
  });

  it('does not retry what a restart repeats: purged binlog, replica-id conflict, bad config, a projection bug', () => {
    const fatal1236 = new SourceError('BINLOG_READ_FAILED', 'reading the binlog failed', {
      cause: Object.assign(new Error('Could not find first log file name in binary log index file'), {
        errno: 1236,
      }),
    });
    expect(isRetriable(fatal1236)).toBe(false);
    // What MariaDB sends the reader it ends when another one registers the same replica id.
    const sameId = new SourceError('BINLOG_READ_FAILED', 'reading the binlog failed', {
      cause: Object.assign(new Error('A slave with the same server_uuid/server_id is already connected'), {
        errno: 4052,
      }),
    });
    expect(isRetriable(sameId)).toBe(false);
    expect(isRetriable(new SourceError('BINLOG_PURGED', 'gone'))).toBe(false);
    expect(isRetriable(new SourceError('SERVER_ID_IN_USE', 'taken'))).toBe(false);
    expect(isRetriable(new ConfigError('bad'))).toBe(false);
    // A read model's document its schema refuses: the same events compose it again.
    expect(
      isRetriable(new StoreError('STORE_DOCUMENT_INVALID', 'read model x: document 1 does not match')),
    ).toBe(false);
    expect(isRetriable(new ProjectionError(event, 'accounts', new TypeError('x is undefined')))).toBe(false);
  });

  it('lets an error say for itself', () => {
    expect(isRetriable(Object.assign(new Error('x'), { code: 'SOURCE_UNREACHABLE', retriable: false }))).toBe(
      false,
    );
    expect(isRetriable(Object.assign(new Error('x'), { code: 'BINLOG_PURGED', retriable: true }))).toBe(true);
  });
});

describe('Supervisor', () => {
  it('restarts a failed component with backoff until it runs again, counting restarts', async () => {
    const registry = new Registry();
    const given: ComponentDownError[] = [];
    const supervisor = new Supervisor({ policy: policy(), registry, onGiveUp: (e) => given.push(e) });
    let calls = 0;
    const component = supervisor.add({
      name: 'source',
      restart: async () => {
        calls++;
        if (calls < 3) throw new SourceError('SOURCE_UNREACHABLE', `refused ${calls}`);
      },
    });
    component.up();
    component.failed(new SourceError('BINLOG_READ_FAILED', 'Connection lost'));
    expect(component.status()).toMatchObject({ state: 'restarting', reason: 'Connection lost' });
    await until('up', () => component.status().state === 'up');
    expect(calls).toBe(3);
    expect(component.status()).toMatchObject({ restarts: 3, reason: null });
    expect(given).toEqual([]);
    const text = await registry.metrics();
    expect(text).toMatch(/cqrs_component_up\{component="source"\} 1/);
    expect(text).toMatch(/cqrs_component_restarts_total\{component="source"\} 3/);
    await supervisor.stop();
  });

  it('gives up once past the budget, naming the component and the last error', async () => {
    const given: ComponentDownError[] = [];
    const supervisor = new Supervisor({
      policy: policy({ failureBudgetMs: 100 }),
      onGiveUp: (e) => given.push(e),
    });
    let calls = 0;
    const component = supervisor.add({
      name: 'projector',
      restart: async () => {
        calls++;
        throw Object.assign(new Error('database is locked'), { code: 'SQLITE_BUSY' });
      },
    });
    component.up();
    component.failed(Object.assign(new Error('database is locked'), { code: 'SQLITE_BUSY' }));
    await until('give up', () => given.length > 0);
    expect(calls).toBeGreaterThan(1);
    expect(given).toHaveLength(1);
    expect(given[0]?.code).toBe('SQLITE_BUSY');
    expect(given[0]?.message).toMatch(
      /^projector has been failing for [\d.]+ s \(budget 0.1 s\): database is locked/,
    );
    expect(component.status().state).toBe('down');
    // Nothing keeps retrying after giving up.
    const after = calls;
    await new Promise((r) => setTimeout(r, 50));
    expect(calls).toBe(after);
    await supervisor.stop();
  });

  it('reports a failure a restart cannot fix at once, without restarting', async () => {
    const given: ComponentDownError[] = [];
    const supervisor = new Supervisor({ policy: policy(), onGiveUp: (e) => given.push(e) });
    let calls = 0;
    const component = supervisor.add({
      name: 'source',
      restart: async () => {
        calls++;
      },
    });
    component.up();
    component.failed(new SourceError('BINLOG_PURGED', 'the binlog at the stored position is gone'));
    expect(given).toHaveLength(1);
    expect(given[0]?.code).toBe('BINLOG_PURGED');
    expect(given[0]?.component).toBe('source');
    expect(component.status().state).toBe('down');
    expect(calls).toBe(0);
    await supervisor.stop();
  });

  it('gives up on a restart that fails in a way a restart cannot fix', async () => {
    const given: ComponentDownError[] = [];
    const supervisor = new Supervisor({ policy: policy(), onGiveUp: (e) => given.push(e) });
    const component = supervisor.add({
      name: 'source',
      restart: async () => {
        throw new SourceError('SERVER_ID_IN_USE', 'replica id 5401 is used by another running source');
      },
    });
    component.up();
    component.failed(new SourceError('BINLOG_READ_FAILED', 'Connection lost'));
    await until('give up', () => given.length > 0);
    expect(given[0]?.code).toBe('SERVER_ID_IN_USE');
    expect(component.status().state).toBe('down');
    await supervisor.stop();
  });

  it('counts a component that fails again soon after a restart as one outage', async () => {
    const given: ComponentDownError[] = [];
    const supervisor = new Supervisor({
      policy: policy({ failureBudgetMs: 200 }),
      onGiveUp: (e) => given.push(e),
    });
    const component = supervisor.add({ name: 'source', restart: async () => undefined });
    component.up();
    const started = Date.now();
    while (given.length === 0 && Date.now() - started < 5000) {
      await until('up', () => component.status().state !== 'restarting');
      component.failed(new SourceError('BINLOG_READ_FAILED', 'Connection lost'));
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(given).toHaveLength(1);
    expect(given[0]?.message).toMatch(/has been failing for/);
    await supervisor.stop();
  });

  it('with exitOnFailure false stays down past the budget and keeps trying until it runs', async () => {
    const given: ComponentDownError[] = [];
    const supervisor = new Supervisor({
      policy: policy({ failureBudgetMs: 50, exitOnFailure: false }),
      onGiveUp: (e) => given.push(e),
    });
    let healthy = false;
    const component = supervisor.add({
      name: 'source',
      restart: async () => {
        if (!healthy) throw new SourceError('SOURCE_UNREACHABLE', 'ECONNREFUSED');
      },
    });
    component.up();
    component.failed(new SourceError('BINLOG_READ_FAILED', 'Connection lost'));
    await until('down', () => component.status().state === 'down');
    expect(component.status().reason).toMatch(/has been failing for .*ECONNREFUSED/);
    healthy = true;
    await until('up', () => component.status().state === 'up');
    expect(given).toEqual([]);
    await supervisor.stop();
  });

  it('stop ends the retries', async () => {
    const supervisor = new Supervisor({ policy: policy(), onGiveUp: () => undefined });
    let calls = 0;
    const component = supervisor.add({
      name: 'source',
      restart: async () => {
        calls++;
        throw new SourceError('SOURCE_UNREACHABLE', 'ECONNREFUSED');
      },
    });
    component.up();
    component.failed(new SourceError('BINLOG_READ_FAILED', 'Connection lost'));
    await until('a retry', () => calls > 1);
    await supervisor.stop();
    const after = calls;
    await new Promise((r) => setTimeout(r, 50));
    expect(calls).toBeLessThanOrEqual(after + 1);
    component.failed(new SourceError('BINLOG_READ_FAILED', 'Connection lost'));
    await new Promise((r) => setTimeout(r, 30));
    expect(calls).toBeLessThanOrEqual(after + 1);
  });
});
