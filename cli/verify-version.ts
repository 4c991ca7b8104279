import type Database from 'better-sqlite3';
import type { FreshnessPort } from '../compare/ports.js';
import { SqliteComparisonRecorder } from '../compare/recorder.js';
import { notingReads } from '../definition/endpoint-calls.js';
import type { LegacyDb } from '../definition/endpoints.js';
import type { Migration } from '../definition/migration.js';
import type { Config } from '../lib/config.js';
import type { Logger } from '../lib/logger.js';
import { docTableName } from '../projectors/stores/read-model-versions.js';
import { VersionedReadModels } from '../projectors/stores/versioned-read-models.js';
import { reconcileOnce } from './reconcile.js';

/**
 * The check before a read model's version goes live: every endpoint that reads the read model
 * is reconciled against the legacy answers (a sample of its keys) with that read model
 * answering from the candidate version, and the candidate's documents are compared with the
 * live version's. Only real mismatches (mismatch, missing, error; not lag) refuse the switch:
 * the live version may itself have drifted, so differences from it are reported, not judged.
 */

/** Outcomes that refuse a switch. */
const REAL = ['mismatch', 'missing', 'error'] as const;

export interface VersionVerdict {
  readModel: string;
  version: number;
  /** Endpoints that read the read model (the others were not judged). */
  endpoints: string[];
  checked: number;
  byOutcome: Record<string, number>;
  failures: Array<{ endpoint: string; requestKey: string; outcome: string; paths: string[] }>;
  /** Documents whose JSON differs between the candidate and the live version (informational). */
  differsFromLive: { live: number; count: number; keys: string[] };
  passed: boolean;
}

export interface VerifyDeps {
  config: Config;
  migration: Migration;
  legacy: LegacyDb;
  /** A connection to read-models.db (read-only is enough). */
  readDb: Database.Database;
  freshness: FreshnessPort;
  logger: Logger;
}

export async function verifyVersion(
  deps: VerifyDeps,
  readModel: string,
  version: number,
  sample: number | undefined,
): Promise<VersionVerdict> {
  const versioned = new VersionedReadModels(deps.migration, deps.readDb);
  const candidate = versioned.with(readModel, version);
  const recorder = new SqliteComparisonRecorder({ path: ':memory:' });
  const endpoints: string[] = [];
  const byOutcome: Record<string, number> = {};
  const failures: VersionVerdict['failures'] = [];
  let checked = 0;
  try {
    // One endpoint at a time, each through a handle set that notes what it reads, so the
    // endpoints that never touch this read model are left out of the verdict.
    for (const entry of deps.migration.endpoints) {
      const read = new Set<string>();
      const watched = notingReads(candidate, read);
      const result = await reconcileOnce(
        {
          config: deps.config,
          migration: { ...deps.migration, endpoints: [entry] },
          legacy: deps.legacy,
          readModels: watched,
          freshness: deps.freshness,
          recorder,
          logger: deps.logger,
        },
        { sample },
      );
      if (!read.has(readModel)) continue;
      endpoints.push(entry.key);
      checked += result.checked;
      for (const [outcome, n] of Object.entries(result.byOutcome))
        byOutcome[outcome] = (byOutcome[outcome] ?? 0) + n;
      failures.push(...result.failures);
    }
  } finally {
    recorder.close();
  }
  const live = versioned.liveVersion(readModel);
  const differsFromLive = documentDiff(deps.readDb, readModel, live, version);
  const real = REAL.reduce((n, o) => n + (byOutcome[o] ?? 0), 0);
  return {
    readModel,
    version,
    endpoints,
    checked,
    byOutcome,
    failures,
    differsFromLive: { live, ...differsFromLive },
    passed: endpoints.length > 0 && real === 0,
  };
}

/** Keys whose document differs (or exists on one side only) between two versions. */
function documentDiff(
  db: Database.Database,
  readModel: string,
  a: number,
  b: number,
): { count: number; keys: string[] } {
  if (a === b) return { count: 0, keys: [] };
  const ta = `"${docTableName(readModel, a).replaceAll('"', '""')}"`;
  const tb = `"${docTableName(readModel, b).replaceAll('"', '""')}"`;
  const keys = new Set<string>();
  for (const [x, y] of [
    [ta, tb],
    [tb, ta],
  ] as const) {
    const rows = db
      .prepare(`SELECT key FROM (SELECT key, doc FROM ${x} EXCEPT SELECT key, doc FROM ${y})`)
      .pluck()
      .all() as string[];
    for (const k of rows) keys.add(k);
  }
  return { count: keys.size, keys: [...keys].sort().slice(0, 10) };
}

/** The verdict as lines for a terminal. */
export function renderVerdict(v: VersionVerdict): string {
  const lines = [
    `verified ${v.readModel} version ${v.version}: ${v.checked} keys of ${v.endpoints.join(', ') || 'no endpoint'} against legacy: ${
      Object.entries(v.byOutcome)
        .filter(([, n]) => n > 0)
        .map(([o, n]) => `${n} ${o}`)
        .join(', ') || 'nothing compared'
    }`,
    `  documents differing from live version ${v.differsFromLive.live}: ${v.differsFromLive.count}${v.differsFromLive.keys.length > 0 ? ` (${v.differsFromLive.keys.join(', ')}${v.differsFromLive.count > v.differsFromLive.keys.length ? ', …' : ''})` : ''}`,
  ];
  for (const f of v.failures.slice(0, 20))
    lines.push(`  ${f.outcome} ${f.endpoint} ${f.requestKey}: ${f.paths.join(', ') || '(whole answer)'}`);
  if (v.endpoints.length === 0)
    lines.push('  no endpoint with reconcile keys reads this read model: nothing verifies it');
  return `${lines.join('\n')}\n`;
}
