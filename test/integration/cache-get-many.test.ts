import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type Database from 'better-sqlite3';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { getMany, type ReadModelHandle } from '../../definition/read-models.js';
import type { StoredEvent } from '../../eventstore/ports.js';
import bank from '../../examples/bank/migration.js';
import { openReadModelDb } from '../../projectors/stores/sqlite.js';
import { SqliteReadModels } from '../../projectors/stores/sqlite-read-models.js';
import { DistributedReadModelCache } from '../../shadow-api/distributed-cache.js';
import { ReadModelCache } from '../../shadow-api/read-model-cache.js';
import { applyBatch, category, merchant } from '../support/stored-events.js';
import { waitFor } from './support/debezium-bank.js';

/**
 * Both Redis caches answer `getMany` from their entries, read only the misses from the read
 * model (one `getMany`), fill the cache with them, and drop what a batch invalidated, as `get`
 * does. The read model is the embedded SQLite one behind a handle that records what it was asked.
 */
const REDIS = 'redis://127.0.0.1:6379';
const MODEL = 'merchant-category';
const redis = new Redis(REDIS);

/** The store's handle, recording the keys of each read that reaches it. */
function recorded(handle: ReadModelHandle) {
  const reads: string[][] = [];
  const counted: ReadModelHandle = {
    ...handle,
    get: (key) => {
      reads.push([key]);
      return handle.get(key);
    },
    getJson: (key) => {
      reads.push([key]);
      return (handle.getJson as (key: string) => Promise<string | null>)(key);
    },
    getMany: (keys) => {
      reads.push([...keys]);
      return getMany(handle, keys);
    },
  };
  return { handle: counted, reads };
}

const categoryOf = (doc: unknown) => (doc as { category: string } | null)?.category ?? null;

describe('getMany through the Redis caches', () => {
  let dir: string;
  let db: Database.Database;
  let store: SqliteReadModels;
  let prefix: string;
  const apply = (events: StoredEvent[]) => applyBatch(store, db, events);
  const entries = async () => (await redis.keys(`${prefix}:*e:${MODEL}:*`)).length;
  /** The distributed cache holds an entry of the current epoch for each of `keys`. */
  const filled = async (...keys: string[]) => {
    const [epoch, ...raw] = await redis.mget(
      `${prefix}:d:epoch`,
      ...keys.map((k) => `${prefix}:d:e:${MODEL}:${k}`),
    );
    return raw.every((r) => r !== null && (JSON.parse(r) as { e: string }).e === (epoch ?? '0'));
  };

  beforeEach(() => {
    dir = mkdtempSync('/tmp/h2-cache-get-many-');
    db = openReadModelDb(join(dir, 'read-models.db'));
    store = new SqliteReadModels(bank);
    store.migrate(db);
    apply([category(1, 'Food'), category(2, 'Travel'), merchant(1, 1), merchant(2, 2), merchant(3, 1)]);
    prefix = `h2_cache_${Math.random().toString(36).slice(2, 8)}`;
  });
  afterEach(async () => {
    db.close();
    rmSync(dir, { recursive: true, force: true });
    const keys = await redis.keys(`${prefix}:*`);
    if (keys.length > 0) await redis.del(...keys);
  });
  afterAll(() => redis.disconnect());

  it('embedded: one MGET answers the cached keys, one getMany of the read model the rest, invalidated as get is', async () => {
    const cache = new ReadModelCache({ url: REDIS, ttlSeconds: 60, prefix });
    try {
      let checkpoint = 1;
      await cache.reset(checkpoint);
      const { handle, reads } = recorded(store.readModels(db)[MODEL]!);
      const cached = cache.wrap({ [MODEL]: handle }, () => checkpoint)[MODEL]!;

      expect((await getMany(cached, ['1', '404', '2'])).map(categoryOf)).toEqual(['Food', null, 'Travel']);
      expect(reads).toEqual([['1', '404', '2']]);
      await waitFor('the entries filled', async () => (await entries()) === 3, 5000);

      reads.length = 0;
      const docs = await getMany(cached, ['2', '3', '1', '404']);
      expect(docs).toEqual(await getMany(handle, ['2', '3', '1', '404']));
      expect(reads.slice(0, 1)).toEqual([['3']]);
      // get and getMany share entries.
      reads.length = 0;
      expect(categoryOf(await cached.get('2'))).toBe('Travel');
      expect(reads).toEqual([]);

      // A batch renames category 1 (merchants 1 and 3) and is invalidated at checkpoint 2.
      apply([category(1, 'Groceries')]);
      checkpoint = 2;
      await cache.invalidate(2, [
        [MODEL, '1'],
        [MODEL, '3'],
      ]);
      reads.length = 0;
      expect((await getMany(cached, ['1', '2', '3'])).map(categoryOf)).toEqual([
        'Groceries',
        'Travel',
        'Groceries',
      ]);
      expect(reads).toEqual([['1', '3']]);
    } finally {
      await cache.close();
    }
  });

  it('distributed: the same, and a document whose write is pending is read from the store and not filled', async () => {
    const cache = new DistributedReadModelCache({ url: REDIS, ttlSeconds: 60, prefix });
    try {
      const { handle, reads } = recorded(store.readModels(db)[MODEL]!);
      const cached = cache.wrap(MODEL, handle);

      // Until its connection is up, the cache passes every lookup to the store.
      await waitFor(
        'the entries filled',
        async () => {
          reads.length = 0;
          expect((await getMany(cached, ['1', '404', '2'])).map(categoryOf)).toEqual([
            'Food',
            null,
            'Travel',
          ]);
          expect(reads).toEqual([['1', '404', '2']]);
          await new Promise((r) => setTimeout(r, 50));
          return (await entries()) === 3;
        },
        5000,
      );

      reads.length = 0;
      const docs = await getMany(cached, ['2', '3', '1', '404']);
      expect(docs).toEqual(await getMany(handle, ['2', '3', '1', '404']));
      expect(reads.slice(0, 1)).toEqual([['3']]);
      reads.length = 0;
      expect(categoryOf(await cached.get('2'))).toBe('Travel');
      expect(reads).toEqual([]);

      const renamed: Array<[string, string]> = [
        [MODEL, '1'],
        [MODEL, '3'],
      ];
      await cache.begin(renamed);
      apply([category(1, 'Groceries')]);
      // The projector's first batch started a new epoch: every entry is a miss, and is filled
      // again, except a document whose write is pending, read from the store until it ends.
      reads.length = 0;
      expect((await getMany(cached, ['1', '2'])).map(categoryOf)).toEqual(['Groceries', 'Travel']);
      await waitFor('the entry filled', () => filled('2'), 5000);
      expect((await getMany(cached, ['1', '2'])).map(categoryOf)).toEqual(['Groceries', 'Travel']);
      expect(reads).toEqual([['1', '2'], ['1']]);
      await cache.end(renamed, renamed);
      reads.length = 0;
      expect((await getMany(cached, ['3', '1'])).map(categoryOf)).toEqual(['Groceries', 'Groceries']);
      expect(reads).toEqual([['3', '1']]);
      await waitFor('the new entries filled', () => filled('1', '3'), 5000);
      reads.length = 0;
      expect((await getMany(cached, ['1', '3', '2'])).map(categoryOf)).toEqual([
        'Groceries',
        'Groceries',
        'Travel',
      ]);
      expect(reads).toEqual([]);
    } finally {
      cache.close();
    }
  });
});
