import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Pool } from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type EmbeddedPipeline, startEmbeddedPipeline } from '../../cli/pipeline.js';
import { createBankDatabase, dropDatabase, openPool } from '../../examples/bank/db.js';
import { generateBank } from '../../examples/bank/generate.js';
import bank from '../../examples/bank/migration.js';
import { loadConfig } from '../../lib/config.js';
import { silentLogger } from '../../lib/logger.js';

/**
 * `run`'s API reads go through a read-only connection of their own (not the projector's
 * writable one), so the reads of one event-loop turn share one read transaction.
 */
const conn = { host: '127.0.0.1', port: 3307, user: 'cqrs', password: 'cqrs' };
const database = `h2_pipeline_reads_${process.pid}`;
const turn = () => new Promise((resolve) => setImmediate(resolve));
let dir: string;
let pool: Pool;
let pipeline: EmbeddedPipeline;

describe('the embedded pipeline API read side', () => {
  beforeAll(async () => {
    dir = mkdtempSync('/tmp/h2-pipeline-reads-');
    await createBankDatabase(conn, database, { dropExisting: true });
    pool = openPool(conn, database);
    await generateBank(pool, { seed: 5, scale: 'tiny' });
    const config = loadConfig({
      env: {},
      overrides: {
        legacy: { url: `mysql://cqrs:cqrs@127.0.0.1:3307/${database}` },
        cdc: { serverId: 9000 + (process.pid % 900) },
        dataDir: join(dir, 'data'),
        projector: { pollIntervalMs: 20 },
      },
    });
    pipeline = await startEmbeddedPipeline({ config, migration: bank, logger: silentLogger });
    expect(await pipeline.waitForCatchUp(60_000)).toBe(true);
  }, 120_000);

  afterAll(async () => {
    await pipeline?.stop();
    await pool?.end();
    await dropDatabase(conn, database);
    rmSync(dir, { recursive: true, force: true });
  });

  it('answers one turn from one snapshot, while the writable connection commits beside it', async () => {
    const handle = pipeline.readModels['account-summary']!;
    const [key] = pipeline.readDb
      .prepare('SELECT key FROM "rm_doc__account-summary" LIMIT 1')
      .pluck()
      .all() as string[];
    expect(key).toBeDefined();
    const rewrite = pipeline.readDb.prepare('UPDATE "rm_doc__account-summary" SET doc = ? WHERE key = ?');
    await turn();
    const before = (await handle.getJson!(key as string)) as string;
    expect(before).not.toBeNull();
    const changed = JSON.stringify({ ...JSON.parse(before), marker: 'h2' });
    rewrite.run(changed, key);
    try {
      // Same turn: the commit came after this turn's first read.
      expect(await handle.getJson!(key as string)).toBe(before);
      await turn();
      expect(await handle.getJson!(key as string)).toBe(changed);
    } finally {
      rewrite.run(before, key);
    }
  });
});
