import Database from 'better-sqlite3';
import { InvalidArgumentError } from 'commander';
import { describe, expect, it } from 'vitest';
import { parseReplayPoint, runProgram } from '../../cli/program.js';
import { progressLine } from '../../cli/replay.js';
import { endAt, startAfter } from '../../projectors/replay.js';
import {
  buildCheckpointName,
  canTransition,
  docTableName,
  liveVersions,
  maintainedVersions,
  rowTableName,
  VERSION_STATES,
  VersionRegistry,
} from '../../projectors/stores/read-model-versions.js';

describe('version naming', () => {
  it('keeps version 1 in the definition tables and gives every other version its own', () => {
    expect(docTableName('account-summary', 1)).toBe('rm_doc__account-summary');
    expect(docTableName('account-summary', 3)).toBe('rm_doc__account-summary__v3');
    expect(rowTableName('transactions', 'account-summary', 1)).toBe('rm_row__transactions');
    expect(rowTableName('transactions', 'account-summary', 2)).toBe(
      'rm_row__transactions__account-summary__v2',
    );
    expect(rowTableName('transactions', 'history', 2)).not.toBe(
      rowTableName('transactions', 'account-summary', 2),
    );
    expect(buildCheckpointName('account-summary', 2)).toBe('rm-version:account-summary:v2');
    expect(buildCheckpointName('account-summary', 2)).not.toBe('read-models');
  });
});

describe('version states', () => {
  it('allows a build to finish, a switch in either direction, and nothing else', () => {
    const allowed = VERSION_STATES.flatMap((from) =>
      VERSION_STATES.filter((to) => canTransition(from, to)).map((to) => `${from}→${to}`),
    );
    expect(allowed.sort()).toEqual(['building→ready', 'live→retired', 'ready→live', 'retired→live']);
  });
});

function registry() {
  const db = new Database(':memory:');
  db.exec(
    'CREATE TABLE projector_checkpoints (name TEXT PRIMARY KEY, position INTEGER NOT NULL, source_tx_id TEXT, updated_at TEXT NOT NULL)',
  );
  return { db, registry: new VersionRegistry(db) };
}

describe('VersionRegistry', () => {
  it('has version 1 live before any replay, without a row', () => {
    const { db, registry: r } = registry();
    expect(r.list('rm').map((v) => [v.version, v.state])).toEqual([[1, 'live']]);
    expect(liveVersions(db).size).toBe(0);
  });

  it('numbers versions, refuses to switch to one still building, switches and rolls back atomically', () => {
    const { db, registry: r } = registry();
    const v2 = r.create('rm', { fromPosition: null, toPosition: null });
    expect(v2).toMatchObject({ version: 2, state: 'building', frozen: false });
    expect(() => r.switchTo('rm', 2)).toThrow(/building; it cannot become live/);
    expect(maintainedVersions(db)).toEqual([]);
    r.markReady('rm', 2, 120);
    expect(maintainedVersions(db)).toEqual([{ readModel: 'rm', version: 2 }]);
    expect(r.switchTo('rm', 2)).toEqual({ from: 1, to: 2 });
    expect(liveVersions(db).get('rm')).toBe(2);
    expect(r.list('rm').map((v) => [v.version, v.state])).toEqual([
      [1, 'retired'],
      [2, 'live'],
    ]);
    expect(r.previous('rm').version).toBe(1);
    expect(r.switchTo('rm', r.previous('rm').version)).toEqual({ from: 2, to: 1 });
    expect(liveVersions(db).get('rm')).toBe(1);
    // Exactly one live version whatever was switched.
    expect(r.list('rm').filter((v) => v.state === 'live')).toHaveLength(1);
    // Back again: the previous live version is 2 now.
    expect(r.previous('rm').version).toBe(2);
  });

  it('refuses a frozen version unless forced, and keeps it out of the maintained ones', () => {
    const { db, registry: r } = registry();
    r.create('rm', { fromPosition: null, toPosition: 40 });
    r.markReady('rm', 2, 40);
    expect(maintainedVersions(db)).toEqual([]);
    expect(() => r.switchTo('rm', 2)).toThrow(/not maintained: it would serve a past state/);
    expect(r.switchTo('rm', 2, true)).toEqual({ from: 1, to: 2 });
  });

  it('drops neither version 1 nor the live one; drops the others with their tables and checkpoint', () => {
    const { db, registry: r } = registry();
    r.create('rm', { fromPosition: null, toPosition: null });
    r.markReady('rm', 2, 10);
    r.create('rm', { fromPosition: 5, toPosition: null });
    r.markReady('rm', 3, 10);
    r.switchTo('rm', 2);
    expect(() => r.drop('rm', 1, [])).toThrow(/definition's own tables/);
    expect(() => r.drop('rm', 2, [])).toThrow(/version 2 is live/);
    db.exec('CREATE TABLE "rm_doc__rm__v3" (key TEXT)');
    db.prepare("INSERT INTO projector_checkpoints VALUES ('rm-version:rm:v3', 7, NULL, 'x')").run();
    r.drop('rm', 3, ['rm_doc__rm__v3']);
    expect(r.list('rm').map((v) => v.version)).toEqual([1, 2]);
    expect(db.prepare("SELECT COUNT(*) FROM sqlite_master WHERE name = 'rm_doc__rm__v3'").pluck().get()).toBe(
      0,
    );
    expect(db.prepare('SELECT COUNT(*) FROM projector_checkpoints').pluck().get()).toBe(0);
    expect(() => r.get('rm', 3)).toThrow(/has no version 3/);
  });
});

describe('replay bounds on the command line', () => {
  it('reads a whole number as an event position and anything else as an ISO time', () => {
    expect(parseReplayPoint('1200')).toEqual({ position: 1200 });
    expect(parseReplayPoint('2024-05-01')).toEqual({ time: '2024-05-01T00:00:00.000Z' });
    expect(parseReplayPoint('2024-05-01T12:00:00+02:00')).toEqual({ time: '2024-05-01T10:00:00.000Z' });
    for (const bad of ['0', 'yesterday', '12.5', '', '-3'])
      expect(() => parseReplayPoint(bad)).toThrow(InvalidArgumentError);
  });

  it('parses replay and read-model commands into typed options', async () => {
    const calls: unknown[] = [];
    const record = async (options: unknown) => {
      calls.push(options);
      return 0;
    };
    const handlers = new Proxy({}, { get: () => record }) as Parameters<typeof runProgram>[1];
    const io = { out: () => undefined, err: () => undefined };
    expect(
      await runProgram(
        ['replay', 'account-summary', '--from', '5', '--to', '2024-05-01', '--no-switch', '--sample', '3'],
        handlers,
        io,
      ),
    ).toBe(0);
    expect(calls[0]).toMatchObject({
      readModel: 'account-summary',
      from: { position: 5 },
      to: { time: '2024-05-01T00:00:00.000Z' },
      switch: false,
      sample: 3,
      force: false,
    });
    expect(await runProgram(['replay', 'rm', '--from', '9', '--to', '3'], handlers, io)).toBe(2);
    expect(await runProgram(['read-model', 'switch', 'rm', 'x'], handlers, io)).toBe(2);
    expect(await runProgram(['read-model', 'drop', 'rm', '3', '--force'], handlers, io)).toBe(0);
    expect(calls.at(-1)).toMatchObject({ action: 'drop', readModel: 'rm', version: 3, force: true });
  });

  it('shows progress as done/total, rate and ETA', () => {
    expect(progressLine('rm', 2, { done: 500, total: 2000, rowsPerSec: 250, etaSec: 6, elapsedSec: 2 })).toBe(
      'replay rm v2: 500/2000 events (25%), 250 events/s, ETA 6 s',
    );
  });
});

describe('replay bounds in the event store', () => {
  /** Three source transactions: positions 1-2 at t=1000, 3-5 at t=2000, 6 at t=3000. */
  function events() {
    const db = new Database(':memory:');
    db.exec(
      'CREATE TABLE events (position INTEGER PRIMARY KEY, source_tx_id TEXT NOT NULL, metadata TEXT NOT NULL)',
    );
    const put = db.prepare('INSERT INTO events VALUES (?, ?, ?)');
    for (const [position, tx, ms] of [
      [1, 'a', 1000],
      [2, 'a', 1000],
      [3, 'b', 2000],
      [4, 'b', 2000],
      [5, 'b', 2000],
      [6, 'c', 3000],
    ] as const)
      put.run(position, tx, JSON.stringify({ sourceTsMs: ms }));
    return db;
  }
  const at = (ms: number) => new Date(ms).toISOString();

  it('starts at the beginning of the source transaction holding --from, never half-way in', () => {
    const db = events();
    expect(startAfter(db, undefined)).toBe(0);
    expect(startAfter(db, { position: 4 })).toBe(2);
    expect(startAfter(db, { position: 6 })).toBe(5);
    expect(startAfter(db, { time: at(1500) })).toBe(2);
    expect(startAfter(db, { time: at(2000) })).toBe(2);
    expect(() => startAfter(db, { time: at(5000) })).toThrow(/no event was committed at or after/);
    expect(() => startAfter(db, { position: 9 })).toThrow(/no event at position 9/);
  });

  it('ends at the end of the source transaction holding --to, or of the last one committed by then', () => {
    const db = events();
    expect(endAt(db, { position: 3 })).toBe(5);
    expect(endAt(db, { position: 1 })).toBe(2);
    expect(endAt(db, { time: at(2500) })).toBe(5);
    expect(endAt(db, { time: at(999) })).toBe(0);
  });
});
