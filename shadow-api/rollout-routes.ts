import type { FastifyInstance, FastifyReply } from 'fastify';
import { z } from 'zod';
import { type RolloutController, RolloutError } from '../rollout/controller.js';
import { actorOf, reasonOf } from './admin-auth.js';
import type { RouteDocs } from './openapi.js';

const targetParams = z.object({ target: z.string().min(1).max(200) });
const advanceBody = z.strictObject({ force: z.boolean().default(false) }).prefault({});
const rollbackBody = z.strictObject({ to: z.enum(['shadow', 'capture']).optional() }).prefault({});

/**
 * /admin/rollout: the same steps as `cqrs-migrate rollout`, judged by the same gates. A refused
 * step answers 409 with the gate figures, so the caller sees why.
 */
export function registerRolloutRoutes(
  app: FastifyInstance,
  rollout: RolloutController,
  parse: <S extends z.ZodType>(schema: S, input: unknown, what: string) => z.infer<S>,
): void {
  const refused = (reply: FastifyReply, err: unknown) => {
    if (!(err instanceof RolloutError)) throw err;
    return reply.code(err.statusCode).send({
      error: err.code,
      message: err.message,
      ...(err.hint === undefined ? {} : { hint: err.hint }),
      ...(err.verdict === null ? {} : { gates: err.verdict.results }),
    });
  };
  const by = (request: Parameters<typeof actorOf>[0]) => ({
    actor: actorOf(request),
    reason: reasonOf(request),
  });

  const docs = (summary: string, more: Omit<RouteDocs, 'summary' | 'tag'> = {}) => ({
    config: { docs: { summary, tag: 'rollout', ...more } },
  });
  app.get('/admin/rollout', docs('Rollout state of every domain'), async () => rollout.status());

  app.get(
    '/admin/rollout/:target',
    docs('Rollout state of one domain', { input: targetParams }),
    async (request, reply) => {
      const { target } = parse(targetParams, request.params, 'rollout target');
      try {
        return rollout.statusOf(target);
      } catch (err) {
        return refused(reply, err);
      }
    },
  );

  const advanceDocs = docs('Advance one step if the gates pass (force: skip them)', {
    input: targetParams,
    body: advanceBody,
  });
  app.post('/admin/rollout/:target/advance', advanceDocs, async (request, reply) => {
    const { target } = parse(targetParams, request.params, 'rollout target');
    const { force } = parse(advanceBody, request.body ?? {}, 'advance body');
    try {
      return await rollout.advance(target, by(request), force);
    } catch (err) {
      return refused(reply, err);
    }
  });

  const rollbackDocs = docs('Roll back one step, or to a named stage', {
    input: targetParams,
    body: rollbackBody,
  });
  app.post('/admin/rollout/:target/rollback', rollbackDocs, async (request, reply) => {
    const { target } = parse(targetParams, request.params, 'rollout target');
    const { to } = parse(rollbackBody, request.body ?? {}, 'rollback body');
    try {
      return await rollout.rollback(target, by(request), to);
    } catch (err) {
      return refused(reply, err);
    }
  });

  for (const [action, held] of [
    ['hold', true],
    ['resume', false],
  ] as const) {
    const summary = held ? 'Hold automatic advancing' : 'Resume automatic advancing';
    app.post(
      `/admin/rollout/:target/${action}`,
      docs(summary, { input: targetParams }),
      async (request, reply) => {
        const { target } = parse(targetParams, request.params, 'rollout target');
        try {
          return rollout.hold(target, by(request), held);
        } catch (err) {
          return refused(reply, err);
        }
      },
    );
  }
}
