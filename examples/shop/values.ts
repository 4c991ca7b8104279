/**
 * Seeded randomness and the exact value formats of the sample shop. The generator and the
 * workload produce the same data for the same seed on every machine, so nothing here uses
 * Math.random, floats for money or the local time zone. The formats are those change-data-
 * capture delivers for the shop's PostgreSQL types (NUMERIC(12,2) as "12.50", TIMESTAMP(6) as
 * "YYYY-MM-DD HH:MM:SS.ffffff"), so the legacy answers and the read models agree byte for byte.
 */

/** 32-bit FNV-1a of a seed's text. */
function hash32(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** mulberry32: a small 32-bit generator, plenty for synthetic data (not for crypto). */
export class Random {
  private state: number;

  constructor(seed: number | string) {
    this.state = hash32(`shop:${seed}`);
  }

  nextUint32(): number {
    this.state = (this.state + 0x6d2b79f5) | 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }

  /** Uniform in [0, 1). */
  next(): number {
    return this.nextUint32() / 4294967296;
  }

  /** Uniform integer in [min, max], both inclusive. */
  int(min: number, max: number): number {
    if (!Number.isInteger(min) || !Number.isInteger(max) || max < min) {
      throw new RangeError(`int(${min}, ${max}): need integers with min <= max`);
    }
    return min + Math.floor(this.next() * (max - min + 1));
  }

  chance(probability: number): boolean {
    return this.next() < probability;
  }

  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new RangeError('pick from an empty list');
    return items[this.int(0, items.length - 1)] as T;
  }

  /** An independent stream, so adding draws to one table does not shift another's rows. */
  fork(label: string): Random {
    return new Random(`${this.nextUint32()}:${label}`);
  }
}

/** Integer cents → NUMERIC(12,2) text ("1234" → "12.34", "-5" → "-0.05"). */
export function formatCents(cents: number): string {
  if (!Number.isSafeInteger(cents)) throw new RangeError(`cents must be a safe integer, got ${cents}`);
  const sign = cents < 0 ? '-' : '';
  const abs = Math.abs(cents);
  return `${sign}${Math.floor(abs / 100)}.${String(abs % 100).padStart(2, '0')}`;
}

/** NUMERIC(12,2) text → integer cents. */
export function parseCents(text: string): number {
  const m = /^(-?)(\d+)\.(\d{2})$/.exec(text);
  if (!m) throw new RangeError(`not a NUMERIC(12,2) text: ${JSON.stringify(text)}`);
  const cents = Number(m[2]) * 100 + Number(m[3]);
  return m[1] === '-' ? -cents : cents;
}

const pad = (n: number, width = 2) => String(n).padStart(width, '0');

/** Microseconds since the epoch (UTC) → "YYYY-MM-DD HH:MM:SS.ffffff". */
export function formatMicros(micros: number): string {
  const ms = Math.floor(micros / 1000);
  const d = new Date(ms);
  const frac = micros - Math.floor(micros / 1_000_000) * 1_000_000;
  return (
    `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ` +
    `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}.${pad(frac, 6)}`
  );
}

/** "YYYY-MM-DD HH:MM:SS[.f…]" (UTC) → microseconds since the epoch. */
export function parseMicros(text: string): number {
  const m = /^(\d{4}-\d{2}-\d{2}) (\d{2}:\d{2}:\d{2})(?:\.(\d{1,6}))?$/.exec(text);
  if (!m) throw new RangeError(`not a timestamp text: ${JSON.stringify(text)}`);
  const ms = Date.parse(`${m[1]}T${m[2]}Z`);
  return ms * 1000 + Number((m[3] ?? '').padEnd(6, '0'));
}

/**
 * PostgreSQL's text output of a TIMESTAMP(6) drops trailing fraction zeros
 * ("10:00:00.5", "10:00:00"); change-data-capture pads to the declared 6 digits. This pads
 * the legacy side the same way.
 */
export function timestamp6(text: string): string {
  const m = /^(\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2})(?:\.(\d{1,6}))?$/.exec(text);
  if (!m) throw new RangeError(`not a TIMESTAMP text: ${JSON.stringify(text)}`);
  return `${m[1]}.${(m[2] ?? '').padEnd(6, '0')}`;
}
