import { z } from 'zod';
import { getMany, type ReadModelHandle } from '../../definition/read-models.js';
import { StoreError } from '../../lib/errors.js';
import type { DocumentProjection } from '../ports.js';

/**
 * Versions of a read model in a server store (blue/green replays). A version is a complete
 * copy of the read model with its own collections (MongoDB) or indexes (OpenSearch), applied
 * marks and consumer group, named after the read model with a `__v<n>` suffix. Version 1 has
 * no suffix: it is what every deployment stored before versions existed, so nothing moves when
 * they arrive. Which version readers see is the store's own atomic switch (a registry document
 * on MongoDB, aliases on OpenSearch); the registry also records every version's state so the
 * projector processes know which ones to keep maintained.
 */

/** A stored version, or `live`: the names readers use to reach whichever version is live (OpenSearch aliases). */
export type VersionRef = number | 'live';

/** `<readModel>` for version 1, `<readModel>__v<n>` after it, `<readModel>__live` for the live aliases. */
export function versionName(readModel: string, version: VersionRef): string {
  if (version === 'live') return `${readModel}__live`;
  if (!Number.isSafeInteger(version) || version < 1)
    throw new StoreError(
      'READ_MODEL_VERSION_INVALID',
      `read-model version must be a whole number ≥ 1 (got ${version})`,
    );
  return version === 1 ? readModel : `${readModel}__v${version}`;
}

/**
 * - preparing: allocated; only the `replay` that allocated it feeds it (a frozen one, until built);
 * - building/ready: maintained by every projector process of the store (ready: caught up once);
 * - frozen: built up to a time (`replay --to`), never fed again;
 * - dropped: its data is deleted (the number is never reused, so a stale group cannot resurface).
 */
export const VERSION_STATES = ['preparing', 'building', 'ready', 'frozen', 'dropped'] as const;
export type VersionState = (typeof VERSION_STATES)[number];

export const versionEntrySchema = z.object({
  version: z.number().int().min(1),
  state: z.enum(VERSION_STATES),
  createdAt: z.string(),
  /** Where its consumer group started: 'beginning', an offset or an ISO time. */
  from: z.string().nullable(),
  /** ISO time it was built up to (frozen); null: follows the event log. */
  to: z.string().nullable(),
});
export type VersionEntry = z.infer<typeof versionEntrySchema>;

export const versionsRecordSchema = z.object({
  readModel: z.string(),
  live: z.number().int().min(1),
  /** The version live before the last switch: what `rollback` returns to. */
  previous: z.number().int().min(1).nullable(),
  versions: z.array(versionEntrySchema),
  updatedAt: z.string(),
});
export type VersionsRecord = z.infer<typeof versionsRecordSchema>;

/** The record of a read model no version command has touched: version 1, live. */
export function initialRecord(readModel: string): VersionsRecord {
  return {
    readModel,
    live: 1,
    previous: null,
    versions: [
      { version: 1, state: 'ready', createdAt: new Date(0).toISOString(), from: 'beginning', to: null },
    ],
    updatedAt: new Date(0).toISOString(),
  };
}

export function versionEntry(record: VersionsRecord, version: number): VersionEntry {
  const entry = record.versions.find((v) => v.version === version);
  if (entry === undefined) {
    throw new StoreError('READ_MODEL_VERSION_UNKNOWN', `${record.readModel} has no version ${version}`, {
      hint: `versions of ${record.readModel}: ${record.versions.map((v) => `v${v.version} (${v.state})`).join(', ')}`,
    });
  }
  return entry;
}

/** A new version (the next number never used), in state preparing. */
export function addVersion(
  record: VersionsRecord,
  spec: { from: string; to: string | null },
  now: Date,
): { record: VersionsRecord; version: number } {
  const version = Math.max(...record.versions.map((v) => v.version)) + 1;
  const entry: VersionEntry = {
    version,
    state: 'preparing',
    createdAt: now.toISOString(),
    from: spec.from,
    to: spec.to,
  };
  return {
    version,
    record: { ...record, versions: [...record.versions, entry], updatedAt: now.toISOString() },
  };
}

export function withState(
  record: VersionsRecord,
  version: number,
  state: VersionState,
  now: Date,
): VersionsRecord {
  versionEntry(record, version);
  return {
    ...record,
    versions: record.versions.map((v) => (v.version === version ? { ...v, state } : v)),
    updatedAt: now.toISOString(),
  };
}

/** Versions a reader may be switched to: replayed to the end (ready) or to their `--to` time (frozen). */
const SWITCHABLE: ReadonlySet<VersionState> = new Set(['ready', 'frozen']);

/** `to` made live, the live one kept as `previous`; refused for a version with no complete data. */
export function switchedTo(record: VersionsRecord, to: number, now: Date): VersionsRecord {
  const entry = versionEntry(record, to);
  if (!SWITCHABLE.has(entry.state)) {
    throw new StoreError('READ_MODEL_VERSION_UNUSABLE', `${record.readModel} v${to} is ${entry.state}`, {
      hint: 'switch to a version that was replayed (read-model versions lists them)',
    });
  }
  if (record.live === to) return record;
  return { ...record, live: to, previous: record.live, updatedAt: now.toISOString() };
}

/** The version `rollback` returns to: the one live before the last switch. */
export function rollbackTarget(record: VersionsRecord): number {
  const previous = record.previous;
  if (previous === null) {
    throw new StoreError(
      'READ_MODEL_NO_ROLLBACK',
      `${record.readModel} was never switched: nothing to roll back to`,
    );
  }
  const entry = versionEntry(record, previous);
  if (!SWITCHABLE.has(entry.state)) {
    throw new StoreError(
      'READ_MODEL_NO_ROLLBACK',
      `${record.readModel}'s previous version v${previous} is ${entry.state}`,
      { hint: 'switch to another version explicitly (read-model switch)' },
    );
  }
  return previous;
}

/** Versions every projector process of the store keeps fed: building and ready (frozen ones stay as built). */
export function maintainedVersions(record: VersionsRecord): number[] {
  return record.versions.filter((v) => v.state === 'building' || v.state === 'ready').map((v) => v.version);
}

/** The registry entry a version drop leaves; the live version cannot be dropped. */
export function droppedVersion(record: VersionsRecord, version: number, now: Date): VersionsRecord {
  if (record.live === version) {
    throw new StoreError(
      'READ_MODEL_VERSION_LIVE',
      `${record.readModel} v${version} is live; it cannot be dropped`,
      {
        hint: 'switch readers to another version first (read-model switch / rollback)',
      },
    );
  }
  const next = withState(record, version, 'dropped', now);
  return { ...next, previous: next.previous === version ? null : next.previous };
}

export type AliasAction =
  | { remove: { index: string; alias: string; must_exist: true } }
  | { add: { index: string; alias: string } };

/**
 * One OpenSearch `_aliases` request moving every alias of a read model from one version's
 * index to the other's. OpenSearch applies the actions of one request atomically, and a
 * `remove` with must_exist of an alias the index does not hold fails the whole request (without
 * must_exist it is silently skipped): the switch happens only if `from` was still live.
 */
export function aliasActions(
  aliases: readonly string[],
  fromIndexes: readonly string[],
  toIndexes: readonly string[],
): AliasAction[] {
  if (aliases.length !== fromIndexes.length || aliases.length !== toIndexes.length)
    throw new StoreError('READ_MODEL_VERSION_INVALID', 'every alias needs one index of each version');
  return aliases.flatMap((alias, i): AliasAction[] => [
    { remove: { index: fromIndexes[i] as string, alias, must_exist: true } },
    { add: { index: toIndexes[i] as string, alias } },
  ]);
}

/** A registry write that lost to a concurrent one; the change is recomputed from the new record. */
export const REGISTRY_CONFLICT = Symbol('registry conflict');

/** Where a store keeps the version records, with optimistic concurrency. */
export interface RegistryBackend {
  /** The stored record with the token to write it back, or null when none was written. */
  load(readModel: string): Promise<{ record: VersionsRecord; token: unknown } | null>;
  /** Writes `record` if the stored one is still the one `token` came from (undefined: none); false when it changed. */
  save(record: VersionsRecord, token: unknown): Promise<boolean>;
}

const MAX_REGISTRY_ROUNDS = 20;

/** The version records of one store. */
export class VersionRegistry {
  constructor(private readonly backend: RegistryBackend) {}

  async read(readModel: string): Promise<VersionsRecord> {
    return (await this.backend.load(readModel))?.record ?? initialRecord(readModel);
  }

  /** Applies `change` to the current record and stores it; redone from the new record when another writer got there first. */
  async update(
    readModel: string,
    change: (current: VersionsRecord) => VersionsRecord,
  ): Promise<VersionsRecord> {
    for (let round = 0; round < MAX_REGISTRY_ROUNDS; round++) {
      const loaded = await this.backend.load(readModel);
      const current = loaded?.record ?? initialRecord(readModel);
      const next = change(current);
      if (next === current) return current;
      if (await this.backend.save(next, loaded?.token)) return next;
    }
    throw new StoreError(
      'READ_MODEL_REGISTRY_CONFLICT',
      `the version record of ${readModel} keeps changing`,
      {
        hint: 'another version command is running on the same read model; try again',
      },
    );
  }
}

/** A stored version as a projector feeds it and a reader reads it. */
export type VersionAdapter = DocumentProjection & {
  readonly readModel: string;
  handle(): ReadModelHandle;
  /** Makes acknowledged writes searchable now (OpenSearch); absent where reads see writes at once. */
  refresh?(): Promise<void>;
};

/** What the version commands, the projectors and the readers need from one server store. */
export interface StoreVersions {
  readonly registry: VersionRegistry;
  /** The version readers are served from now. */
  live(readModel: string): Promise<number>;
  /** Makes `to` live in one atomic step, provided `from` still is (else READ_MODEL_SWITCH_CONFLICT). */
  switchLive(readModel: string, from: number, to: number): Promise<void>;
  /** Deletes a version's collections or indexes and its applied marks. */
  dropData(readModel: string, version: number): Promise<void>;
  /** A reader that follows the live version (after a switch: within LIVE_REFRESH_MS at most). */
  liveHandle(readModel: string): ReadModelHandle;
  /** One version's store adapter, sharing the store's client. */
  adapter(readModel: string, version: number): VersionAdapter;
}

/** How long a reader may keep serving a version after a switch, where the store cannot push the change. */
export const LIVE_REFRESH_MS = 1000;

/** A reader that asks `resolve` for the live handle at most every `maxAgeMs`, and in between uses the last one. */
export function followLive(
  resolve: () => Promise<ReadModelHandle>,
  maxAgeMs = LIVE_REFRESH_MS,
): ReadModelHandle {
  let cached: { handle: ReadModelHandle; at: number } | null = null;
  let pending: Promise<ReadModelHandle> | null = null;
  const current = async (): Promise<ReadModelHandle> => {
    if (cached !== null && Date.now() - cached.at < maxAgeMs) return cached.handle;
    pending ??= resolve()
      .then((handle) => {
        cached = { handle, at: Date.now() };
        return handle;
      })
      .finally(() => {
        pending = null;
      });
    return pending;
  };
  return {
    get: async (key) => (await current()).get(key),
    find: async (query) => (await current()).find(query),
    getMany: async (keys) => getMany(await current(), keys),
  };
}
