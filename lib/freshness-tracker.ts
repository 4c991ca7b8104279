/**
 * How stale the read models are, computed from periodic observations of the pipeline rather
 * than from the last event that went through it (a stopped pipeline sees no events, and a gauge
 * set per event freezes at its last value).
 *
 * Each observation brings the legacy change log's end at that moment. The read models are fresh
 * up to a sample's time once the source has passed that end and the projector has applied what
 * the store held then. Lag is the age of the oldest source commit not yet projected: taken from
 * the first unprojected stored event when there is one (stored events come in commit order, so
 * nothing older is still missing), otherwise the time since the newest sample the read models
 * reached; 0 when they reached the latest.
 */

export interface FreshnessObservation<E> {
  now: number;
  /** The legacy change log's end now; null when it could not be read (legacy unreachable). */
  end: E | null;
  /** Has the source delivered everything committed before `end`? */
  reached: (end: E) => boolean;
  /** Projector checkpoint and event store head (positions). */
  checkpoint: number;
  head: number;
  /**
   * How far the projector applied, ahead of `checkpoint` while it defers composing (a bulk
   * initial build holds the checkpoint for minutes): progress too, not a stall. Absent: the
   * checkpoint alone.
   */
  applied?: number;
  /** Source commit time (epoch ms) of the first stored event not yet projected; null when none. */
  oldestUnprojectedCommitMs: number | null;
}

export interface FreshnessState {
  /** Age of the oldest unprojected source commit, seconds; 0 when caught up. */
  lagSeconds: number;
  caughtUp: boolean;
  /** Behind, and nothing moved (source, store or projector) for the stall time. */
  stalled: boolean;
}

interface Sample<E> {
  end: E;
  at: number;
  /** Event store head when the source was first seen past `end`. */
  headWhenReached: number | null;
  key: string;
}

/** Bounded: under a stall a sample per observation would pile up. */
const MAX_SAMPLES = 3600;

export class FreshnessTracker<E> {
  private samples: Sample<E>[] = [];
  private freshAt: number;
  private lastReachedKey: string | null = null;
  private lastProgressAt: number;
  private lastCheckpoint: number | null = null;
  private lastHead: number | null = null;
  private lastApplied: number | undefined;
  private state: FreshnessState = { lagSeconds: 0, caughtUp: false, stalled: false };

  constructor(
    private readonly stallMs: number,
    startedAt: number,
  ) {
    this.freshAt = startedAt;
    this.lastProgressAt = startedAt;
  }

  current(): FreshnessState {
    return this.state;
  }

  /** The newest sample time (epoch ms) the read models are known to be fresh up to. */
  freshUpTo(): number {
    return this.freshAt;
  }

  observe(o: FreshnessObservation<E>): FreshnessState {
    if (o.end !== null) {
      const key = JSON.stringify(o.end);
      // The log has not moved since the source last passed it: nothing new to wait for, even
      // while a restarted source has not re-read its position yet.
      const known = key === this.lastReachedKey;
      this.samples.push({ end: o.end, at: o.now, headWhenReached: known ? o.head : null, key });
      if (this.samples.length > MAX_SAMPLES) this.samples.shift();
    }
    let newest = -1;
    this.samples.forEach((s, i) => {
      if (s.headWhenReached === null && o.reached(s.end)) s.headWhenReached = o.head;
      if (s.headWhenReached !== null && o.checkpoint >= s.headWhenReached) newest = i;
    });
    let moved =
      o.checkpoint !== this.lastCheckpoint || o.head !== this.lastHead || o.applied !== this.lastApplied;
    if (newest >= 0) {
      const reached = this.samples[newest] as Sample<E>;
      if (reached.at > this.freshAt) moved = true;
      this.freshAt = Math.max(this.freshAt, reached.at);
      this.lastReachedKey = reached.key;
      this.samples = this.samples.slice(newest + 1);
    }
    this.lastCheckpoint = o.checkpoint;
    this.lastHead = o.head;
    this.lastApplied = o.applied;
    const caughtUp = this.samples.length === 0 && newest >= 0 && o.checkpoint >= o.head;
    if (moved || caughtUp) this.lastProgressAt = o.now;
    const lagMs = caughtUp
      ? 0
      : o.oldestUnprojectedCommitMs !== null
        ? o.now - o.oldestUnprojectedCommitMs
        : o.now - this.freshAt;
    this.state = {
      lagSeconds: Math.max(0, lagMs) / 1000,
      caughtUp,
      stalled: !caughtUp && o.now - this.lastProgressAt >= this.stallMs,
    };
    return this.state;
  }
}
