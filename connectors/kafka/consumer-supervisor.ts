import { ExponentialBackoff, type IBackoff } from 'cockatiel';
import type { Consumer } from 'kafkajs';
import { AdapterError, errorMessage } from '../../lib/errors.js';
import { type Logger, silentLogger } from '../../lib/logger.js';

export interface ConsumerSupervisorOptions {
  /** What the consumer does, for logs ("translator", "projector order-detail"). */
  name: string;
  /** Builds, connects, subscribes and runs a fresh consumer. */
  start(): Promise<Consumer>;
  /** Called when restarting failed `maxRestarts` times in a row: the owner exits non-zero. */
  onGiveUp(err: AdapterError): void;
  /** Called on every restart (a metric). */
  onRestart?: () => void;
  logger?: Logger;
  maxRestarts?: number;
  initialDelayMs?: number;
  maxDelayMs?: number;
  /** A consumer that ran this long without crashing resets the count of restarts in a row. */
  stableMs?: number;
}

/**
 * Keeps one kafkajs consumer alive. kafkajs restarts a crashed consumer only when the error
 * is retriable; otherwise (e.g. "the coordinator is not aware of this member" after a batch
 * outlived the session timeout and the group evicted the member) it leaves the consumer
 * stopped, and the process would run on with no consumer at all. Here such a crash starts a
 * fresh consumer after an exponential backoff, which rejoins the group and resumes from the
 * committed offsets; after `maxRestarts` failures in a row the owner is told to give up, so
 * a supervisor restarts the process instead of it staying up doing nothing.
 */
export class ConsumerSupervisor {
  private readonly logger: Logger;
  private consumer: Consumer | null = null;
  private stopped = false;
  private failures = 0;
  private backoff: IBackoff<unknown> | null = null;
  private timer: NodeJS.Timeout | null = null;
  private startedAt = 0;
  private restarts = 0;

  constructor(private readonly options: ConsumerSupervisorOptions) {
    this.logger = (options.logger ?? silentLogger).child({
      component: 'consumer-supervisor',
      consumer: options.name,
    });
  }

  /** Starts the first consumer; a failure here is the caller's (nothing runs yet). */
  async start(): Promise<void> {
    this.watch(await this.options.start());
  }

  /** Consumers started after a crash, since start. */
  restartCount(): number {
    return this.restarts;
  }

  /** The running consumer; null while waiting to restart one. */
  current(): Consumer | null {
    return this.consumer;
  }

  /** Whether a consumer is running (false while waiting to restart one). */
  get running(): boolean {
    return this.consumer !== null;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const consumer = this.consumer;
    this.consumer = null;
    await consumer?.disconnect();
  }

  private watch(consumer: Consumer): void {
    this.consumer = consumer;
    this.startedAt = Date.now();
    consumer.on(consumer.events.CRASH, (e) => {
      // kafkajs restarts by itself when it says so.
      if (e.payload.restart || this.consumer !== consumer) return;
      this.consumer = null;
      if (Date.now() - this.startedAt >= (this.options.stableMs ?? 60_000)) {
        this.failures = 0;
        this.backoff = null;
      }
      this.logger.error({ err: errorMessage(e.payload.error) }, 'consumer crashed; starting a new one');
      void consumer.disconnect().catch(() => undefined);
      this.schedule(e.payload.error);
    });
  }

  private schedule(cause: unknown): void {
    if (this.stopped) return;
    this.failures++;
    if (this.failures > (this.options.maxRestarts ?? 10)) {
      this.options.onGiveUp(
        new AdapterError(
          'KAFKA_CONSUMER_DEAD',
          `${this.options.name}: the Kafka consumer failed ${this.failures - 1} restarts in a row: ${errorMessage(cause)}`,
          { cause, hint: 'check the broker and the store; the process exits so its supervisor restarts it' },
        ),
      );
      return;
    }
    this.backoff = (
      this.backoff ??
      new ExponentialBackoff({
        initialDelay: this.options.initialDelayMs ?? 1000,
        maxDelay: this.options.maxDelayMs ?? 30_000,
      })
    ).next(undefined);
    const delay = this.backoff.duration;
    this.logger.warn({ attempt: this.failures, delayMs: delay }, 'restarting the Kafka consumer');
    this.timer = setTimeout(() => {
      this.timer = null;
      if (this.stopped) return;
      this.options
        .start()
        .then((consumer) => {
          if (this.stopped) {
            void consumer.disconnect();
            return;
          }
          this.restarts++;
          this.options.onRestart?.();
          this.watch(consumer);
        })
        .catch((err: unknown) => {
          this.logger.warn({ err: errorMessage(err) }, 'starting a new Kafka consumer failed');
          this.schedule(err);
        });
    }, delay);
  }
}
