/**
 * The loop of a projection runner: `step` back to back while it applies events, yielding to
 * the event loop between batches, and every `pollIntervalMs` (or at the next `notify`) once it
 * is caught up. The first failure ends the loop; the runner's supervisor restarts it.
 */
export class PollLoop {
  private wake: (() => void) | null = null;

  /** Wakes a loop that waits for its next poll now. */
  notify(): void {
    this.wake?.();
  }

  async run(options: {
    step(): Promise<number>;
    running(): boolean;
    pollIntervalMs: number;
    onFailure(err: Error): void;
  }): Promise<void> {
    while (options.running()) {
      let applied = 0;
      try {
        applied = await options.step();
      } catch (err) {
        options.onFailure(err instanceof Error ? err : new Error(String(err)));
        return;
      }
      // Batches may be synchronous work (SQLite): with a backlog, back-to-back batches would hold
      // the event loop for as long as the backlog lasts (API requests, the binlog socket and
      // timers waited seconds in the bench's CDC runs). Yield between batches.
      if (applied > 0) await new Promise<void>((resolve) => setImmediate(resolve));
      if (applied === 0 && options.running()) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, options.pollIntervalMs);
          this.wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        this.wake = null;
      }
    }
  }
}
