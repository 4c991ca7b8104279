import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import type { ComparisonRecord, ComparisonRecorder } from '../../compare/ports.js';
import { ShadowComparator } from '../../compare/shadow-compare.js';
import { ShadowQueue } from '../../compare/shadow-queue.js';
import { silentLogger } from '../../lib/logger.js';
import { FileFlagStore } from '../../shadow-api/flag-store.js';
import { createShadowMetrics } from '../../shadow-api/metrics.js';
import { ReadPath } from '../../shadow-api/read-path.js';

function recorder(records: ComparisonRecord[]): ComparisonRecorder {
  return {
    record: async (r) => {
      records.push(r);
    },
    list: () => [],
    stats: () => {
      throw new Error('unused');
    },
    timeline: () => [],
    close: () => undefined,
  };
}

function readPath(timeoutMs: number | undefined, records: ComparisonRecord[]) {
  const queue = new ShadowQueue();
  return new ReadPath({
    flags: FileFlagStore.open({ initial: { defaultMode: 'new' } }),
    queue,
    comparator: new ShadowComparator({ recorder: recorder(records) }),
    metrics: createShadowMetrics(new Registry(), queue),
    logger: silentLogger,
    ...(timeoutMs === undefined ? {} : { readModelTimeoutMs: timeoutMs }),
  });
}

const stalled = () => new Promise<string>(() => undefined);

describe('ReadPath with a read-model timeout', () => {
  it('serves legacy when the read model does not answer in time, and records an error comparison', async () => {
    const records: ComparisonRecord[] = [];
    const t0 = performance.now();
    const served = await readPath(100, records).serve({
      endpoint: 'accounts.summary',
      subject: '1',
      requestKey: 'accounts.summary:1',
      query: (side) => (side === 'legacy' ? Promise.resolve('legacy answer') : stalled()),
    });
    expect(performance.now() - t0).toBeLessThan(5000);
    expect(served).toMatchObject({ value: 'legacy answer', servedBy: 'legacy', fellBack: true, mode: 'new' });
    expect(records).toHaveLength(1);
    expect(records[0]?.outcome).toBe('error');
    expect(records[0]?.error).toMatch(/did not answer within 100 ms/);
  });

  it('times each read out from its own start when reads overlap (one timer serves all deadlines)', async () => {
    const records: ComparisonRecord[] = [];
    const path = readPath(150, records);
    const read = (subject: string, readModel: () => Promise<string>) => {
      const started = performance.now();
      return path
        .serve({
          endpoint: 'accounts.summary',
          subject,
          requestKey: `accounts.summary:${subject}`,
          query: (side) => (side === 'legacy' ? Promise.resolve(`legacy ${subject}`) : readModel()),
        })
        .then((served) => ({ served, ms: performance.now() - started }));
    };
    const first = read('1', stalled);
    await new Promise((r) => setTimeout(r, 100));
    // Answers in time although the first read's deadline passes while it waits.
    const answered = read('2', () => new Promise((r) => setTimeout(() => r('read model 2'), 80)));
    const second = read('3', stalled);
    const [a, b, c] = await Promise.all([first, answered, second]);
    expect(a.served).toMatchObject({ value: 'legacy 1', fellBack: true });
    expect(a.ms).toBeGreaterThanOrEqual(149);
    expect(b.served).toMatchObject({ value: 'read model 2', servedBy: 'readModel', fellBack: false });
    expect(c.served).toMatchObject({ value: 'legacy 3', fellBack: true });
    // Not expired with the first read's deadline, 100 ms earlier.
    expect(c.ms).toBeGreaterThanOrEqual(149);
    expect(records.map((r) => r.requestKey)).toEqual(['accounts.summary:1', 'accounts.summary:3']);
  });

  it('serves the read model when it answers in time', async () => {
    const records: ComparisonRecord[] = [];
    const served = await readPath(1000, records).serve({
      endpoint: 'accounts.summary',
      subject: '1',
      requestKey: 'accounts.summary:1',
      query: (side) => Promise.resolve(side === 'legacy' ? 'legacy answer' : 'read model answer'),
    });
    expect(served).toMatchObject({ value: 'read model answer', servedBy: 'readModel', fellBack: false });
    expect(records).toEqual([]);
  });

  it('never times out legacy (there is nothing to fall back to)', async () => {
    const served = await readPath(50, []).serve({
      endpoint: 'accounts.summary',
      subject: '1',
      requestKey: 'accounts.summary:1',
      query: async (side) => {
        if (side === 'readModel') throw new Error('store down');
        await new Promise((r) => setTimeout(r, 200));
        return 'legacy answer';
      },
    });
    expect(served).toMatchObject({ value: 'legacy answer', fellBack: true });
  });

  it('falls back to legacy when the read model throws before returning a promise, with or without a timeout', async () => {
    for (const timeoutMs of [undefined, 1000]) {
      const records: ComparisonRecord[] = [];
      const served = await readPath(timeoutMs, records).serve({
        endpoint: 'accounts.summary',
        subject: '1',
        requestKey: 'accounts.summary:1',
        query: (side) => {
          if (side === 'readModel') throw new Error('no such read model');
          return Promise.resolve('legacy answer');
        },
      });
      expect(served).toMatchObject({
        value: 'legacy answer',
        servedBy: 'legacy',
        fellBack: true,
        mode: 'new',
      });
      expect(records.map((r) => [r.outcome, r.error])).toEqual([['error', 'read model: no such read model']]);
    }
  });
});
