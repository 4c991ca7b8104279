import { describe, expect, it } from 'vitest';
import type { SourceTransaction } from '../../connectors/change-event.js';
import { deliverChunks, orderedSink } from '../../connectors/snapshot-delivery.js';

const tx = (id: string): SourceTransaction => ({ id, events: [], offset: { id }, snapshot: true });

/** A promise with its resolve/reject in hand. */
function deferred() {
  let resolve!: () => void;
  let reject!: (err: Error) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

async function* counted(n: number, read: number[]): AsyncGenerator<number> {
  for (let i = 0; i < n; i++) {
    read.push(i);
    yield i;
  }
}

const tick = () => new Promise((r) => setTimeout(r, 0));

describe('deliverChunks', () => {
  it('with two in flight reads the next chunk while the previous one is stored, and acknowledges in order', async () => {
    const read: number[] = [];
    const acked: number[] = [];
    const calls = new Map<number, ReturnType<typeof deferred>>();
    const done = deliverChunks(
      counted(4, read),
      (chunk) => {
        const d = deferred();
        calls.set(chunk, d);
        return d.promise;
      },
      (chunk) => acked.push(chunk),
      { inFlight: 2, stopped: () => false },
    );
    await tick();
    // Chunk 0 is being stored, chunk 1 handed over too; nothing acknowledged yet.
    expect([...calls.keys()]).toEqual([0, 1]);
    expect(acked).toEqual([]);
    calls.get(1)?.resolve();
    await tick();
    // A later call resolving first acknowledges nothing: chunk 0 is still pending.
    expect(acked).toEqual([]);
    calls.get(0)?.resolve();
    await tick();
    expect(acked).toEqual([0, 1]);
    expect([...calls.keys()]).toEqual([0, 1, 2, 3]);
    calls.get(2)?.resolve();
    calls.get(3)?.resolve();
    await expect(done).resolves.toBe(true);
    expect(acked).toEqual([0, 1, 2, 3]);
  });

  it('with one in flight hands over a chunk only after the previous call resolved', async () => {
    const read: number[] = [];
    let running = 0;
    let most = 0;
    await deliverChunks(
      counted(5, read),
      async () => {
        running++;
        most = Math.max(most, running);
        await tick();
        running--;
      },
      () => undefined,
      { inFlight: 1, stopped: () => false },
    );
    expect(most).toBe(1);
    expect(read).toEqual([0, 1, 2, 3, 4]);
  });

  it('on a failed call acknowledges nothing after it and returns only once every call settled', async () => {
    const acked: number[] = [];
    const calls = new Map<number, ReturnType<typeof deferred>>();
    const done = deliverChunks(
      counted(5, []),
      (chunk) => {
        const d = deferred();
        calls.set(chunk, d);
        return d.promise;
      },
      (chunk) => acked.push(chunk),
      { inFlight: 2, stopped: () => false },
    );
    let settled = false;
    void done.catch(() => {
      settled = true;
    });
    await tick();
    calls.get(0)?.reject(new Error('append failed'));
    await tick();
    // Chunk 1's call is still running: the delivery may not end before it.
    expect(settled).toBe(false);
    calls.get(1)?.resolve();
    await expect(done).rejects.toThrow('append failed');
    expect(acked).toEqual([]);
    expect([...calls.keys()]).toEqual([0, 1]);
  });

  it('stops handing over chunks once stopped', async () => {
    let stopped = false;
    const delivered: number[] = [];
    const completed = await deliverChunks(
      counted(10, []),
      async (chunk) => {
        delivered.push(chunk);
        if (chunk === 2) stopped = true;
      },
      () => undefined,
      { inFlight: 2, stopped: () => stopped },
    );
    expect(completed).toBe(false);
    expect(delivered).toEqual([0, 1, 2]);
  });
});

describe('orderedSink', () => {
  it('prepares each call at once, stores one at a time in call order', async () => {
    const log: string[] = [];
    const gates = new Map<string, ReturnType<typeof deferred>>();
    const sink = orderedSink(
      (t) => {
        log.push(`prepare ${t.id}`);
        return t.id;
      },
      async (id) => {
        log.push(`store ${id}`);
        const gate = deferred();
        gates.set(id, gate);
        await gate.promise;
        log.push(`stored ${id}`);
      },
    );
    const a = sink(tx('a'));
    const b = sink(tx('b'));
    await tick();
    expect(log).toEqual(['prepare a', 'prepare b', 'store a']);
    gates.get('a')?.resolve();
    await a;
    await tick();
    expect(log).toEqual(['prepare a', 'prepare b', 'store a', 'stored a', 'store b']);
    gates.get('b')?.resolve();
    await b;
  });

  it('stores nothing after a failed call: a later chunk never lands without the one before it', async () => {
    const stored: string[] = [];
    const sink = orderedSink(
      (t) => {
        if (t.id === 'bad-map') throw new Error('mapping failed');
        return t.id;
      },
      async (id) => {
        if (id === 'a') throw new Error('append failed');
        stored.push(id);
      },
    );
    const a = sink(tx('a'));
    const b = sink(tx('b'));
    await expect(a).rejects.toThrow('append failed');
    await expect(b).rejects.toThrow('append failed');
    expect(stored).toEqual([]);

    const fresh = orderedSink(
      (t) => {
        if (t.id === 'bad-map') throw new Error('mapping failed');
        return t.id;
      },
      async (id) => {
        stored.push(id);
      },
    );
    const c = fresh(tx('bad-map'));
    const d = fresh(tx('d'));
    await expect(c).rejects.toThrow('mapping failed');
    await expect(d).rejects.toThrow('mapping failed');
    expect(stored).toEqual([]);
  });

  it('stores the calls that arrived during a store as one group, in call order, and ends a group before a call that failed to prepare', async () => {
    const log: string[] = [];
    const gates: Array<ReturnType<typeof deferred>> = [];
    const gated = async (entry: string) => {
      log.push(entry);
      const gate = deferred();
      gates.push(gate);
      await gate.promise;
    };
    const sink = orderedSink(
      (t) => {
        if (t.id === 'bad-map') throw new Error('mapping failed');
        return t.id;
      },
      (id) => gated(`store ${id}`),
      (calls) => gated(`storeMany ${calls.map((c) => c.prepared).join(',')}`),
    );
    const a = sink(tx('a'));
    await tick();
    const rest = ['b', 'c', 'd'].map((id) => sink(tx(id)));
    await tick();
    expect(log).toEqual(['store a']);
    gates[0]?.resolve();
    await a;
    await tick();
    expect(log).toEqual(['store a', 'storeMany b,c,d']);
    const e = sink(tx('e'));
    const bad = sink(tx('bad-map'));
    const f = sink(tx('f'));
    gates[1]?.resolve();
    await Promise.all(rest);
    await tick();
    // e alone (the next call failed to prepare); nothing after the failed call is stored.
    expect(log).toEqual(['store a', 'storeMany b,c,d', 'store e']);
    gates[2]?.resolve();
    await e;
    await expect(bad).rejects.toThrow('mapping failed');
    await expect(f).rejects.toThrow('mapping failed');
    expect(log).toHaveLength(3);
  });

  it('fails every call of a group whose store failed, and every call after it', async () => {
    const stored: string[] = [];
    let first = true;
    const sink = orderedSink(
      (t) => t.id,
      async (id) => {
        if (first) {
          first = false;
          await tick();
        }
        stored.push(id);
      },
      async () => {
        throw new Error('group append failed');
      },
    );
    const a = sink(tx('a'));
    await tick();
    const group = [sink(tx('b')), sink(tx('c'))];
    await a;
    for (const call of group) await expect(call).rejects.toThrow('group append failed');
    await expect(sink(tx('d'))).rejects.toThrow('group append failed');
    expect(stored).toEqual(['a']);
  });
});
