import { describe, expect, it } from 'vitest';
import { describeResult, runKillLoop } from '../fault/kill-loop.js';

/**
 * Fault suite, process crashes: 20 kill -9s of a real `run` under legacy write load, at least
 * one during the initial snapshot and two while an 8,000-row legacy transaction (eight
 * fragments) is partly staged; then zero drift on every account, no second copy of the
 * snapshot in the event store, no dead letters. `npm run soak` runs the same loop for longer.
 */
describe('kill -9 of run at random points under write load', () => {
  it('loses nothing, duplicates nothing and keeps one copy of the snapshot', async () => {
    const seed = Number(process.env.CQRS_FAULT_SEED ?? 20261202);
    console.info(`fault-kill seed ${seed} (CQRS_FAULT_SEED repeats it)`);
    const result = await runKillLoop({
      kills: 20,
      minLifeMs: 1500,
      maxLifeMs: 6000,
      writeRate: 60,
      customers: 400,
      bigTransaction: { rows: 8_000, every: 7, fragmentRows: 1_000 },
      log: (line) => console.info(line),
      seed,
    });
    console.info(describeResult(result));
    expect(result.kills).toBe(20);
    expect(result.killsDuringSnapshot).toBeGreaterThan(0);
    expect(result.killsDuringBigTransaction).toBeGreaterThan(0);
    expect(result.accountsCompared).toBeGreaterThan(500);
    expect(result.drift).toEqual([]);
    expect(result.deadLetters).toBe(0);
    expect(result.writes?.errors).toBe(0);
    expect(result.writes?.ops ?? 0).toBeGreaterThan(500);
    expect(result.snapshotEvents / result.sourceRows).toBeLessThanOrEqual(1.05);
    expect(result.duplicateSnapshotEvents).toBeLessThanOrEqual(result.snapshotEvents * 0.05);
  }, 900_000);
});
