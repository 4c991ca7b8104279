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

/** A whole number: a JSON number, or its canonical decimal text ('42', '-7'; not '042', '4e1', ' 4'). */
export function integerParam(options: IntegerParamOptions = {}) {
  let bounded = z.number().int().refine(Number.isSafeInteger, 'expected a whole number within ±2^53');
  if (options.min !== undefined) bounded = bounded.min(options.min);
  if (options.max !== undefined) bounded = bounded.max(options.max);
  const decimal = 'expected a whole number written in decimal digits (no sign +, no leading 0, no spaces)';
  return z
    .union(
      [
        z.number(),
        z
          .string()
          .regex(/^-?(0|[1-9]\d*)$/, decimal)
          .transform(Number),
      ],
      { error: decimal },
    )
    .pipe(bounded);
}

const pad = (n: number, width = 2) => String(n).padStart(width, '0');

/**
 * A DATETIME/TIMESTAMP value as the database and change-data-capture spell it:
 * 'YYYY-MM-DD HH:MM:SS' plus exactly `fractionDigits` fraction digits, naming a real instant
 * (no month 13, no 25:61:61).
 */
export function datetimeParam(fractionDigits = 6) {
  const fraction = fractionDigits > 0 ? `\\.\\d{${fractionDigits}}` : '';
  const shape = new RegExp(`^(\\d{4})-(\\d{2})-(\\d{2}) (\\d{2}):(\\d{2}):(\\d{2})${fraction}$`);
  const example = `YYYY-MM-DD HH:MM:SS${fractionDigits > 0 ? `.${'f'.repeat(fractionDigits)}` : ''}`;
  return z
    .string()
    .regex(shape, `expected DATETIME(${fractionDigits}) "${example}"`)
    .refine((text) => {
      const [, y, mo, d, h, mi, s] = (shape.exec(text) ?? []).map(Number);
      // setUTCFullYear, not Date.UTC, which reads years 0-99 as 1900-1999; no year 0 in SQL.
      const at = new Date(0);
      at.setUTCFullYear(y as number, (mo as number) - 1, d);
      at.setUTCHours(h as number, mi, s);
      if ((y as number) < 1) return false;
      const same = `${pad(at.getUTCFullYear(), 4)}-${pad(at.getUTCMonth() + 1)}-${pad(at.getUTCDate())} ${pad(at.getUTCHours())}:${pad(at.getUTCMinutes())}:${pad(at.getUTCSeconds())}`;
      return text.startsWith(same);
    }, 'not a real date and time');
}
