import { describe, expect, it } from 'vitest';
import { type CommandHandlers, runProgram } from '../../cli/program.js';
import { progressLine } from '../../cli/replay-distributed.js';
import type { NewDomainEvent } from '../../eventstore/ports.js';
import {
  committedBy,
  parseReplayEnd,
  parseReplayStart,
  startOffsets,
} from '../../projectors/replay-start.js';
import {
  addVersion,
  aliasActions,
  droppedVersion,
  initialRecord,
  maintainedVersions,
  rollbackTarget,
  switchedTo,
  VersionRegistry,
  type VersionsRecord,
  versionName,
  withState,
} from '../../projectors/stores/document-versions.js';

const now = new Date('2026-01-02T03:04:05Z');

describe('read-model version names', () => {
  it('keeps version 1 under the read model name, suffixes the others, names the live aliases', () => {
    expect(versionName('account-summary', 1)).toBe('account-summary');
    expect(versionName('account-summary', 2)).toBe('account-summary__v2');
    expect(versionName('account-summary', 'live')).toBe('account-summary__live');
    expect(() => versionName('x', 0)).toThrow(/≥ 1/);
    expect(() => versionName('x', 1.5)).toThrow(/whole number/);
  });
});

describe('version records', () => {
  const built = (record: VersionsRecord, version: number) => withState(record, version, 'ready', now);

  it('allocates numbers never used before, even after a drop', () => {
    const first = addVersion(initialRecord('rm'), { from: 'beginning', to: null }, now);
    expect(first.version).toBe(2);
    expect(first.record.versions.at(-1)).toMatchObject({ version: 2, state: 'preparing', from: 'beginning' });
    const dropped = droppedVersion(built(first.record, 2), 2, now);
    expect(addVersion(dropped, { from: 'beginning', to: null }, now).version).toBe(3);
  });

  it('switches only to a replayed version, and rollback returns to the previous one', () => {
    const { record } = addVersion(initialRecord('rm'), { from: 'beginning', to: null }, now);
    expect(() => switchedTo(record, 2, now)).toThrow(/preparing/);
    const switched = switchedTo(built(record, 2), 2, now);
    expect(switched).toMatchObject({ live: 2, previous: 1 });
    expect(rollbackTarget(switched)).toBe(1);
    expect(() => rollbackTarget(initialRecord('rm'))).toThrow(/never switched/);
    expect(() => switchedTo(record, 9, now)).toThrow(/no version 9/);
  });

  it('refuses to drop the live version, forgets a dropped rollback target', () => {
    const { record } = addVersion(initialRecord('rm'), { from: 'beginning', to: null }, now);
    const switched = switchedTo(built(record, 2), 2, now);
    expect(() => droppedVersion(switched, 2, now)).toThrow(/is live/);
    const dropped = droppedVersion(switched, 1, now);
    expect(dropped.previous).toBeNull();
    expect(maintainedVersions(dropped)).toEqual([2]);
  });

  it('maintains building and ready versions, not frozen or dropped ones', () => {
    let record = initialRecord('rm');
    for (let i = 0; i < 3; i++) record = addVersion(record, { from: 'beginning', to: null }, now).record;
    record = withState(record, 2, 'building', now);
    record = withState(record, 3, 'frozen', now);
    expect(maintainedVersions(record)).toEqual([1, 2]);
  });

  it('redoes a change that lost to a concurrent writer', async () => {
    let stored: { record: VersionsRecord; token: number } | null = null;
    let interfere = true;
    const registry = new VersionRegistry({
      load: async () => stored,
      save: async (record, token) => {
        if (interfere) {
          // Another writer stores first: this save must fail and be redone from its record.
          interfere = false;
          stored = { record: addVersion(initialRecord('rm'), { from: 'x', to: null }, now).record, token: 1 };
          return false;
        }
        if ((stored?.token ?? undefined) !== token) return false;
        stored = { record, token: (stored?.token ?? 0) + 1 };
        return true;
      },
    });
    const next = await registry.update(
      'rm',
      (c) => addVersion(c, { from: 'beginning', to: null }, now).record,
    );
    expect(next.versions.map((v) => v.version)).toEqual([1, 2, 3]);
  });
});

describe('alias switch actions', () => {
  it('moves every alias in one request, each removal guarded by must_exist', () => {
    expect(
      aliasActions(
        ['p-rm__live--a', 'p-rm__live--b'],
        ['p-rm--a', 'p-rm--b'],
        ['p-rm__v2--a', 'p-rm__v2--b'],
      ),
    ).toEqual([
      { remove: { index: 'p-rm--a', alias: 'p-rm__live--a', must_exist: true } },
      { add: { index: 'p-rm__v2--a', alias: 'p-rm__live--a' } },
      { remove: { index: 'p-rm--b', alias: 'p-rm__live--b', must_exist: true } },
      { add: { index: 'p-rm__v2--b', alias: 'p-rm__live--b' } },
    ]);
    expect(() => aliasActions(['a'], [], ['b'])).toThrow();
  });
});

describe('replay positions', () => {
  it('parses the beginning, offsets and ISO times', () => {
    expect(parseReplayStart('beginning')).toEqual({ kind: 'beginning' });
    expect(parseReplayStart('0')).toEqual({ kind: 'beginning' });
    expect(parseReplayStart('1200')).toEqual({ kind: 'offset', offset: 1200n });
    expect(parseReplayStart('2024-05-01T12:00:00Z')).toEqual({
      kind: 'time',
      at: new Date('2024-05-01T12:00:00Z'),
    });
    expect(() => parseReplayStart('yesterday')).toThrow(/ISO time/);
    expect(() => parseReplayStart('-5')).toThrow();
    expect(parseReplayEnd('2024-05-01')).toEqual(new Date('2024-05-01T00:00:00Z'));
    expect(() => parseReplayEnd('12')).toThrow(/--to/);
  });

  it('clamps offsets into each partition and maps "no record that late" to the end', () => {
    const ranges = [
      { partition: 0, low: '10', high: '50' },
      { partition: 1, low: '0', high: '5' },
    ];
    expect(startOffsets({ kind: 'offset', offset: 20n }, ranges)).toEqual([
      { partition: 0, offset: '20' },
      { partition: 1, offset: '5' },
    ]);
    expect(startOffsets({ kind: 'offset', offset: 3n }, ranges)[0]).toEqual({ partition: 0, offset: '10' });
    const byTime = new Map([
      [0, '42'],
      [1, '-1'],
    ]);
    expect(startOffsets({ kind: 'time', at: now }, ranges, byTime)).toEqual([
      { partition: 0, offset: '42' },
      { partition: 1, offset: '5' },
    ]);
  });

  it('freezes at the source commit time', () => {
    const event = (ms: number) => ({ metadata: { sourceTsMs: ms } }) as NewDomainEvent;
    expect(committedBy(event(now.getTime()), now)).toBe(true);
    expect(committedBy(event(now.getTime() + 1), now)).toBe(false);
  });

  it('prints rate, lag and ETA', () => {
    expect(progressLine('replay rm v2', { done: 500, rowsPerSec: 100, elapsedSec: 5 }, 250n)).toBe(
      'replay rm v2: 500 records in 5 s, 100/s, lag 250, ETA 3 s',
    );
    expect(progressLine('r', { done: 9, rowsPerSec: 3, elapsedSec: 3 }, 0n)).toMatch(/lag 0 \(caught up\)$/);
  });
});

describe('replay and read-model command lines', () => {
  async function cli(argv: string[]) {
    const calls: { command: string; options: unknown }[] = [];
    const handlers = new Proxy({} as CommandHandlers, {
      get:
        (_, command) =>
        async (options: unknown): Promise<number> => {
          calls.push({ command: String(command), options });
          return 0;
        },
    });
    let err = '';
    const code = await runProgram(argv, handlers, {
      out: () => undefined,
      err: (s) => {
        err += s;
      },
    });
    return { code, calls, err };
  }

  it('parses replay options', async () => {
    const { code, calls } = await cli([
      'replay',
      'account-summary',
      '--store',
      'mongo',
      '--from',
      '2024-05-01T00:00:00Z',
      '--to',
      '2024-06-01',
      '--no-switch',
      '--sample',
      '20',
    ]);
    expect(code).toBe(0);
    expect(calls).toEqual([
      {
        command: 'replay',
        options: expect.objectContaining({
          readModel: 'account-summary',
          store: 'mongo',
          from: '2024-05-01T00:00:00Z',
          to: '2024-06-01T00:00:00.000Z',
          switch: false,
          sample: 20,
          force: false,
        }),
      },
    ]);
    expect((await cli(['replay', 'x', '--store', 'mongo'])).calls[0]?.options).toMatchObject({
      switch: true,
    });
  });

  it('refuses a bad start and a switch without a version', async () => {
    const bad = await cli(['replay', 'x', '--store', 'mongo', '--from', 'soon']);
    expect(bad.code).toBe(2);
    expect(bad.err).toMatch(/beginning/);
    expect((await cli(['read-model', 'switch', 'x', '--store', 'opensearch'])).code).toBe(2);
    const drop = await cli(['read-model', 'drop', 'x', '3', '--store', 'opensearch', '--force']);
    expect(drop.calls[0]?.options).toMatchObject({ action: 'drop', readModel: 'x', version: 3, force: true });
  });
});
