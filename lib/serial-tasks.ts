/**
 * Tasks run one after the other, each once every task queued before it settled (failed ones
 * included): a check on a timer must not interleave with the work it checks.
 */
export class SerialTasks {
  private tail: Promise<unknown> = Promise.resolve();

  run<T>(task: () => Promise<T>): Promise<T> {
    const run = this.tail.then(task, task);
    this.tail = run.catch(() => undefined);
    return run;
  }

  /** Settles once every task queued so far has (never rejects). */
  idle(): Promise<unknown> {
    return this.tail;
  }
}
