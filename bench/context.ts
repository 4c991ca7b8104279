import { z } from 'zod';
import type { MysqlConnOptions } from '../examples/bank/db.js';
import type { ScaleName } from '../examples/bank/generate.js';
import type { Logger } from '../lib/logger.js';
import type { Fixture } from './fixture.js';

/** Durations and load levels of one bench run; the smoke test shrinks them. */
export const benchSettingsSchema = z.object({
  /** Seconds of measured HTTP load per run, after `warmupSec`. */
  httpSec: z.number().positive(),
  warmupSec: z.number().nonnegative(),
  /** Concurrent HTTP connections: the same levels for both sides. */
  connections: z.array(z.number().int().positive()).min(1),
  /** Connections of the shadow-overhead runs. */
  shadowConnections: z.number().int().positive(),
  /** Seconds of write load per CDC level. */
  cdcSec: z.number().positive(),
  /** Row changes per second the CDC levels aim at. */
  cdcRates: z.array(z.number().positive()).min(1),
  /** Seconds with no write load measured before the first CDC level (0: none). */
  cdcQuietSec: z.number().nonnegative(),
  /**
   * Seconds of write load at the first level's rate before the measured levels (0: none): a
   * freshly started pipeline runs its code unoptimised for its first seconds under load (JIT
   * warm-up), which charged a lag of seconds to whichever level came first. Its lag is reported
   * on its own.
   */
  cdcWarmupSec: z.number().nonnegative(),
  /** Freshness markers committed per second during each CDC level. */
  markersPerSec: z.number().positive(),
  /** Longest replay per store, from the start of the event store into empty read models. */
  replaySec: z.number().positive(),
  /** Workload operations written for the binlog decode measurement. */
  decodeOps: z.number().int().positive(),
  /** Attach the CPU profiler to the runs whose profile explains a result. */
  profile: z.boolean(),
});
export type BenchSettings = z.infer<typeof benchSettingsSchema>;

export const SETTINGS: Record<ScaleName, BenchSettings> = {
  tiny: {
    httpSec: 1,
    warmupSec: 0,
    connections: [4],
    shadowConnections: 4,
    cdcSec: 2,
    cdcRates: [100],
    cdcQuietSec: 0,
    cdcWarmupSec: 0,
    markersPerSec: 10,
    replaySec: 60,
    decodeOps: 100,
    profile: true,
  },
  small: {
    httpSec: 5,
    warmupSec: 1,
    connections: [1, 16],
    shadowConnections: 16,
    cdcSec: 10,
    cdcRates: [500, 2000, 5000],
    cdcQuietSec: 0,
    cdcWarmupSec: 10,
    markersPerSec: 20,
    replaySec: 60,
    decodeOps: 5000,
    profile: true,
  },
  bench: {
    httpSec: 15,
    warmupSec: 3,
    connections: [1, 16, 64],
    shadowConnections: 16,
    cdcSec: 30,
    cdcRates: [500, 2000, 5000],
    cdcQuietSec: 0,
    cdcWarmupSec: 15,
    markersPerSec: 20,
    replaySec: 1800,
    decodeOps: 20_000,
    profile: true,
  },
};

export interface ScenarioContext {
  scale: ScaleName;
  seed: number;
  server: MysqlConnOptions;
  fixture: Fixture;
  settings: BenchSettings;
  logger: Logger;
}
