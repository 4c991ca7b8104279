import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import type { Pool } from 'mysql2/promise';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type EmbeddedPipeline, embeddedReadModels, startEmbeddedPipeline } from '../../cli/pipeline.js';
import type { ReadModelHandle } from '../../definition/read-models.js';
import { createBankDatabase, dropDatabase, openPool } from '../../examples/bank/db.js';
import { generateBank } from '../../examples/bank/generate.js';
import bank from '../../examples/bank/migration.js';
import { loadConfig } from '../../lib/config.js';
import { silentLogger } from '../../lib/logger.js';
import { ReadModelCache } from '../../shadow-api/read-model-cache.js';
import { waitFor } from './support/debezium-bank.js';

/**
 * The Redis cache in front of a real bank pipeline's read models (projector in its worker
 * thread, as in `run`): a repeated key lookup is a
 * hit; a legacy change, once the projector committed it, is what the very next lookup returns
 * (never the cached value), and no lookup goes back to the old value after the new one showed;
 * with Redis unreachable, lookups still answer from the read models.
 */
const conn = { host: '127.0.0.1', port: 3307, user: 'cqrs', password: 'cqrs' };
const suffix = Math.random().toString(36).slice(2, 8);
const database = `h4_cache_${suffix}`;
const prefix = `h4_cache_${suffix}`;
const REDIS = 'redis://127.0.0.1:6379';
const dataDir = mkdtempSync(join(tmpdir(), 'cqrs-h4-cache-'));
let pool: Pool;
let pipeline: EmbeddedPipeline;
const registry = new Registry();

const redis = new Redis(REDIS);
const entryKey = (id: number) => `${prefix}:e:account-summary:${id}`;
const summary = () => pipeline.readModels['account-summary'] as ReadModelHandle<unknown>;
const available = async (handle: ReadModelHandle<unknown>, id: number) =>
  ((await handle.get(String(id))) as { balance: { available: string } } | null)?.balance.available;
async function lookups(result: string): Promise<number> {
  const metric = await registry.getSingleMetric('cqrs_cache_lookups_total')?.get();
  return (metric?.values ?? [])
    .filter((v) => v.labels.result === result)
    .reduce((sum, v) => sum + v.value, 0);
}

describe('Redis cache in front of the read models', () => {
  beforeAll(async () => {
    await createBankDatabase(conn, database, { dropExisting: true });
    pool = openPool(conn, database);
    await generateBank(pool, { seed: 5, scale: 'tiny' });
    const config = loadConfig({
      env: {},
      overrides: {
        legacy: { url: `mysql://cqrs:cqrs@127.0.0.1:3307/${database}` },
        cdc: { serverId: 7000 + Math.floor(Math.random() * 1000) },
        dataDir,
        projector: { pollIntervalMs: 20 },
        cache: { redisUrl: REDIS, ttlSeconds: 60, prefix },
      },
    });
    // The projector in its worker thread, as `run` has it: invalidations are relayed from there.
    pipeline = await startEmbeddedPipeline({
      config,
      migration: bank,
      definitionFile: 'examples/bank/migration.ts',
      logger: silentLogger,
      registry,
    });
    expect(await pipeline.waitForCatchUp(60_000)).toBe(true);
  }, 120_000);

  afterAll(async () => {
    await pipeline?.stop();
    await pool?.end();
    await dropDatabase(conn, database);
    rmSync(dataDir, { recursive: true, force: true });
    const keys = await redis.keys(`${prefix}:*`);
    if (keys.length > 0) await redis.del(...keys);
    redis.disconnect();
  });

  it('answers a repeated lookup from Redis, and a committed change on the very next lookup', async () => {
    const [row] = (await pool.query(
      'SELECT account_id AS id, available FROM balances LIMIT 1',
    )) as unknown as [Array<{ id: number; available: string }>];
    const { id, available: before } = row[0] as { id: number; available: string };
    // The first lookups pass by until this process's epoch is in Redis, then fill it.
    await waitFor(
      'a cache hit',
      async () => {
        expect(await available(summary(), id)).toBe(before);
        return (await lookups('hit')) > 0;
      },
      10_000,
    );
    const hits = await lookups('hit');
    expect(await available(summary(), id)).toBe(before);
    expect(await lookups('hit')).toBe(hits + 1);
    const staleEntry = await redis.get(entryKey(id));
    expect(staleEntry).toContain(before);

    // Readers keep asking while the change goes through: none may see the old value after the new.
    const after = (Number(before) + 17).toFixed(4);
    const seen: string[] = [];
    let reading = true;
    const reader = (async () => {
      while (reading) seen.push((await available(summary(), id)) as string);
    })();
    await pool.query('UPDATE balances SET available = ? WHERE account_id = ?', [after, id]);
    expect(await pipeline.waitForCatchUp(30_000)).toBe(true);
    // The projector has committed it: the next lookup must not be the cached old value.
    expect(await available(summary(), id)).toBe(after);
    reading = false;
    await reader;
    const first = seen.indexOf(after);
    if (first !== -1) expect(seen.slice(first).every((v) => v === after)).toBe(true);
    // A reader that read the old document before the commit and writes it to Redis after the
    // projector's invalidation (the race a plain delete-on-write cache loses): its entry carries
    // the old checkpoint, which the document's marker is newer than, so it is never served.
    await redis.set(entryKey(id), staleEntry as string, 'EX', 60);
    expect(await available(summary(), id)).toBe(after);
    // And it is cached again.
    const hitsAfter = await lookups('hit');
    await waitFor(
      'the new value cached',
      async () => {
        expect(await available(summary(), id)).toBe(after);
        return (await lookups('hit')) > hitsAfter;
      },
      10_000,
    );
  }, 60_000);

  it('answers from the read models when Redis is unreachable, counting the errors', async () => {
    const [row] = (await pool.query(
      'SELECT account_id AS id, available FROM balances LIMIT 1 OFFSET 3',
    )) as unknown as [Array<{ id: number; available: string }>];
    const { id, available: expected } = row[0] as { id: number; available: string };
    const down = new Registry();
    const cache = new ReadModelCache({
      url: 'redis://127.0.0.1:1',
      ttlSeconds: 60,
      prefix,
      logger: silentLogger,
      registry: down,
    });
    try {
      const readModels = cache.wrap(embeddedReadModels(bank).readModels(pipeline.readDb), () =>
        pipeline.runner.checkpoint(),
      );
      for (let i = 0; i < 5; i++) {
        expect(await available(readModels['account-summary'] as ReadModelHandle<unknown>, id)).toBe(expected);
      }
      await waitFor(
        'the failed reset counted',
        async () => {
          const errors = await down.getSingleMetric('cqrs_cache_errors_total')?.get();
          return (errors?.values ?? []).some((v) => v.value > 0);
        },
        10_000,
      );
      expect(await available(readModels['account-summary'] as ReadModelHandle<unknown>, id)).toBe(expected);
    } finally {
      await cache.close();
    }
  }, 30_000);
});
