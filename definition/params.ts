import { z } from 'zod';

/**
 * Schemas for endpoint parameters. Query strings and paths arrive as text, reconciliation's
 * parameter sets as the legacy database's typed values; both must name the same key exactly
 * once. `z.coerce.number()` would let '0x10', '1e3', ' 1' or '' alias account 16, 1000, 1 and
 * 0, and a date regex lets '2024-13-45 25:61:61' through to both databases, which then
 * disagree: a client's typo recorded as a mismatch. These refuse them with a 400.
 */

export interface IntegerParamOptions {
  min?: number;
  max?: number;
}

const DECIMAL_INTEGER = /^-?(0|[1-9]\d*)$/;

/** What a quick parser answers for an input it leaves to the schema (to answer or to refuse). */
const NO_QUICK_ANSWER: unique symbol = Symbol('no quick answer');

/** A parameter schema's answer for the inputs it accepts, checked without zod: integerParam's. */
const quickParsers = new WeakMap<z.ZodType, (input: unknown) => unknown>();

/** A whole number: a JSON number, or its canonical decimal text ('42', '-7'; not '042', '4e1', ' 4'). */
export function integerParam(options: IntegerParamOptions = {}) {
  let bounded = z.number().int().refine(Number.isSafeInteger, 'expected a whole number within ±2^53');
  if (options.min !== undefined) bounded = bounded.min(options.min);
  if (options.max !== undefined) bounded = bounded.max(options.max);
  const decimal = 'expected a whole number written in decimal digits (no sign +, no leading 0, no spaces)';
  const schema = z
    .union([z.number(), z.string().regex(DECIMAL_INTEGER, decimal).transform(Number)], { error: decimal })
    .pipe(bounded);
  const min = options.min ?? Number.NEGATIVE_INFINITY;
  const max = options.max ?? Number.POSITIVE_INFINITY;
  quickParsers.set(schema, (input) => {
    const n = typeof input === 'string' && DECIMAL_INTEGER.test(input) ? Number(input) : input;
    return typeof n === 'number' && Number.isSafeInteger(n) && n >= min && n <= max ? n : NO_QUICK_ANSWER;
  });
  return schema;
}

/** What quickParams answers for the input it leaves to zod. */
export type QuickParse = (input: Readonly<Record<string, unknown>>) => Record<string, unknown> | undefined;

/**
 * The parse of an endpoint's parameter object for the requests that need no more than the
 * fields' own quick parsers: the value `schema.parse` gives, built without zod, whose object,
 * union and pipe steps were ~2 µs of a read-model request's 57 µs on the serving thread.
 * Undefined for any other input (a field's bad or unusual value, a default-less absent field):
 * the caller parses it with zod, which answers it or explains the refusal. Null when the
 * schema is not one it knows (only an object that strips unknown keys, of integerParam fields,
 * optional fields and defaults of them).
 */
export function quickParams(schema: z.ZodType): QuickParse | null {
  const def = schema._zod.def as z.core.$ZodObjectDef;
  if (def.type !== 'object' || def.catchall !== undefined || (def.checks?.length ?? 0) > 0) return null;
  interface Field {
    key: string;
    /** Undefined: a present value goes to zod. */
    quick: ((input: unknown) => unknown) | undefined;
    /** When absent: zod refuses it (null), leaves it out ('omit'), or gives this default. */
    absent: null | 'omit' | z.core.$ZodDefaultDef;
  }
  const fields: Field[] = [];
  for (const [key, field] of Object.entries(def.shape)) {
    const fieldDef = field._zod.def;
    if (fieldDef.type === 'optional') {
      const inner = (fieldDef as z.core.$ZodOptionalDef).innerType as z.ZodType;
      fields.push({ key, quick: quickParsers.get(inner), absent: 'omit' });
      continue;
    }
    const defaulted = fieldDef.type === 'default' ? (fieldDef as z.core.$ZodDefaultDef) : null;
    const quick = quickParsers.get((defaulted?.innerType ?? field) as z.ZodType);
    if (quick === undefined) return null;
    fields.push({ key, quick, absent: defaulted });
  }
  return (input) => {
    const out: Record<string, unknown> = {};
    for (const { key, quick, absent } of fields) {
      if (!Object.hasOwn(input, key)) {
        if (absent === null) return undefined;
        // zod's default is its value (the definition's, or its factory's), not parsed again.
        if (absent !== 'omit') out[key] = absent.defaultValue;
        continue;
      }
      const value = input[key];
      if (value === undefined || quick === undefined) return undefined;
      const parsed = quick(value);
      if (parsed === NO_QUICK_ANSWER) return undefined;
      out[key] = parsed;
    }
    return out;
  };
}

const pad = (n: number, width = 2) => String(n).padStart(width, '0');

export interface DatetimeParamOptions {
  /**
   * The column holds an instant delivered in UTC (PostgreSQL TIMESTAMPTZ, MySQL TIMESTAMP):
   * a trailing offset ('Z', '+02', '+02:00', '-0530') is taken and the value converted to
   * UTC. Without it an offset is refused, since a DATETIME has no zone to convert to.
   */
  utc?: boolean;
}

/** The offsets PostgreSQL accepts on input: whole minutes, at most 15:59 either way. */
const OFFSET = '(Z|[+-]\\d{2}(?::?\\d{2})?)';

/**
 * A DATETIME/TIMESTAMP value as the database and change-data-capture spell it:
 * 'YYYY-MM-DD HH:MM:SS' plus exactly `fractionDigits` fraction digits, naming a real instant
 * (no month 13, no 25:61:61). Fewer fraction digits (or none) and a 'T' between date and time
 * are taken and written out in that form: the legacy database reads '2024-01-01 09:00:00' as
 * the same DATETIME(6) as '2024-01-01 09:00:00.000000', while a read model keyed by the
 * captured text finds only the latter, so the shadow API would record a client's short form as
 * a difference (or refuse a request the monolith answers). More digits than the column holds
 * are refused: MariaDB truncates them and MySQL rounds. With `utc`, an offset is converted: the
 * legacy sessions run in UTC, so both sides then look up the same instant.
 */
export function datetimeParam(fractionDigits = 6, options: DatetimeParamOptions = {}) {
  const fraction = fractionDigits > 0 ? `(?:\\.(\\d{1,${fractionDigits}}))?` : '';
  const zone = options.utc === true ? `${OFFSET}?` : '';
  const shape = new RegExp(`^(\\d{4})-(\\d{2})-(\\d{2})[ T](\\d{2}):(\\d{2}):(\\d{2})${fraction}${zone}$`);
  const example = `YYYY-MM-DD HH:MM:SS${fractionDigits > 0 ? `.${'f'.repeat(fractionDigits)}` : ''}`;
  const expected =
    options.utc === true
      ? `expected TIMESTAMP(${fractionDigits}) "${example}" in UTC or with an offset ("Z", "+02:00"; fewer fraction digits are padded)`
      : `expected DATETIME(${fractionDigits}) "${example}" (fewer fraction digits are padded)`;
  return z
    .string()
    .regex(shape, expected)
    .transform((text, ctx) => {
      const [, y, mo, d, h, mi, s, ...rest] = shape.exec(text) ?? [];
      // The fraction's group is there only when the column has fraction digits.
      const [frac = '', offset = ''] = fractionDigits > 0 ? rest : ['', ...rest];
      const parts = [y, mo, d, h, mi, s].map(Number) as [number, number, number, number, number, number];
      // setUTCFullYear, not Date.UTC, which reads years 0-99 as 1900-1999; no year 0 in SQL.
      const at = new Date(0);
      at.setUTCFullYear(parts[0], parts[1] - 1, parts[2]);
      at.setUTCHours(parts[3], parts[4], parts[5]);
      const offsetMinutes = minutesOf(offset);
      if (parts[0] < 1 || datetimeText(at) !== `${y}-${mo}-${d} ${h}:${mi}:${s}` || offsetMinutes === null) {
        ctx.issues.push({ code: 'custom', message: 'not a real date and time', input: text });
        return z.NEVER;
      }
      at.setTime(at.getTime() - offsetMinutes * 60_000);
      if (at.getUTCFullYear() < 1) {
        ctx.issues.push({ code: 'custom', message: 'before year 1 in UTC', input: text });
        return z.NEVER;
      }
      return `${datetimeText(at)}${fractionDigits > 0 ? `.${frac.padEnd(fractionDigits, '0')}` : ''}`;
    });
}

const datetimeText = (at: Date) =>
  `${pad(at.getUTCFullYear(), 4)}-${pad(at.getUTCMonth() + 1)}-${pad(at.getUTCDate())} ${pad(at.getUTCHours())}:${pad(at.getUTCMinutes())}:${pad(at.getUTCSeconds())}`;

/** East of UTC in minutes; null for an offset no database takes (16 hours or more, 60 minutes). */
function minutesOf(offset: string): number | null {
  if (offset === '' || offset === 'Z') return 0;
  const digits = offset.slice(1).replace(':', '');
  const hours = Number(digits.slice(0, 2));
  const minutes = Number(digits.slice(2) || '0');
  if (hours > 15 || minutes > 59) return null;
  return (offset.startsWith('-') ? -1 : 1) * (hours * 60 + minutes);
}

const UUID = /^([0-9a-f]{8})-?([0-9a-f]{4})-?([0-9a-f]{4})-?([0-9a-f]{4})-?([0-9a-f]{12})$/i;

/**
 * A UUID as PostgreSQL (and MariaDB's UUID type) print it, and so as change-data-capture
 * delivers it: lower case with hyphens. Upper case and the form without hyphens are taken and
 * written that way, since the legacy database compares UUIDs as values and finds the row
 * whatever the case, while a read model keyed by the captured text finds only that text.
 */
export function uuidParam() {
  return z
    .string()
    .regex(UUID, 'expected a UUID "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx" (hexadecimal)')
    .transform((text) => (UUID.exec(text) ?? []).slice(1).join('-').toLowerCase());
}
