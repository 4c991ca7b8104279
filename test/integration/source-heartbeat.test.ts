import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmbeddedPipeline } from '../../cli/pipeline.js';
import type { SourceOffset } from '../../connectors/change-event.js';
import { openStoredProgress } from '../../connectors/source-factory.js';
import { type Config, loadConfig } from '../../lib/config.js';
import { silentLogger } from '../../lib/logger.js';
import { ITEMS_DDL, itemsMigration, pgItemsDatabase } from './support/items.js';
import { dropPgState, pgQuery, pgReachable } from './support/postgres.js';

/**
 * Writes elsewhere on the legacy server (other databases, tables nobody captures) move its
 * change log on while the captured tables stay quiet. The stored offset must follow within a
 * heartbeat: else a restart reads all that log again (or finds it purged), and `reconcile`
 * beside the run, which judges freshness by the stored offset, took every difference it found
 * for lag, real drift included.
 */
const migration = itemsMigration();
const dir = mkdtempSync(join(tmpdir(), 'cqrs-heartbeat-'));
const HEARTBEAT_MS = '200';

afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A pipeline started again resumes from the heartbeat's offset: item 4, written now, arrives. */
async function resumesThere(config: Config, insertItem4: () => Promise<void>): Promise<void> {
  const pipeline = await startEmbeddedPipeline({ config, migration, logger: silentLogger });
  try {
    expect(await pipeline.waitForCatchUp(60_000)).toBe(true);
    await insertItem4();
    await expect
      .poll(() => pipeline.readDb.prepare('SELECT key FROM rm_doc__item ORDER BY key').pluck().all(), {
        timeout: 30_000,
      })
      .toEqual(['1', '2', '3', '4']);
    expect(pipeline.eventStore.headPositionSync()).toBe(4);
  } finally {
    await pipeline.stop();
  }
}

/**
 * Starts the pipeline, waits for it to catch up, lets `noise` write elsewhere on the server, and
 * returns whether the stored offset reached the change log's end after the noise within 15 s.
 */
async function storedOffsetFollows(config: Config, noise: () => Promise<void>): Promise<boolean> {
  const pipeline = await startEmbeddedPipeline({ config, migration, logger: silentLogger });
  let stored: SourceOffset | null = null;
  const progress = openStoredProgress(config, ['items'], () => stored);
  try {
    expect(await pipeline.waitForCatchUp(60_000)).toBe(true);
    await noise();
    const end = await progress.legacyEnd();
    stored = await pipeline.eventStore.loadOffset(config.cdc.name);
    expect(progress.reached(end)).toBe(false);
    const deadline = Date.now() + 15_000;
    while (Date.now() < deadline) {
      stored = await pipeline.eventStore.loadOffset(config.cdc.name);
      if (progress.reached(end)) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    // Nothing was appended for the noise: only the offset moved.
    expect(pipeline.eventStore.headPositionSync()).toBe(3);
    return progress.reached(end);
  } finally {
    await progress.close();
    await pipeline.stop();
  }
}

describe('the stored offset follows writes elsewhere on the server (MariaDB binlog)', () => {
  const db = `t_beat_${randomBytes(4).toString('hex')}`;
  const other = `${db}_other`;
  const config = loadConfig({
    env: {
      CQRS_LEGACY_URL: `mysql://cqrs:cqrs@127.0.0.1:3307/${db}`,
      CQRS_DATA_DIR: join(dir, 'mariadb'),
      CQRS_CDC_SERVER_ID: String(80_002 + Math.floor(Math.random() * 20_000) * 10),
      CQRS_CDC_HEARTBEAT_INTERVAL_MS: HEARTBEAT_MS,
    },
  });
  let admin: mysql.Connection;

  beforeAll(async () => {
    admin = await mysql.createConnection({ host: '127.0.0.1', port: 3307, user: 'cqrs', password: 'cqrs' });
    await admin.query(`CREATE DATABASE ${db}`);
    await admin.query(`CREATE DATABASE ${other}`);
    await admin.query(`USE ${db}`);
    await admin.query(ITEMS_DDL);
    await admin.query("INSERT INTO items VALUES (1, 'one', 1), (2, 'two', 2), (3, 'three', 3)");
    await admin.query(`CREATE TABLE ${other}.noise (id INT AUTO_INCREMENT PRIMARY KEY, v INT)`);
  });

  afterAll(async () => {
    await admin?.query(`DROP DATABASE IF EXISTS ${db}`);
    await admin?.query(`DROP DATABASE IF EXISTS ${other}`);
    await admin?.end();
  });

  it('moves to the binlog end within a heartbeat, with no event appended, and a restart resumes there', async () => {
    const followed = await storedOffsetFollows(config, async () => {
      for (let i = 0; i < 20; i++) await admin.query(`INSERT INTO ${other}.noise (v) VALUES (?)`, [i]);
      // Last, a schema change elsewhere: a group without a commit marker, passed all the same.
      await admin.query(`ALTER TABLE ${other}.noise ADD COLUMN w INT`);
    });
    expect(followed).toBe(true);
    await resumesThere(config, async () => {
      await admin.query("INSERT INTO items VALUES (4, 'four', 4)");
    });
    await admin.query('DELETE FROM items WHERE id = 4');
  });

  it('lets reconcile beside the run tell drift from lag while other databases are written all along', async () => {
    const pipeline = await startEmbeddedPipeline({ config, migration, logger: silentLogger });
    let writing = true;
    const noise = (async () => {
      const conn = await mysql.createConnection({
        host: '127.0.0.1',
        port: 3307,
        user: 'cqrs',
        password: 'cqrs',
      });
      try {
        for (let i = 0; writing; i++) await conn.query(`INSERT INTO ${other}.noise (v) VALUES (?)`, [i]);
      } finally {
        await conn.end();
      }
    })();
    try {
      expect(await pipeline.waitForCatchUp(60_000)).toBe(true);
      // Drift nothing in the change log explains: item 2's document says 999, the table 2.
      pipeline.readDb
        .prepare(`UPDATE rm_doc__item SET doc = json_set(doc, '$.qty', 999) WHERE key = '2'`)
        .run();
      const { stdout } = await promisify(execFile)(
        process.execPath,
        ['--import', 'tsx', 'cli/main.ts', 'reconcile'],
        {
          env: {
            ...process.env,
            CQRS_LEGACY_URL: config.legacy.url,
            CQRS_DATA_DIR: config.dataDir,
            CQRS_DEFINITION: 'test/integration/fixtures/items.mjs',
            CQRS_CDC_HEARTBEAT_INTERVAL_MS: HEARTBEAT_MS,
            LOG_LEVEL: 'fatal',
          },
          timeout: 120_000,
        },
      );
      const result = JSON.parse(stdout) as {
        byOutcome: Record<string, number>;
        failures: Array<{ requestKey: string; outcome: string; paths: string[] }>;
        readSide: { liveRun: boolean };
      };
      expect(result.readSide.liveRun).toBe(true);
      expect(result.failures).toEqual([
        { endpoint: expect.any(String), requestKey: 'itemId=2', outcome: 'mismatch', paths: ['qty'] },
      ]);
      expect(result.byOutcome.match).toBe(2);
    } finally {
      writing = false;
      await noise;
      await pipeline.stop();
    }
  });
});

const pgUp = await pgReachable();

describe.skipIf(!pgUp)(
  'the stored offset follows writes elsewhere on the server (PostgreSQL pgoutput)',
  () => {
    const suffix = randomBytes(4).toString('hex');
    const database = `t_beat_${suffix}`;
    const other = `t_beat_${suffix}_other`;
    const name = `beat_${suffix}`;
    let config: Config;

    beforeAll(async () => {
      const base = await pgItemsDatabase(database, "(1, 'one', 1), (2, 'two', 2), (3, 'three', 3)", {
        dataDir: join(dir, 'postgres'),
        name,
      });
      config = { ...base, cdc: { ...base.cdc, heartbeatIntervalMs: Number(HEARTBEAT_MS) } };
      await pgQuery('postgres', `CREATE DATABASE ${other}`);
      await pgQuery(other, 'CREATE TABLE noise (id serial PRIMARY KEY, v int)');
    });

    afterAll(async () => {
      await dropPgState(database, [`cqrs_${name}`]);
      await pgQuery('postgres', `DROP DATABASE IF EXISTS ${other}`);
    });

    it('moves to the WAL end within a heartbeat, with no event appended, and a restart resumes there', async () => {
      const followed = await storedOffsetFollows(config, async () => {
        for (let i = 0; i < 20; i++) await pgQuery(other, `INSERT INTO noise (v) VALUES (${i})`);
      });
      expect(followed).toBe(true);
      await resumesThere(config, async () => {
        await pgQuery(database, "INSERT INTO items VALUES (4, 'four', 4)");
      });
    });
  },
);
