import { z } from 'zod';
import { datasetSchema } from './fixture.js';

/**
 * The JSON every scenario writes to bench/results/<scenario>.json. The smoke test validates its
 * output with these same schemas, and the summary is rendered only from files that pass them.
 */

export const SCENARIOS = ['throughput', 'decode', 'reads', 'shadow', 'cdc'] as const;
export const scenarioNameSchema = z.enum(SCENARIOS);
export type ScenarioName = z.infer<typeof scenarioNameSchema>;

const ms = z.number().nonnegative();
const count = z.number().int().nonnegative();

export const latencySchema = z.object({ p50Ms: ms, p99Ms: ms, maxMs: ms, meanMs: ms });
export type Latency = z.infer<typeof latencySchema>;

/** Bench endpoints, named as the bank definition's `accounts.<name>` endpoints. */
export const endpointSchema = z.enum(['summary', 'history', 'overview', 'overviewWide']);
export type BenchEndpoint = z.infer<typeof endpointSchema>;

/**
 * 'light': the sample bank's original screens (a few indexed lookups, ~1-2 ms in MariaDB);
 * 'case-study': the aggregate-heavy overview over a skewed ledger, like the case study's screens.
 */
export type Screen = 'light' | 'case-study';
export const SCREEN_OF: Record<BenchEndpoint, Screen> = {
  summary: 'light',
  history: 'light',
  overview: 'case-study',
  overviewWide: 'case-study',
};
export const servedModeSchema = z.enum(['legacy', 'shadow', 'new']);
export type ServedMode = z.infer<typeof servedModeSchema>;

/** One autocannon run against one endpoint in one flag mode. */
export const httpRunSchema = z.object({
  endpoint: endpointSchema,
  mode: servedModeSchema,
  connections: z.number().int().positive(),
  durationSec: z.number().positive(),
  /** 2xx responses in the measured window (results without `counted` also include non-2xx). */
  requests: count,
  /** 2xx responses per second: a 4xx/5xx is not throughput. */
  requestsPerSec: z.number().nonnegative(),
  /** Latency of 2xx responses. */
  latency: latencySchema,
  /** Non-2xx responses, reported apart and excluded from requests and requestsPerSec. */
  non2xx: count,
  /** What requests/requestsPerSec count; absent in results from before non-2xx were excluded. */
  counted: z.literal('2xx').optional(),
  errors: count,
  /** x-served-by header values seen (warm-up included): proves which side answered. */
  servedBy: z.record(z.string(), count),
  /**
   * CPU the legacy database server used in the measured window, in total and per 2xx answer;
   * null when its process is not on this machine; absent in results from before it was measured.
   */
  legacyDbCpu: z.object({ cpuMs: ms, usPerRequest: z.number().nonnegative() }).nullable().optional(),
  /**
   * CPU of the adapter process (all its threads) from the run's start until its queued comparisons
   * finished, in total and per answer served (warm-up included): what a mode costs, less
   * sensitive than req/s to what else the machine runs. Absent in results from before it was measured.
   */
  adapterCpu: z.object({ cpuMs: ms, usPerRequest: z.number().nonnegative() }).optional(),
});
export type HttpRun = z.infer<typeof httpRunSchema>;

/** The hottest functions of a CPU profile by self time: the "why" behind a missed target. */
export const profileSchema = z.object({
  durationMs: ms,
  /** Share of samples with the thread idle (waiting on I/O or timers); not in results from before it was recorded. */
  idlePct: z.number().nonnegative().optional(),
  topFrames: z.array(z.object({ frame: z.string(), selfPct: z.number().nonnegative() })),
});
export type ProfileSummary = z.infer<typeof profileSchema>;

const readsResults = z.object({
  runs: z.array(httpRunSchema).min(1),
  profiles: z.record(z.string(), profileSchema).default({}),
});

const shadowResults = z.object({
  runs: z.array(httpRunSchema).min(1),
  /** Comparisons the off-path queue accepted, dropped (full) and recorded during the runs. */
  comparisons: z.object({ recorded: count, dropped: count }),
  /** The adapter process per `<endpoint>.<mode>`, in runs of their own after the measured ones. */
  profiles: z.record(z.string(), profileSchema).default({}),
});

/**
 * One hop of a marker's way, over the markers that became visible. Its ends come from two
 * clocks of one machine (the harness's, Kafka Connect's JVM), each to the millisecond: a hop of
 * a millisecond or two can come out slightly negative.
 */
const stageSchema = z.object({ p50Ms: z.number(), p99Ms: z.number(), samples: count });

/**
 * The Debezium/Kafka path's lag split at the timestamps a marker's records carry (see
 * bench/scenarios/cdc-stages.ts): COMMIT acknowledged → Debezium processed its first change
 * (envelope ts_ms) → Connect produced its END record (Kafka CreateTime) → the translator's
 * source handed over the whole transaction → Kafka acknowledged its domain events → the
 * harness saw the account-summary projector's committed offset past them.
 */
export const cdcStagesSchema = z.object({
  commitToCaptured: stageSchema,
  capturedToProduced: stageSchema,
  producedToReceived: stageSchema,
  receivedToPublished: stageSchema,
  publishedToVisible: stageSchema,
});
export type CdcStages = z.infer<typeof cdcStagesSchema>;

export const freshnessLevelSchema = z.object({
  targetRowChangesPerSec: z.number().positive(),
  achievedRowChangesPerSec: z.number().nonnegative(),
  durationSec: z.number().positive(),
  writeOps: count,
  writeErrors: count,
  markers: count,
  /** Markers not visible before the run's deadline. */
  markersLost: count,
  lag: latencySchema,
  /**
   * CPU time over the level in µs per row change achieved: the legacy database server (from
   * /proc, absent when it is not on this machine), the write-load process, and the harness
   * process (the embedded pipeline runs in it; on the Debezium/Kafka path the translator and
   * projectors do, Kafka Connect and the stores do not). Absent in results written before.
   */
  cpuPerRowChangeUs: z
    .object({
      legacyServer: z.number().nonnegative().nullable(),
      writeLoad: z.number().nonnegative(),
      harness: z.number().nonnegative(),
    })
    .optional(),
  profile: profileSchema.optional(),
  /** Debezium/Kafka path only; absent in results written before it was measured. */
  stages: cdcStagesSchema.optional(),
});
export type FreshnessLevel = z.infer<typeof freshnessLevelSchema>;

export const cdcPathNameSchema = z.enum(['embedded', 'debezium-kafka']);
export type CdcPathName = z.infer<typeof cdcPathNameSchema>;

const cdcResults = z.object({
  /** Each path under the same levels, one after the other on the same data. */
  paths: z
    .array(
      z.object({
        path: cdcPathNameSchema,
        method: z.string(),
        /** The write load before the levels, at the first level's rate (--cdc-warmup-sec); absent when none ran. */
        warmup: freshnessLevelSchema.optional(),
        levels: z.array(freshnessLevelSchema).min(1),
      }),
    )
    .min(1),
});

const rateSchema = z.object({ items: count, ms, perSec: z.number().nonnegative() });

const throughputResults = z.object({
  snapshot: z.object({ rows: rateSchema, projected: rateSchema }),
  /** Replay of the whole event store into each read-model store (rebuild). */
  replay: z
    .array(
      z.object({
        store: z.string(),
        events: rateSchema,
        /** Events in the store: more than `events.items` when the time budget ended the replay. */
        of: count,
      }),
    )
    .min(1),
  profiles: z.record(z.string(), profileSchema).default({}),
});

const decodeResults = z.object({
  /** What the workload wrote into the range. */
  range: z.object({ ops: count, rowChanges: count }),
  /** Binlog → change events for that same range, per reader. */
  readers: z.array(z.object({ reader: z.string(), rowChanges: rateSchema, transactions: count })).min(1),
});

export const machineSchema = z.object({
  cpus: z.number().int().positive(),
  cpuModel: z.string(),
  memoryBytes: count,
  platform: z.string(),
  /** 1/5/15-minute load averages at the start: the machine may be shared. */
  loadAverage: z.array(z.number()).length(3),
});

export const versionsSchema = z.object({
  /** The checkout the run measured; null outside a git work tree; absent in older results. */
  git: z.object({ commit: z.string(), dirty: z.boolean() }).nullable().optional(),
  node: z.string(),
  package: z.string(),
  legacyServer: z.string(),
  autocannon: z.string(),
});

const envelope = {
  startedAt: z.iso.datetime(),
  finishedAt: z.iso.datetime(),
  machine: machineSchema,
  versions: versionsSchema,
  dataset: datasetSchema.extend({ reused: z.boolean() }),
  /** Peak resident set of the process running the adapter (pipeline and API) for the scenario. */
  peakRssBytes: count,
  params: z.record(z.string(), z.unknown()),
};

/**
 * bench/serve-cpu.ts's file (serve-cpu.json): server CPU per request of the read endpoints and
 * of Fastify's hello-world in the same process, and shadow mode at a fixed rate.
 */
export const cpuRunSchema = z.object({
  target: z.string(),
  mode: z.enum(['legacy', 'new', 'shadow', 'hello']),
  connections: z.number().int().positive(),
  rate: z.number().positive().nullable(),
  requests: count,
  requestsPerSec: z.number().nonnegative(),
  non2xx: count,
  /** process.cpuUsage() delta over the run (and the comparisons' drain after it), per request. */
  processCpuUsPerRequest: z.number().nonnegative(),
  /** Active time of the serving thread's event loop over the same span, per request. */
  serveThreadUsPerRequest: z.number().nonnegative(),
  comparisons: z.object({ recorded: count, dropped: count }).nullable(),
});
export type CpuRun = z.infer<typeof cpuRunSchema>;

export const serveCpuResultSchema = z.object({
  startedAt: z.iso.datetime(),
  machine: machineSchema,
  git: z.object({ commit: z.string(), dirty: z.boolean() }).nullable().optional(),
  node: z.string(),
  scale: z.string(),
  seconds: z.number().positive(),
  runs: z.array(cpuRunSchema),
  /**
   * Profiles of extra runs after the measured ones (`--profiled-runs`), by target (`hello`,
   * `summary`, …, read-model mode): the sampler's own cost stays out of the measured figures.
   */
  profiles: z.record(z.string(), profileSchema).optional(),
});
export type ServeCpuResult = z.infer<typeof serveCpuResultSchema>;

export const resultSchema = z.discriminatedUnion('scenario', [
  z.object({ scenario: z.literal('throughput'), ...envelope, results: throughputResults }),
  z.object({ scenario: z.literal('decode'), ...envelope, results: decodeResults }),
  z.object({ scenario: z.literal('reads'), ...envelope, results: readsResults }),
  z.object({ scenario: z.literal('shadow'), ...envelope, results: shadowResults }),
  z.object({ scenario: z.literal('cdc'), ...envelope, results: cdcResults }),
]);
export type BenchResult = z.infer<typeof resultSchema>;
export type ResultsOf<S extends ScenarioName> = Extract<BenchResult, { scenario: S }>['results'];
