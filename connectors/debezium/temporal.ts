/**
 * Debezium's temporal encodings rendered the way mysql2 (dateStrings) renders the same column
 * on the embedded path: "YYYY-MM-DD", "YYYY-MM-DD HH:MM:SS[.f…]" and "HH:MM:SS[.f…]" with
 * exactly the column's fractional digits. Arithmetic is in BigInt nanoseconds so µs values
 * of any year stay exact; civil dates use Howard Hinnant's days-from-civil algorithms
 * (proleptic Gregorian, as MySQL and Java's LocalDate).
 */

export type EpochUnit = 'ms' | 'us' | 'ns';

/** A Connect temporal encoding: its unit, and the fractional digits it carries by default. */
export interface TemporalEncoding {
  unit: EpochUnit;
  digits: number;
}

/** Date-times as a count since the epoch, by Connect schema name. */
export const EPOCH_TIMESTAMPS: Readonly<Record<string, TemporalEncoding>> = {
  'io.debezium.time.Timestamp': { unit: 'ms', digits: 0 },
  'org.apache.kafka.connect.data.Timestamp': { unit: 'ms', digits: 3 },
  'io.debezium.time.MicroTimestamp': { unit: 'us', digits: 6 },
  'io.debezium.time.NanoTimestamp': { unit: 'ns', digits: 9 },
};

/** Times of day as a count since midnight, by Connect schema name. */
export const TIMES_OF_DAY: Readonly<Record<string, TemporalEncoding>> = {
  'io.debezium.time.Time': { unit: 'ms', digits: 3 },
  'org.apache.kafka.connect.data.Time': { unit: 'ms', digits: 3 },
  'io.debezium.time.MicroTime': { unit: 'us', digits: 6 },
  'io.debezium.time.NanoTime': { unit: 'ns', digits: 9 },
};

const NS_PER: Record<EpochUnit | 's', bigint> = { s: 1_000_000_000n, ms: 1_000_000n, us: 1_000n, ns: 1n };
const NS_PER_DAY = 86_400n * NS_PER.s;

function floorDiv(a: bigint, b: bigint): bigint {
  const q = a / b;
  return a % b !== 0n && a < 0n !== b < 0n ? q - 1n : q;
}

function pad(n: bigint | number, width: number): string {
  return String(n).padStart(width, '0');
}

/** Days since 1970-01-01 → "YYYY-MM-DD". */
export function formatEpochDay(days: number | bigint): string {
  const z = BigInt(days) + 719_468n;
  const era = floorDiv(z, 146_097n);
  const doe = z - era * 146_097n;
  const yoe = (doe - doe / 1_460n + doe / 36_524n - doe / 146_096n) / 365n;
  const doy = doe - (365n * yoe + yoe / 4n - yoe / 100n);
  const mp = (5n * doy + 2n) / 153n;
  const d = doy - (153n * mp + 2n) / 5n + 1n;
  const m = mp < 10n ? mp + 3n : mp - 9n;
  const y = yoe + era * 400n + (m <= 2n ? 1n : 0n);
  const sign = y < 0n ? '-' : '';
  return `${sign}${pad(y < 0n ? -y : y, 4)}-${pad(m, 2)}-${pad(d, 2)}`;
}

/** Civil date → days since 1970-01-01. */
export function epochDayOf(year: number, month: number, day: number): bigint {
  const y = BigInt(month <= 2 ? year - 1 : year);
  const era = floorDiv(y, 400n);
  const yoe = y - era * 400n;
  const m = BigInt(month);
  const doy = (153n * (m > 2n ? m - 3n : m + 9n) + 2n) / 5n + BigInt(day) - 1n;
  const doe = yoe * 365n + yoe / 4n - yoe / 100n + doy;
  return era * 146_097n + doe - 719_468n;
}

/** Nanoseconds within a second → "" or "." + exactly `digits` digits (truncated, never rounded). */
function fraction(nanos: bigint, digits: number): string {
  if (digits <= 0) return '';
  return `.${pad(nanos, 9).slice(0, Math.min(digits, 9)).padEnd(digits, '0')}`;
}

/** Epoch value (UTC, no zone: Debezium encodes DATETIME as if it were UTC) → "YYYY-MM-DD HH:MM:SS[.f]". */
export function formatEpochDateTime(value: number | bigint, unit: EpochUnit, digits: number): string {
  const ns = BigInt(value) * NS_PER[unit];
  const days = floorDiv(ns, NS_PER_DAY);
  return `${formatEpochDay(days)} ${formatClock(ns - days * NS_PER_DAY, digits)}`;
}

function formatClock(nsOfDay: bigint, digits: number): string {
  const secs = nsOfDay / NS_PER.s;
  const h = secs / 3600n;
  const mi = (secs / 60n) % 60n;
  const s = secs % 60n;
  return `${pad(h, 2)}:${pad(mi, 2)}:${pad(s, 2)}${fraction(nsOfDay % NS_PER.s, digits)}`;
}

/**
 * A TIME value as a duration from midnight → "HH:MM:SS[.f]". MySQL TIME spans
 * -838:59:59 … 838:59:59, so hours may exceed 23 and the value may be negative.
 */
export function formatTimeOfDay(value: number | bigint, unit: EpochUnit, digits: number): string {
  const ns = BigInt(value) * NS_PER[unit];
  return ns < 0n ? `-${formatClock(-ns, digits)}` : formatClock(ns, digits);
}

const ISO_OFFSET_DATE_TIME =
  /^(-?\d{4,})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(Z|[+-]\d{2}:\d{2}(?::\d{2})?)$/;

/**
 * An ISO-8601 offset date-time (io.debezium.time.ZonedTimestamp, e.g. TIMESTAMP columns,
 * "2018-06-20T13:37:03.123456Z") → the same instant in UTC as "YYYY-MM-DD HH:MM:SS[.f]".
 * `digits` defaults to the digits the string carries. Returns undefined if `iso` is not one.
 */
export function formatZonedTimestamp(iso: string, digits?: number): string | undefined {
  const m = ISO_OFFSET_DATE_TIME.exec(iso);
  if (m === null) return undefined;
  const [, y, mo, d, h, mi, s, frac, offset] = m;
  const fracDigits = frac ?? '';
  const days = epochDayOf(Number(y), Number(mo), Number(d));
  const secondsOfDay = BigInt(Number(h) * 3600 + Number(mi) * 60 + Number(s ?? '0'));
  let ns = days * NS_PER_DAY + secondsOfDay * NS_PER.s + BigInt(fracDigits.padEnd(9, '0') || '0');
  ns -= offsetSeconds(offset ?? 'Z') * NS_PER.s;
  return formatEpochDateTime(ns, 'ns', digits ?? fracDigits.length);
}

function offsetSeconds(offset: string): bigint {
  if (offset === 'Z') return 0n;
  const sign = offset.startsWith('-') ? -1n : 1n;
  const [hh, mm, ss] = offset.slice(1).split(':');
  return sign * BigInt(Number(hh) * 3600 + Number(mm) * 60 + Number(ss ?? '0'));
}
