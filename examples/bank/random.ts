/**
 * Seeded randomness and the exact value formats the sample bank writes. The generator and
 * the workload must produce identical data for the same seed on every run and machine, so
 * nothing here touches Math.random, floats for money, or the local time zone.
 */

/** 32-bit FNV-1a: turns a seed or label of any form into a 32-bit number. */
function hash32(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** splitmix32 step: spreads one seed word into well-mixed state words. */
function splitmix32(state: number): [next: number, out: number] {
  const next = (state + 0x9e3779b9) | 0;
  let z = next;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  z ^= z >>> 16;
  return [next, z >>> 0];
}

const TWO_POW_32 = 4294967296;

/** xoshiro128** generator: small, fast and good enough for synthetic data (not for crypto). */
export class Random {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  constructor(seed: number | string) {
    let s = hash32(String(seed));
    const words: number[] = [];
    for (let i = 0; i < 4; i++) {
      const [next, out] = splitmix32(s);
      s = next;
      words.push(out);
    }
    [this.a, this.b, this.c, this.d] = words as [number, number, number, number];
    // An all-zero state would only ever yield zeros.
    if ((this.a | this.b | this.c | this.d) === 0) this.a = 1;
  }

  /** An independent stream for a sub-task, so adding draws in one place does not shift another. */
  fork(label: string | number): Random {
    return new Random(`${this.nextUint32()}:${label}`);
  }

  nextUint32(): number {
    const result = Math.imul(rotl(Math.imul(this.b, 5), 7), 9) >>> 0;
    const t = this.b << 9;
    this.c ^= this.a;
    this.d ^= this.b;
    this.b ^= this.c;
    this.a ^= this.d;
    this.c ^= t;
    this.d = rotl(this.d, 11);
    return result;
  }

  /** Uniform in [0, 1). */
  next(): number {
    return this.nextUint32() / TWO_POW_32;
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
    if (items.length === 0) throw new RangeError('pick() from an empty list');
    return items[Math.floor(this.next() * items.length)] as T;
  }

  /** One value chosen with probability proportional to its weight. */
  weighted<T>(entries: readonly (readonly [T, number])[]): T {
    return new WeightedChoice(entries).pick(this);
  }

  /** Money amount in integer cents, uniform in [minCents, maxCents]. */
  cents(minCents: number, maxCents: number): number {
    return this.int(minCents, maxCents);
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

/** A weighted choice with its cumulative table built once, for use in hot loops. */
export class WeightedChoice<T> {
  private readonly values: T[];
  private readonly cumulative: number[];
  private readonly total: number;

  constructor(entries: readonly (readonly [T, number])[]) {
    this.values = [];
    this.cumulative = [];
    let sum = 0;
    for (const [value, weight] of entries) {
      if (!(weight >= 0)) throw new RangeError(`weight must be >= 0, got ${weight}`);
      if (weight === 0) continue;
      sum += weight;
      this.values.push(value);
      this.cumulative.push(sum);
    }
    if (sum === 0) throw new RangeError('weighted choice needs at least one positive weight');
    this.total = sum;
  }

  pick(rng: Random): T {
    const x = rng.next() * this.total;
    for (let i = 0; i < this.cumulative.length; i++) {
      if (x < (this.cumulative[i] as number)) return this.values[i] as T;
    }
    return this.values[this.values.length - 1] as T;
  }
}

/**
 * A DECIMAL(19,4) string from integer cents, exactly as MariaDB prints it: 123456 → "1234.5600",
 * -5 → "-0.0500".
 */
export function formatMoney(cents: number): string {
  if (!Number.isSafeInteger(cents)) throw new RangeError(`money must be integer cents, got ${cents}`);
  const negative = cents < 0;
  const abs = negative ? -cents : cents;
  const units = Math.floor(abs / 100);
  const rest = abs % 100;
  return `${negative ? '-' : ''}${units}.${rest < 10 ? '0' : ''}${rest}00`;
}

/** Integer cents from a DECIMAL string; rejects sub-cent digits rather than rounding them away. */
export function parseMoneyCents(text: string): number {
  const m = /^(-?)(\d+)(?:\.(\d{1,4}))?$/.exec(text);
  if (!m) throw new RangeError(`not a decimal amount: "${text}"`);
  const fraction = (m[3] ?? '').padEnd(4, '0');
  if (!fraction.endsWith('00')) throw new RangeError(`amount has sub-cent digits: "${text}"`);
  const cents = Number(m[2]) * 100 + Number(fraction.slice(0, 2));
  if (!Number.isSafeInteger(cents)) throw new RangeError(`amount out of range: "${text}"`);
  return m[1] === '-' && cents !== 0 ? -cents : cents;
}

let cachedSecond = Number.NaN;
let cachedPrefix = '';

/**
 * "YYYY-MM-DD HH:MM:SS.ffffff" (UTC) from microseconds since the Unix epoch — the text form
 * MariaDB returns for DATETIME(6) with dateStrings. The seconds prefix is cached because
 * bulk generation formats millions of nearby instants.
 */
export function formatDatetime6(micros: number): string {
  if (!Number.isSafeInteger(micros)) throw new RangeError(`not an integer microsecond time: ${micros}`);
  const second = Math.floor(micros / 1_000_000);
  const fraction = micros - second * 1_000_000;
  if (second !== cachedSecond) {
    cachedSecond = second;
    const iso = new Date(second * 1000).toISOString();
    cachedPrefix = `${iso.slice(0, 10)} ${iso.slice(11, 19)}.`;
  }
  return cachedPrefix + String(fraction).padStart(6, '0');
}

/** Microseconds since the Unix epoch from a DATETIME(6) string taken as UTC. */
export function parseDatetime6(text: string): number {
  const m = /^(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?$/.exec(text);
  if (!m) throw new RangeError(`not a DATETIME value: "${text}"`);
  const ms = Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6]));
  return ms * 1000 + Number((m[7] ?? '').padEnd(6, '0'));
}

/** "YYYY-MM-DD" (UTC) from microseconds since the Unix epoch. */
export function formatDate(micros: number): string {
  return new Date(Math.floor(micros / 1000)).toISOString().slice(0, 10);
}

export const MICROS_PER_SECOND = 1_000_000;
export const MICROS_PER_DAY = 86_400 * MICROS_PER_SECOND;
