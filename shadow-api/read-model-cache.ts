import type { Redis } from 'ioredis';
import type { Registry } from 'prom-client';
import { getMany, type ReadModelHandle, type ReadModels } from '../definition/read-models.js';
import { type Logger, silentLogger } from '../lib/logger.js';
import { type CacheMetrics, cacheMetrics, cacheRedis, failureReporter } from './cache-redis.js';

/**
 * Redis in front of the embedded read models' key lookups (`get`, `getJson` and `getMany`, whose
 * keys are looked up in one MGET and whose misses are read by one `getMany` of the read model;
 * queries go to the read model). It never serves a document older than the read-model checkpoint a request saw
 * when it began. The argument:
 *
 * - An entry is `{ e: epoch, v, d }`: the document text `d`, read from SQLite *after* the
 *   checkpoint `v` was read, so it holds every change up to `v` (perhaps more).
 * - After each committed batch (checkpoint P) the projector runs one script: for every document
 *   the batch wrote, `marker = P` and the entry deleted; then `upto = P`. So "upto ≥ P" means
 *   every change up to P has left a marker at least as new as itself.
 * - A hit needs, with C = the checkpoint read before asking Redis: `upto ≥ C` (every change the
 *   request could see is marked), `marker ≤ v` (no change to this document after the entry's
 *   read), and `e = epoch`. Between a commit and its script, upto < C: the cache is bypassed.
 * - A fill happens only when that read saw `upto ≥ v`, within FILL_WINDOW_MS of its read: a
 *   later change's script either deletes the entry (it came first) or leaves a marker newer than
 *   `v` (it came after) that outlives the entry (markers live ttl + MARKER_SLACK_SECONDS).
 * - When the process starts, or a script failed (Redis down), it bumps `epoch` and sets `upto`
 *   to the checkpoint in one script: every older entry is dropped at once, whichever documents
 *   changed meanwhile (or were repaired offline). Until that script succeeds this process does
 *   not use the cache at all (it alone knows that it lost track).
 * - The checkpoint going back (a rebuild) starts a new epoch too.
 *
 * Markers must not be evicted before entries: run Redis with `noeviction` or `volatile-ttl`
 * (entries expire sooner than markers). Any Redis error is logged, counted, and the read model
 * answers.
 */

const FILL_WINDOW_MS = 1000;
const MARKER_SLACK_SECONDS = 60;

/**
 * Sets markers, deletes entries, and (ARGV[3] = '1', a batch's last chunk) advances upto.
 * KEYS: upto, then marker/entry pairs; ARGV: position, marker ttl, advance.
 */
const INVALIDATE = `
for i = 2, #KEYS, 2 do
  redis.call('SET', KEYS[i], ARGV[1], 'EX', ARGV[2])
  redis.call('DEL', KEYS[i + 1])
end
local upto = tonumber(redis.call('GET', KEYS[1]) or '0')
if ARGV[3] == '1' and tonumber(ARGV[1]) > upto then redis.call('SET', KEYS[1], ARGV[1]) end
return 1`;

/** Documents per script: a 200k-row transaction's batch is marked in several short scripts. */
const CHUNK = 1000;

/** Drops every entry at once. KEYS: epoch, upto; ARGV: checkpoint. */
const RESET = `
redis.call('INCR', KEYS[1])
redis.call('SET', KEYS[2], ARGV[1])
return 1`;

interface Entry {
  e: string;
  v: number;
  d: string | null;
}

/** A looked-up value and the document text an entry holds for it. */
interface Codec<T> {
  encode(value: T): string | null;
  decode(text: string | null): T;
}

/** `getJson`'s values are the texts. */
const asText: Codec<string | null> = { encode: (text) => text, decode: (text) => text };
/**
 * `getMany`'s are documents: each is the parse of its stored text, which JSON.stringify wrote,
 * so stringifying it again gives the stored bytes back.
 */
const asDoc: Codec<unknown> = {
  encode: (doc) => (doc === null ? null : JSON.stringify(doc)),
  decode: (text) => (text === null ? null : JSON.parse(text)),
};

/** An entry as this module writes it; anything else in its place is a miss. */
function parseEntry(raw: string): Entry | null {
  try {
    const value = JSON.parse(raw) as Partial<Entry>;
    return typeof value.e === 'string' &&
      typeof value.v === 'number' &&
      (typeof value.d === 'string' || value.d === null)
      ? (value as Entry)
      : null;
  } catch {
    return null;
  }
}

export interface ReadModelCacheOptions {
  url: string;
  ttlSeconds: number;
  prefix: string;
  logger?: Logger;
  registry?: Registry;
}

export class ReadModelCache {
  private readonly redis: Redis;
  private readonly logger: Logger;
  readonly metrics: CacheMetrics;
  private readonly epochKey: string;
  private readonly uptoKey: string;
  /** Invalidations run one after another, in commit order. */
  private chain: Promise<void> = Promise.resolve();
  private needsReset = true;
  private resetting: Promise<void> | null = null;
  private lastPosition = 0;
  private readonly failed: (operation: string, err: unknown) => void;

  constructor(private readonly options: ReadModelCacheOptions) {
    this.logger = (options.logger ?? silentLogger).child({ component: 'cache' });
    this.metrics = cacheMetrics(options.registry);
    this.epochKey = `${options.prefix}:epoch`;
    this.uptoKey = `${options.prefix}:upto`;
    this.failed = failureReporter(this.metrics, this.logger);
    this.redis = cacheRedis(options.url);
    this.redis.on('error', (err) => this.failed('connection', err));
  }

  private entryKey = (model: string, key: string) => `${this.options.prefix}:e:${model}:${key}`;
  private markerKey = (model: string, key: string) => `${this.options.prefix}:m:${model}:${key}`;

  /** The read models with their key lookups cached; `checkpoint` is the projector's (a synchronous read). */
  wrap(readModels: ReadModels, checkpoint: () => number): ReadModels {
    const out: Record<string, ReadModelHandle<unknown>> = {};
    for (const [name, handle] of Object.entries(readModels)) {
      const { getJson } = handle;
      if (getJson === undefined) {
        out[name] = handle;
        continue;
      }
      const cachedJson = async (key: string) =>
        (await this.lookup(name, [key], checkpoint, async () => [await getJson(key)], asText))[0] ?? null;
      out[name] = {
        ...handle,
        getJson: cachedJson,
        async get(key) {
          const text = await cachedJson(key);
          return text === null ? null : JSON.parse(text);
        },
        getMany: async (keys) =>
          keys.length === 0
            ? []
            : this.lookup(name, keys, checkpoint, (missed) => getMany(handle, missed), asDoc),
      };
    }
    return out;
  }

  /**
   * `keys` from Redis where an entry may answer, the rest by one `read` of the read model (the
   * misses, in order), each filled in under the conditions above.
   */
  private async lookup<T>(
    model: string,
    keys: readonly string[],
    checkpoint: () => number,
    read: (missed: string[]) => Promise<T[]>,
    codec: Codec<T>,
  ): Promise<T[]> {
    const seen = checkpoint();
    if (this.needsReset) {
      // Until this process has started an epoch, nothing in Redis is known to be current.
      this.resetting ??= this.reset(seen).finally(() => {
        this.resetting = null;
      });
      this.metrics.lookups.inc({ read_model: model, result: 'bypass' }, keys.length);
      return read([...keys]);
    }
    let state: Array<string | null>;
    try {
      state = await this.redis.mget(
        ...keys.flatMap((key) => [this.entryKey(model, key), this.markerKey(model, key)]),
        this.epochKey,
        this.uptoKey,
      );
    } catch (err) {
      this.failed('get', err);
      return read([...keys]);
    }
    const epoch = state[keys.length * 2] ?? null;
    const upto = state[keys.length * 2 + 1] ?? null;
    const covered = epoch !== null && upto !== null && Number(upto) >= seen;
    const out = new Array<T>(keys.length);
    const missed: number[] = [];
    for (let i = 0; i < keys.length; i++) {
      const raw = state[i * 2];
      const entry = covered && raw !== null && raw !== undefined ? parseEntry(raw) : null;
      if (entry !== null && entry.e === epoch && Number(state[i * 2 + 1] ?? 0) <= entry.v)
        out[i] = codec.decode(entry.d);
      else missed.push(i);
    }
    const hits = keys.length - missed.length;
    if (hits > 0) this.metrics.lookups.inc({ read_model: model, result: 'hit' }, hits);
    if (missed.length === 0) return out;
    this.metrics.lookups.inc({ read_model: model, result: 'miss' }, missed.length);
    const started = performance.now();
    const values = await read(missed.map((i) => keys[i] as string));
    const fill = covered && performance.now() - started < FILL_WINDOW_MS ? this.redis.pipeline() : null;
    missed.forEach((i, n) => {
      const value = values[n] as T;
      out[i] = value;
      if (fill === null) return;
      const entry: Entry = { e: epoch as string, v: seen, d: codec.encode(value) };
      fill.set(this.entryKey(model, keys[i] as string), JSON.stringify(entry), 'EX', this.options.ttlSeconds);
    });
    fill?.exec().catch((err: unknown) => this.failed('set', err));
    return out;
  }

  /**
   * What the projector calls after each committed batch: marks the documents it wrote and
   * advances `upto` to its checkpoint. Queued; never throws.
   */
  invalidate(position: number, touched: ReadonlyArray<readonly [string, string]>): Promise<void> {
    this.chain = this.chain.then(() => this.runInvalidation(position, touched));
    return this.chain;
  }

  /** Drops every entry (a new epoch) with upto at `checkpoint`: at start, before serving. */
  reset(checkpoint: number): Promise<void> {
    this.needsReset = true;
    return this.invalidate(checkpoint, []);
  }

  private async runInvalidation(
    position: number,
    touched: ReadonlyArray<readonly [string, string]>,
  ): Promise<void> {
    // The checkpoint went back (the read models are being rebuilt): markers of the old
    // positions would vouch for entries they no longer describe.
    if (position < this.lastPosition) this.needsReset = true;
    try {
      if (this.needsReset) {
        if (this.redis.status !== 'ready') await this.connected();
        // Covers `touched` too: the new epoch drops every entry, and upto moves to this commit.
        await this.redis.eval(RESET, 2, this.epochKey, this.uptoKey, String(position));
        this.needsReset = false;
        this.lastPosition = position;
        return;
      }
      const markerTtl = String(this.options.ttlSeconds + MARKER_SLACK_SECONDS);
      for (let from = 0; from === 0 || from < touched.length; from += CHUNK) {
        const chunk = touched.slice(from, from + CHUNK);
        const keys = chunk.flatMap(([model, key]) => [this.markerKey(model, key), this.entryKey(model, key)]);
        const last = from + CHUNK >= touched.length ? '1' : '0';
        await this.redis.eval(
          INVALIDATE,
          keys.length + 1,
          this.uptoKey,
          ...keys,
          String(position),
          markerTtl,
          last,
        );
      }
      this.lastPosition = position;
    } catch (err) {
      // What this batch changed is unknown to Redis now: the next invalidation starts a new epoch.
      this.needsReset = true;
      this.failed('invalidate', err);
    }
  }

  /** Waits up to a second for the connection (at start it is still being made). */
  private connected(): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.redis.off('ready', done);
        resolve();
      };
      const timer = setTimeout(done, 1000);
      this.redis.once('ready', done);
    });
  }

  async close(): Promise<void> {
    await this.chain;
    this.redis.disconnect();
  }
}
