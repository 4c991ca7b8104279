import { mkdirSync } from 'node:fs';
import type { Kafka } from 'kafkajs';
import type { FreshnessPort } from '../compare/ports.js';
import { parameterSets, type ReconcileResult, reconcile } from '../compare/reconcile.js';
import { SqliteComparisonRecorder } from '../compare/recorder.js';
import { ShadowComparator } from '../compare/shadow-compare.js';
import { throttledLegacyDb } from '../compare/throttle.js';
import { tableTopic } from '../connectors/debezium/config.js';
import { domainTopic } from '../connectors/kafka/domain-topics.js';
import { openLegacyDb } from '../connectors/legacy/index.js';
import { notingReads, readModelAnswer } from '../definition/endpoint-calls.js';
import type { LegacyDb } from '../definition/endpoints.js';
import type { Migration } from '../definition/migration.js';
import type { ReadModelHandle, ReadModels } from '../definition/read-models.js';
import { type Config, dataPath } from '../lib/config.js';
import type { Logger } from '../lib/logger.js';
import { groupLag, projectorGroupId } from '../projectors/kafka-runner.js';
import { capturedTables, openServerReadModels, translatorGroupId } from './distributed.js';

/**
 * The check before readers are switched to a read-model version: the endpoints that read the
 * read model are reconciled against the legacy database (compare/reconcile.ts, on a sample of
 * their keys), with that read model answered by the version and every other from its live
 * version. The comparisons are recorded apart from the shadow traffic, in
 * `<dataDir>/replay-verify.db`, so a refused version never shows up in the live reports.
 */

/** Outcomes that make a version unfit: a different answer, no answer, or a failing read. Lag is re-checked by the comparator first. */
const BLOCKING = ['mismatch', 'missing', 'error'] as const;

export interface Verification {
  /** Endpoints that read the read model and list reconcile keys (the ones compared). */
  endpoints: string[];
  result: ReconcileResult;
  /** Comparisons that block the switch. */
  blocking: number;
}

/** The version's consumer group and the translator have consumed everything published: differences are not lag. */
function versionFreshness(
  config: Config,
  migration: Migration,
  kafka: Kafka,
  group: string,
  topics: string[],
): FreshnessPort {
  const isCaughtUp = async () => {
    const sources = capturedTables(config, migration).map((t) =>
      tableTopic(config.cdc.name, t.scope, t.table),
    );
    const translator = await groupLag(kafka, translatorGroupId(config), sources);
    if (translator.total > 0) return false;
    return (await groupLag(kafka, group, topics)).total === 0;
  };
  return {
    isCaughtUp,
    async waitForCatchUp(timeoutMs) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        if (await isCaughtUp()) return true;
        if (Date.now() >= deadline) return false;
        await new Promise((r) => setTimeout(r, 250));
      }
    },
  };
}

/** Endpoints with reconcile keys whose read-model side reads `readModel` (asked once, with their first key). */
async function endpointsReading(
  migration: Migration,
  legacy: LegacyDb,
  readModels: ReadModels,
  readModel: string,
): Promise<Set<string>> {
  const using = new Set<string>();
  for (const entry of migration.endpoints) {
    if (entry.definition.reconcile === undefined) continue;
    const [first] = await parameterSets(entry, legacy);
    if (first === undefined) continue;
    const touched = new Set<string>();
    const watching = notingReads(readModels, touched);
    // Only which read models it reads matters here; its answer is compared below.
    await readModelAnswer(entry.definition, first, watching).catch(() => undefined);
    if (touched.has(readModel)) using.add(entry.key);
  }
  return using;
}

export interface VerifyOptions {
  config: Config;
  migration: Migration;
  kafka: Kafka;
  readModel: string;
  /** The stored version's name (its consumer group's suffix) and streams. */
  version: { name: string; streamTypes: readonly string[] };
  handle: ReadModelHandle;
  sample?: number | undefined;
  logger: Logger;
}

export async function verifyVersion(options: VerifyOptions): Promise<Verification> {
  const { config, migration, kafka, readModel, logger } = options;
  const legacy = openLegacyDb(config.legacy.url, { poolSize: config.legacy.poolSize, logger });
  const live = openServerReadModels(config, migration, logger);
  mkdirSync(config.dataDir, { recursive: true });
  const recorder = new SqliteComparisonRecorder({
    path: dataPath(config, 'replay-verify.db'),
    sensitive: migration.sensitiveFields,
    logger,
  });
  try {
    const readModels: ReadModels = { ...live.readModels, [readModel]: options.handle };
    const endpoints = await endpointsReading(migration, legacy, readModels, readModel);
    const topics = options.version.streamTypes.map((t) => domainTopic(config.kafka.topicPrefix, t));
    const group = projectorGroupId(config.kafka.topicPrefix, options.version.name);
    const result = await reconcile({
      migration,
      legacy: throttledLegacyDb(legacy, config.compare.reconcile.maxQueriesPerSecond),
      readModels,
      comparator: new ShadowComparator({
        recorder,
        freshness: versionFreshness(config, migration, kafka, group, topics),
        recheckDelayMs: config.compare.recheckDelayMs,
        maxRechecks: config.compare.maxRechecks,
        logger,
      }),
      concurrency: config.compare.concurrency,
      ...(options.sample === undefined ? {} : { sample: options.sample }),
      select: (endpoint, sets) => (endpoints.has(endpoint) ? sets : []),
      logger,
    });
    const blocking = BLOCKING.reduce((n, outcome) => n + result.byOutcome[outcome], 0);
    return { endpoints: [...endpoints], result, blocking };
  } finally {
    recorder.close();
    await live.close();
    await legacy.close();
  }
}

/** The verification as the operator reads it: what was compared, and each blocking difference. */
export function renderVerification(v: Verification, limit = 20): string {
  const { result } = v;
  const lines = [
    `verified ${result.checked} key(s) of ${v.endpoints.join(', ') || 'no endpoint'}: ${
      Object.entries(result.byOutcome)
        .filter(([, n]) => n > 0)
        .map(([o, n]) => `${n} ${o}`)
        .join(', ') || 'nothing compared'
    }`,
  ];
  const shown = result.failures
    .filter((f) => (BLOCKING as readonly string[]).includes(f.outcome))
    .slice(0, limit);
  for (const f of shown)
    lines.push(
      `  ${f.outcome} ${f.endpoint} ${f.requestKey}${f.paths.length > 0 ? `: ${f.paths.join(', ')}` : ''}`,
    );
  if (v.blocking > shown.length) lines.push(`  … and ${v.blocking - shown.length} more`);
  return `${lines.join('\n')}\n`;
}
