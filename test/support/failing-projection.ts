import type { SqliteProjection } from '../../projectors/ports.js';
import type { SqliteReadModels } from '../../projectors/stores/sqlite-read-models.js';

/**
 * `inner`, throwing once on its `failAt`-th applied event. With `bulk: false` it has no setBulk,
 * so a runner never switches it to bulk builds.
 */
export function failingOnce(
  inner: SqliteReadModels,
  failAt: number,
  { bulk = true }: { bulk?: boolean } = {},
): SqliteProjection {
  let applied = 0;
  return {
    name: inner.name,
    handles: inner.handles,
    migrate: (db) => inner.migrate(db),
    apply: (db, event) => {
      if (++applied === failAt) throw new Error('injected failure');
      inner.apply(db, event);
    },
    flush: (db) => inner.flush(db),
    defer: (db) => inner.defer(db),
    restore: (db) => inner.restore(db),
    writeHeld: (db) => inner.writeHeld(db),
    pending: () => inner.pending(),
    ...(bulk ? { setBulk: (on: boolean) => inner.setBulk(on) } : {}),
    reset: (db) => inner.reset(db),
    drainTouched: () => inner.drainTouched(),
    trackTouched: (on) => inner.trackTouched(on),
  };
}
