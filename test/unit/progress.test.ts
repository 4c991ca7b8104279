import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ProgressMeter } from '../../lib/progress.js';

describe('ProgressMeter', () => {
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ['performance'] });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('counts every add, and reports through addDue once per interval', () => {
    const meter = new ProgressMeter(1000);
    expect(meter.addDue(100, 2000)).toBeNull();
    vi.advanceTimersByTime(1999);
    expect(meter.addDue(100, 2000)).toBeNull();
    vi.advanceTimersByTime(1);
    expect(meter.addDue(100, 2000)).toMatchObject({ done: 300, total: 1000, rowsPerSec: 150, etaSec: 5 });
    // The interval counts from the last report, not from the start.
    vi.advanceTimersByTime(1000);
    expect(meter.addDue(100, 2000)).toBeNull();
    vi.advanceTimersByTime(1000);
    expect(meter.addDue(100, 2000)).toMatchObject({ done: 500 });
    expect(meter.snapshot().done).toBe(500);
  });
});
