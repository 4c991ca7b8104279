import type Database from 'better-sqlite3';
import type { Migration } from '../../definition/migration.js';
import {
  type DocumentQuery,
  getMany,
  type ReadModelHandle,
  type ReadModels,
} from '../../definition/read-models.js';
import { DEFAULT_VERSION, liveVersions } from './read-model-versions.js';
import { releaseTurnSnapshot, SqliteReadModels } from './sqlite-read-models.js';

/**
 * The embedded read models as the read side serves them: each read model answers from its live
 * version (read-model-versions.ts). The live versions are cached; `refresh` reads them again
 * (one query) after a switch or rollback, so a request costs a map lookup, never SQL of its
 * own, and a switch is picked up without a restart.
 */
export class VersionedReadModels {
  readonly readModels: ReadModels;
  private live: Map<string, number>;
  private readonly base: ReadModels;
  private readonly versions = new Map<string, ReadModelHandle<unknown>>();

  constructor(
    private readonly migration: Migration,
    private readonly db: Database.Database,
  ) {
    this.base = new SqliteReadModels(migration).readModels(db);
    this.live = liveVersions(db);
    const handles: Record<string, ReadModelHandle<unknown>> = {};
    for (const model of migration.readModels) handles[model.name] = this.routed(model.name);
    this.readModels = handles;
  }

  /** Reads the live versions again: call after the registry changed. */
  refresh(): void {
    // A read-only connection may still hold this turn's snapshot, from before the change.
    releaseTurnSnapshot(this.db);
    this.live = liveVersions(this.db);
  }

  liveVersion(readModel: string): number {
    return this.live.get(readModel) ?? DEFAULT_VERSION;
  }

  /** The handle of one version, whether live or not (inspection, verification). */
  handleOf(readModel: string, version: number): ReadModelHandle<unknown> {
    if (version === DEFAULT_VERSION) return this.base[readModel] as ReadModelHandle<unknown>;
    const id = `${readModel}\u0000${version}`;
    let handle = this.versions.get(id);
    if (handle === undefined) {
      const store = new SqliteReadModels(this.migration, { readModel, version });
      handle = store.readModels(this.db)[readModel] as ReadModelHandle<unknown>;
      this.versions.set(id, handle);
    }
    return handle;
  }

  /** Every read model from its live version, except `readModel`, which answers from `version`. */
  with(readModel: string, version: number): ReadModels {
    return { ...this.readModels, [readModel]: this.handleOf(readModel, version) };
  }

  private routed(name: string): ReadModelHandle<unknown> {
    const current = () => this.handleOf(name, this.liveVersion(name));
    return {
      get: (key: string) => current().get(key),
      find: (query: DocumentQuery) => current().find(query),
      getMany: (keys: readonly string[]) => getMany(current(), keys),
      getJson: async (key: string) => {
        const handle = current();
        if (handle.getJson) return handle.getJson(key);
        const doc = await handle.get(key);
        return doc === null ? null : JSON.stringify(doc);
      },
      findJson: async (query: DocumentQuery) => {
        const handle = current();
        return handle.findJson
          ? handle.findJson(query)
          : (await handle.find(query)).map((d) => JSON.stringify(d));
      },
    };
  }
}
