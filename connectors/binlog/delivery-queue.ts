export interface DeliveryQueueOptions<T> {
  /** Hands one item to the consumer; the next is not handed over before this settles. */
  deliver: (item: T) => Promise<void>;
  /** Items waiting at which the producer is paused; it is resumed once half of them are gone. */
  highWater: number;
  /**
   * The same bound in the items' size (`sizeOf`, e.g. row changes): a few huge items pause the
   * producer as many small ones do, so what waits stays bounded in memory.
   */
  highWaterSize?: number;
  sizeOf?: (item: T) => number;
  pause: () => void;
  resume: () => void;
  /** A failed delivery: the queue stops and delivers nothing more. */
  onError: (err: unknown) => void;
}

export interface DeliveryStats {
  queued: number;
  maxQueued: number;
  /** Total size (sizeOf) of the items waiting, and its maximum. */
  queuedSize: number;
  maxQueuedSize: number;
  pauses: number;
  delivered: number;
}

/**
 * Strictly ordered, one-at-a-time delivery from a producer that cannot wait (socket events) to a
 * consumer that returns promises. Bounded by pausing the producer rather than by dropping.
 */
export class DeliveryQueue<T> {
  private readonly items: T[] = [];
  private draining: Promise<void> | null = null;
  private paused = false;
  private closed = false;
  private readonly counts = { maxQueued: 0, maxQueuedSize: 0, pauses: 0, delivered: 0 };
  private size = 0;
  private readonly sizeOf: (item: T) => number;
  private readonly highWaterSize: number;

  constructor(private readonly options: DeliveryQueueOptions<T>) {
    this.sizeOf = options.sizeOf ?? (() => 1);
    this.highWaterSize = options.highWaterSize ?? Number.POSITIVE_INFINITY;
  }

  push(item: T): void {
    if (this.closed) return;
    this.items.push(item);
    this.size += this.sizeOf(item);
    this.counts.maxQueued = Math.max(this.counts.maxQueued, this.items.length);
    this.counts.maxQueuedSize = Math.max(this.counts.maxQueuedSize, this.size);
    if (!this.paused && (this.items.length >= this.options.highWater || this.size >= this.highWaterSize)) {
      this.paused = true;
      this.counts.pauses++;
      this.options.pause();
    }
    this.draining ??= this.drain().finally(() => {
      this.draining = null;
    });
  }

  /** Nothing waiting and nothing being delivered. */
  idle(): boolean {
    return this.items.length === 0 && this.draining === null;
  }

  stats(): DeliveryStats {
    return { queued: this.items.length, queuedSize: this.size, ...this.counts };
  }

  /** Drops what waits and resolves once the delivery in flight (if any) has settled. */
  async close(): Promise<void> {
    this.closed = true;
    this.items.length = 0;
    this.size = 0;
    await this.draining;
  }

  private async drain(): Promise<void> {
    for (let item = this.items.shift(); item !== undefined && !this.closed; item = this.items.shift()) {
      this.size -= this.sizeOf(item);
      if (
        this.paused &&
        this.items.length <= this.options.highWater / 2 &&
        this.size <= this.highWaterSize / 2
      ) {
        this.paused = false;
        this.options.resume();
      }
      try {
        await this.options.deliver(item);
        this.counts.delivered++;
      } catch (err) {
        this.closed = true;
        this.items.length = 0;
        this.size = 0;
        this.options.onError(err);
        return;
      }
    }
  }
}
