import type { FastifyInstance } from 'fastify';
import type { ShadowQueue } from '../compare/shadow-queue.js';
import type { ComponentStatus } from '../lib/supervisor.js';

/**
 * Liveness and readiness. Live: the process answers (its event loop turns). Ready: every
 * supervised component runs and the read models are no staler than the threshold; a load
 * balancer or orchestrator takes an unready instance out of rotation instead of letting it
 * serve read models that no longer move.
 */

/** What the pipeline tells the API about itself; absent when nothing here is supervised. */
export interface HealthPort {
  components(): ComponentStatus[];
  /** Seconds since the oldest source commit not yet projected; null before the first measure. */
  lagSeconds(): number | null;
  readonly maxLagSeconds: number;
  /**
   * Rows the capture rules refused, stored for redrive (the embedded store, or the distributed
   * dead-letter topic); null while unknown, absent where the API cannot count them.
   */
  deadLetters?(): Promise<number | null>;
}

export interface ReadinessProblem {
  component: string;
  reason: string;
}

export interface Readiness {
  ready: boolean;
  problems: ReadinessProblem[];
  components: ComponentStatus[];
  lagSeconds: number | null;
}

export function readinessOf(port: HealthPort | undefined): Readiness {
  if (port === undefined) return { ready: true, problems: [], components: [], lagSeconds: null };
  const components = port.components();
  const problems: ReadinessProblem[] = components
    .filter((c) => c.state !== 'up')
    .map((c) => ({ component: c.name, reason: `${c.state}${c.reason === null ? '' : `: ${c.reason}`}` }));
  const lagSeconds = port.lagSeconds();
  if (lagSeconds !== null && lagSeconds > port.maxLagSeconds) {
    problems.push({
      component: 'read-models',
      reason: `stale: ${lagSeconds.toFixed(1)} s behind the legacy database (limit ${port.maxLagSeconds} s)`,
    });
  }
  return { ready: problems.length === 0, problems, components, lagSeconds };
}

/**
 * Where the admin surface is: its own listener (up or not, on which port), the public port, or
 * the primary process (this process is an API worker of api.workers).
 */
export type AdminHealth =
  | { listener: 'separate'; listening: boolean; port: number | null }
  | { listener: 'public-port' }
  | { listener: 'primary-process' };

/** /health/live, /health/ready, and /health (liveness, with the comparison queue and the admin listener). */
export function registerHealthRoutes(
  app: FastifyInstance,
  options: { health?: HealthPort | undefined; queue: ShadowQueue; admin: () => AdminHealth },
): void {
  const live = () => ({ status: 'ok' as const, uptimeSeconds: Math.round(process.uptime()) });
  const docs = (summary: string) => ({ config: { docs: { summary, tag: 'health' } } });
  app.get('/health', docs('Liveness, with the comparison queue and the admin listener'), async () => ({
    ...live(),
    queue: options.queue.stats(),
    admin: options.admin(),
  }));
  app.get('/health/live', docs('Liveness'), async () => live());
  app.get('/health/ready', docs('Readiness (503 naming what is not ready)'), async (_request, reply) => {
    const r = readinessOf(options.health);
    return reply.code(r.ready ? 200 : 503).send({
      status: r.ready ? 'ready' : 'unready',
      problems: r.problems,
      lagSeconds: r.lagSeconds,
      components: r.components,
    });
  });
}
