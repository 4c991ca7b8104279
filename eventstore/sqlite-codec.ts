import { z } from 'zod';
import { changeEventSchema, opSchema, type SourceOffset } from '../connectors/change-event.js';
import { StoreError } from '../lib/errors.js';
import type { StoredDeadLetter, StoredEvent } from './ports.js';

/**
 * Decoding of the SQLite event store's rows. The file is ours, but it outlives the code that
 * wrote it: rows are checked on the way out so a corrupt or foreign file fails loudly with
 * the position that is wrong instead of feeding projectors malformed events.
 */

const metadataSchema = z.object({
  op: opSchema,
  table: z.string(),
  sourcePosition: z.string(),
  // Stores written before the key existed lack it; '' sorts before every real key.
  sourceOrder: z.string().default(''),
  sourceTxId: z.string(),
  sourceTsMs: z.number().int(),
  snapshot: z.boolean(),
});

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

const eventRowSchema = z.object({
  position: z.number().int(),
  stream_id: z.string(),
  stream_type: z.string(),
  version: z.number().int(),
  type: z.string(),
  data: jsonText(z.record(z.string(), z.unknown())),
  metadata: jsonText(metadataSchema),
  recorded_at: z.string(),
});

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

export function decodeEvent(row: unknown): StoredEvent {
  const parsed = eventRowSchema.safeParse(row);
  if (!parsed.success) fail(`event row ${describeKey(row, 'position')}`, parsed.error);
  const r = parsed.data;
  return {
    position: r.position,
    streamId: r.stream_id,
    streamType: r.stream_type,
    version: r.version,
    type: r.type,
    data: r.data,
    metadata: r.metadata,
    recordedAt: r.recorded_at,
  };
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
