import { existsSync } from 'node:fs';
import Database from 'better-sqlite3';
import { openLegacyDb } from '../connectors/legacy/index.js';
import type { Migration } from '../definition/migration.js';
import { SqliteEventStore } from '../eventstore/sqlite.js';
import { type Config, dataPath } from '../lib/config.js';
import { liveHolder, lockDataDir } from '../lib/data-lock.js';
import { AdapterError, ConfigError, StoreError } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';
import { type Progress, ProgressMeter } from '../lib/progress.js';
import {
  endAt,
  openEventsReadOnly,
  type ReplayPoint,
  startAfter,
  VersionBuilder,
} from '../projectors/replay.js';
import { appliedPosition } from '../projectors/runner.js';
import { readModelOf } from '../projectors/stores/read-model-documents.js';
import { type VersionRecord, VersionRegistry } from '../projectors/stores/read-model-versions.js';
import { openReadModelDb } from '../projectors/stores/sqlite.js';
import { SqliteReadModels } from '../projectors/stores/sqlite-read-models.js';
import type { ReplayJobView } from '../shadow-api/read-model-routes.js';
import { type AdminReply, adminClient, refusedLine } from './admin-client.js';
import { storedReadSide } from './stored-read-side.js';
import { renderVerdict, type VersionVerdict, verifyVersion } from './verify-version.js';

/**
 * `replay` and `read-model versions|switch|rollback|drop` on the embedded read models. With no
 * live process on the data directory the command opens it itself, under the data-directory
 * lock (as `rebuild` does); beside a live `run` it asks that process through its admin API
 * (shadow-api/read-model-routes.ts), whose projection worker builds the version between its
 * live batches. Verification always runs here: it reads read-models.db read-only and asks the
 * legacy database, so it never holds the writer.
 */

export interface ReplayIo {
  out(text: string): void;
  err(text: string): void;
  /** Whether err is a terminal (progress redrawn on one line). */
  tty: boolean;
}

export interface ReplayRequest {
  readModel: string;
  from?: ReplayPoint | undefined;
  to?: ReplayPoint | undefined;
  /** False with --no-switch: build only. */
  switch: boolean;
  sample?: number | undefined;
  force: boolean;
  url?: string | undefined;
}

/** Reconcile sample per endpoint when --sample is not given. */
export const DEFAULT_VERIFY_SAMPLE = 200;

interface Env {
  config: Config;
  migration: Migration;
  logger: Logger;
  io: ReplayIo;
}

function checkEmbedded(config: Config, what: string): void {
  if (config.cdc.mode === 'kafka') {
    throw new ConfigError(`${what} works on the embedded SQLite read models; cdc.mode is kafka`, {
      hint: 'the server stores (MongoDB, OpenSearch) replay with their own commands',
    });
  }
  if (!existsSync(dataPath(config, 'read-models.db')) || !existsSync(dataPath(config, 'events.db'))) {
    throw new AdapterError('NO_READ_MODELS', `no embedded read models in ${config.dataDir}`, {
      hint: 'start `run` (or `demo`) on this dataDir first: a replay reads its event store',
    });
  }
}

/** A line of progress: done/total, rate, ETA. */
export function progressLine(readModel: string, version: number, p: Progress): string {
  const pct = p.total === null || p.total === 0 ? 100 : Math.floor((100 * p.done) / p.total);
  const eta = p.etaSec === null ? '' : `, ETA ${p.etaSec} s`;
  return `replay ${readModel} v${version}: ${p.done}/${p.total ?? '?'} events (${pct}%), ${p.rowsPerSec} events/s${eta}`;
}

function progressPrinter(io: ReplayIo): { show(line: string): void; end(): void } {
  let last = 0;
  let shown = '';
  return {
    show(line) {
      shown = line;
      const now = Date.now();
      if (now - last < 500) return;
      last = now;
      io.err(io.tty ? `\r${line}\u001b[K` : `${line}\n`);
    },
    end() {
      if (shown !== '') io.err(io.tty ? `\r${shown}\u001b[K\n` : `${shown}\n`);
    },
  };
}

/** The data directory opened for writing under its lock, for the offline commands. */
function openOffline(config: Config, role: string, logger: Logger) {
  const lock = lockDataDir(config.dataDir, role);
  try {
    const db = openReadModelDb(dataPath(config, 'read-models.db'), logger);
    return {
      db,
      registry: new VersionRegistry(db),
      close() {
        db.close();
        lock.release();
      },
    };
  } catch (err) {
    lock.release();
    throw err;
  }
}

/** Builds the version offline: from the event store up to the live checkpoint (or --to). */
async function buildOffline(env: Env, request: ReplayRequest): Promise<VersionRecord> {
  const { config, migration, logger, io } = env;
  const opened = openOffline(config, 'replay', logger);
  const eventStore = new SqliteEventStore(dataPath(config, 'events.db'), { logger });
  const events = openEventsReadOnly(dataPath(config, 'events.db'));
  try {
    // Where the live runner resumes (ahead of its checkpoint after an interrupted catch-up).
    const live = appliedPosition(opened.db, 'read-models');
    const after = startAfter(events, request.from);
    const end = request.to === undefined ? live : endAt(events, request.to);
    const record = opened.registry.create(request.readModel, {
      fromPosition: request.from === undefined ? null : after + 1,
      toPosition: request.to === undefined ? null : end,
    });
    const builder = new VersionBuilder({
      db: opened.db,
      eventStore,
      migration,
      readModel: request.readModel,
      version: record.version,
      startAfter: after,
      upTo: () => end,
      batchSize: config.projector.batchSize,
      logger,
    });
    const meter = new ProgressMeter(Math.max(0, end - after));
    const printer = progressPrinter(io);
    const t0 = performance.now();
    for (let n = await builder.step(); n > 0; n = await builder.step())
      printer.show(progressLine(request.readModel, record.version, meter.add(n)));
    printer.end();
    builder.finish();
    opened.registry.markReady(request.readModel, record.version, end);
    const sec = (performance.now() - t0) / 1000;
    io.out(
      `built ${request.readModel} version ${record.version} from ${meter.snapshot().done} events (positions ${after + 1}..${end}) in ${sec.toFixed(1)} s${request.to === undefined ? '' : ' (frozen: not maintained past --to)'}\n`,
    );
    return opened.registry.get(request.readModel, record.version);
  } finally {
    events.close();
    await eventStore.close();
    opened.close();
  }
}

/** Asks the live process to build the version and follows its progress until it is ready. */
async function buildOnline(env: Env, request: ReplayRequest): Promise<VersionRecord> {
  const { config, io } = env;
  const call = adminClient(config, request.url);
  const path = `/admin/read-models/${encodeURIComponent(request.readModel)}`;
  const started = await call({
    method: 'POST',
    path: `${path}/replay`,
    body: {
      ...(request.from === undefined ? {} : { from: request.from }),
      ...(request.to === undefined ? {} : { to: request.to }),
    },
  });
  const job = expectOk(started) as ReplayJobView;
  const printer = progressPrinter(io);
  const t0 = performance.now();
  for (;;) {
    const reply = expectOk(await call({ method: 'GET', path: `${path}/replay` })) as ReplayJobView;
    if (reply.version === job.version) {
      const elapsed = (performance.now() - t0) / 1000;
      const rate = elapsed > 0 ? Math.round(reply.done / elapsed) : 0;
      const remaining = reply.total === null ? null : Math.max(0, reply.total - reply.done);
      printer.show(
        progressLine(request.readModel, reply.version, {
          done: reply.done,
          total: reply.total,
          rowsPerSec: rate,
          etaSec: remaining === null || rate === 0 ? null : Math.round(remaining / rate),
          elapsedSec: elapsed,
        }),
      );
      if (reply.state === 'failed') {
        printer.end();
        throw new AdapterError(
          'REPLAY_FAILED',
          `replay of ${request.readModel} v${reply.version} failed: ${reply.error ?? 'unknown'}`,
        );
      }
      if (reply.state === 'done') break;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  printer.end();
  const versions = expectOk(await call({ method: 'GET', path: `${path}/versions` })) as VersionRecord[];
  const record = versions.find((v) => v.version === job.version);
  if (record === undefined) throw new AdapterError('REPLAY_FAILED', `version ${job.version} vanished`);
  io.out(
    `built ${request.readModel} version ${record.version} in the running process up to position ${record.builtTo} in ${((performance.now() - t0) / 1000).toFixed(1)} s${record.frozen ? ' (frozen: not maintained past --to)' : '; maintained with the live version from here'}\n`,
  );
  return record;
}

function expectOk(reply: AdminReply): unknown {
  if (reply.ok) return reply.body;
  const body = reply.body as { message?: string; hint?: string; error?: string } | null;
  throw new AdapterError(body?.error ?? 'ADMIN_REFUSED', refusedLine(reply).trim(), {
    ...(body?.hint === undefined ? {} : { hint: body.hint }),
  });
}

/** Reconciles `version` against legacy with its read model answering from it (read-only). */
async function verify(
  env: Env,
  readModel: string,
  version: number,
  sample: number | undefined,
): Promise<VersionVerdict> {
  const { config, migration, logger } = env;
  const legacy = openLegacyDb(config.legacy.url, { poolSize: config.legacy.poolSize, logger });
  const stored = storedReadSide(config, migration, logger);
  const readDb = new Database(dataPath(config, 'read-models.db'), { readonly: true, fileMustExist: true });
  readDb.pragma('busy_timeout = 5000');
  try {
    return await verifyVersion(
      { config, migration, legacy, readDb, freshness: stored.freshness, logger },
      readModel,
      version,
      sample ?? DEFAULT_VERIFY_SAMPLE,
    );
  } finally {
    readDb.close();
    await stored.stop();
    await legacy.close();
  }
}

/** Every version of a read model, from the live process or the data directory. */
async function listVersions(env: Env, readModel: string, url: string | undefined): Promise<VersionRecord[]> {
  if (liveHolder(env.config.dataDir) !== null) {
    const call = adminClient(env.config, url);
    return expectOk(
      await call({ method: 'GET', path: `/admin/read-models/${encodeURIComponent(readModel)}/versions` }),
    ) as VersionRecord[];
  }
  const opened = openOffline(env.config, 'read-model versions', env.logger);
  try {
    return opened.registry.list(readModel);
  } finally {
    opened.close();
  }
}

/** One version's record (see listVersions). */
async function versionOf(
  env: Env,
  readModel: string,
  version: number,
  url: string | undefined,
): Promise<VersionRecord> {
  const versions = await listVersions(env, readModel, url);
  const found = versions.find((v) => v.version === version);
  if (found === undefined) {
    throw new StoreError('VERSION_UNKNOWN', `${readModel} has no version ${version}`, {
      hint: `see \`cqrs-migrate read-model versions ${readModel}\``,
    });
  }
  return found;
}

/** Switches atomically, offline or through the live process. */
async function doSwitch(
  env: Env,
  readModel: string,
  version: number,
  force: boolean,
  url: string | undefined,
): Promise<{ from: number; to: number }> {
  const { config, logger } = env;
  if (liveHolder(config.dataDir) !== null) {
    const call = adminClient(config, url);
    return expectOk(
      await call({
        method: 'POST',
        path: `/admin/read-models/${encodeURIComponent(readModel)}/switch`,
        body: { version, force },
      }),
    ) as { from: number; to: number };
  }
  const opened = openOffline(config, 'read-model switch', logger);
  try {
    return opened.registry.switchTo(readModel, version, force);
  } finally {
    opened.close();
  }
}

/** Verifies, then switches when nothing real differs (or --force); 0 when switched. */
async function verifiedSwitch(
  env: Env,
  readModel: string,
  version: number,
  request: { sample?: number | undefined; force: boolean; url?: string | undefined },
): Promise<number> {
  const record = await versionOf(env, readModel, version, request.url);
  // Refused before comparing anything: a past state differs from legacy by design.
  if (record.frozen && !request.force) {
    throw new StoreError(
      'VERSION_FROZEN',
      `${readModel} version ${version} was built up to position ${record.toPosition} (--to) and is not maintained: it would serve a past state`,
      { hint: 'replay without --to for a version that stays current; --force switches anyway' },
    );
  }
  const verdict = await verify(env, readModel, version, request.sample);
  const text = renderVerdict(verdict);
  if (!verdict.passed && !request.force) {
    env.io.err(text);
    env.io.err(
      `not switched: ${readModel} version ${version} differs from legacy; the live version keeps serving (--force switches anyway; \`read-model drop ${readModel} ${version} --force\` removes it)\n`,
    );
    return 1;
  }
  env.io.out(text);
  const { from, to } = await doSwitch(env, readModel, version, request.force, request.url);
  env.io.out(
    from === to
      ? `${readModel} version ${to} was already live\n`
      : `switched ${readModel} from version ${from} to ${to}${verdict.passed ? '' : ' (forced despite the differences above)'}; version ${from} is kept: \`read-model rollback ${readModel}\` returns to it\n`,
  );
  return 0;
}

export async function replayCommand(env: Env, request: ReplayRequest): Promise<number> {
  checkEmbedded(env.config, 'replay');
  readModelOf(env.migration, request.readModel);
  const online = liveHolder(env.config.dataDir) !== null;
  const record = online ? await buildOnline(env, request) : await buildOffline(env, request);
  if (!request.switch) {
    env.io.out(
      `not switched (--no-switch): \`read-model switch ${request.readModel} ${record.version}\` verifies and switches\n`,
    );
    return 0;
  }
  if (record.frozen && !request.force) {
    env.io.out(
      `not switched: version ${record.version} is frozen at position ${record.toPosition} (--to); it can be read with \`read-model versions\`, and switched to only with --force\n`,
    );
    return 0;
  }
  return verifiedSwitch(env, request.readModel, record.version, request);
}

export async function versionsCommand(
  env: Env,
  options: { readModel: string; json: boolean; url?: string | undefined },
): Promise<number> {
  checkEmbedded(env.config, 'read-model versions');
  readModelOf(env.migration, options.readModel);
  const versions = await listVersions(env, options.readModel, options.url);
  if (options.json) env.io.out(`${JSON.stringify(versions, null, 2)}\n`);
  else {
    env.io.out('version  state     built to   from      frozen  built at                  live since\n');
    for (const v of versions) {
      env.io.out(
        `${String(v.version).padEnd(8)} ${v.state.padEnd(9)} ${String(v.builtTo ?? '-').padEnd(10)} ${String(v.fromPosition ?? 'start').padEnd(9)} ${(v.frozen ? 'yes' : 'no').padEnd(7)} ${(v.builtAt ?? '-').padEnd(25)} ${v.switchedAt ?? '-'}\n`,
      );
    }
  }
  return 0;
}

export async function switchCommand(
  env: Env,
  options: {
    readModel: string;
    version: number;
    force: boolean;
    sample?: number | undefined;
    url?: string | undefined;
  },
): Promise<number> {
  checkEmbedded(env.config, 'read-model switch');
  readModelOf(env.migration, options.readModel);
  return verifiedSwitch(env, options.readModel, options.version, options);
}

export async function rollbackCommand(
  env: Env,
  options: { readModel: string; url?: string | undefined },
): Promise<number> {
  checkEmbedded(env.config, 'read-model rollback');
  readModelOf(env.migration, options.readModel);
  let result: { from: number; to: number };
  if (liveHolder(env.config.dataDir) !== null) {
    const call = adminClient(env.config, options.url);
    result = expectOk(
      await call({
        method: 'POST',
        path: `/admin/read-models/${encodeURIComponent(options.readModel)}/rollback`,
      }),
    ) as { from: number; to: number };
  } else {
    const opened = openOffline(env.config, 'read-model rollback', env.logger);
    try {
      const previous = opened.registry.previous(options.readModel);
      result = opened.registry.switchTo(options.readModel, previous.version, true);
    } finally {
      opened.close();
    }
  }
  env.io.out(`rolled ${options.readModel} back from version ${result.from} to ${result.to}\n`);
  return 0;
}

export async function dropCommand(
  env: Env,
  options: { readModel: string; version: number; force: boolean; url?: string | undefined },
): Promise<number> {
  checkEmbedded(env.config, 'read-model drop');
  readModelOf(env.migration, options.readModel);
  if (!options.force) {
    env.io.err(
      `read-model drop deletes ${options.readModel} version ${options.version}'s tables for good; add --force to do it\n`,
    );
    return 1;
  }
  if (liveHolder(env.config.dataDir) !== null) {
    const call = adminClient(env.config, options.url);
    expectOk(
      await call({
        method: 'POST',
        path: `/admin/read-models/${encodeURIComponent(options.readModel)}/drop`,
        body: { version: options.version },
      }),
    );
  } else {
    const opened = openOffline(env.config, 'read-model drop', env.logger);
    try {
      const tables = new SqliteReadModels(env.migration, {
        readModel: options.readModel,
        version: options.version,
      }).tables();
      opened.registry.drop(options.readModel, options.version, tables);
    } finally {
      opened.close();
    }
  }
  env.io.out(`dropped ${options.readModel} version ${options.version}\n`);
  return 0;
}
