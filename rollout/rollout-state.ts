import type { Redis } from 'ioredis';
import { errorMessage } from '../lib/errors.js';
import { type Logger, silentLogger } from '../lib/logger.js';
import { type SharedState, stateCall } from '../lib/shared-state.js';
import { readRolloutFile, type TargetMeta, targetMetaSchema, writeRolloutFile } from './rollout-file.js';

/**
 * Where the rollout keeps what the flags cannot say (held, retired, since when a step runs), per
 * target. What an implementer must do: `targets()` answers at once from memory (the controller
 * reads it on every decision) and includes what other replicas recorded once they announced it;
 * `put()` is visible here at once and persists in the background (a failure is logged: the
 * flags, which decide routing, are not affected).
 */
export interface RolloutStateStore {
  targets(): Readonly<Record<string, TargetMeta>>;
  put(target: string, meta: TargetMeta): void;
  close(): Promise<void>;
}

/** rollout.json (written whole, atomically, on every put), or memory only without a path (tests). */
export class FileRolloutState implements RolloutStateStore {
  private readonly meta: Record<string, TargetMeta>;

  constructor(private readonly path?: string) {
    this.meta = path === undefined ? {} : readRolloutFile(path).targets;
  }

  targets(): Readonly<Record<string, TargetMeta>> {
    return this.meta;
  }

  put(target: string, meta: TargetMeta): void {
    this.meta[target] = meta;
    if (this.path !== undefined) writeRolloutFile(this.path, { targets: this.meta });
  }

  async close(): Promise<void> {}
}

/**
 * The rollout state in a Redis hash `<prefix>:rollout` (one field per target, so replicas writing
 * different targets never overwrite each other), announced on `<prefix>:rollout:changed` with the
 * target's name; every replica then re-reads that field.
 */
export class RedisRolloutState implements RolloutStateStore {
  private readonly meta: Record<string, TargetMeta>;
  private readonly key: string;
  private readonly channel: string;
  private writes: Promise<unknown> = Promise.resolve();

  private constructor(
    private readonly state: SharedState,
    private readonly redis: Redis,
    meta: Record<string, TargetMeta>,
    private readonly logger: Logger,
  ) {
    this.meta = meta;
    this.key = `${state.prefix}:rollout`;
    this.channel = `${state.prefix}:rollout:changed`;
  }

  static async open(state: SharedState, logger: Logger = silentLogger): Promise<RedisRolloutState> {
    const redis = await state.connection();
    const key = `${state.prefix}:rollout`;
    const log = logger.child({ component: 'rollout-state', store: 'redis' });
    const stored = await stateCall(`HGETALL ${key}`, () => redis.hgetall(key));
    const meta: Record<string, TargetMeta> = {};
    for (const [target, raw] of Object.entries(stored)) {
      const parsed = parseMeta(raw);
      if (parsed === null)
        log.warn(
          { key, target },
          'rollout state of a target in Redis is invalid; it restarts its step clock',
        );
      else meta[target] = parsed;
    }
    const store = new RedisRolloutState(state, redis, meta, log);
    await state.subscribe(store.channel, () => void store.refresh());
    return store;
  }

  targets(): Readonly<Record<string, TargetMeta>> {
    return this.meta;
  }

  put(target: string, meta: TargetMeta): void {
    this.meta[target] = meta;
    this.writes = this.writes
      .then(() =>
        this.redis.multi().hset(this.key, target, JSON.stringify(meta)).publish(this.channel, target).exec(),
      )
      .catch((err: unknown) =>
        this.logger.error(
          { err: errorMessage(err), target },
          'rollout state not stored in Redis; other replicas do not see it',
        ),
      );
  }

  async close(): Promise<void> {
    await this.writes;
    await this.state.unsubscribe(this.channel);
  }

  /** Re-reads every target: a message may stand for several changes (or a dropped subscription). */
  private async refresh(): Promise<void> {
    try {
      const stored = await this.redis.hgetall(this.key);
      for (const [target, raw] of Object.entries(stored)) {
        const parsed = parseMeta(raw);
        if (parsed !== null) this.meta[target] = parsed;
      }
    } catch (err) {
      this.logger.warn({ err: errorMessage(err) }, 'rollout state changed in Redis but cannot be read');
    }
  }
}

function parseMeta(raw: string): TargetMeta | null {
  try {
    const parsed = targetMetaSchema.safeParse(JSON.parse(raw));
    return parsed.success ? parsed.data : null;
  } catch {
    return null;
  }
}
