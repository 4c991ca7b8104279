import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { type EmbeddedPipeline, startEmbeddedPipeline } from '../../cli/pipeline.js';
import { openLegacyDb } from '../../connectors/legacy/index.js';
import { pgoutputSourceConfigFrom } from '../../connectors/source-factory.js';
import { dropDatabase } from '../../examples/bank/db.js';
import bank from '../../examples/bank/migration.js';
import { dropPgDatabase, pgConnSchema } from '../../examples/bank/postgres/db.js';
import { type Config, loadConfig } from '../../lib/config.js';
import { silentLogger } from '../../lib/logger.js';
import { readinessOf } from '../../shadow-api/health.js';
import { waitFor } from './support/debezium-bank.js';
import { untilNoDrift } from './support/drift.js';
import { dropPgState, pgQuery, pgReachable } from './support/postgres.js';

/**
 * The embedded pipeline restarts what fails without the process restarting: a PostgreSQL
 * walsender terminated under it, a read-model database locked by another writer for longer
 * than SQLite's busy timeout. Afterwards every account's read-model answers equal its legacy
 * answers, changes made during the failure included.
 */
const sample = bank.sample;
if (sample === undefined) throw new Error('the bank has sample hooks');
const dir = mkdtempSync(join(tmpdir(), 'cqrs-heal-'));
const mariaDatabase = `t_heal_${process.pid}`;
const mariaUrl = `mysql://cqrs:cqrs@127.0.0.1:3307/${mariaDatabase}`;
const pgDatabase = `t_heal_pg_${process.pid}`;
const pgUrl = `postgres://cqrs:cqrs@127.0.0.1:5433/${pgDatabase}`;
const cdcName = `heal${process.pid}`;

afterAll(async () => {
  await dropDatabase({ host: '127.0.0.1', port: 3307, user: 'cqrs', password: 'cqrs' }, mariaDatabase).catch(
    () => undefined,
  );
  await dropPgState(pgDatabase, [`cqrs_${cdcName}`]).catch(() => undefined);
  await dropPgDatabase(pgConnSchema.parse({}), pgDatabase).catch(() => undefined);
  rmSync(dir, { recursive: true, force: true });
});

function configFor(url: string, dataDir: string, over: { stallSeconds?: number } = {}): Config {
  return loadConfig({
    env: {},
    overrides: {
      legacy: { url },
      cdc: { name: cdcName, serverId: 7000 + (process.pid % 900) },
      dataDir,
      projector: { pollIntervalMs: 20 },
      ...(over.stallSeconds === undefined ? {} : { health: { stallSeconds: over.stallSeconds } }),
    },
  });
}

const sourceRestarts = (p: EmbeddedPipeline, name: string) =>
  p.health.components().find((c) => c.name === name)?.restarts ?? 0;

describe('embedded pipeline self-healing', () => {
  it('PostgreSQL: a terminated walsender is replaced by a new source from the stored offset', async (ctx) => {
    if (!(await pgReachable())) ctx.skip();
    await sample.create({ url: pgUrl, scale: 'tiny', seed: 21, force: true, progress: () => undefined });
    const config = configFor(pgUrl, join(dir, 'pg'));
    const given: Error[] = [];
    const pipeline = await startEmbeddedPipeline({
      config,
      migration: bank,
      logger: silentLogger,
      onError: (e) => given.push(e),
    });
    const legacy = openLegacyDb(pgUrl);
    try {
      expect(await pipeline.waitForCatchUp(120_000)).toBe(true);
      const slot = pgoutputSourceConfigFrom(config, bank.tables).slotName;
      const killed = await pgQuery(
        'postgres',
        `SELECT pg_terminate_backend(active_pid) AS killed FROM pg_replication_slots WHERE slot_name = '${slot}' AND active_pid IS NOT NULL`,
      );
      expect(killed.map((r) => String(r.killed))).toEqual(['t']);
      const writes = await sample.load({ url: pgUrl, ratePerSec: 40, durationMs: 3000, seed: 22 });
      expect(writes.ops).toBeGreaterThan(20);
      await waitFor('a restarted source', () => sourceRestarts(pipeline, 'source') > 0, 30_000);
      await waitFor('ready', () => readinessOf(pipeline.health).ready, 60_000);
      expect(await pipeline.waitForCatchUp(60_000)).toBe(true);
      expect(await untilNoDrift(bank, legacy, pipeline.readModels, 30_000)).toEqual([]);
      expect(await pipeline.eventStore.countDeadLetters()).toBe(0);
      expect(given).toEqual([]);
    } finally {
      await pipeline.stop();
      await legacy.close();
    }
  });

  // A definition loaded from its file is projected in a worker thread, whose failure reaches the
  // supervisor as a message; one built in code is projected on this thread.
  it.each([
    ['on the pipeline thread', undefined],
    ['in a worker thread', fileURLToPath(new URL('../../examples/bank/migration.ts', import.meta.url))],
  ])(
    'a locked read-model database, projected %s: the projector retries, the process stays, the read models catch up',
    async (where, definitionFile) => {
      await sample.create({ url: mariaUrl, scale: 'tiny', seed: 31, force: true, progress: () => undefined });
      const dataDir = join(dir, `locked-${where.split(' ').at(-2)}`);
      const given: Error[] = [];
      const pipeline = await startEmbeddedPipeline({
        config: configFor(mariaUrl, dataDir, { stallSeconds: 2 }),
        migration: bank,
        ...(definitionFile === undefined ? {} : { definitionFile }),
        logger: silentLogger,
        onError: (e) => given.push(e),
      });
      const legacy = openLegacyDb(mariaUrl);
      const seen = { unready: [] as string[], stalled: false };
      const watch = setInterval(() => {
        const r = readinessOf(pipeline.health);
        for (const p of r.problems) if (!seen.unready.includes(p.component)) seen.unready.push(p.component);
        seen.stalled ||= pipeline.freshness.isStalled?.() === true;
      }, 50);
      const locker = new Database(join(dataDir, 'read-models.db'));
      try {
        expect(await pipeline.waitForCatchUp(120_000)).toBe(true);
        await waitFor('ready', () => readinessOf(pipeline.health).ready, 30_000);
        // Another writer holds the database longer than the projector's 5 s busy timeout.
        locker.exec('BEGIN IMMEDIATE');
        const writes = await sample.load({ url: mariaUrl, ratePerSec: 40, durationMs: 3000, seed: 32 });
        expect(writes.ops).toBeGreaterThan(20);
        await waitFor(
          'the projector to fail on the lock',
          () => sourceRestarts(pipeline, 'projector') > 0,
          30_000,
        );
        await waitFor('the pipeline to count as stalled', () => seen.stalled, 30_000);
        locker.exec('ROLLBACK');

        await waitFor('ready', () => readinessOf(pipeline.health).ready, 60_000);
        expect(seen.unready).toContain('projector');
        expect(await pipeline.waitForCatchUp(60_000)).toBe(true);
        // Measured every second: moving again, it is no longer stalled.
        await waitFor('not stalled', () => pipeline.freshness.isStalled?.() === false, 10_000);
        expect(await untilNoDrift(bank, legacy, pipeline.readModels, 30_000)).toEqual([]);
        expect(given).toEqual([]);
      } finally {
        clearInterval(watch);
        if (locker.inTransaction) locker.exec('ROLLBACK');
        locker.close();
        await pipeline.stop();
        await legacy.close();
      }
    },
  );
});
