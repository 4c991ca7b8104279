import { describe, expect, it } from 'vitest';
import { PollLoop } from '../../projectors/poll-loop.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * A loop, waiting once caught up, whose step applies what was queued since the last one (at
 * most `batchSize`), taking `stepMs` over a batch and `emptyStepMs` after finding nothing.
 */
async function queuedLoop(
  minBatchIntervalMs: number,
  options: { batchSize?: number; stepMs?: number; emptyStepMs?: number } = {},
) {
  const loop = new PollLoop();
  let queued = 0;
  let running = true;
  const batches: number[] = [];
  const done = loop.run({
    step: async () => {
      const n = Math.min(queued, options.batchSize ?? Number.POSITIVE_INFINITY);
      queued -= n;
      if (n > 0) {
        batches.push(n);
        if (options.stepMs !== undefined) await sleep(options.stepMs);
      } else if (options.emptyStepMs !== undefined) await sleep(options.emptyStepMs);
      return n;
    },
    running: () => running,
    pollIntervalMs: 10_000,
    minBatchIntervalMs,
    ...(options.batchSize === undefined ? {} : { batchSize: options.batchSize }),
    onFailure: (err) => {
      throw err;
    },
  });
  // The first step has found nothing by now.
  await sleep(5);
  return {
    batches,
    push() {
      queued++;
      loop.notify();
    },
    async stop() {
      running = false;
      loop.notify();
      await done;
    },
  };
}

describe('PollLoop', () => {
  it('does not sleep through a notify that came while a step ran, after the step had read', async () => {
    // The first step reads nothing, then works on for 50 ms: the push comes meanwhile.
    const loop = await queuedLoop(0, { emptyStepMs: 50 });
    loop.push();
    await sleep(300);
    expect(loop.batches).toEqual([1]);
    await loop.stop();
  });

  it('steps at each notify without a minimum interval', async () => {
    const loop = await queuedLoop(0);
    for (let i = 0; i < 5; i++) {
      loop.push();
      await sleep(5);
    }
    await loop.stop();
    expect(loop.batches).toEqual([1, 1, 1, 1, 1]);
  });

  it('gathers what is notified within the minimum interval into one batch', async () => {
    const loop = await queuedLoop(200);
    loop.push();
    await sleep(20);
    expect(loop.batches).toEqual([1]);
    for (let i = 0; i < 5; i++) {
      loop.push();
      await sleep(5);
    }
    expect(loop.batches).toEqual([1]);
    await sleep(250);
    expect(loop.batches).toEqual([1, 5]);
    await loop.stop();
  });

  it('leaves what arrives while a batch runs to the next interval, once caught up', async () => {
    for (const batchSize of [undefined, 100]) {
      const loop = await queuedLoop(400, { stepMs: 60, ...(batchSize === undefined ? {} : { batchSize }) });
      loop.push();
      for (let i = 0; i < 3; i++) {
        await sleep(10);
        loop.push();
      }
      await sleep(100);
      // Without the batch size the loop cannot tell a caught-up batch from a full one.
      expect(loop.batches).toEqual(batchSize === undefined ? [1, 3] : [1]);
      await sleep(400);
      expect(loop.batches).toEqual([1, 3]);
      await loop.stop();
    }
  });

  it('steps again at once after a full batch', async () => {
    const loop = await queuedLoop(10_000, { batchSize: 2 });
    for (let i = 0; i < 5; i++) loop.push();
    await sleep(50);
    expect(loop.batches).toEqual([2, 2, 1]);
    await loop.stop();
  });

  it('stops without waiting out the interval', async () => {
    const loop = await queuedLoop(10_000);
    loop.push();
    await sleep(20);
    loop.push();
    const t0 = performance.now();
    await loop.stop();
    expect(performance.now() - t0).toBeLessThan(1000);
    expect(loop.batches).toEqual([1]);
  });
});
