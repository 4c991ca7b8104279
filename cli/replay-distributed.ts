import type { Admin, Kafka } from 'kafkajs';
import { domainTopic } from '../connectors/kafka/domain-topics.js';
import type { Migration } from '../definition/migration.js';
import type { Config } from '../lib/config.js';
import { type AdapterError, ConfigError, StoreError } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';
import { ProgressMeter } from '../lib/progress.js';
import { KafkaProjector, projectorGroupId } from '../projectors/kafka-runner.js';
import {
  describeStart,
  frozenAt,
  parseReplayEnd,
  parseReplayStart,
  resolveStart,
} from '../projectors/replay-start.js';
import {
  addVersion,
  droppedVersion,
  rollbackTarget,
  type StoreVersions,
  type VersionAdapter,
  type VersionsRecord,
  versionEntry,
  versionName,
  withState,
} from '../projectors/stores/document-versions.js';
import {
  kafkaFrom,
  type OpenedStore,
  openStore,
  placementOf,
  projectorSettings,
  type StoreName,
} from './distributed.js';
import { renderVerification, verifyVersion } from './verify-version-distributed.js';

/**
 * `replay` and `read-model versions|switch|rollback|drop` for the server stores (MongoDB,
 * OpenSearch): a new version of a read model is built beside the live one by its own consumer
 * group reading the domain topics (the event log), then verified against the legacy database
 * and switched to atomically (document-versions.ts). The old version stays, fed by the
 * `project` processes, so a rollback is one switch back.
 */

export interface ReplayIo {
  out(line: string): void;
  /** Progress and diagnostics (stderr). */
  err(text: string): void;
}

export interface DistributedReplayOptions {
  readModel: string;
  store: StoreName;
  /** 'beginning', an offset or an ISO time (replay-start.ts). */
  from?: string | undefined;
  /** ISO time: a frozen version. */
  to?: string | undefined;
  /** False: build and verify nothing more; leave the live version as it is. */
  switch: boolean;
  sample?: number | undefined;
  /** Switch even when the verification finds differences. */
  force: boolean;
  /** How often progress is printed. Default 1000 ms. */
  progressMs?: number;
}

/** The store the read model is placed in must be the one named, or the version would never be read. */
function openFor(
  config: Config,
  migration: Migration,
  readModel: string,
  store: StoreName,
  logger: Logger,
): OpenedStore {
  const placed = placementOf(config, migration).get(readModel);
  if (placed === undefined) {
    throw new ConfigError(`${migration.name} has no read model ${readModel}`, {
      hint: `read models: ${migration.readModels.map((m) => m.name).join(', ')}`,
    });
  }
  if (placed !== store) {
    throw new ConfigError(`${readModel} is placed in ${placed}, not ${store}`, {
      hint: `pass --store ${placed} (stores.placement decides where a read model lives)`,
    });
  }
  return openStore(config, migration, store, logger, [readModel]);
}

/** A consumer group's position: how far it is behind the end of its topics, and how far it has read in total. */
async function groupPosition(
  admin: Admin,
  groupId: string,
  topics: readonly string[],
): Promise<{ lag: bigint; read: bigint }> {
  let lag = 0n;
  let read = 0n;
  const committed = await admin.fetchOffsets({ groupId, topics: [...topics] });
  for (const topic of topics) {
    const done = committed.find((c) => c.topic === topic)?.partitions ?? [];
    for (const end of await admin.fetchTopicOffsets(topic)) {
      const at = BigInt(done.find((p) => p.partition === end.partition)?.offset ?? '-1');
      const from = at < 0n ? BigInt(end.low) : at;
      lag += BigInt(end.high) - from;
      read += from;
    }
  }
  return { lag, read };
}

/** One progress line: records read, rate, lag and the ETA from it. */
export function progressLine(
  label: string,
  p: { done: number; rowsPerSec: number; elapsedSec: number },
  lag: bigint,
): string {
  const eta = p.rowsPerSec > 0 ? Math.ceil(Number(lag) / p.rowsPerSec) : null;
  return `${label}: ${p.done} records in ${p.elapsedSec.toFixed(0)} s, ${p.rowsPerSec}/s, lag ${lag}${lag === 0n ? ' (caught up)' : eta === null ? '' : `, ETA ${eta} s`}`;
}

/**
 * Runs the version's consumer group in this process until it has read to the end of the
 * domain topics (as they are when it gets there), printing progress.
 */
async function replayUntilCaughtUp(
  kafka: Kafka,
  groupId: string,
  topics: string[],
  label: string,
  io: ReplayIo,
  progressMs: number,
  failed: Promise<AdapterError>,
): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const meter = new ProgressMeter();
    let last: bigint | null = null;
    for (;;) {
      const { lag, read } = await groupPosition(admin, groupId, topics);
      const progress = meter.add(last === null ? 0 : Number(read - last));
      last = read;
      io.err(`${progressLine(label, progress, lag)}\n`);
      if (lag === 0n) return;
      const stopped = await Promise.race([
        failed,
        new Promise<null>((resolve) => setTimeout(() => resolve(null), progressMs)),
      ]);
      if (stopped !== null) throw stopped;
    }
  } finally {
    await admin.disconnect();
  }
}

/**
 * `replay <read-model> --store mongo|opensearch`: allocates the next version, starts its
 * consumer group (from the beginning, an offset or a time), replays to the end of the log (or
 * applies events only up to `--to`), verifies it against legacy and switches readers to it.
 * Exit code 0 when the version is built (and switched, unless --no-switch), 1 when the
 * verification refused it (the version is kept for inspection).
 */
export async function replayDistributed(
  config: Config,
  migration: Migration,
  options: DistributedReplayOptions,
  logger: Logger,
  io: ReplayIo,
): Promise<number> {
  const { readModel, store } = options;
  const start = parseReplayStart(options.from ?? 'beginning');
  const to = options.to === undefined ? null : parseReplayEnd(options.to);
  const opened = openFor(config, migration, readModel, store, logger);
  const kafka = kafkaFrom(config, 'replay', logger);
  let projector: KafkaProjector | null = null;
  try {
    const { versions } = opened;
    let version = 0;
    await versions.registry.update(readModel, (current) => {
      const added = addVersion(
        current,
        { from: describeStart(start), to: to?.toISOString() ?? null },
        new Date(),
      );
      version = added.version;
      return added.record;
    });
    const adapter = versions.adapter(readModel, version);
    const groupId = projectorGroupId(config.kafka.topicPrefix, adapter.name);
    const topics = adapter.streamTypes.map((t) => domainTopic(config.kafka.topicPrefix, t));
    await adapter.migrate();
    await positionGroup(kafka, adapter, groupId, topics, start);
    // A version that follows the log is fed by the `project` processes from now on as well (they
    // join its group); a frozen one only by this process.
    if (to === null) await setState(versions, readModel, version, 'building');
    io.err(
      `replaying ${readModel} into v${version} (${store}, ${versionName(readModel, version)}) from ${describeStart(start)}${to === null ? '' : ` up to ${to.toISOString()}`}\n`,
    );
    let fail: (err: AdapterError) => void = () => undefined;
    const failed = new Promise<AdapterError>((resolve) => {
      fail = resolve;
    });
    // No cache invalidation: readers read this version only after the switch, and this
    // projector stops before it (the `project` processes, which invalidate, go on).
    projector = new KafkaProjector({
      ...projectorSettings(config, migration, store, logger),
      kafka,
      projection: to === null ? adapter : frozenAt(adapter, to),
      onError: (err) => fail(err),
    });
    await projector.start();
    await replayUntilCaughtUp(
      kafka,
      groupId,
      topics,
      `replay ${readModel} v${version}`,
      io,
      options.progressMs ?? 1000,
      failed,
    );
    await adapter.refresh?.();
    await setState(versions, readModel, version, to === null ? 'ready' : 'frozen');
    await projector.stop();
    projector = null;
    if (!options.switch) {
      io.out(
        `${readModel} v${version} built; readers stay on v${await versions.live(readModel)} (switch with \`read-model switch ${readModel} ${version} --store ${store}\`)`,
      );
      return 0;
    }
    return await verifiedSwitch(config, migration, opened, kafka, readModel, version, options, logger, io);
  } finally {
    await projector?.stop();
    await opened.close();
  }
}

async function setState(
  versions: StoreVersions,
  readModel: string,
  version: number,
  state: 'building' | 'ready' | 'frozen',
): Promise<void> {
  await versions.registry.update(readModel, (current) => withState(current, version, state, new Date()));
}

/**
 * Sets where a fresh version's group starts. The store's applied marks are set to the same
 * offsets, since a committed offset without a mark reads as a store that lost its data (the
 * projector would replay from the beginning).
 */
async function positionGroup(
  kafka: Kafka,
  adapter: VersionAdapter,
  groupId: string,
  topics: string[],
  start: ReturnType<typeof parseReplayStart>,
): Promise<void> {
  if (start.kind === 'beginning') return;
  const admin = kafka.admin();
  await admin.connect();
  try {
    const offsets = await resolveStart(admin, topics, start);
    for (const topic of topics) {
      const partitions = offsets
        .filter((o) => o.topic === topic)
        .map(({ partition, offset }) => ({ partition, offset }));
      await admin.setOffsets({ groupId, topic, partitions });
    }
    for (const o of offsets)
      await adapter.markApplied({ topic: o.topic, partition: o.partition }, BigInt(o.offset));
  } finally {
    await admin.disconnect();
  }
}

/** Verifies `version` against legacy and switches readers to it; 1 when refused. */
async function verifiedSwitch(
  config: Config,
  migration: Migration,
  opened: OpenedStore,
  kafka: Kafka,
  readModel: string,
  version: number,
  options: { sample?: number | undefined; force: boolean; store: StoreName },
  logger: Logger,
  io: ReplayIo,
): Promise<number> {
  const { versions } = opened;
  const adapter = versions.adapter(readModel, version);
  await adapter.refresh?.();
  const verification = await verifyVersion({
    config,
    migration,
    kafka,
    readModel,
    version: adapter,
    handle: adapter.handle(),
    sample: options.sample,
    logger,
  });
  io.err(renderVerification(verification));
  const unverified = verification.result.checked === 0;
  if ((verification.blocking > 0 || unverified) && !options.force) {
    io.err(
      unverified
        ? `not switched: no endpoint with reconcile keys reads ${readModel}, so v${version} cannot be verified (--force switches anyway)\n`
        : `not switched: v${version} differs from legacy on ${verification.blocking} key(s); it is kept for inspection (read-model drop ${readModel} ${version} --store ${options.store} --force removes it, --force switches anyway)\n`,
    );
    return 1;
  }
  const from = await versions.live(readModel);
  await versions.switchLive(readModel, from, version);
  io.out(
    `${readModel}: readers switched from v${from} to v${version}${verification.blocking > 0 ? ` (forced over ${verification.blocking} difference(s))` : ''}; v${from} is kept and maintained (read-model rollback ${readModel} --store ${options.store})`,
  );
  return 0;
}

export const VERSION_ACTIONS = ['versions', 'switch', 'rollback', 'drop'] as const;
export type VersionAction = (typeof VERSION_ACTIONS)[number];

export interface VersionCommandOptions {
  action: VersionAction;
  readModel: string;
  store: StoreName;
  /** switch and drop. */
  version?: number | undefined;
  /** switch: skip the verification; drop: required. */
  force: boolean;
  sample?: number | undefined;
  json: boolean;
  /** How long drop waits for the projectors to leave the version's group. Default: two registry checks + 30 s. */
  dropWaitMs?: number;
}

function renderVersions(record: VersionsRecord, live: number): string {
  const rows = record.versions.map(
    (v) =>
      `${v.version === live ? '*' : ' '} v${String(v.version).padEnd(4)} ${v.state.padEnd(10)} from ${v.from ?? '-'}${v.to === null ? '' : ` to ${v.to}`}${v.version === 1 ? '' : `  created ${v.createdAt}`}`,
  );
  return `${record.readModel} (live: v${live}${record.previous === null ? '' : `, rollback to v${record.previous}`})\n${rows.join('\n')}`;
}

/** `read-model versions|switch|rollback|drop <read-model> --store mongo|opensearch`. */
export async function readModelVersionsCommand(
  config: Config,
  migration: Migration,
  options: VersionCommandOptions,
  logger: Logger,
  io: ReplayIo,
): Promise<number> {
  const { readModel, store } = options;
  const opened = openFor(config, migration, readModel, store, logger);
  const { versions } = opened;
  const kafka = kafkaFrom(config, 'read-model-versions', logger);
  try {
    switch (options.action) {
      case 'versions': {
        const record = await versions.registry.read(readModel);
        const live = await versions.live(readModel);
        io.out(options.json ? JSON.stringify({ ...record, live }, null, 2) : renderVersions(record, live));
        return 0;
      }
      case 'switch': {
        const version = requireVersion(options);
        versionEntry(await versions.registry.read(readModel), version);
        if (options.force) {
          const from = await versions.live(readModel);
          await versions.switchLive(readModel, from, version);
          io.out(`${readModel}: readers switched from v${from} to v${version} (not verified: --force)`);
          return 0;
        }
        return await verifiedSwitch(
          config,
          migration,
          opened,
          kafka,
          readModel,
          version,
          options,
          logger,
          io,
        );
      }
      case 'rollback': {
        const record = await versions.registry.read(readModel);
        const target = rollbackTarget(record);
        const from = await versions.live(readModel);
        await versions.switchLive(readModel, from, target);
        io.out(`${readModel}: readers switched back from v${from} to v${target}`);
        return 0;
      }
      case 'drop':
        return await dropVersion(config, opened, kafka, options, io);
    }
  } finally {
    await opened.close();
  }
}

function requireVersion(options: VersionCommandOptions): number {
  if (options.version === undefined)
    throw new ConfigError(`read-model ${options.action} needs a version number`, {
      hint: `read-model versions ${options.readModel} --store ${options.store} lists them`,
    });
  return options.version;
}

/**
 * Deletes a version that is not live: first marked dropped (the projectors stop feeding it at
 * their next registry check), then, once its consumer group has no member left, its data,
 * applied marks and group.
 */
async function dropVersion(
  config: Config,
  opened: OpenedStore,
  kafka: Kafka,
  options: VersionCommandOptions,
  io: ReplayIo,
): Promise<number> {
  const { readModel, store } = options;
  const { versions } = opened;
  const version = requireVersion(options);
  const record = await versions.registry.read(readModel);
  versionEntry(record, version);
  // Refuses the live version (as readers see it) before anything changes.
  droppedVersion({ ...record, live: await versions.live(readModel) }, version, new Date());
  if (!options.force) {
    io.err(
      `read-model drop deletes ${readModel} v${version}'s data in ${store} for good; pass --force to do it\n`,
    );
    return 1;
  }
  await versions.registry.update(readModel, (current) => droppedVersion(current, version, new Date()));
  const groupId = projectorGroupId(config.kafka.topicPrefix, versionName(readModel, version));
  const admin = kafka.admin();
  await admin.connect();
  try {
    const waitMs = options.dropWaitMs ?? 2 * config.stores.checkIntervalMs + 30_000;
    const deadline = Date.now() + waitMs;
    for (;;) {
      const [group] = (await admin.describeGroups([groupId])).groups;
      const members = group?.members.length ?? 0;
      if (members === 0) break;
      if (Date.now() >= deadline) {
        throw new StoreError(
          'PROJECTOR_RUNNING',
          `${members} projector(s) still consume ${readModel} v${version} (group ${groupId}) after ${Math.round(waitMs / 1000)} s`,
          {
            hint: 'the version is marked dropped; run the same drop again once those `project` processes have noticed (or restart them)',
          },
        );
      }
      await new Promise((r) => setTimeout(r, 500));
    }
    await versions.dropData(readModel, version);
    await admin.deleteGroups([groupId]).catch(() => undefined);
  } finally {
    await admin.disconnect();
  }
  io.out(
    `${readModel} v${version} dropped from ${store} (data, applied marks and consumer group ${groupId})`,
  );
  return 0;
}
