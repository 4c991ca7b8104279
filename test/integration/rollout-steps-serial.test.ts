import { afterEach, describe, expect, it } from 'vitest';
import { SqliteComparisonRecorder } from '../../compare/recorder.js';
import bank from '../../examples/bank/migration.js';
import { loadConfig } from '../../lib/config.js';
import { RolloutController } from '../../rollout/controller.js';
import { SqliteAuditLog } from '../../shadow-api/audit-log.js';
import { FileFlagStore } from '../../shadow-api/flag-store.js';

/**
 * Rollout steps write the flags with an await in between deciding and applying (a Redis flag
 * store is a round trip away). Steps that overlap there must not decide on the same state: two
 * operators' advances are two steps, and a stop waits for the kill switch's step it interrupts,
 * since the caller closes the flag store and the audit log next.
 */
const UPDATE_DELAY_MS = 300;
const opened: Array<{ close(): unknown }> = [];

afterEach(async () => {
  for (const o of opened.splice(0)) await o.close();
});

/** A real flag store whose writes take a while, counting the ones still running. */
function slowFlags(delayMs = UPDATE_DELAY_MS) {
  const flags = FileFlagStore.open({});
  const counts = { inFlight: 0, done: 0 };
  const update = flags.update.bind(flags);
  flags.update = async (change) => {
    counts.inFlight++;
    try {
      await new Promise((r) => setTimeout(r, delayMs));
      return await update(change);
    } finally {
      counts.inFlight--;
      counts.done++;
    }
  };
  return { flags, counts };
}

function controller(flags: FileFlagStore, checkIntervalMs = 60_000, schedule = '') {
  const recorder = new SqliteComparisonRecorder({ path: ':memory:' });
  const audit = new SqliteAuditLog(':memory:');
  opened.push(recorder, audit);
  const { rollout } = loadConfig({ env: {}, file: undefined, overrides: {} });
  const gates = { ...rollout.gates, breakMinComparisons: 5 };
  const rolloutController = new RolloutController({
    migration: bank,
    flags,
    audit,
    comparisons: recorder,
    lagSeconds: () => 0.1,
    ...rollout,
    gates,
    schedule,
    checkIntervalMs,
  });
  return { rollout: rolloutController, recorder, audit };
}

const operator = { actor: 'ops', reason: 'test' };

describe('rollout steps one at a time', () => {
  it('two advances at once are two steps, each from where the one before left', async () => {
    const { flags } = slowFlags();
    const { rollout, audit } = controller(flags);
    const [first, second] = await Promise.all([
      rollout.advance('accounts', operator, true),
      rollout.advance('accounts', operator, true),
    ]);
    expect([first.from, first.to]).toEqual(['capture', 'shadow']);
    expect([second.from, second.to]).toEqual(['shadow', 'canary 10%']);
    expect(audit.list().map((e) => e.details?.summary)).toEqual(['capture → shadow', 'shadow → canary 10%']);
    await rollout.stop();
  });

  it("stop waits for the kill switch's rollback still writing the flags, and it is audited", async () => {
    const { flags, counts } = slowFlags();
    await flags.patch('accounts', { mode: 'canary', percent: 10 });
    const { rollout, recorder, audit } = controller(flags, 20);
    const endpoints = bank.endpoints.filter((e) => e.domain === 'accounts').map((e) => e.key);
    for (let i = 0; i < 10; i++)
      await recorder.record({
        recordedAt: new Date(),
        endpoint: endpoints[i % endpoints.length] ?? 'accounts',
        requestKey: `k${i}`,
        subject: null,
        mode: 'canary',
        servedBy: 'legacy',
        outcome: 'mismatch',
        differences: [],
        error: null,
        attempts: 1,
        legacyMs: 1,
        readModelMs: 1,
      });
    rollout.start();
    const deadline = Date.now() + 10_000;
    while (counts.inFlight === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    expect(counts.inFlight).toBe(1);

    await rollout.stop();
    expect(counts.inFlight).toBe(0);
    expect(flags.get().endpoints.accounts?.mode).toBe('shadow');
    expect(audit.list().map((e) => e.action)).toEqual(['rollout.auto-rollback']);
    const done = counts.done;
    await new Promise((r) => setTimeout(r, UPDATE_DELAY_MS + 200));
    expect(counts.done).toBe(done);
  });

  it('refuses a step once stopping, and a flag store that hangs holds the stop only so long, schedule included', async () => {
    const { flags, counts } = slowFlags(60_000);
    // A canary schedule firing every second: its tick waits behind the hung step.
    const { rollout } = controller(flags, 60_000, '* * * * * *');
    rollout.start();
    const hung = rollout.advance('accounts', operator, true);
    hung.catch(() => undefined);
    while (counts.inFlight === 0) await new Promise((r) => setTimeout(r, 5));
    await new Promise((r) => setTimeout(r, 1500));
    const started = Date.now();
    await rollout.stop();
    expect(Date.now() - started).toBeLessThan(15_000);
    await expect(rollout.advance('accounts', operator, true)).rejects.toMatchObject({
      code: 'ROLLOUT_STOPPING',
      statusCode: 409,
    });
  }, 30_000);
});
