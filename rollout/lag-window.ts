import { nearestRankIndex } from '../compare/report.js';

/**
 * Read-model lag samples of the last `windowMs`, for the lag gate's p99. In memory: after a
 * restart the gate judges from the first new sample on, which is what the read model does now.
 */
export class LagWindow {
  private samples: { at: number; seconds: number }[] = [];

  constructor(private readonly windowMs: number) {}

  add(at: number, seconds: number): void {
    this.samples.push({ at, seconds });
    const oldest = at - this.windowMs;
    let drop = 0;
    while (drop < this.samples.length && (this.samples[drop]?.at ?? at) < oldest) drop++;
    if (drop > 0) this.samples = this.samples.slice(drop);
  }

  /** p99 of the samples taken at or after `since` (epoch ms); null when there are none. */
  p99(since: number): number | null {
    const values = this.samples.filter((s) => s.at >= since).map((s) => s.seconds);
    if (values.length === 0) return null;
    values.sort((a, b) => a - b);
    return values[nearestRankIndex(99, values.length)] ?? null;
  }
}
