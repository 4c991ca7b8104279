import type { RowValue } from '../change-event.js';
import { padToScale } from '../debezium/column-value.js';
import { formatZonedTimestamp } from '../debezium/temporal.js';

/**
 * A column value in PostgreSQL's text output form (what pgoutput sends and what a snapshot
 * query returns with text results) → the ChangeEvent value Debezium's PostgreSQL connector
 * yields for it once connectors/debezium/column-value.ts has normalised the record, so both
 * PostgreSQL CDC paths produce equal events. Sessions run with TimeZone=UTC, DateStyle=ISO and
 * lc_monetary=C. Arrays stay in the server's text form (the Debezium side writes its JSON arrays
 * in that form, connectors/debezium/pg-array.ts).
 */

/** A column's type as pgoutput's Relation message and a query's field list both describe it. */
export interface PgColumnType {
  typeOid: number;
  /** Type modifier: -1 when none was declared. */
  typeMod: number;
}

// pg_type OIDs of the built-in types that need more than the text as it is.
const BOOL = 16;
const BYTEA = 17;
const INT8 = 20;
const INT2 = 21;
const INT4 = 23;
const OID = 26;
const FLOAT4 = 700;
const FLOAT8 = 701;
const TIME = 1083;
const TIMESTAMP = 1114;
const TIMESTAMPTZ = 1184;
const NUMERIC = 1700;
const MONEY = 790;
const TIMETZ = 1266;
const BIT = 1560;
const VARBIT = 1562;
const INTERVAL = 1186;

/**
 * Fractional-second digits of TIME/TIMESTAMP[TZ]: the declared precision, else 6 — the scale
 * the JDBC metadata reports for an unconstrained column, which is what Debezium pads to.
 */
function fractionalDigits(typeMod: number): number {
  return typeMod >= 0 && typeMod <= 6 ? typeMod : 6;
}

/** NUMERIC(p,s)'s typmod is ((p << 16) | s) + 4; unconstrained NUMERIC has none. */
export function numericScale(typeMod: number): number | undefined {
  return typeMod >= 4 ? (typeMod - 4) & 0xffff : undefined;
}

/**
 * OIDs below this are the built-in types of pg_type.dat; a domain (or any user-defined type)
 * has a larger one. (FirstGenbkiObjectId in PostgreSQL's transam.h.)
 */
export const FIRST_NON_BUILTIN_OID = 10_000;

/** One step of a domain chain: pg_type.typbasetype and typtypmod of a domain type. */
export interface DomainStep {
  oid: number;
  baseOid: number;
  baseTypeMod: number;
}

/**
 * Resolves domain types to their base types. A query's RowDescription already names a domain
 * column's base type and modifier (what the snapshot and the legacy read path see), but
 * pgoutput's Relation message names the domain itself, which `pgTextValue` would not know:
 * a DOMAIN over integer would arrive as text when streamed and as a number when read. Each
 * type is looked up once (`lookup` returns the domain steps of the OIDs it is given, the
 * chain followed recursively) and cached; built-in types are never looked up.
 */
export class PgTypeResolver {
  /** Base type of every non-built-in OID seen; null for a type that is not a domain. */
  private readonly bases = new Map<number, { typeOid: number; typeMod: number } | null>();

  constructor(private readonly lookup: (oids: number[]) => Promise<DomainStep[]>) {}

  /** True when some of `types` was never looked up: `load` them before `base`. */
  needs(types: readonly PgColumnType[]): boolean {
    return types.some((t) => t.typeOid >= FIRST_NON_BUILTIN_OID && !this.bases.has(t.typeOid));
  }

  async load(types: readonly PgColumnType[]): Promise<void> {
    const oids = [
      ...new Set(types.map((t) => t.typeOid).filter((o) => o >= FIRST_NON_BUILTIN_OID && !this.bases.has(o))),
    ];
    if (oids.length === 0) return;
    const steps = new Map((await this.lookup(oids)).map((s) => [s.oid, s]));
    // The domains met on the way (a domain's base domain) are resolved as well.
    for (const oid of new Set([...oids, ...steps.keys()])) {
      let typeOid = oid;
      let typeMod = -1;
      // A domain over a domain: follow typbasetype to the first type that is not a domain.
      for (let step = steps.get(typeOid), hops = 0; step !== undefined && hops < 64; hops++) {
        typeOid = step.baseOid;
        if (typeMod < 0) typeMod = step.baseTypeMod;
        step = steps.get(typeOid);
      }
      this.bases.set(oid, typeOid === oid ? null : { typeOid, typeMod });
    }
  }

  /** The type to normalise a value of `type` by: its base type when it is a (loaded) domain. */
  base(type: PgColumnType): PgColumnType {
    const base = this.bases.get(type.typeOid);
    if (base === undefined || base === null) return type;
    // The domain's own modifier (NUMERIC(10,2)) unless the column declares one.
    return { typeOid: base.typeOid, typeMod: type.typeMod >= 0 ? type.typeMod : base.typeMod };
  }
}

/**
 * The domain chains of `oids` as `lookup` for PgTypeResolver: one recursive query on
 * `query` (the source's own connection).
 */
export const DOMAIN_STEPS_SQL = `WITH RECURSIVE chain AS (
    SELECT t.oid, t.typbasetype, t.typtypmod FROM pg_type t WHERE t.oid = ANY($1::oid[]) AND t.typtype = 'd'
    UNION
    SELECT b.oid, b.typbasetype, b.typtypmod FROM chain JOIN pg_type b ON b.oid = chain.typbasetype AND b.typtype = 'd'
  )
  SELECT oid::int8::text AS oid, typbasetype::int8::text AS base, typtypmod::text AS typmod FROM chain`;

/** "10:00:00.5" at 6 digits → "10:00:00.500000"; extra digits are cut, as the converters do. */
function padFraction(text: string, digits: number): string {
  const dot = text.indexOf('.');
  const whole = dot < 0 ? text : text.slice(0, dot);
  const frac = dot < 0 ? '' : text.slice(dot + 1);
  return digits === 0 ? whole : `${whole}.${frac.padEnd(digits, '0').slice(0, digits)}`;
}

function integer(text: string): number | string {
  const n = BigInt(text);
  return n >= BigInt(Number.MIN_SAFE_INTEGER) && n <= BigInt(Number.MAX_SAFE_INTEGER)
    ? Number(n)
    : n.toString();
}

/** "2024-01-01 10:00:00.5+00" (ISO DateStyle) → the same instant in UTC at `digits` digits. */
function zonedTimestamp(text: string, digits: number): string {
  const iso = text.replace(' ', 'T').replace(/([+-]\d{2})$/, '$1:00');
  return formatZonedTimestamp(iso, digits) ?? text;
}

/**
 * MONEY as Debezium yields it (money.fraction.digits=2): the decimal text. Sessions run with
 * lc_monetary=C, so the server prints "-$1,234.50"; another form is kept as printed.
 */
function moneyDecimal(text: string): string {
  const m = /^(-)?\$([\d,]+)(\.\d+)?$/.exec(text);
  return m === null ? text : `${m[1] ?? ''}${(m[2] as string).replaceAll(',', '')}${m[3] ?? ''}`;
}

const DAY_SECONDS = 86_400;

/**
 * TIMETZ as Debezium yields it (io.debezium.time.ZonedTime): the time of day in UTC with 'Z',
 * its fraction as the server printed it. "10:00:00.5+02" → "08:00:00.5Z".
 */
function utcTimeOfDay(text: string): string {
  const m = /^(\d{2}):(\d{2}):(\d{2})(\.\d+)?([+-])(\d{2})(?::(\d{2}))?(?::(\d{2}))?$/.exec(text);
  if (m === null) return text;
  const [, h, mi, sec, frac = '', sign, oh, om = '0', os = '0'] = m;
  const offset = (sign === '-' ? -1 : 1) * (Number(oh) * 3600 + Number(om) * 60 + Number(os));
  const local = Number(h) * 3600 + Number(mi) * 60 + Number(sec);
  const utc = (((local - offset) % DAY_SECONDS) + DAY_SECONDS) % DAY_SECONDS;
  const two = (n: number) => String(n).padStart(2, '0');
  return `${two(Math.floor(utc / 3600))}:${two(Math.floor(utc / 60) % 60)}:${two(utc % 60)}${frac}Z`;
}

/**
 * A bit string as Debezium's io.debezium.data.Bits: the value's bytes, least significant
 * first, without leading zero bytes ('0000000100000010' → [0x02, 0x01]; all zeros → none),
 * base64 as binary.handling.mode=base64 writes bytes.
 */
function bitsBase64(text: string): string {
  if (!/^[01]*$/.test(text)) return text;
  const bytes: number[] = [];
  for (let end = text.length; end > 0; end -= 8)
    bytes.push(Number.parseInt(text.slice(Math.max(0, end - 8), end), 2));
  while (bytes.length > 0 && bytes[bytes.length - 1] === 0) bytes.pop();
  return Buffer.from(bytes).toString('base64');
}

const INTERVAL_TEXT =
  /^(?:(-?\d+) years? ?)?(?:(-?\d+) mons? ?)?(?:(-?\d+) days? ?)?(?:([+-])?(\d+):(\d{2}):(\d{2})(?:\.(\d+))?)?$/;

/**
 * INTERVAL as Debezium yields it with interval.handling.mode=string: every field, each with
 * its own sign, seconds as a plain decimal ("1 year 2 mons -3 days 04:05:06.5" →
 * "P1Y2M-3DT4H5M6.5S"). Sessions print intervals in the postgres IntervalStyle.
 */
function isoInterval(text: string): string {
  const m = INTERVAL_TEXT.exec(text);
  if (m === null || text === '') return text;
  const [, years = '0', months = '0', days = '0', sign, hours = '0', minutes = '0', whole = '0', frac = ''] =
    m;
  const negative = sign === '-';
  const signed = (digits: string) => {
    const n = BigInt(digits);
    return (negative && n !== 0n ? -n : n).toString();
  };
  const fraction = frac.replace(/0+$/, '');
  const seconds = `${BigInt(whole)}${fraction === '' ? '' : `.${fraction}`}`;
  const secondsText = negative && seconds !== '0' ? `-${seconds}` : seconds;
  return `P${BigInt(years)}Y${BigInt(months)}M${BigInt(days)}DT${signed(hours)}H${signed(minutes)}M${secondsText}S`;
}

export function pgTextValue(text: string | null, type: PgColumnType): RowValue {
  if (text === null) return null;
  switch (type.typeOid) {
    case BOOL:
      return text === 't';
    case INT2:
    case INT4:
    case OID:
    case INT8:
      return integer(text);
    case FLOAT4:
    case FLOAT8: {
      const n = Number(text);
      return Number.isFinite(n) ? n : text;
    }
    case NUMERIC:
      return padToScale(text, numericScale(type.typeMod));
    case TIME:
    case TIMESTAMP:
      return /^\d/.test(text) && !text.includes('BC')
        ? padFraction(text, fractionalDigits(type.typeMod))
        : text;
    case TIMESTAMPTZ:
      return zonedTimestamp(text, fractionalDigits(type.typeMod));
    case BYTEA:
      // Hex output ("\x0a0b"), the server default; Debezium's binary.handling.mode=base64.
      return text.startsWith('\\x') ? Buffer.from(text.slice(2), 'hex').toString('base64') : text;
    case MONEY:
      return moneyDecimal(text);
    case TIMETZ:
      return utcTimeOfDay(text);
    case INTERVAL:
      return isoInterval(text);
    case BIT:
    case VARBIT:
      // Debezium: BIT(1) is a boolean, longer bit strings their bytes (io.debezium.data.Bits).
      return type.typeOid === BIT && type.typeMod <= 1 ? text === '1' : bitsBase64(text);
    default:
      // Text-like types, DATE ("YYYY-MM-DD" in ISO style), enums, uuid, json: as the server prints them.
      return text;
  }
}
