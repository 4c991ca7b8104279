import { EventEmitter } from 'node:events';
import type { Redis } from 'ioredis';
import { AdapterError, errorMessage } from '../lib/errors.js';
import { type Logger, silentLogger } from '../lib/logger.js';
import { type SharedState, StateUnavailableError, stateCall } from '../lib/shared-state.js';
import { type FlagChange, type FlagStore, parseFlags, parsePatch, patchedDocument } from './flag-store.js';
import type { FlagDocument, FlagDocumentInput } from './flags.js';

/** Attempts of one change against other replicas' concurrent ones before it is refused. */
const MAX_ATTEMPTS = 20;

export interface RedisFlagStoreOptions {
  /** The Redis connections and key prefix every replica shares (lib/shared-state.ts). */
  state: SharedState;
  /** In force until the first change is stored (the configuration's flags). */
  initial?: FlagDocumentInput;
  logger?: Logger;
}

/**
 * Flags in Redis, shared by every API replica. The document is one JSON value at
 * `<prefix>:flags`, changed by optimistic transactions: WATCH the key, read it, validate the
 * change against that newest document, then MULTI SET + PUBLISH; a replica that wrote in between
 * makes EXEC fail and the change is made again on top of it, so two replicas patching at once
 * lose neither change. Each replica re-reads the key when the channel announces a change (and
 * when its subscription comes back after a drop, in case it missed one), so a change made on one
 * is served by all within a round trip. `get()` never waits for Redis: reads go on with the last
 * document seen while Redis is down; changes are refused then (STATE_UNAVAILABLE).
 */
export class RedisFlagStore extends EventEmitter<{ change: [FlagChange] }> implements FlagStore {
  private current: FlagDocument;
  private readonly initial: FlagDocument;
  private readonly key: string;
  private readonly channel: string;
  private readonly logger: Logger;
  /** Changes of this process, one at a time: WATCH belongs to the connection, not to a call. */
  private writes: Promise<unknown> = Promise.resolve();
  /** Changes of this process not finished yet (see refresh). */
  private writing = 0;
  private reads: Promise<unknown> = Promise.resolve();

  private constructor(
    private readonly state: SharedState,
    /** This store's own connection: its WATCH must not see another store's EXEC. */
    private readonly redis: Redis,
    initial: FlagDocument,
    current: FlagDocument,
    logger: Logger,
  ) {
    super();
    this.initial = initial;
    this.current = current;
    this.key = `${state.prefix}:flags`;
    this.channel = `${state.prefix}:flags:changed`;
    this.logger = logger;
  }

  /** Reads the stored flags (the initial ones until a first change is stored) and follows changes. */
  static async open(options: RedisFlagStoreOptions): Promise<RedisFlagStore> {
    const logger = (options.logger ?? silentLogger).child({ component: 'flag-store', store: 'redis' });
    const initial = parseFlags(options.initial ?? {}, 'flag document');
    const key = `${options.state.prefix}:flags`;
    const redis = await options.state.connection();
    const stored = await stateCall(`GET ${key}`, () => redis.get(key));
    const store = new RedisFlagStore(
      options.state,
      redis,
      initial,
      stored === null ? initial : parseStored(stored, key),
      logger,
    );
    await options.state.subscribe(store.channel, () => store.refresh());
    logger.info({ key, stored: stored !== null }, 'flags shared through Redis');
    return store;
  }

  get(): FlagDocument {
    return this.current;
  }

  async set(input: unknown): Promise<FlagDocument> {
    const next = parseFlags(input, 'flag document');
    return this.change(() => next, 'set');
  }

  async patch(endpointKey: string, patch: unknown): Promise<FlagDocument> {
    const parsed = parsePatch(endpointKey, patch);
    return this.change((stored) => patchedDocument(stored, parsed), 'patch');
  }

  async update(change: (stored: FlagDocument) => unknown): Promise<FlagDocument> {
    return this.change((stored) => parseFlags(change(stored), 'flag document after update'), 'set');
  }

  /** Changes are pushed through the channel; there is nothing to poll. */
  watch(): () => void {
    return () => undefined;
  }

  async close(): Promise<void> {
    await this.writes.catch(() => undefined);
    await this.state.unsubscribe(this.channel);
  }

  private change(
    compute: (stored: FlagDocument) => FlagDocument,
    source: 'set' | 'patch',
  ): Promise<FlagDocument> {
    this.writing++;
    const run = this.writes
      .then(() => stateCall(`${source} flags`, () => this.transact(compute, source)))
      .finally(() => {
        this.writing--;
      });
    this.writes = run.catch(() => undefined);
    return run;
  }

  private async transact(
    compute: (stored: FlagDocument) => FlagDocument,
    source: 'set' | 'patch',
  ): Promise<FlagDocument> {
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const redis = this.redis;
      await redis.watch(this.key);
      let next: FlagDocument;
      try {
        const raw = await redis.get(this.key);
        next = compute(raw === null ? this.initial : parseStored(raw, this.key));
      } catch (err) {
        await redis.unwatch();
        throw err;
      }
      const done = await redis
        .multi()
        .set(this.key, JSON.stringify(next))
        .publish(this.channel, source)
        .exec();
      if (done !== null) {
        this.replace(next, source);
        return next;
      }
    }
    throw new AdapterError(
      'FLAGS_CONFLICT',
      `the flags kept changing under ${MAX_ATTEMPTS} attempts to ${source} them`,
      {
        hint: 'another replica is changing flags in a loop (a rollout schedule?); try again',
      },
    );
  }

  /** Re-reads the stored document after a change announced on the channel; in order of arrival. */
  private refresh(): void {
    this.reads = this.reads.then(async () => {
      // Never between a change's EXEC and its replace: the key would show this process's own
      // change first, announced again as a reload. The GET is sent in the turn the wait ends,
      // so a change started later is ordered after it on the connection.
      while (this.writing > 0) await this.writes;
      try {
        const raw = await stateCall(`GET ${this.key}`, () => this.redis.get(this.key));
        if (raw === null) return;
        const next = parseStored(raw, this.key);
        if (JSON.stringify(next) !== JSON.stringify(this.current)) this.replace(next, 'reload');
      } catch (err) {
        this.logger.warn(
          { err: errorMessage(err) },
          'flags changed in Redis but cannot be read; the current flags stay',
        );
      }
    });
  }

  private replace(next: FlagDocument, source: FlagChange['source']): void {
    const previous = this.current;
    this.current = next;
    this.logger.info({ source, flags: next }, 'flags changed');
    this.emit('change', { previous, current: next, source });
  }
}

function parseStored(raw: string, key: string): FlagDocument {
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch (cause) {
    throw new StateUnavailableError(`Redis key ${key} is not JSON: ${errorMessage(cause)}`, cause);
  }
  return parseFlags(json, `flag document in Redis key ${key}`);
}
