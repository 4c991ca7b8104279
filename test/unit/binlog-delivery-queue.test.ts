import { describe, expect, it } from 'vitest';
import { DeliveryQueue } from '../../connectors/binlog/delivery-queue.js';

const tick = () => new Promise((r) => setTimeout(r, 1));

function harness(highWater: number, deliver: (n: number) => Promise<void>) {
  const log: string[] = [];
  const errors: unknown[] = [];
  const queue = new DeliveryQueue<number>({
    highWater,
    deliver,
    pause: () => log.push('pause'),
    resume: () => log.push('resume'),
    onError: (err) => errors.push(err),
  });
  return { queue, log, errors };
}

describe('delivery queue', () => {
  it('delivers in order, one at a time, even when the consumer is slow', async () => {
    const got: number[] = [];
    let inFlight = 0;
    let maxInFlight = 0;
    const { queue } = harness(100, async (n) => {
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      await new Promise((r) => setTimeout(r, n % 3));
      got.push(n);
      inFlight--;
    });
    for (let i = 0; i < 20; i++) queue.push(i);
    while (!queue.idle()) await tick();
    expect(got).toEqual([...Array(20).keys()]);
    expect(maxInFlight).toBe(1);
    expect(queue.stats().delivered).toBe(20);
  });

  it('pauses the producer at the high-water mark and resumes it at half', async () => {
    const gates: Array<() => void> = [];
    const { queue, log } = harness(4, () => new Promise<void>((r) => gates.push(r)));
    for (let i = 0; i < 5; i++) queue.push(i);
    // 0 is in flight, 1..4 wait: four waiting reach the mark.
    expect(log).toEqual(['pause']);
    expect(queue.stats()).toMatchObject({ queued: 4, pauses: 1 });
    gates.shift()?.();
    await tick();
    expect(log).toEqual(['pause']);
    gates.shift()?.();
    await tick();
    expect(log).toEqual(['pause', 'resume']);
    while (gates.length > 0 || !queue.idle()) {
      gates.shift()?.();
      await tick();
    }
    expect(queue.stats()).toMatchObject({ delivered: 5, maxQueued: 4, pauses: 1 });
  });

  it('pauses on the rows waiting too, so a few big items are bounded like many small ones', async () => {
    const gates: Array<() => void> = [];
    const log: string[] = [];
    const queue = new DeliveryQueue<number>({
      highWater: 100,
      highWaterSize: 10,
      sizeOf: (rows) => rows,
      deliver: () => new Promise<void>((r) => gates.push(r)),
      pause: () => log.push('pause'),
      resume: () => log.push('resume'),
      onError: () => undefined,
    });
    // 6 rows in flight; 4 + 6 rows wait: the row mark is reached with two items queued.
    for (const rows of [6, 4, 6]) queue.push(rows);
    expect(log).toEqual(['pause']);
    expect(queue.stats()).toMatchObject({ queued: 2, queuedSize: 10 });
    gates.shift()?.();
    await tick();
    // 6 rows still wait: more than half of the mark.
    expect(log).toEqual(['pause']);
    gates.shift()?.();
    await tick();
    expect(log).toEqual(['pause', 'resume']);
    while (gates.length > 0 || !queue.idle()) {
      gates.shift()?.();
      await tick();
    }
    expect(queue.stats()).toMatchObject({ delivered: 3, maxQueuedSize: 10, queuedSize: 0 });
  });

  it('stops at the first failed delivery and reports it', async () => {
    const got: number[] = [];
    const { queue, errors } = harness(10, async (n) => {
      if (n === 2) throw new Error('sink down');
      got.push(n);
    });
    for (let i = 0; i < 5; i++) queue.push(i);
    while (!queue.idle()) await tick();
    queue.push(9);
    await tick();
    expect(got).toEqual([0, 1]);
    expect(errors).toHaveLength(1);
    expect(String(errors[0])).toMatch(/sink down/);
  });

  it('close waits for the delivery in flight and drops the rest', async () => {
    let release: () => void = () => {};
    const got: number[] = [];
    const { queue } = harness(10, (n) => {
      got.push(n);
      return new Promise<void>((r) => {
        release = r;
      });
    });
    queue.push(1);
    queue.push(2);
    let closed = false;
    const closing = queue.close().then(() => {
      closed = true;
    });
    await tick();
    expect(closed).toBe(false);
    release();
    await closing;
    expect(got).toEqual([1]);
    expect(queue.idle()).toBe(true);
  });
});
