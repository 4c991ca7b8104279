import type { Redis } from 'ioredis';
import type { Registry } from 'prom-client';
import { getMany, type ReadModelHandle } from '../definition/read-models.js';
import { type Logger, silentLogger } from '../lib/logger.js';
import type { TouchedDocument } from '../projectors/ports.js';
import { type CacheMetrics, cacheMetrics, cacheRedis, failureReporter } from './cache-redis.js';

/**
 * Redis in front of the server read models' key lookups on the distributed path, where several
 * projector processes each own some partitions and there is no single checkpoint to compare
 * with. A lookup answers at least what the store held when the lookup began. The projectors
 * invalidate from the same events, timed by Redis's own clock (TIME inside scripts, which
 * Redis runs one at a time):
 *
 * - begin, before a batch's store writes, for every document it will address (redelivered
 *   no-ops too: the process that wrote them may have died before invalidating): `INCR pending`
 *   (expiring after ttl + MARKER_SLACK_SECONDS, should the projector die) and `DEL entry`.
 * - end, once the writes are durable and before the applied marks and offsets are committed,
 *   for those and every document the writes addressed (a view's fan-out through the rows it
 *   reads, computed again after them): `marker = TIME`, `DEL entry`, `DECR pending`.
 * - A reader's lookup script returns the entries and the current epoch, and TIME (t0). On a
 *   miss it reads the store and fills only if no write is pending on the document and its
 *   marker is absent or older than t0, within FILL_WINDOW_MS of t0. `getMany` looks its keys
 *   up in one script, reads the misses by one `getMany` of the store, and fills them in one
 *   script that checks each document as a single fill does. Why a hit is never older
 *   than the store at the lookup: a write the store held then was begun before it, so its
 *   begin deleted any older entry; a fill after that begin was refused while the write was
 *   pending, and after its end only a read that began after the marker (which follows the
 *   durable write) could fill. Equal times (same microsecond, order unknown) refuse the fill.
 *   Without begin (markers after the write only), a reader could hit the old entry between
 *   the store write and the marker: the test showed it.
 * - A view document that only the writes themselves bring within a row's reach (its parent
 *   changed in the same batch, or concurrently in another partition) is named at end only:
 *   for it the guarantee is the weaker "as new as every batch ended before the lookup".
 * - Entries carry the epoch they were read under; a lookup serves only the current one. A
 *   projector bumps it (INCR) when it starts (a crash or an offline rebuild may have changed
 *   documents no script named) and, after a script failed, before its next one.
 * - A projector that cannot reach Redis retries until ttl + FILL_WINDOW_MS have passed (the
 *   entries that could predate its writes have expired by then), then goes on. Readers that
 *   cannot reach Redis read the store.
 * - Keys hold the stored version's name (`<rm>__v<n>`, the projection's name), so a switch
 *   never serves the old version's entries.
 *
 * Redis's clock must not step back by more than the time between a write and its marker;
 * markers and pending counts must not be evicted before entries (`noeviction` or
 * `volatile-ttl`). A script whose reply was lost and that is run again may decrement a
 * pending count twice, ending another projector's pending state early (a window the size of
 * that projector's write).
 */

const FILL_WINDOW_MS = 1000;
const MARKER_SLACK_SECONDS = 60;
/** Documents per invalidation script. */
const CHUNK = 1000;

/** Fixed-width microseconds (16 digits until 2286), so Lua compares them as strings. */
const NOW = `local t = redis.call('TIME')
local now = string.format('%010d%06d', tonumber(t[1]), tonumber(t[2]))`;

/** KEYS: epoch, then the entries. Returns [epoch, now, then each entry or nil]. */
const LOOKUP = `${NOW}
local out = { redis.call('GET', KEYS[1]) or '0', now }
for i = 2, #KEYS do out[i + 1] = redis.call('GET', KEYS[i]) end
return out`;

/** KEYS: entry/marker/pending triples; ARGV: t0, ttl, then each entry's value. Returns how many were set. */
const FILL = `local set = 0
for i = 1, #KEYS, 3 do
  local m = redis.call('GET', KEYS[i + 1])
  if not (m and m >= ARGV[1]) and tonumber(redis.call('GET', KEYS[i + 2]) or '0') <= 0 then
    redis.call('SET', KEYS[i], ARGV[(i - 1) / 3 + 3], 'EX', ARGV[2])
    set = set + 1
  end
end
return set`;

/** KEYS: pending/entry pairs; ARGV: pending ttl. */
const BEGIN = `for i = 1, #KEYS, 2 do
  redis.call('INCR', KEYS[i])
  redis.call('EXPIRE', KEYS[i], ARGV[1])
  redis.call('DEL', KEYS[i + 1])
end
return #KEYS / 2`;

/** KEYS: marker/entry/pending triples; ARGV: marker ttl, then per document '1' when begun. */
const END = `${NOW}
for i = 1, #KEYS, 3 do
  redis.call('SET', KEYS[i], now, 'EX', ARGV[1])
  redis.call('DEL', KEYS[i + 1])
  if ARGV[(i - 1) / 3 + 2] == '1' and redis.call('DECR', KEYS[i + 2]) <= 0 then redis.call('DEL', KEYS[i + 2]) end
end
return #KEYS / 3`;

interface Entry {
  e: string;
  d: string | null;
}

/** An entry as this module writes it; anything else in its place is a miss. */
export function parseEntry(raw: string): Entry | null {
  try {
    const value = JSON.parse(raw) as Partial<Entry>;
    return typeof value.e === 'string' && (typeof value.d === 'string' || value.d === null)
      ? (value as Entry)
      : null;
  } catch {
    return null;
  }
}

/** The lookup script's answer for `count` keys, checked. */
export function parseLookup(
  reply: unknown,
  count: number,
): { entries: Array<string | null>; epoch: string; now: string } | null {
  if (!Array.isArray(reply)) return null;
  const [epoch, now, ...found] = reply as unknown[];
  if (typeof epoch !== 'string' || typeof now !== 'string') return null;
  const entries = new Array<string | null>(count).fill(null);
  found.forEach((entry, i) => {
    if (i < count && typeof entry === 'string') entries[i] = entry;
  });
  return { entries, epoch, now };
}

/** Distinct documents in chunks, one script each. */
export function chunksOf(touched: readonly TouchedDocument[], size = CHUNK): TouchedDocument[][] {
  const unique = [
    ...new Map(touched.map(([m, k]) => [`${m}\u0000${k}`, [m, k] as TouchedDocument])).values(),
  ];
  const out: TouchedDocument[][] = [];
  for (let from = 0; from < unique.length; from += size) out.push(unique.slice(from, from + size));
  return out;
}

export interface DistributedCacheOptions {
  url: string;
  ttlSeconds: number;
  prefix: string;
  logger?: Logger;
  registry?: Registry;
  /** Delay between invalidation attempts while Redis does not answer. */
  retryMs?: number;
}

export class DistributedReadModelCache {
  private readonly redis: Redis;
  private readonly logger: Logger;
  readonly metrics: CacheMetrics;
  private readonly failed: (operation: string, err: unknown) => void;
  private readonly epochKey: string;
  /** An invalidation failed (or this projector just started): bump the epoch before the next one. */
  private bumpEpoch = true;
  private closed = false;

  constructor(private readonly options: DistributedCacheOptions) {
    this.logger = (options.logger ?? silentLogger).child({ component: 'distributed-cache' });
    this.metrics = cacheMetrics(options.registry);
    this.failed = failureReporter(this.metrics, this.logger);
    this.epochKey = `${options.prefix}:d:epoch`;
    this.redis = cacheRedis(options.url);
    this.redis.on('error', (err) => this.failed('connection', err));
  }

  private keys = (storage: string, key: string) => ({
    entry: `${this.options.prefix}:d:e:${storage}:${key}`,
    marker: `${this.options.prefix}:d:m:${storage}:${key}`,
    pending: `${this.options.prefix}:d:p:${storage}:${key}`,
  });

  /** `handle` (of the stored version `storage`) with its key lookups cached. */
  wrap(storage: string, handle: ReadModelHandle): ReadModelHandle {
    return {
      ...handle,
      get: async (key) => (await this.lookup(storage, [key], async () => [await handle.get(key)]))[0] ?? null,
      getMany: async (keys) =>
        keys.length === 0 ? [] : this.lookup(storage, keys, (missed) => getMany(handle, missed)),
    };
  }

  /** `keys` from Redis where an entry answers, the rest by one `read` of the store (the misses, in order). */
  private async lookup(
    storage: string,
    keys: readonly string[],
    read: (missed: string[]) => Promise<unknown[]>,
  ): Promise<unknown[]> {
    let state: ReturnType<typeof parseLookup>;
    try {
      const entries = keys.map((key) => this.keys(storage, key).entry);
      state = parseLookup(
        await this.redis.eval(LOOKUP, entries.length + 1, this.epochKey, ...entries),
        keys.length,
      );
    } catch (err) {
      this.failed('get', err);
      state = null;
    }
    if (state === null) {
      this.metrics.lookups.inc({ read_model: storage, result: 'bypass' }, keys.length);
      return read([...keys]);
    }
    const out = new Array<unknown>(keys.length);
    const missed: number[] = [];
    state.entries.forEach((raw, i) => {
      const entry = raw === null ? null : parseEntry(raw);
      if (entry !== null && entry.e === state.epoch) out[i] = entry.d === null ? null : JSON.parse(entry.d);
      else missed.push(i);
    });
    const hits = keys.length - missed.length;
    if (hits > 0) this.metrics.lookups.inc({ read_model: storage, result: 'hit' }, hits);
    if (missed.length === 0) return out;
    this.metrics.lookups.inc({ read_model: storage, result: 'miss' }, missed.length);
    const started = performance.now();
    const docs = await read(missed.map((i) => keys[i] as string));
    missed.forEach((i, n) => {
      out[i] = docs[n] ?? null;
    });
    if (performance.now() - started >= FILL_WINDOW_MS) return out;
    const fillKeys: string[] = [];
    const values: string[] = [];
    for (const i of missed) {
      const { entry, marker, pending } = this.keys(storage, keys[i] as string);
      fillKeys.push(entry, marker, pending);
      const doc = out[i];
      const value: Entry = { e: state.epoch, d: doc === null ? null : JSON.stringify(doc) };
      values.push(JSON.stringify(value));
    }
    this.redis
      .eval(FILL, fillKeys.length, ...fillKeys, state.now, String(this.options.ttlSeconds), ...values)
      .catch((err: unknown) => this.failed('set', err));
    return out;
  }

  /**
   * What a projector calls before a batch's store writes, with the documents it will address:
   * their entries are dropped and no reader fills them until `end` (or, should the projector
   * die, until the pending count expires after ttl + MARKER_SLACK_SECONDS).
   */
  begin(documents: readonly TouchedDocument[]): Promise<void> {
    const ttl = String(this.options.ttlSeconds + MARKER_SLACK_SECONDS);
    return this.attempt(chunksOf(documents), (chunk) => {
      const keys = chunk.flatMap(([m, k]) => {
        const { pending, entry } = this.keys(m, k);
        return [pending, entry];
      });
      return this.redis.eval(BEGIN, keys.length, ...keys, ttl);
    });
  }

  /**
   * What a projector calls once the writes are durable and before it commits: marks every
   * document the batch addressed (`touched`, a superset of `begun`) with Redis TIME, drops
   * their entries and ends `begun`'s pending state.
   */
  end(begun: readonly TouchedDocument[], touched: readonly TouchedDocument[]): Promise<void> {
    const started = new Set(begun.map(([m, k]) => `${m}\u0000${k}`));
    const ttl = String(this.options.ttlSeconds + MARKER_SLACK_SECONDS);
    return this.attempt(chunksOf([...begun, ...touched]), (chunk) => {
      const keys = chunk.flatMap(([m, k]) => {
        const { marker, entry, pending } = this.keys(m, k);
        return [marker, entry, pending];
      });
      const flags = chunk.map(([m, k]) => (started.has(`${m}\u0000${k}`) ? '1' : '0'));
      return this.redis.eval(END, keys.length, ...keys, ttl, ...flags);
    });
  }

  /**
   * Runs `script` on every chunk. Redis not answering: retried until every entry that could
   * predate the batch has expired (ttl + FILL_WINDOW_MS), then given up; the epoch is bumped
   * before the next attempt that reaches Redis. A chunk run twice does no harm except a
   * pending count left up, which only delays fills until it expires.
   */
  private async attempt(
    chunks: readonly TouchedDocument[][],
    script: (chunk: TouchedDocument[]) => Promise<unknown>,
  ): Promise<void> {
    const deadline = performance.now() + this.options.ttlSeconds * 1000 + FILL_WINDOW_MS;
    let done = 0;
    for (;;) {
      try {
        if (this.bumpEpoch) {
          await this.redis.incr(this.epochKey);
          this.bumpEpoch = false;
        }
        for (; done < chunks.length; done++) await script(chunks[done] as TouchedDocument[]);
        return;
      } catch (err) {
        this.bumpEpoch = true;
        this.failed('invalidate', err);
        if (this.closed || performance.now() >= deadline) return;
        await new Promise((r) => setTimeout(r, this.options.retryMs ?? 500));
      }
    }
  }

  close(): void {
    this.closed = true;
    this.redis.disconnect();
  }
}
