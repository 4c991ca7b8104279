export interface DeliveryQueueOptions<T> {
  /**
   * Hands one item to the consumer. The next is handed over before this settles only while
   * fewer than `inFlight` are pending; they must settle in the order they were handed over.
   */
  deliver: (item: T) => Promise<void>;
  /**
   * Deliveries pending at once (default 1: one at a time). More lets a consumer that stores in
   * order (orderedSink) take the items that wait together.
   */
  inFlight?: number;
  /** Items handed over only once every earlier one settled, and before any later one. */
  alone?: (item: T) => boolean;
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
 * Strictly ordered delivery from a producer that cannot wait (socket events) to a consumer that
 * returns promises, one at a time or up to `inFlight` pending. Bounded by pausing the producer
 * rather than by dropping. After a failed delivery nothing more is handed over.
 */
export class DeliveryQueue<T> {
  private readonly items: T[] = [];
  private draining: Promise<void> | null = null;
  private paused = false;
  private closed = false;
  private readonly counts = { maxQueued: 0, maxQueuedSize: 0, pauses: 0, delivered: 0 };
  private size = 0;
  /** Set while the drain waits with nothing to hand over: a push lets it hand the item over. */
  private wake: (() => void) | null = null;
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
    this.wake?.();
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

  /** Resolves once nothing waits and nothing is being delivered (or the queue stopped on a failure). */
  async settled(): Promise<void> {
    while (this.draining !== null) await this.draining;
  }

  /** Drops what waits and resolves once the delivery in flight (if any) has settled. */
  async close(): Promise<void> {
    this.closed = true;
    this.items.length = 0;
    this.size = 0;
    await this.draining;
  }

  private async drain(): Promise<void> {
    const inFlight = Math.max(1, this.options.inFlight ?? 1);
    const pending: Array<Promise<void>> = [];
    const settled = () => {
      pending.shift();
      this.counts.delivered++;
    };
    const settleOldest = async () => {
      await pending[0];
      settled();
    };
    try {
      for (;;) {
        const item = this.closed ? undefined : this.items.shift();
        if (item === undefined) {
          if (pending.length === 0) return;
          // Waits for the oldest delivery to settle, or for an item to hand over meanwhile.
          const oldest = (pending[0] as Promise<void>).then(() => true);
          const pushed = new Promise<false>((resolve) => {
            this.wake = () => resolve(false);
          });
          const oldestSettled = await Promise.race([oldest, pushed]).finally(() => {
            this.wake = null;
          });
          if (oldestSettled) settled();
          continue;
        }
        this.size -= this.sizeOf(item);
        if (
          this.paused &&
          this.items.length <= this.options.highWater / 2 &&
          this.size <= this.highWaterSize / 2
        ) {
          this.paused = false;
          this.options.resume();
        }
        const alone = this.options.alone?.(item) === true;
        if (alone) while (pending.length > 0) await settleOldest();
        const delivered = this.options.deliver(item);
        // Settled in order below; a later one failing first must not count as unhandled meanwhile.
        delivered.catch(() => undefined);
        pending.push(delivered);
        while (pending.length >= (alone ? 1 : inFlight)) await settleOldest();
      }
    } catch (err) {
      this.closed = true;
      this.items.length = 0;
      this.size = 0;
      await Promise.allSettled(pending);
      this.options.onError(err);
    }
  }
}
