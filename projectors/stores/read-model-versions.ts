import type Database from 'better-sqlite3';
import { StoreError } from '../../lib/errors.js';

/**
 * Versions of an embedded read model, built side by side (blue/green) in read-models.db.
 *
 * Version 1 is the definition's own tables (rm_doc__<rm>, the shared rm_row__<table>), so a
 * database from before versions existed needs no migration: with no registry rows, version 1
 * is live. A replay builds version N ≥ 2 into tables of its own (rm_doc__<rm>__v<N> and one
 * rm_row__<table>__<rm>__v<N> per captured table its view reads), which nothing else writes.
 * `rm_versions` records each version's state; exactly one version per read model is live, and
 * a switch changes which, in one transaction, so a reader sees the old or the new one, never
 * neither.
 */

export const VERSION_STATES = ['building', 'ready', 'live', 'retired'] as const;
export type VersionState = (typeof VERSION_STATES)[number];

/** The definition's own tables: live until a switch, and never dropped. */
export const DEFAULT_VERSION = 1;

/**
 * Allowed moves: a build finishes (building → ready); a switch makes a ready or retired
 * version live and retires the live one. A live version is only ever left by a switch to
 * another, so one is always live.
 */
const TRANSITIONS: Readonly<Record<VersionState, readonly VersionState[]>> = {
  building: ['ready'],
  ready: ['live'],
  live: ['retired'],
  retired: ['live'],
};

export function canTransition(from: VersionState, to: VersionState): boolean {
  return TRANSITIONS[from].includes(to);
}

export function checkTransition(
  readModel: string,
  version: number,
  from: VersionState,
  to: VersionState,
): void {
  if (canTransition(from, to)) return;
  throw new StoreError(
    'VERSION_STATE_INVALID',
    `${readModel} version ${version} is ${from}; it cannot become ${to}`,
    {
      hint:
        from === 'building'
          ? 'its replay has not finished (or was interrupted): run `replay` again for a new version'
          : 'see `cqrs-migrate read-model versions <read-model>`',
    },
  );
}

const quote = (identifier: string) => `"${identifier.replaceAll('"', '""')}"`;

/** The document table of `readModel`'s version (unquoted). */
export function docTableName(readModel: string, version: number): string {
  return version === DEFAULT_VERSION ? `rm_doc__${readModel}` : `rm_doc__${readModel}__v${version}`;
}

/** The row table of captured `table` that `readModel`'s version reads (unquoted). */
export function rowTableName(table: string, readModel: string | null, version: number): string {
  return version === DEFAULT_VERSION || readModel === null
    ? `rm_row__${table}`
    : `rm_row__${table}__${readModel}__v${version}`;
}

/** The projector checkpoint row a version's replay keeps while it builds. */
export function buildCheckpointName(readModel: string, version: number): string {
  return `rm-version:${readModel}:v${version}`;
}

export interface VersionRecord {
  readModel: string;
  version: number;
  state: VersionState;
  /** First event position applied (an empty model before it); null: from the first event. */
  fromPosition: number | null;
  /** Last event position applied for a frozen (--to) version; null: maintained with the live one. */
  toPosition: number | null;
  /** Built up to a point in the past and not maintained since. */
  frozen: boolean;
  createdAt: string;
  builtAt: string | null;
  /** Position the build reached (the live checkpoint when it was handed over). */
  builtTo: number | null;
  /** When it last became live; the rollback target is the retired version switched to most recently. */
  switchedAt: string | null;
}

interface Row {
  read_model: string;
  version: number;
  state: VersionState;
  from_position: number | null;
  to_position: number | null;
  frozen: number;
  created_at: string;
  built_at: string | null;
  built_to: number | null;
  switched_at: string | null;
}

const toRecord = (r: Row): VersionRecord => ({
  readModel: r.read_model,
  version: r.version,
  state: r.state,
  fromPosition: r.from_position,
  toPosition: r.to_position,
  frozen: r.frozen === 1,
  createdAt: r.created_at,
  builtAt: r.built_at,
  builtTo: r.built_to,
  switchedAt: r.switched_at,
});

const SCHEMA = `CREATE TABLE IF NOT EXISTS rm_versions (
  read_model TEXT NOT NULL, version INTEGER NOT NULL CHECK (version >= 1),
  state TEXT NOT NULL CHECK (state IN ('building', 'ready', 'live', 'retired')),
  from_position INTEGER, to_position INTEGER, frozen INTEGER NOT NULL DEFAULT 0,
  created_at TEXT NOT NULL, built_at TEXT, built_to INTEGER, switched_at TEXT,
  PRIMARY KEY (read_model, version))`;

/** Whether `db` has the registry (a read-only connection cannot create it). */
function hasRegistry(db: Database.Database): boolean {
  return (
    db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'rm_versions'").get() !==
    undefined
  );
}

/**
 * Live version of every read model that has a registry row (absent: version 1). One query:
 * readers call it when the registry may have changed, never per request.
 */
export function liveVersions(db: Database.Database): Map<string, number> {
  if (!hasRegistry(db)) return new Map();
  const rows = db.prepare("SELECT read_model, version FROM rm_versions WHERE state = 'live'").all() as Array<{
    read_model: string;
    version: number;
  }>;
  return new Map(rows.map((r) => [r.read_model, r.version]));
}

/** Versions the live projector applies every batch to, beside version 1: built, not frozen. */
export function maintainedVersions(db: Database.Database): Array<{ readModel: string; version: number }> {
  if (!hasRegistry(db)) return [];
  const rows = db
    .prepare(
      `SELECT read_model, version FROM rm_versions
       WHERE version <> ${DEFAULT_VERSION} AND frozen = 0 AND state IN ('ready', 'live', 'retired')
       ORDER BY read_model, version`,
    )
    .all() as Array<{ read_model: string; version: number }>;
  return rows.map((r) => ({ readModel: r.read_model, version: r.version }));
}

/**
 * Creates the registry's table where it is missing. Checked with a read first: even a CREATE
 * TABLE IF NOT EXISTS waits for the write lock, which the projector's thread may hold for a
 * whole catch-up composition, longer than the busy timeout.
 */
export function ensureVersionRegistry(db: Database.Database): void {
  if (!hasRegistry(db)) db.exec(SCHEMA);
}

/** The registry over a writable read-model database. */
export class VersionRegistry {
  constructor(private readonly db: Database.Database) {
    ensureVersionRegistry(db);
  }

  list(readModel: string): VersionRecord[] {
    const rows = this.db
      .prepare('SELECT * FROM rm_versions WHERE read_model = ? ORDER BY version')
      .all(readModel) as Row[];
    // Version 1 is there whether or not a row records it.
    if (!rows.some((r) => r.version === DEFAULT_VERSION)) {
      const anyLive = rows.some((r) => r.state === 'live');
      return [
        {
          readModel,
          version: DEFAULT_VERSION,
          state: anyLive ? 'retired' : 'live',
          fromPosition: null,
          toPosition: null,
          frozen: false,
          createdAt: '',
          builtAt: null,
          builtTo: null,
          switchedAt: null,
        },
        ...rows.map(toRecord),
      ];
    }
    return rows.map(toRecord);
  }

  get(readModel: string, version: number): VersionRecord {
    const found = this.list(readModel).find((v) => v.version === version);
    if (found === undefined) {
      throw new StoreError('VERSION_UNKNOWN', `${readModel} has no version ${version}`, {
        hint: `see \`cqrs-migrate read-model versions ${readModel}\``,
      });
    }
    return found;
  }

  live(readModel: string): VersionRecord {
    return this.list(readModel).find((v) => v.state === 'live') as VersionRecord;
  }

  /** Records a new version (the next number) as building. */
  create(
    readModel: string,
    range: { fromPosition: number | null; toPosition: number | null },
  ): VersionRecord {
    return this.db.transaction(() => {
      this.recordDefault(readModel);
      const max = this.db
        .prepare('SELECT MAX(version) FROM rm_versions WHERE read_model = ?')
        .pluck()
        .get(readModel) as number;
      const version = max + 1;
      this.db
        .prepare(
          `INSERT INTO rm_versions (read_model, version, state, from_position, to_position, frozen, created_at)
           VALUES (?, ?, 'building', ?, ?, ?, ?)`,
        )
        .run(
          readModel,
          version,
          range.fromPosition,
          range.toPosition,
          range.toPosition === null ? 0 : 1,
          new Date().toISOString(),
        );
      return this.get(readModel, version);
    })();
  }

  /** A finished build; `builtTo` is the position it reached. */
  markReady(readModel: string, version: number, builtTo: number): void {
    const current = this.get(readModel, version);
    checkTransition(readModel, version, current.state, 'ready');
    this.db
      .prepare(
        "UPDATE rm_versions SET state = 'ready', built_at = ?, built_to = ? WHERE read_model = ? AND version = ?",
      )
      .run(new Date().toISOString(), builtTo, readModel, version);
  }

  /**
   * Makes `version` live and retires the live one, in one transaction. A frozen version stopped
   * at a past point and falls behind from there, so it goes live only when `force`d.
   */
  switchTo(readModel: string, version: number, force = false): { from: number; to: number } {
    return this.db.transaction(() => {
      this.recordDefault(readModel);
      const target = this.get(readModel, version);
      const live = this.live(readModel);
      if (target.version === live.version) return { from: live.version, to: live.version };
      checkTransition(readModel, version, target.state, 'live');
      if (target.frozen && !force) {
        throw new StoreError(
          'VERSION_FROZEN',
          `${readModel} version ${version} was built up to position ${target.toPosition} (--to) and is not maintained: it would serve a past state`,
          { hint: 'replay without --to for a version that stays current; --force switches anyway' },
        );
      }
      const set = this.db.prepare(
        'UPDATE rm_versions SET state = ?, switched_at = COALESCE(?, switched_at) WHERE read_model = ? AND version = ?',
      );
      set.run('retired', null, readModel, live.version);
      set.run('live', new Date().toISOString(), readModel, version);
      return { from: live.version, to: version };
    })();
  }

  /** Back to the version that was live before the live one: the retired one switched to most recently. */
  previous(readModel: string): VersionRecord {
    const retired = this.list(readModel)
      .filter((v) => v.state === 'retired')
      .sort((a, b) => (b.switchedAt ?? '').localeCompare(a.switchedAt ?? '') || b.version - a.version);
    const previous = retired.find((v) => v.switchedAt !== null) ?? retired.find((v) => v.version === 1);
    if (previous === undefined) {
      throw new StoreError(
        'VERSION_NO_PREVIOUS',
        `${readModel} has no earlier live version to roll back to`,
        {
          hint: `see \`cqrs-migrate read-model versions ${readModel}\``,
        },
      );
    }
    return previous;
  }

  /** Throws VERSION_DROP_REFUSED for the live version and version 1. */
  checkDroppable(readModel: string, version: number): void {
    const target = this.get(readModel, version);
    if (version === DEFAULT_VERSION) {
      throw new StoreError('VERSION_DROP_REFUSED', `${readModel} version 1 is the definition's own tables`, {
        hint: 'the projector always maintains version 1 (rebuild empties it); drop only replayed versions',
      });
    }
    if (target.state === 'live') {
      throw new StoreError('VERSION_DROP_REFUSED', `${readModel} version ${version} is live`, {
        hint: 'switch to another version (or roll back) first',
      });
    }
  }

  /** Removes a version's tables, checkpoint and record in one transaction; never the live one or version 1. */
  drop(readModel: string, version: number, tables: readonly string[]): void {
    this.db.transaction(() => {
      this.checkDroppable(readModel, version);
      for (const table of tables) this.db.exec(`DROP TABLE IF EXISTS ${quote(table)}`);
      this.db
        .prepare('DELETE FROM projector_checkpoints WHERE name = ?')
        .run(buildCheckpointName(readModel, version));
      this.db.prepare('DELETE FROM rm_versions WHERE read_model = ? AND version = ?').run(readModel, version);
    })();
  }

  /** Writes version 1's row the first time the registry concerns this read model. */
  private recordDefault(readModel: string): void {
    this.db
      .prepare(
        `INSERT OR IGNORE INTO rm_versions (read_model, version, state, created_at, switched_at)
         VALUES (?, ${DEFAULT_VERSION}, 'live', ?, NULL)`,
      )
      .run(readModel, new Date().toISOString());
  }
}
