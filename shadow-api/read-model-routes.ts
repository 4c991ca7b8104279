import type { FastifyInstance, FastifyReply } from 'fastify';
import { z } from 'zod';
import { AdapterError } from '../lib/errors.js';
import type { RouteDocs } from './openapi.js';

/**
 * /admin/read-models/:readModel/…: the versions of an embedded read model in the process that
 * owns them (`cqrs-migrate replay` and `read-model …` call these while `run` is live). A replay
 * runs in the process's projection worker between its live batches; a switch, rollback or
 * drop is one SQLite transaction and the read side serves the new live version from the next
 * request. Behind the admin auth of every /admin route.
 */

/** A replay bound as the CLI sends it: an event position or an ISO time. */
const pointSchema = z.union([
  z.strictObject({ position: z.number().int().min(1) }),
  z.strictObject({ time: z.iso.datetime({ offset: true }) }),
]);
export type ReplayPointBody = z.infer<typeof pointSchema>;

const params = z.object({ readModel: z.string().min(1).max(200) });
const replayBody = z.strictObject({ from: pointSchema.optional(), to: pointSchema.optional() }).prefault({});
const switchBody = z.strictObject({ version: z.number().int().min(1), force: z.boolean().default(false) });
const dropBody = z.strictObject({ version: z.number().int().min(2) });

export interface ReplayJobView {
  readModel: string;
  version: number;
  state: 'running' | 'done' | 'failed';
  done: number;
  total: number | null;
  error?: string;
}

/** What the process offers (cli/embedded-versions.ts); each call throws an AdapterError when refused. */
export interface ReadModelVersionsPort {
  list(readModel: string): unknown[];
  replay(readModel: string, range: { from?: ReplayPointBody; to?: ReplayPointBody }): ReplayJobView;
  job(readModel: string): ReplayJobView | null;
  switchTo(readModel: string, version: number, force: boolean): Promise<{ from: number; to: number }>;
  rollback(readModel: string): Promise<{ from: number; to: number }>;
  drop(readModel: string, version: number): Promise<void>;
}

const NOT_FOUND = new Set(['READ_MODEL_UNKNOWN', 'VERSION_UNKNOWN']);

export function registerReadModelRoutes(
  app: FastifyInstance,
  port: ReadModelVersionsPort,
  parse: <S extends z.ZodType>(schema: S, input: unknown, what: string) => z.infer<S>,
): void {
  const refused = (reply: FastifyReply, err: unknown) => {
    if (!(err instanceof AdapterError)) throw err;
    return reply.code(NOT_FOUND.has(err.code) ? 404 : 409).send({
      error: err.code,
      message: err.message,
      ...(err.hint === undefined ? {} : { hint: err.hint }),
    });
  };
  const docs = (summary: string, more: Omit<RouteDocs, 'summary' | 'tag'> = {}) => ({
    config: { docs: { summary, tag: 'read-models', input: params, ...more } },
  });
  const base = '/admin/read-models/:readModel';

  app.get(`${base}/versions`, docs('Versions of one embedded read model'), async (request, reply) => {
    const { readModel } = parse(params, request.params, 'read model');
    try {
      return port.list(readModel);
    } catch (err) {
      return refused(reply, err);
    }
  });

  app.post(
    `${base}/replay`,
    docs('Build a new version from the event store beside the live one', { body: replayBody }),
    async (request, reply) => {
      const { readModel } = parse(params, request.params, 'read model');
      const range = parse(replayBody, request.body ?? {}, 'replay body');
      try {
        return reply.code(202).send(port.replay(readModel, range));
      } catch (err) {
        return refused(reply, err);
      }
    },
  );

  app.get(`${base}/replay`, docs('Progress of the latest replay'), async (request, reply) => {
    const { readModel } = parse(params, request.params, 'read model');
    const job = port.job(readModel);
    if (job === null)
      return reply
        .code(404)
        .send({ error: 'NO_REPLAY', message: `no replay of ${readModel} in this process` });
    return job;
  });

  app.post(
    `${base}/switch`,
    docs('Make a version live (one transaction); the CLI verifies it first', { body: switchBody }),
    async (request, reply) => {
      const { readModel } = parse(params, request.params, 'read model');
      const { version, force } = parse(switchBody, request.body, 'switch body');
      try {
        return await port.switchTo(readModel, version, force);
      } catch (err) {
        return refused(reply, err);
      }
    },
  );

  app.post(
    `${base}/rollback`,
    docs('Make the previously live version live again'),
    async (request, reply) => {
      const { readModel } = parse(params, request.params, 'read model');
      try {
        return await port.rollback(readModel);
      } catch (err) {
        return refused(reply, err);
      }
    },
  );

  app.post(
    `${base}/drop`,
    docs("Delete a version's tables (never the live one or version 1)", { body: dropBody }),
    async (request, reply) => {
      const { readModel } = parse(params, request.params, 'read model');
      const { version } = parse(dropBody, request.body, 'drop body');
      try {
        await port.drop(readModel, version);
        return { dropped: version };
      } catch (err) {
        return refused(reply, err);
      }
    },
  );
}
