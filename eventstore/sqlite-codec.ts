import { z } from 'zod';
import { changeEventSchema, opSchema, type SourceOffset } from '../connectors/change-event.js';
import { errorMessage, StoreError } from '../lib/errors.js';
import { STORED_DATA_JSON } from './event-encoding.js';
import type { EventMetadata, StoredDeadLetter, StoredEvent } from './ports.js';

/**
 * Decoding of the SQLite event store's rows. Events are the store's own output (JSON.stringify
 * of events the mapping built, in a STRICT table) and are read far more often than anything
 * else: every projector batch, replay and time travel decodes them, so they are trusted on read
 * (JSON.parse, no schema; a zod pass over every event was ~9% of a replay's CPU). A row that is
 * not even JSON objects still fails with its position. Dead letters (re-driven after an
 * operator's rule fix) and offsets (read once per start) are checked with their schemas.
 */

const jsonText = <T extends z.ZodType>(schema: T) =>
  z.string().transform((text, ctx): z.output<T> => {
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      ctx.addIssue({ code: 'custom', message: 'not valid JSON' });
      return z.NEVER;
    }
    const parsed = schema.safeParse(value);
    if (parsed.success) return parsed.data;
    for (const issue of parsed.error.issues)
      ctx.addIssue({ code: 'custom', path: issue.path, message: issue.message });
    return z.NEVER;
  });

/**
 * An `events` row as SQLite returns it in raw mode, in EVENT_COLUMNS order: STRICT columns, so
 * the types hold. Raw: an array per row costs less than an object with eight named keys, and a
 * replay reads every row of the store.
 */
export type EventRow = [
  position: number,
  streamId: string,
  streamType: string,
  version: number,
  type: string,
  data: string,
  metadata: string,
  recordedAt: string,
];

/** The columns of EventRow, in its order. */
export const EVENT_COLUMNS = 'position, stream_id, stream_type, version, type, data, metadata, recorded_at';

const deadLetterRowSchema = z.object({
  id: z.number().int(),
  reason: z.string(),
  table_name: z.string(),
  op: opSchema,
  source_position: z.string(),
  source_tx_id: z.string(),
  change: jsonText(changeEventSchema),
  recorded_at: z.string(),
});

const offsetSchema = jsonText(z.record(z.string(), z.unknown()));

function fail(what: string, error: z.ZodError): never {
  const detail = error.issues
    .map((i) => `${i.path.map(String).join('.') || '(row)'}: ${i.message}`)
    .join('; ');
  throw new StoreError('STORE_CORRUPT', `event store holds an unreadable ${what}: ${detail}`, {
    cause: error,
  });
}

/**
 * Event rows the store wrote itself, in order: parsed, not validated (see the module comment).
 * Consecutive rows with the same metadata text share one parsed metadata object: a snapshot
 * chunk's events all carry the same metadata (their source transaction, position and commit
 * time), and parsing it again per event was a third of the CPU decoding their rows. Nothing
 * writes to an event's metadata (projections get it to read).
 */
export function decodeEvents(rows: readonly EventRow[]): StoredEvent[] {
  const events = new Array<StoredEvent>(rows.length);
  let text: string | undefined;
  let metadata: EventMetadata | undefined;
  for (let i = 0; i < rows.length; i++) {
    const row = rows[i] as EventRow;
    if (metadata === undefined || row[6] !== text) {
      text = row[6];
      metadata = storedMetadata(row[0], text);
    }
    events[i] = eventOf(row, metadata);
  }
  return events;
}

function storedMetadata(position: number, text: string): EventMetadata {
  const metadata = storedObject(position, text, 'metadata') as unknown as EventMetadata;
  // Stores written before the key existed lack it; '' sorts before every real key.
  if (metadata.sourceOrder === undefined) metadata.sourceOrder = '';
  return metadata;
}

function eventOf(row: EventRow, metadata: EventMetadata): StoredEvent {
  const position = row[0];
  const dataText = row[5];
  return {
    position,
    streamId: row[1],
    streamType: row[2],
    version: row[3],
    type: row[4],
    data: storedObject(position, dataText, 'data'),
    metadata,
    recordedAt: row[7],
    [STORED_DATA_JSON]: dataText,
  } as StoredEvent;
}

function storedObject(position: number, text: string, column: 'data' | 'metadata'): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (cause) {
    throw corruptEvent(position, column, `not valid JSON (${errorMessage(cause)})`, cause);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw corruptEvent(position, column, 'not a JSON object');
  return value as Record<string, unknown>;
}

function corruptEvent(position: number, column: string, problem: string, cause?: unknown): StoreError {
  return new StoreError(
    'STORE_CORRUPT',
    `event store holds an unreadable event row position=${position}: ${column}: ${problem}`,
    {
      cause,
      hint: 'the events table was changed outside cqrs-migrate: restore the file from a backup, or rebuild it with a resnapshot into an empty data directory',
    },
  );
}

export function decodeDeadLetter(row: unknown): StoredDeadLetter {
  const parsed = deadLetterRowSchema.safeParse(row);
  if (!parsed.success) fail(`dead letter ${describeKey(row, 'id')}`, parsed.error);
  const r = parsed.data;
  return {
    id: r.id,
    reason: r.reason,
    table: r.table_name,
    op: r.op,
    sourcePosition: r.source_position,
    sourceTxId: r.source_tx_id,
    change: r.change,
    recordedAt: r.recorded_at,
  };
}

export function decodeOffset(sourceName: string, text: unknown): SourceOffset {
  const parsed = offsetSchema.safeParse(text);
  if (!parsed.success) fail(`offset of source ${sourceName}`, parsed.error);
  return parsed.data;
}

function describeKey(row: unknown, key: string): string {
  return typeof row === 'object' && row !== null && key in row
    ? `${key}=${String(Reflect.get(row, key))}`
    : '';
}
