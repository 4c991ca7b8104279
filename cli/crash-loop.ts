/**
 * Counts a component's deaths over a sliding window: the supervisor of API workers restarts a
 * worker that dies, unless this many deaths fell within the window (a crash loop, which more
 * restarts would not cure and which must not leave a process that looks healthy).
 */
export interface CrashLoopPolicy {
  deaths: number;
  windowMs: number;
}

export const DEFAULT_CRASH_LOOP: CrashLoopPolicy = { deaths: 5, windowMs: 60_000 };

export interface CrashLoop {
  /** Records a death at `now`; the deaths within the window, this one included. */
  died(now: number): number;
  /** Whether that many deaths within the window means giving up. */
  looping(deaths: number): boolean;
}

export function crashLoop(policy: CrashLoopPolicy = DEFAULT_CRASH_LOOP): CrashLoop {
  const deaths: number[] = [];
  return {
    died(now) {
      deaths.push(now);
      while ((deaths[0] ?? now) <= now - policy.windowMs) deaths.shift();
      return deaths.length;
    },
    looping: (n) => n >= policy.deaths,
  };
}
