import { type ChildProcess, spawn } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { distributedLag } from '../../cli/distributed.js';
import shopMigration from '../../examples/shop/migration.js';
import { runShopWorkload } from '../../examples/shop/workload.js';
import { connectReachable, waitFor } from './support/debezium-bank.js';
import { pgReachable } from './support/postgres.js';
import { exited } from './support/projector-processes.js';
import { RENAME_HEAVY_MIX, type ShopComparison } from './support/shop-checks.js';
import { ShopDistributed } from './support/shop-distributed.js';

/**
 * Translator processes killed with SIGKILL in a loop under write load, a fresh one started
 * after each kill: the standby takes over each time (after the session timeout), nothing is
 * lost or applied twice, and every read-model answer equals legacy's at the end.
 */

const ready = (await connectReachable()) && (await pgReachable());

describe.skipIf(!ready)('fault: translator killed in a loop (distributed shop)', () => {
  const shop = new ShopDistributed('fkil');
  const children: ChildProcess[] = [];
  const stderr: string[] = [];

  const spawnTranslator = () => {
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', 'cli/main.ts', 'translate', '--config', shop.configFile],
      { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, LOG_LEVEL: 'error' } },
    );
    child.stderr?.on('data', (d: Buffer) => stderr.push(d.toString()));
    children.push(child);
    return child;
  };

  beforeAll(async () => {
    await shop.setup();
  });

  afterAll(async () => {
    for (const c of children) c.kill('SIGKILL');
    await Promise.all(children.map(exited));
    await shop.close();
  });

  it('loses and duplicates nothing across 3 SIGKILLs of the active translator', async () => {
    await shop.startProjectors();
    const live = [spawnTranslator()];
    await sleep(1500);
    live.push(spawnTranslator());
    const lag = () => distributedLag(shop.config, shopMigration, shop.kafka);
    await waitFor('the snapshot to be translated', async () => (await lag()).translator === 0, 120_000);
    const load = runShopWorkload(shop.pool, {
      seed: 51,
      ratePerSec: 40,
      durationMs: 0,
      maxOps: 360,
      mix: RENAME_HEAVY_MIX,
    });
    for (let kill = 0; kill < 3; kill++) {
      await sleep(3000);
      // The oldest member is the active one.
      const active = live.shift();
      active?.kill('SIGKILL');
      if (active) await exited(active);
      live.push(spawnTranslator());
    }
    expect((await load).errors).toBe(0);
    await shop.marker();
    let last: ShopComparison | undefined;
    await waitFor(
      'every read model to equal legacy',
      async () => {
        if ((await lag()).total !== 0) return false;
        last = await shop.compare();
        return last.differences.length === 0;
      },
      150_000,
    ).catch((err: unknown) => {
      throw new Error(
        `${String(err)}; last ${JSON.stringify(last?.differences)}; stderr ${stderr.join('').slice(0, 1500)}`,
      );
    });
    expect(last?.checks).toBeGreaterThan(300);
    expect(live.every((c) => c.exitCode === null && c.signalCode === null)).toBe(true);
  }, 300_000);
});
