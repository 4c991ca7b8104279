import { z } from 'zod';
import { isObject } from '../../lib/guards.js';
import { type ChangeEvent, type Op, type Row, type SourceInfo, sourcePositionOf } from '../change-event.js';
import {
  type ColumnSchema,
  columnSchema,
  normaliseColumnValue,
  type SourceFlavour,
  untypedValue,
} from './column-value.js';
import { parseEnvelope } from './envelope-text.js';
import { DebeziumRecordError, DebeziumTruncateError } from './errors.js';
import { parseJsonKeepingBigInts } from './json-text.js';

/**
 * Debezium Kafka records → ChangeEvent, yielding the same values as the embedded binlog
 * reader so both CDC paths are interchangeable. Input is a record value written by the JSON
 * converter, with schemas (`{schema, payload}`, what connectors/debezium/config.ts sets up)
 * or without (bare payload: values then pass through untyped, so DECIMAL scale padding and
 * temporal formatting need the schema). Also parses the `<prefix>.transaction` topic.
 */

/** A Kafka record value as kafkajs hands it over; null is a tombstone. */
export type RecordValue = string | Uint8Array | null | undefined;

const intLike = z.union([z.number().int(), z.string().regex(/^-?\d+$/)]);
type IntLike = z.infer<typeof intLike>;

const rowObject = z.record(z.string(), z.unknown());

const debeziumSource = z
  .object({
    version: z.string(),
    connector: z.enum(['mariadb', 'mysql', 'postgresql']),
    name: z.string(),
    ts_ms: intLike,
    // An io.debezium.data.Enum string; older docs show a boolean. Absent/null while streaming.
    snapshot: z.union([z.string(), z.boolean()]).nullable().optional(),
    db: z.string(),
    table: z.string().nullable().optional(),
    schema: z.string().nullable().optional(),
    server_id: intLike.nullable().optional(),
    gtid: z.string().nullable().optional(),
    file: z.string().nullable().optional(),
    pos: intLike.nullable().optional(),
    row: intLike.nullable().optional(),
    lsn: intLike.nullable().optional(),
    txId: intLike.nullable().optional(),
  })
  .loose();
type DebeziumSource = z.infer<typeof debeziumSource>;

const changePayload = z
  .object({
    op: z.string(),
    before: rowObject.nullable().optional(),
    after: rowObject.nullable().optional(),
    source: debeziumSource,
    ts_ms: intLike.nullable().optional(),
    transaction: z
      .object({ id: z.string(), total_order: intLike, data_collection_order: intLike })
      .loose()
      .nullable()
      .optional(),
  })
  .loose();

const envelopeSchema = z
  .object({
    type: z.literal('struct'),
    fields: z.array(
      z.object({ field: z.string(), type: z.string(), fields: z.array(columnSchema).optional() }).loose(),
    ),
  })
  .loose();

export const transactionMarkerSchema = z.object({
  status: z.enum(['BEGIN', 'END']),
  id: z.string(),
  ts_ms: z.number().int(),
  /** Events the transaction emitted, on END markers; null on BEGIN. */
  event_count: z.number().int().nullable(),
  data_collections: z
    .array(z.object({ data_collection: z.string(), event_count: z.number().int() }))
    .nullable(),
});
export type TransactionMarker = z.infer<typeof transactionMarkerSchema>;

const POSTGRES_TRANSACTION_ID = /^(\d+):\d+$/;

/**
 * The id that names one source transaction on every path. Debezium's PostgreSQL connector
 * writes "<txId>:<LSN>" with the LSN of the record at hand, so the events of one transaction
 * and its BEGIN/END markers all carry different ids (seen on Debezium 3.1); the txId alone
 * names the transaction, as on the embedded pgoutput reader. Binlog ids (MariaDB "0-1-42",
 * MySQL "<uuid>:42") never match the two-number form and pass unchanged.
 */
export function transactionIdOf(id: string): string {
  return POSTGRES_TRANSACTION_ID.exec(id)?.[1] ?? id;
}

/** Raw record value → parsed JSON (big integers kept exact), or null for a tombstone. */
export function decodeRecordValue(raw: RecordValue): unknown {
  if (raw === null || raw === undefined) return null;
  const bytes =
    typeof raw === 'string'
      ? Buffer.from(raw, 'utf8')
      : Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength);
  const envelope = parseEnvelope(bytes);
  if (envelope !== null) return envelope;
  const text = typeof raw === 'string' ? raw : bytes.toString('utf8');
  if (text.trim() === '' || text.trim() === 'null') return null;
  try {
    return parseJsonKeepingBigInts(text);
  } catch (err) {
    throw new DebeziumRecordError(`record value is not JSON: ${text.slice(0, 120)}`, { cause: err });
  }
}

export function parseChangeRecord(raw: RecordValue): ChangeEvent | null {
  return parseMarkedChangeRecord(raw)?.event ?? null;
}

/** A change event, and whether Debezium marked it its table's last snapshot row. */
export interface MarkedChange {
  event: ChangeEvent;
  /** source.snapshot was last_in_data_collection (the contract's enum keeps only the whole snapshot's ends). */
  lastOfTable: boolean;
}

export function parseMarkedChangeRecord(raw: RecordValue): MarkedChange | null {
  const value = decodeRecordValue(raw);
  return value === null ? null : toMarkedChange(value);
}

export function parseTransactionRecord(raw: RecordValue): TransactionMarker | null {
  const value = decodeRecordValue(raw);
  return value === null ? null : toTransactionMarker(value);
}

/** `{schema, payload}` from a converter with schemas enabled, else the bare payload. */
function unwrap(value: unknown): { schema: unknown; payload: unknown } {
  if (isObject(value) && 'payload' in value && 'schema' in value) {
    return { schema: value.schema, payload: value.payload };
  }
  return { schema: null, payload: value };
}

function parseWith<S extends z.ZodType>(schema: S, value: unknown, what: string): z.output<S> {
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    throw new DebeziumRecordError(`not a Debezium ${what}: ${z.prettifyError(parsed.error)}`, {
      cause: parsed.error,
    });
  }
  return parsed.data;
}

function safeInt(v: IntLike, field: string): number {
  const n = Number(v);
  if (!Number.isSafeInteger(n)) throw new DebeziumRecordError(`${field} ${v} is not a safe integer`);
  return n;
}

/** PostgreSQL's text form of an LSN: two uppercase hex halves, "16/B374D848". */
export function formatLsn(lsn: IntLike): string {
  const n = BigInt(lsn);
  return `${(n >> 32n).toString(16).toUpperCase()}/${(n & 0xffffffffn).toString(16).toUpperCase()}`;
}

/**
 * Debezium also marks the first/last row of each table in a snapshot
 * (first_in_data_collection / last_in_data_collection); our contract only distinguishes the
 * first and last row of the whole snapshot, so those are plain snapshot rows.
 */
function snapshotOf(v: DebeziumSource['snapshot']): SourceInfo['snapshot'] {
  if (v === undefined || v === null || v === false || v === 'false') return 'false';
  if (v === true || v === 'true' || v === 'first_in_data_collection' || v === 'last_in_data_collection') {
    return 'true';
  }
  if (v === 'first' || v === 'last' || v === 'incremental') return v;
  throw new DebeziumRecordError(`unknown source.snapshot value ${JSON.stringify(v)}`);
}

function sourceInfoOf(s: DebeziumSource): SourceInfo {
  if (s.table === undefined || s.table === null) {
    throw new DebeziumRecordError('source.table is missing: not a row change record');
  }
  const info: SourceInfo = {
    version: s.version,
    connector: s.connector,
    name: s.name,
    ts_ms: safeInt(s.ts_ms, 'source.ts_ms'),
    snapshot: snapshotOf(s.snapshot),
    db: s.db,
    table: s.table,
  };
  if (s.connector === 'postgresql') {
    if (s.schema !== undefined && s.schema !== null) info.schema = s.schema;
    if (s.lsn !== undefined && s.lsn !== null) info.lsn = formatLsn(s.lsn);
    if (s.txId !== undefined && s.txId !== null) info.txId = safeInt(s.txId, 'source.txId');
    return info;
  }
  if (s.server_id !== undefined && s.server_id !== null)
    info.server_id = safeInt(s.server_id, 'source.server_id');
  info.gtid = s.gtid ?? null;
  if (s.file !== undefined && s.file !== null) info.file = s.file;
  if (s.pos !== undefined && s.pos !== null) info.pos = safeInt(s.pos, 'source.pos');
  if (s.row !== undefined && s.row !== null) info.row = safeInt(s.row, 'source.row');
  return info;
}

/** Column schemas by envelope schema: records of one table share its parsed schema (envelope-text.ts). */
const columnsBySchema = new WeakMap<object, Map<string, ColumnSchema>>();

/** Column schemas of the table, from the envelope's `after` (or `before`) struct. */
function rowColumns(schema: unknown): Map<string, ColumnSchema> | null {
  if (schema === null || schema === undefined) return null;
  if (typeof schema !== 'object') return columnsOf(schema);
  let columns = columnsBySchema.get(schema);
  if (columns === undefined) {
    columns = columnsOf(schema);
    columnsBySchema.set(schema, columns);
  }
  return columns;
}

function columnsOf(schema: unknown): Map<string, ColumnSchema> {
  const envelope = parseWith(envelopeSchema, schema, 'envelope schema');
  const rowStruct =
    envelope.fields.find((f) => f.field === 'after') ?? envelope.fields.find((f) => f.field === 'before');
  if (rowStruct?.fields === undefined)
    throw new DebeziumRecordError('envelope schema has no before/after struct');
  return new Map(rowStruct.fields.map((c) => [c.field, c]));
}

function rowOf(
  row: Record<string, unknown> | null | undefined,
  columns: Map<string, ColumnSchema> | null,
  flavour: SourceFlavour,
): Row | null {
  if (row === null || row === undefined) return null;
  const out: Row = {};
  for (const [name, value] of Object.entries(row)) {
    if (columns === null) {
      out[name] = untypedValue(value);
      continue;
    }
    const column = columns.get(name);
    if (column === undefined) throw new DebeziumRecordError(`column ${name} is not in the record's schema`);
    out[name] = normaliseColumnValue(column, value, flavour);
  }
  return out;
}

type ChangePayload = z.output<typeof changePayload>;

const isInt = (v: unknown): boolean =>
  typeof v === 'number' ? Number.isSafeInteger(v) : typeof v === 'string' && /^-?\d+$/.test(v);
const isAbsent = (v: unknown): v is null | undefined => v === null || v === undefined;
const optionalInt = (v: unknown): boolean => isAbsent(v) || isInt(v);
const optionalText = (v: unknown): boolean => isAbsent(v) || typeof v === 'string';
const isRow = (v: unknown): boolean =>
  isObject(v) && (Object.getPrototypeOf(v) === Object.prototype || Object.getPrototypeOf(v) === null);
const CONNECTORS: ReadonlySet<unknown> = new Set(['mariadb', 'mysql', 'postgresql']);

/**
 * The payload as changePayload would accept it, checked by hand, or null to let the schema
 * decide (and say what is wrong). Every row change goes through here: zod's parse copied the
 * payload, its source block and both row images per record, a share of the translator's CPU
 * and garbage; nothing the schema refuses passes here.
 */
function checkedPayload(p: unknown): ChangePayload | null {
  if (!isObject(p) || typeof p.op !== 'string' || !optionalInt(p.ts_ms)) return null;
  if (!(isAbsent(p.before) || isRow(p.before)) || !(isAbsent(p.after) || isRow(p.after))) return null;
  const s = p.source;
  if (
    !isObject(s) ||
    typeof s.version !== 'string' ||
    !CONNECTORS.has(s.connector) ||
    typeof s.name !== 'string' ||
    !isInt(s.ts_ms) ||
    !(isAbsent(s.snapshot) || typeof s.snapshot === 'string' || typeof s.snapshot === 'boolean') ||
    typeof s.db !== 'string' ||
    !optionalText(s.table) ||
    !optionalText(s.schema) ||
    !optionalText(s.gtid) ||
    !optionalText(s.file) ||
    !optionalInt(s.server_id) ||
    !optionalInt(s.pos) ||
    !optionalInt(s.row) ||
    !optionalInt(s.lsn) ||
    !optionalInt(s.txId)
  )
    return null;
  const t = p.transaction;
  if (
    !isAbsent(t) &&
    !(isObject(t) && typeof t.id === 'string' && isInt(t.total_order) && isInt(t.data_collection_order))
  )
    return null;
  return p as ChangePayload;
}

const OPS: ReadonlySet<string> = new Set<Op>(['c', 'u', 'd', 'r']);

function isOp(op: string): op is Op {
  return OPS.has(op);
}

/**
 * A parsed Debezium change record value (with or without schema) → validated ChangeEvent. The
 * record is validated where it enters (changePayload) and every value is normalised to a
 * RowValue by its column's schema, so the event is built typed rather than checked again with
 * changeEventSchema: that second pass cost as much as the first, per record.
 */
export function toChangeEvent(value: unknown): ChangeEvent {
  return toMarkedChange(value).event;
}

function toMarkedChange(value: unknown): MarkedChange {
  const { schema, payload } = unwrap(value);
  const p = checkedPayload(payload) ?? parseWith(changePayload, payload, 'change event');
  const source = sourceInfoOf(p.source);
  if (p.op === 't') {
    throw new DebeziumTruncateError(
      `${source.schema ?? source.db}.${source.table}`,
      sourcePositionOf({ source }),
    );
  }
  if (!isOp(p.op)) {
    throw new DebeziumRecordError(`unsupported Debezium op "${p.op}" (only c, u, d, r carry row changes)`);
  }
  const flavour: SourceFlavour = source.connector === 'postgresql' ? 'postgresql' : 'binlog';
  const columns = rowColumns(schema);
  const before = rowOf(p.before, columns, flavour);
  const after = rowOf(p.after, columns, flavour);
  if (p.op === 'd' ? before === null : after === null) {
    throw new DebeziumRecordError(`op "${p.op}" without ${p.op === 'd' ? 'before' : 'after'} row image`);
  }
  const event: ChangeEvent = {
    before,
    after,
    source,
    op: p.op,
    ts_ms: p.ts_ms === undefined || p.ts_ms === null ? source.ts_ms : safeInt(p.ts_ms, 'ts_ms'),
    transaction:
      p.transaction === undefined || p.transaction === null
        ? null
        : {
            id: transactionIdOf(p.transaction.id),
            total_order: safeInt(p.transaction.total_order, 'transaction.total_order'),
            data_collection_order: safeInt(
              p.transaction.data_collection_order,
              'transaction.data_collection_order',
            ),
          },
  };
  return { event, lastOfTable: p.source.snapshot === 'last_in_data_collection' };
}

const transactionPayload = z
  .object({
    status: z.enum(['BEGIN', 'END']),
    id: z.string(),
    ts_ms: intLike,
    event_count: intLike.nullable().optional(),
    data_collections: z
      .array(z.object({ data_collection: z.string(), event_count: intLike }).loose())
      .nullable()
      .optional(),
  })
  .loose();

/** A parsed `<prefix>.transaction` record value → BEGIN/END marker. */
export function toTransactionMarker(value: unknown): TransactionMarker {
  const p = parseWith(transactionPayload, unwrap(value).payload, 'transaction metadata record');
  return {
    status: p.status,
    id: transactionIdOf(p.id),
    ts_ms: safeInt(p.ts_ms, 'ts_ms'),
    event_count:
      p.event_count === undefined || p.event_count === null ? null : safeInt(p.event_count, 'event_count'),
    data_collections:
      p.data_collections === undefined || p.data_collections === null
        ? null
        : p.data_collections.map((c) => ({
            data_collection: c.data_collection,
            event_count: safeInt(c.event_count, 'data_collections.event_count'),
          })),
  };
}
