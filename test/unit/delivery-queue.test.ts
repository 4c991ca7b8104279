import { describe, expect, it } from 'vitest';
import { DeliveryQueue } from '../../connectors/delivery-queue.js';

const tick = () => new Promise((r) => setTimeout(r, 1));

/** One delivery settles and the producer stays paused; the next brings what waits to half, and it resumes. */
async function stillPausedThenResumed(gates: Array<() => void>, log: string[]): Promise<void> {
  gates.shift()?.();
  await tick();
  expect(log).toEqual(['pause']);
  gates.shift()?.();
  await tick();
  expect(log).toEqual(['pause', 'resume']);
}

/** Lets every held delivery settle, those handed over meanwhile too, until the queue is idle. */
async function releaseAll(gates: Array<() => void>, queue: DeliveryQueue<number>): Promise<void> {
  while (gates.length > 0 || !queue.idle()) {
    gates.shift()?.();
    await tick();
  }
}

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

  it('settled resolves once every item is delivered, and after a failure stopped the queue', async () => {
    const got: number[] = [];
    const { queue } = harness(100, async (n) => {
      await new Promise((r) => setTimeout(r, 2));
      got.push(n);
    });
    for (let i = 0; i < 5; i++) queue.push(i);
    await queue.settled();
    expect(got).toEqual([0, 1, 2, 3, 4]);
    expect(queue.idle()).toBe(true);

    const failing = harness(100, async (n) => {
      if (n === 1) throw new Error('store down');
    });
    for (let i = 0; i < 3; i++) failing.queue.push(i);
    await failing.queue.settled();
    expect(failing.errors).toHaveLength(1);
    expect(failing.queue.idle()).toBe(true);
  });

  it('with inFlight hands over what waits before the oldest settled, settles in order, and delivers an item marked alone by itself', async () => {
    const log: string[] = [];
    const gates = new Map<number, () => void>();
    const queue = new DeliveryQueue<number>({
      highWater: 100,
      inFlight: 3,
      alone: (n) => n === 4,
      deliver: (n) => {
        log.push(`deliver ${n}`);
        return new Promise<void>((r) => gates.set(n, r));
      },
      pause: () => undefined,
      resume: () => undefined,
      onError: (err) => {
        throw err;
      },
    });
    for (let i = 0; i < 7; i++) queue.push(i);
    await tick();
    expect(log).toEqual(['deliver 0', 'deliver 1', 'deliver 2']);
    gates.get(1)?.();
    await tick();
    // 1 settled before 0: nothing moves until the oldest did.
    expect(log).toHaveLength(3);
    gates.get(0)?.();
    await tick();
    expect(log).toEqual(['deliver 0', 'deliver 1', 'deliver 2', 'deliver 3']);
    gates.get(2)?.();
    await tick();
    // 4 waits for 3 to settle, and 5 for 4.
    expect(log.at(-1)).toBe('deliver 3');
    gates.get(3)?.();
    await tick();
    expect(log.at(-1)).toBe('deliver 4');
    gates.get(4)?.();
    await tick();
    expect(log.slice(5)).toEqual(['deliver 5', 'deliver 6']);
    gates.get(5)?.();
    gates.get(6)?.();
    while (!queue.idle()) await tick();
    expect(queue.stats().delivered).toBe(7);
  });

  it('with inFlight hands nothing over after a failed delivery, and reports it once the others settled', async () => {
    const delivered: number[] = [];
    const errors: unknown[] = [];
    let settledOthers = false;
    const queue = new DeliveryQueue<number>({
      highWater: 100,
      inFlight: 4,
      deliver: async (n) => {
        delivered.push(n);
        await tick();
        if (n === 1) throw new Error('store failed');
        if (n === 2) {
          await tick();
          settledOthers = true;
        }
      },
      pause: () => undefined,
      resume: () => undefined,
      onError: (err) => errors.push({ err, settledOthers }),
    });
    for (let i = 0; i < 10; i++) queue.push(i);
    while (!queue.idle()) await tick();
    // Handed over before the failure was known: at most the one after the oldest settled.
    expect(delivered.slice(0, 4)).toEqual([0, 1, 2, 3]);
    expect(delivered.length).toBeLessThanOrEqual(5);
    expect(errors).toEqual([{ err: new Error('store failed'), settledOthers: true }]);
  });

  it('pauses the producer at the high-water mark and resumes it at half', async () => {
    const gates: Array<() => void> = [];
    const { queue, log } = harness(4, () => new Promise<void>((r) => gates.push(r)));
    for (let i = 0; i < 5; i++) queue.push(i);
    // 0 is in flight, 1..4 wait: four waiting reach the mark.
    expect(log).toEqual(['pause']);
    expect(queue.stats()).toMatchObject({ queued: 4, pauses: 1 });
    await stillPausedThenResumed(gates, log);
    await releaseAll(gates, queue);
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
    // After the first settles, 6 rows still wait: more than half of the mark.
    await stillPausedThenResumed(gates, log);
    await releaseAll(gates, queue);
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
