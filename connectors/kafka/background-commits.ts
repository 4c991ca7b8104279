/**
 * Offset commits that do not hold up the next batch: kafkajs fetches again only once a batch's
 * handler returned, and awaiting the commit round trip there was a share of every batch. One
 * commit runs at a time, with the newest point of every partition waiting; a failed commit's
 * points are retried with the next one (newer points of a partition win), and a restart
 * meanwhile re-delivers from the last commit, which the consumers' idempotence makes harmless.
 */
export class BackgroundCommits<P> {
  private waiting = new Map<string, P>();
  private running: Promise<void> | null = null;

  constructor(
    private readonly options: {
      /** The partition a point belongs to: a newer point replaces a waiting one of the same key. */
      key(point: P): string;
      commit(points: P[]): Promise<void>;
      onCommitted?(points: P[]): void;
      onFailed(err: unknown): void;
    },
  ) {}

  /** Commits these points after the commits before them, without waiting. */
  add(points: Iterable<P>): void {
    for (const point of points) this.waiting.set(this.options.key(point), point);
    if (this.running !== null || this.waiting.size === 0) return;
    this.running = this.drain().finally(() => {
      this.running = null;
    });
  }

  /** Resolves once the commit in flight (and those it chained) ended. */
  async settled(): Promise<void> {
    await this.running;
  }

  private async drain(): Promise<void> {
    while (this.waiting.size > 0) {
      const points = [...this.waiting.values()];
      this.waiting = new Map();
      try {
        await this.options.commit(points);
      } catch (err) {
        for (const point of points) {
          const key = this.options.key(point);
          if (!this.waiting.has(key)) this.waiting.set(key, point);
        }
        this.options.onFailed(err);
        return;
      }
      this.options.onCommitted?.(points);
    }
  }
}
