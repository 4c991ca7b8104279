/**
 * The loop of a projection runner: `step` back to back while it applies events, yielding to
 * the event loop between batches, and every `pollIntervalMs` (or at the next `notify`) once it
 * is caught up. The first failure ends the loop; the runner's supervisor restarts it.
 */
export class PollLoop {
  private wake: (() => void) | null = null;
  /**
   * A notify that came while no wait was running (a step was): the step may have read before
   * what it announces, so the next wait must not sleep through it.
   */
  private notified = false;

  /** Wakes a loop that waits for its next poll now, or keeps its next wait short. */
  notify(): void {
    if (this.wake) this.wake();
    else this.notified = true;
  }

  async run(options: {
    step(): Promise<number>;
    running(): boolean;
    pollIntervalMs: number;
    /**
     * Once caught up, the next batch starts no sooner than this after the last one that applied
     * events (0: at the first notify). For a store whose commit has a high fixed cost (DuckDB):
     * a trickle of small transactions is applied a few per batch instead of one per batch.
     */
    minBatchIntervalMs?: number;
    /**
     * Events a step reads at most: one that applied fewer found the log's end, so with a
     * minBatchIntervalMs the next step waits for it too. Else the few events that arrived while
     * a batch ran made a batch of their own at once, and a trickle cost two or three batches an
     * interval instead of one. Absent: only a step that applied nothing waits.
     */
    batchSize?: number;
    onFailure(err: Error): void;
  }): Promise<void> {
    const minInterval = options.minBatchIntervalMs ?? 0;
    let lastApplied = Number.NEGATIVE_INFINITY;
    while (options.running()) {
      let applied = 0;
      const started = performance.now();
      // What was notified before this step began, it reads.
      this.notified = false;
      try {
        applied = await options.step();
      } catch (err) {
        options.onFailure(err instanceof Error ? err : new Error(String(err)));
        return;
      }
      // Batches may be synchronous work (SQLite): with a backlog, back-to-back batches would hold
      // the event loop for as long as the backlog lasts (API requests, the binlog socket and
      // timers waited seconds in the bench's CDC runs). Yield between batches.
      if (applied > 0) {
        lastApplied = started;
        await new Promise<void>((resolve) => setImmediate(resolve));
        if (options.batchSize !== undefined && applied < options.batchSize)
          await this.until(lastApplied + minInterval, options.running);
      }
      if (applied === 0 && options.running()) {
        await this.pause(options.pollIntervalMs);
        await this.until(lastApplied + minInterval, options.running);
      }
    }
  }

  /** Waits until `atMs` (performance.now()); a notify cuts this wait short only to let a stop through. */
  private async until(atMs: number, running: () => boolean): Promise<void> {
    for (let rest = atMs - performance.now(); rest > 0 && running(); rest = atMs - performance.now())
      await this.pause(rest);
  }

  /** Waits `ms`, or until the next notify (none if one came since the last step began). */
  private async pause(ms: number): Promise<void> {
    if (this.notified) {
      this.notified = false;
      return;
    }
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
    this.wake = null;
  }
}
