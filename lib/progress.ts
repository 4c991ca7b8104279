/**
 * Rate and ETA of a long job (snapshot, bulk load, replay), so operators see rows/s and
 * time left instead of a silent wait.
 */
export interface Progress {
  done: number;
  total: number | null;
  rowsPerSec: number;
  etaSec: number | null;
  elapsedSec: number;
}

export class ProgressMeter {
  private readonly startedAt = performance.now();
  private done = 0;
  private reportedAt = this.startedAt;

  constructor(private readonly total: number | null = null) {}

  add(n: number): Progress {
    this.done += n;
    return this.snapshot();
  }

  /**
   * `add`, returning the progress only when `everyMs` has passed since the start or the last
   * progress this returned, else null: the rhythm of a job's progress log lines.
   */
  addDue(n: number, everyMs: number): Progress | null {
    const progress = this.add(n);
    const now = performance.now();
    if (now - this.reportedAt < everyMs) return null;
    this.reportedAt = now;
    return progress;
  }

  snapshot(): Progress {
    const elapsedSec = (performance.now() - this.startedAt) / 1000;
    const rowsPerSec = elapsedSec > 0 ? this.done / elapsedSec : 0;
    const remaining = this.total === null ? null : Math.max(0, this.total - this.done);
    return {
      done: this.done,
      total: this.total,
      rowsPerSec: Math.round(rowsPerSec),
      etaSec: remaining === null || rowsPerSec === 0 ? null : Math.round(remaining / rowsPerSec),
      elapsedSec: Math.round(elapsedSec * 10) / 10,
    };
  }
}
