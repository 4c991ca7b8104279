import type { ComponentStatus } from '../lib/supervisor.js';
import type { HealthPort } from '../shadow-api/health.js';
import type { HealthSnapshot } from './api-worker-protocol.js';

/**
 * The primary's pipeline health as its API workers see it: the primary sends a snapshot every
 * second; a worker's /health/ready answers from the last one, and is unready once it is older
 * than `staleAfterMs` (a primary that stopped relaying is one whose pipeline nobody vouches for).
 */

/** The snapshot of `port` to relay (nothing supervised: no components, no lag). */
export async function healthSnapshotOf(port: HealthPort | undefined): Promise<HealthSnapshot> {
  if (port === undefined) return { components: [], lagSeconds: null, maxLagSeconds: 0, deadLetters: null };
  return {
    components: port.components(),
    lagSeconds: port.lagSeconds(),
    maxLagSeconds: port.maxLagSeconds,
    deadLetters: (await port.deadLetters?.().catch(() => null)) ?? null,
  };
}

/** The component a worker lists while it has no fresh snapshot. */
export const PRIMARY_COMPONENT = 'primary-process';

export interface RelayedHealth {
  port: HealthPort;
  receive(snapshot: HealthSnapshot): void;
}

export function relayedHealth(staleAfterMs: number, now: () => number = Date.now): RelayedHealth {
  const started = now();
  let last: { snapshot: HealthSnapshot; at: number } | null = null;
  const stale = (): ComponentStatus | null => {
    const at = last?.at ?? started;
    if (last !== null && now() - at <= staleAfterMs) return null;
    const seconds = ((now() - at) / 1000).toFixed(1);
    return {
      name: PRIMARY_COMPONENT,
      state: last === null ? 'starting' : 'down',
      since: at,
      reason:
        last === null
          ? 'no health from the primary process yet'
          : `no health from the primary process for ${seconds} s`,
      restarts: 0,
    };
  };
  return {
    port: {
      components() {
        const missing = stale();
        const components = last?.snapshot.components ?? [];
        return missing === null ? components : [...components, missing];
      },
      lagSeconds: () => last?.snapshot.lagSeconds ?? null,
      get maxLagSeconds() {
        return last?.snapshot.maxLagSeconds ?? 0;
      },
      deadLetters: async () => last?.snapshot.deadLetters ?? null,
    },
    receive(snapshot) {
      last = { snapshot, at: now() };
    },
  };
}
