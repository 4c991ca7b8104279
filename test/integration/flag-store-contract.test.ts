import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../lib/logger.js';
import { SharedState } from '../../lib/shared-state.js';
import { FileRolloutState, RedisRolloutState, type RolloutStateStore } from '../../rollout/rollout-state.js';
import {
  FileFlagStore,
  type FlagChange,
  type FlagStore,
  FlagsInvalidError,
} from '../../shadow-api/flag-store.js';
import type { FlagDocumentInput } from '../../shadow-api/flags.js';
import { RedisFlagStore } from '../../shadow-api/redis-flag-store.js';

/**
 * One behaviour suite for the flag store port (and the rollout state beside it), run against
 * each adapter: the file store and the Redis store (the Redis at 127.0.0.1:6379). A "replica" is
 * a second store over the same file or Redis prefix, as a second API process would open it.
 */
const REDIS = 'redis://127.0.0.1:6379';
const dir = mkdtempSync(join(tmpdir(), 'h4_flag_contract_'));
const opened: { close(): Promise<unknown> }[] = [];
const prefixes: string[] = [];
const redis = new Redis(REDIS);

afterAll(async () => {
  for (const thing of opened.reverse()) await thing.close();
  for (const prefix of prefixes) {
    const keys = await redis.keys(`${prefix}:*`);
    if (keys.length > 0) await redis.del(...keys);
  }
  await redis.quit();
  rmSync(dir, { recursive: true, force: true });
});

interface Backing {
  /** A store over this backing, as one more process opens it. */
  open(initial: FlagDocumentInput): Promise<FlagStore>;
  rollout(): Promise<RolloutStateStore>;
}

interface Adapter {
  name: string;
  /** A fresh backing (file, Redis prefix) no other test uses. */
  backing(): Backing;
  /** Whether replicas patching at the same moment lose no change (the file store does not promise it). */
  atomicAcrossReplicas: boolean;
}

let seq = 0;
const adapters: Adapter[] = [
  {
    name: 'file',
    atomicAcrossReplicas: false,
    backing() {
      const file = join(dir, `flags-${++seq}.json`);
      const rollout = join(dir, `rollout-${seq}.json`);
      return {
        async open(initial) {
          const store = FileFlagStore.open({ file, initial, writeInitial: false });
          const stop = store.watch(100);
          opened.push({ close: async () => stop() });
          return store;
        },
        async rollout() {
          return new FileRolloutState(rollout);
        },
      };
    },
  },
  {
    name: 'redis',
    atomicAcrossReplicas: true,
    backing() {
      const prefix = `h4_test:${randomUUID()}`;
      prefixes.push(prefix);
      const state = async () => {
        const shared = await SharedState.connect({ url: REDIS, prefix, logger: silentLogger });
        opened.push(shared);
        return shared;
      };
      return {
        async open(initial) {
          const store = await RedisFlagStore.open({ state: await state(), initial });
          opened.push(store);
          return store;
        },
        async rollout() {
          return RedisRolloutState.open(await state());
        },
      };
    },
  },
];

async function until<T>(what: string, check: () => T | undefined, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

for (const adapter of adapters) {
  describe(`flag store contract: ${adapter.name}`, () => {
    it('starts from the initial flags and patches one key, announcing it once', async () => {
      const store = await adapter.backing().open({ defaultMode: 'shadow' });
      expect(store.get()).toEqual({ defaultMode: 'shadow', endpoints: {} });
      const changes: FlagChange[] = [];
      store.on('change', (c) => changes.push(c));
      const after = await store.patch('accounts', { mode: 'canary', percent: 10 });
      expect(after.endpoints.accounts).toEqual({ mode: 'canary', percent: 10 });
      expect(store.get()).toEqual(after);
      expect(Object.isFrozen(store.get())).toBe(true);
      // A patch keeps what it does not name.
      await store.patch('accounts', { percent: 50 });
      expect(store.get().endpoints.accounts).toEqual({ mode: 'canary', percent: 50 });
      expect(changes.map((c) => [c.source, c.current.endpoints.accounts?.percent])).toEqual([
        ['patch', 10],
        ['patch', 50],
      ]);
    });

    it('refuses invalid changes before anything is visible or stored', async () => {
      const backing = adapter.backing();
      const store = await backing.open({ defaultMode: 'shadow' });
      await store.patch('accounts', { mode: 'new' });
      const before = store.get();
      await expect(store.patch('accounts', { mode: 'canary', percent: 101 })).rejects.toBeInstanceOf(
        FlagsInvalidError,
      );
      await expect(store.patch('not a key!', { mode: 'new' })).rejects.toBeInstanceOf(FlagsInvalidError);
      await expect(store.set({ defaultMode: 'sometimes' })).rejects.toBeInstanceOf(FlagsInvalidError);
      expect(store.get()).toBe(before);
      expect((await backing.open({ defaultMode: 'legacy' })).get()).toEqual(before);
    });

    it('keeps a change across a restart: the stored flags win over the initial ones', async () => {
      const backing = adapter.backing();
      const first = await backing.open({ defaultMode: 'new' });
      // Nothing changed yet: a process with other initial flags starts from its own.
      expect((await backing.open({ defaultMode: 'legacy' })).get().defaultMode).toBe('legacy');
      await first.set({ defaultMode: 'shadow', endpoints: { 'accounts.summary': { mode: 'legacy' } } });
      const restarted = await backing.open({ defaultMode: 'new' });
      expect(restarted.get()).toEqual({
        defaultMode: 'shadow',
        endpoints: { 'accounts.summary': { mode: 'legacy' } },
      });
    });

    it('shows a change made by one replica to the other within a second', async () => {
      const backing = adapter.backing();
      const a = await backing.open({ defaultMode: 'shadow' });
      const b = await backing.open({ defaultMode: 'shadow' });
      const heard = new Promise<FlagChange>((resolve, reject) => {
        b.on('change', resolve);
        setTimeout(() => reject(new Error('the other replica heard nothing within 5 s')), 5000).unref();
      });
      const started = Date.now();
      await a.patch('accounts.summary', { mode: 'new' });
      const change = await heard;
      expect(Date.now() - started).toBeLessThan(1000);
      expect(change.current.endpoints['accounts.summary']).toEqual({ mode: 'new' });
      expect(b.get()).toEqual(a.get());
    });

    it.runIf(adapter.atomicAcrossReplicas)(
      'loses no change when replicas patch at the same moment',
      async () => {
        const backing = adapter.backing();
        const replicas = await Promise.all([1, 2, 3].map(() => backing.open({ defaultMode: 'shadow' })));
        const keys = [
          'accounts',
          'accounts.summary',
          'accounts.history',
          'orders',
          'orders.summary',
          'cards',
        ];
        // Every replica patches every key at once, each its own percent: each key ends with one of them.
        await Promise.all(
          replicas.flatMap((replica, r) =>
            keys.map((key, k) => replica.patch(key, { mode: 'canary', percent: r * 10 + k })),
          ),
        );
        // And two more rounds on distinct keys, interleaved: none of these may be lost.
        await Promise.all(replicas.map((replica, r) => replica.patch(`extra${r}`, { mode: 'new' })));
        const final = await backing.open({ defaultMode: 'legacy' });
        expect(Object.keys(final.get().endpoints).sort()).toEqual(
          [...keys, 'extra0', 'extra1', 'extra2'].sort(),
        );
        for (const replica of replicas)
          await until(
            'replicas to converge',
            () => (JSON.stringify(replica.get()) === JSON.stringify(final.get()) ? true : undefined),
            2000,
          );
      },
    );

    it.runIf(adapter.atomicAcrossReplicas)(
      "updates the newest stored flags, not a replica's stale copy",
      async () => {
        const backing = adapter.backing();
        const [a, b] = [
          await backing.open({ defaultMode: 'shadow' }),
          await backing.open({ defaultMode: 'shadow' }),
        ];
        await a.patch('accounts', { mode: 'new' });
        // Issued at once, before B can have heard of A's change: the rollout's way of changing a target.
        const after = await b.update((stored) => ({
          ...stored,
          endpoints: { ...stored.endpoints, orders: { mode: 'legacy' } },
        }));
        expect(after.endpoints).toEqual({ accounts: { mode: 'new' }, orders: { mode: 'legacy' } });
        await expect(b.update(() => ({ defaultMode: 'never' }))).rejects.toBeInstanceOf(FlagsInvalidError);
      },
    );

    it('shares the rollout state of a target between replicas', async () => {
      const backing = adapter.backing();
      const a = await backing.rollout();
      opened.push(a);
      const meta = { held: true, retired: false, since: new Date().toISOString(), step: 'canary 10' };
      a.put('accounts', meta);
      expect(a.targets().accounts).toEqual(meta);
      await a.close();
      const b = await backing.rollout();
      opened.push(b);
      expect(b.targets().accounts).toEqual(meta);
    });

    it.runIf(adapter.atomicAcrossReplicas)('shows a rollout state change to a running replica', async () => {
      const backing = adapter.backing();
      const [a, b] = [await backing.rollout(), await backing.rollout()];
      opened.push(a, b);
      const meta = { held: false, retired: true, since: new Date().toISOString(), step: 'new' };
      a.put('orders', meta);
      expect(await until('the other replica', () => b.targets().orders, 1000)).toEqual(meta);
    });
  });
}
