import type { LegacyDb } from '../definition/endpoints.js';

/**
 * Spaces calls at least `1 / perSecond` seconds apart, in arrival order: a slot is reserved
 * before waiting, so concurrent callers queue instead of bursting when a wait ends together.
 */
export class RateLimiter {
  private readonly intervalMs: number;
  private nextSlot = 0;

  constructor(
    perSecond: number,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.intervalMs = perSecond > 0 ? 1000 / perSecond : 0;
  }

  /** How long the caller must wait for its slot, in ms; the slot is taken. */
  reserve(): number {
    if (this.intervalMs === 0) return 0;
    const now = this.now();
    const slot = Math.max(now, this.nextSlot);
    this.nextSlot = slot + this.intervalMs;
    return slot - now;
  }

  async acquire(): Promise<void> {
    const wait = this.reserve();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
  }
}

/**
 * The legacy database with every statement rate-limited (those inside a snapshot too), so a
 * reconciliation over millions of keys never runs the legacy database harder than
 * `perSecond` statements, whatever its concurrency and recheck count. 0 = no limit.
 */
export function throttledLegacyDb(db: LegacyDb, perSecond: number): LegacyDb {
  if (perSecond <= 0) return db;
  const limiter = new RateLimiter(perSecond);
  const limited =
    <D extends Pick<LegacyDb, 'query'>>(inner: D): D['query'] =>
    async (sql, params) => {
      await limiter.acquire();
      return inner.query(sql, params);
    };
  return {
    dialect: db.dialect,
    query: limited(db),
    snapshot: (fn) => db.snapshot((inner) => fn({ dialect: inner.dialect, query: limited(inner) })),
  };
}
