import { mkdirSync } from 'node:fs';
import { mapTransaction } from '../connectors/mapping/mapper.js';
import { driftReport, remapDeadLetter } from '../connectors/mapping/redrive.js';
import { isTruncate, truncateHint } from '../connectors/mapping/schema-check.js';
import { createChangeSource } from '../connectors/source-factory.js';
import type { Migration } from '../definition/migration.js';
import type { DeadLetterFilter, DeadLetterStatus } from '../eventstore/ports.js';
import { SqliteEventStore } from '../eventstore/sqlite.js';
import { type Config, dataPath } from '../lib/config.js';
import { lockDataDir } from '../lib/data-lock.js';
import { ConfigError } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';
import { isMaskedValue } from '../lib/masking.js';
import type { DeadLettersOptions, JsonOptions, RedriveOptions, ResnapshotOptions } from './program.js';

/**
 * The operator's commands on what the capture rules rejected: list dead letters, re-drive them
 * through the definition's current rules, report drift, show schema changes. Commands that
 * append hold the data directory's lock, so they never run beside a live `run`.
 */

type Print = (line: string) => void;
const PAGE = 1000;

function openStore(config: Config, logger?: Logger): SqliteEventStore {
  return new SqliteEventStore(dataPath(config, 'events.db'), logger === undefined ? {} : { logger });
}

/** Every letter matching `filter`, page by page. */
function* allLetters(
  store: SqliteEventStore,
  filter: Omit<DeadLetterFilter, 'limit'>,
): Generator<DeadLetterStatus> {
  let afterId = 0;
  for (;;) {
    const page = store.listDeadLetterStatus({ ...filter, afterId, limit: PAGE });
    yield* page;
    const last = page[page.length - 1];
    if (last === undefined || page.length < PAGE) return;
    afterId = last.id;
  }
}

const describeLetter = (d: DeadLetterStatus) =>
  `#${d.id} ${d.recordedAt} ${d.table} op=${d.op} at ${d.sourcePosition} (tx ${d.sourceTxId})${
    d.redrive === null ? '' : ` [${d.redrive.outcome} ${d.redrive.redrivenAt}]`
  }: ${d.reason}`;

export function listDeadLetters(config: Config, options: DeadLettersOptions, print: Print): number {
  const store = openStore(config);
  try {
    const filter = {
      ...(options.table === undefined ? {} : { table: options.table }),
      ...(options.since === undefined ? {} : { since: options.since }),
      ...(options.reason === undefined ? {} : { reason: options.reason }),
    };
    const letters = store.listDeadLetterStatus({ ...filter, limit: options.limit });
    if (options.json) print(JSON.stringify(letters, null, 2));
    else {
      for (const d of letters) print(describeLetter(d));
      print(`${store.countDeadLettersSync()} dead letters in total`);
    }
    return 0;
  } finally {
    store.closeSync();
  }
}

export interface RedriveSummary {
  appended: number;
  superseded: number;
  stillRejected: number;
  /** Letters stored with masked sensitive columns: their image is not the row, so they are not re-mapped. */
  masked: number;
  /** Tables whose schema-change pause the re-drive lifted (every pending letter now maps). */
  resumed: string[];
}

/**
 * Re-drives pending letters oldest first, so letters of one aggregate keep their source order;
 * the store skips a letter whose aggregate already holds a later change (redriveSync).
 */
export function redriveDeadLetters(
  config: Config,
  migration: Migration,
  options: RedriveOptions,
  logger: Logger,
  print: Print,
): number {
  mkdirSync(config.dataDir, { recursive: true });
  const lock = options.force ? lockDataDir(config.dataDir, 'dead-letters redrive') : null;
  const store = openStore(config, logger);
  try {
    const summary: RedriveSummary = { appended: 0, superseded: 0, stillRejected: 0, masked: 0, resumed: [] };
    const maskedTables = new Set<string>();
    const rejectedTables = new Set<string>();
    const seenTables = new Set<string>();
    const reasons = new Map<string, number>();
    let maps = 0;
    for (const letter of allLetters(store, {
      pendingOnly: true,
      ...(options.table === undefined ? {} : { table: options.table }),
    })) {
      seenTables.add(letter.table);
      // Re-mapping a masked image would project "***1a2b3c" as the customer's e-mail: such a row
      // must be read from the source again (resnapshot), never from its stored image.
      if (hasMaskedColumns(letter.change, migration.sensitiveColumns.get(letter.table) ?? [])) {
        summary.masked++;
        maskedTables.add(letter.table);
        rejectedTables.add(letter.table);
        continue;
      }
      const remapped = remapDeadLetter(letter, migration.rules);
      if (!remapped.ok) {
        summary.stillRejected++;
        rejectedTables.add(letter.table);
        reasons.set(remapped.reason, (reasons.get(remapped.reason) ?? 0) + 1);
        continue;
      }
      maps++;
      if (!options.force) continue;
      const outcome = store.redriveSync(letter.id, remapped.events);
      summary[outcome]++;
    }
    if (options.force) {
      for (const table of seenTables) {
        if (rejectedTables.has(table)) continue;
        if (store.resolveSchemaChangesSync(table) > 0) summary.resumed.push(table);
      }
      for (const table of options.table === undefined ? [] : [options.table]) {
        if (!seenTables.has(table) && store.resolveSchemaChangesSync(table) > 0) summary.resumed.push(table);
      }
      logger.info(summary, 'dead letters re-driven');
      print(
        `re-driven: ${summary.appended} appended, ${summary.superseded} skipped (a later change of the aggregate superseded them), ${summary.stillRejected} still rejected`,
      );
      if (summary.resumed.length > 0)
        print(`capture resumes for ${summary.resumed.join(', ')} (schema change resolved) at the next run`);
    } else {
      print(
        `would re-drive ${maps} letters (those a later change superseded are skipped); ${summary.stillRejected} are still rejected by the current rules — add --force to append`,
      );
    }
    for (const [reason, count] of [...reasons.entries()].sort((a, b) => b[1] - a[1]).slice(0, 5))
      print(`  still rejected ×${count}: ${reason}`);
    if (summary.masked > 0)
      print(
        `${summary.masked} letters keep masked sensitive columns and were left pending: read those rows again with \`cqrs-migrate resnapshot --table <t> --where <key condition> --force\` (tables: ${[...maskedTables].join(', ')})`,
      );
    return summary.stillRejected > 0 || summary.masked > 0 ? 1 : 0;
  } finally {
    store.closeSync();
    lock?.release();
  }
}

export function deadLetterDrift(
  config: Config,
  migration: Migration,
  options: JsonOptions,
  print: Print,
): number {
  const store = openStore(config);
  try {
    const report = driftReport([...allLetters(store, {})], migration.rules);
    if (options.json) print(JSON.stringify(report, null, 2));
    else if (report.length === 0) print('no dead letters: no drift');
    else
      for (const t of report) {
        print(
          `${t.table}: ${t.pending} pending since ${t.since ?? '-'} (latest ${t.latest ?? '-'}), ${t.aggregates} aggregates held back; ${t.redriven} re-driven, ${t.superseded} superseded`,
        );
        for (const r of t.reasons) print(`  ×${r.count} ${r.reason}`);
      }
    return 0;
  } finally {
    store.closeSync();
  }
}

export function showSchemaChanges(config: Config, options: JsonOptions, print: Print): number {
  const store = openStore(config);
  try {
    const changes = store.listSchemaChanges();
    if (options.json) print(JSON.stringify(changes, null, 2));
    else if (changes.length === 0) print('no schema change seen on captured tables');
    else
      for (const c of changes) {
        const state =
          c.breaks === null
            ? isTruncate(c.ddl)
              ? truncateHint(c.table)
              : 'rule still reads it'
            : c.resolvedAt === null
              ? `CAPTURE PAUSED: ${c.breaks}`
              : `resolved ${c.resolvedAt}`;
        print(`#${c.id} ${c.detectedAt} ${c.table} at ${c.sourcePosition}: ${c.ddl} — ${state}`);
      }
    return changes.some((c) => c.breaks !== null && c.resolvedAt === null) ? 1 : 0;
  } finally {
    store.closeSync();
  }
}

/**
 * Captures one table again, or the rows of --where, as snapshot events appended to the event
 * store; a whole table also removes the aggregates the source no longer has. It runs beside no
 * `run` (the data directory's lock): the live process is the store's only writer and holds the
 * replica connection, and with it stopped at offset P, the rows read now (at a later position)
 * are followed, when it restarts, by the replay of every change since P, so the read models
 * converge on the source whatever the two orders were.
 */
export async function resnapshotTable(
  config: Config,
  migration: Migration,
  options: ResnapshotOptions,
  logger: Logger,
  print: Print,
): Promise<number> {
  if (migration.ruleOf(options.table) === undefined)
    throw new ConfigError(`table ${options.table} has no capture rule in ${migration.name}`, {
      hint: `captured tables: ${migration.tables.join(', ')}`,
    });
  const source = createChangeSource(config, { tables: migration.tables, logger });
  const run = `resnapshot-${new Date().toISOString()}`;
  const scope =
    options.where === undefined ? `all of ${options.table}` : `${options.table} where ${options.where}`;
  if (!options.force) {
    const { rows } = await source.snapshotTable(options.table, options.where, run, async () => undefined);
    print(`would re-capture ${rows} rows (${scope}) — add --force to append them (stop \`run\` first)`);
    return 0;
  }
  mkdirSync(config.dataDir, { recursive: true });
  const lock = lockDataDir(config.dataDir, 'resnapshot');
  const store = openStore(config, logger);
  try {
    let events = 0;
    let deadLetters = 0;
    let removed = 0;
    const { rows } = await source.snapshotTable(options.table, options.where, run, async (tx) => {
      const mapped = mapTransaction(tx, migration.rules);
      const result = store.appendSync({
        // Its own offset row: the live source's resume point is not this one's.
        sourceName: `${source.name}:resnapshot`,
        sourceTxId: tx.id,
        offset: tx.offset,
        events: mapped.events,
        deadLetters: mapped.deadLetters,
        ...(mapped.sweep === undefined ? {} : { sweep: mapped.sweep }),
      });
      events += mapped.events.length;
      deadLetters += mapped.deadLetters.length;
      removed += result.swept ?? 0;
    });
    logger.info(
      { table: options.table, where: options.where, rows, events, removed, deadLetters },
      'resnapshot done',
    );
    print(
      `re-captured ${rows} rows (${scope}): ${events} snapshot events, ${removed} aggregates removed (gone from the source), ${deadLetters} dead letters; the next run projects them`,
    );
    return deadLetters > 0 ? 1 : 0;
  } finally {
    store.closeSync();
    lock.release();
  }
}

function hasMaskedColumns(
  change: { before: Record<string, unknown> | null; after: Record<string, unknown> | null },
  columns: readonly string[],
): boolean {
  return columns.some((c) =>
    [change.before?.[c], change.after?.[c]].some((v) => typeof v === 'string' && isMaskedValue(v)),
  );
}
