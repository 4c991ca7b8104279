import { Redis } from 'ioredis';
import { AdapterError, errorMessage } from './errors.js';
import type { Logger } from './logger.js';

/**
 * The Redis that API replicas share their run-time state through (flags, rollout state): the
 * connections, the key prefix, and change notification over pub/sub. Each store takes a
 * connection of its own, since a WATCH belongs to a connection and two stores' transactions must
 * not interleave on one; all share a single subscriber connection.
 */

/** Redis could not be reached or answered garbage: retriable, the change was not made. */
export class StateUnavailableError extends AdapterError {
  readonly retriable = true;

  constructor(message: string, cause?: unknown) {
    super('STATE_UNAVAILABLE', message, {
      cause,
      hint: 'check that the Redis of state.redisUrl runs and is reachable; the change was not made',
    });
  }
}

/** Runs `fn`, turning a Redis failure (not an AdapterError it threw on purpose) into StateUnavailableError. */
export async function stateCall<T>(what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof AdapterError) throw err;
    throw new StateUnavailableError(`shared state in Redis: ${what} failed: ${errorMessage(err)}`, err);
  }
}

export class SharedState {
  private readonly connections: Redis[] = [];
  private readonly handlers = new Map<string, () => void>();
  private subscriber: Redis | null = null;

  private constructor(
    private readonly url: string,
    /** Prefix of every key and channel, e.g. `cqrs:state`. */
    readonly prefix: string,
    private readonly logger: Logger,
  ) {}

  static async connect(options: { url: string; prefix: string; logger: Logger }): Promise<SharedState> {
    const state = new SharedState(
      options.url,
      options.prefix,
      options.logger.child({ component: 'shared-state' }),
    );
    // One round trip now, so a wrong URL stops the start instead of the first flag change.
    const probe = await state.connection();
    await stateCall('PING', () => probe.ping());
    return state;
  }

  /** A connection of this state's own; closed by close(). */
  async connection(): Promise<Redis> {
    const redis = new Redis(this.url, {
      lazyConnect: true,
      // Fail a command while Redis is away instead of queueing it behind the request it serves.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      connectTimeout: 2000,
      commandTimeout: 2000,
      retryStrategy: (times) => Math.min(times * 200, 2000),
    });
    redis.on('error', (err) =>
      this.logger.warn({ err: errorMessage(err) }, 'shared-state Redis connection failed'),
    );
    this.connections.push(redis);
    await stateCall(`connecting to ${redactedUrl(this.url)}`, () => redis.connect());
    return redis;
  }

  /**
   * Calls `onChange` for every message on `channel`, and after the subscription comes back from
   * a dropped connection (messages sent meanwhile are lost: the store re-reads instead).
   */
  async subscribe(channel: string, onChange: () => void): Promise<void> {
    if (this.subscriber === null) {
      const subscriber = new Redis(this.url, {
        lazyConnect: true,
        connectTimeout: 2000,
        retryStrategy: (times) => Math.min(times * 200, 2000),
      });
      subscriber.on('error', (err) =>
        this.logger.warn({ err: errorMessage(err) }, 'shared-state subscription connection failed'),
      );
      subscriber.on('message', (from: string) => this.handlers.get(from)?.());
      let connectedOnce = false;
      subscriber.on('ready', () => {
        if (connectedOnce) for (const handler of this.handlers.values()) handler();
        connectedOnce = true;
      });
      this.subscriber = subscriber;
      this.connections.push(subscriber);
      await stateCall(`connecting to ${redactedUrl(this.url)}`, () => subscriber.connect());
    }
    const subscriber = this.subscriber;
    this.handlers.set(channel, onChange);
    await stateCall(`SUBSCRIBE ${channel}`, () => subscriber.subscribe(channel));
  }

  async unsubscribe(channel: string): Promise<void> {
    this.handlers.delete(channel);
    await this.subscriber?.unsubscribe(channel).catch(() => undefined);
  }

  async close(): Promise<void> {
    await Promise.all(this.connections.map((redis) => redis.quit().catch(() => redis.disconnect())));
    this.connections.length = 0;
    this.subscriber = null;
  }
}

function redactedUrl(url: string): string {
  return url.replace(/\/\/[^@/]*@/, '//***@');
}
