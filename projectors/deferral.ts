/**
 * When a catch-up may leave view documents to compose later (ProjectionRunner): the pure rule,
 * apart from the runner's transactions.
 */

export interface DeferralBounds {
  /** Most documents left to compose; 0: never defer. */
  maxDocuments: number;
  /** Longest from the first deferred batch; 0: never defer, unless `bulk`. */
  maxMs: number;
  /** A bulk build (rebuild, a version's replay): no time bound. */
  bulk: boolean;
}

/** Whether deferring is on at all for these bounds. */
export function deferralEnabled(bounds: DeferralBounds): boolean {
  return bounds.maxDocuments > 0 && (bounds.bulk || bounds.maxMs > 0);
}

export interface BatchEnd {
  /** More events wait than this batch read (it was full and the head is past it). */
  behind: boolean;
  /** Documents marked and not composed, this batch's included. */
  pending: number;
  /** When the deferral in progress began (its first deferred batch), in ms; null: none. */
  deferredSinceMs: number | null;
  nowMs: number;
}

/**
 * Whether a batch ending so leaves its documents to compose later (else it composes every marked
 * one). A bulk build defers its last batch too: the step that then finds nothing composes, in a
 * transaction after every row is committed, where another thread can compose from them.
 */
export function defersAt(bounds: DeferralBounds, end: BatchEnd): boolean {
  if (!deferralEnabled(bounds) || end.pending >= bounds.maxDocuments) return false;
  if (bounds.bulk) return true;
  if (!end.behind) return false;
  return end.deferredSinceMs === null || end.nowMs - end.deferredSinceMs < bounds.maxMs;
}
