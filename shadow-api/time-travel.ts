import type { IncomingHttpHeaders } from 'node:http';
import { z } from 'zod';
import type { Analytics } from '../definition/analytics.js';
import { notingReads, readModelReply } from '../definition/endpoint-calls.js';
import { type EndpointDefinition, type EndpointParams, TIME_TRAVEL_PARAM } from '../definition/endpoints.js';
import type { Migration } from '../definition/migration.js';
import type { ReadModels } from '../definition/read-models.js';
import { AdapterError } from '../lib/errors.js';
import type { TimeTravelPort } from '../projectors/past-states.js';

/**
 * Time travel on the read endpoints: `GET <endpoint>?_asOf=<time>` (or the header
 * x-cqrs-as-of) answers from the read models as they stood at that time, rebuilt from the
 * captured events. Such an answer never goes to legacy (it cannot answer the past), is never
 * compared and never cached, and says which event position it reflects.
 */

/**
 * Request header asking for the same thing as the `_asOf` query parameter; on a past answer,
 * the instant it answers for.
 */
export const AS_OF_HEADER = 'x-cqrs-as-of';
/** Response header of a past answer: the last event position it includes. */
export const AS_OF_POSITION_HEADER = 'x-cqrs-as-of-position';

/** A time-travel request the API refuses: `status` is the HTTP status it answers with. */
export class TimeTravelError extends AdapterError {
  constructor(
    code: string,
    readonly status: 400 | 422 | 501,
    message: string,
    hint?: string,
  ) {
    super(code, message, hint === undefined ? undefined : { hint });
  }
}

const asOfSchema = z.iso.datetime({ offset: true });

/** For /docs: the query parameter and the header, as the endpoints accept them. */
export const timeTravelQuerySchema = z.object({
  [TIME_TRAVEL_PARAM]: asOfSchema
    .optional()
    .describe(
      'answer as the read model stood at this ISO 8601 time (with Z or an offset), rebuilt from the captured events; never compared with legacy',
    ),
});
export const timeTravelHeaderSchema = z.object({
  [AS_OF_HEADER]: asOfSchema.optional().describe(`the same as the ${TIME_TRAVEL_PARAM} query parameter`),
});

/**
 * The instant (epoch ms) `text` names: ISO 8601 with a date, a time and Z or an offset (a time
 * without a zone means different instants on different servers). A time after `nowMs` is
 * refused: the past is all the event store can answer for.
 */
export function parseAsOf(text: string, nowMs: number): number {
  const at = asOfSchema.safeParse(text).success ? Date.parse(text) : Number.NaN;
  if (!Number.isFinite(at))
    throw new TimeTravelError(
      'AS_OF_INVALID',
      400,
      `${TIME_TRAVEL_PARAM} ${JSON.stringify(text)} is not an ISO 8601 time with a zone`,
      'write it like 2024-05-01T09:30:00Z or 2024-05-01T11:30:00.250+02:00',
    );
  if (at > nowMs)
    throw new TimeTravelError(
      'AS_OF_IN_FUTURE',
      400,
      `${TIME_TRAVEL_PARAM} ${text} is in the future (server time ${new Date(nowMs).toISOString()})`,
      `leave ${TIME_TRAVEL_PARAM} out for the current state`,
    );
  return at;
}

/**
 * The time-travel instant a request asks for, if any, and its query string without the
 * parameter (the endpoint's own schema never sees it). Asking twice, or the parameter and the
 * header with different values, is a 400.
 */
export function splitAsOf(
  query: Readonly<Record<string, unknown>>,
  headers: IncomingHttpHeaders,
): { asOf: string | undefined; query: Record<string, unknown> } {
  // The common read asks for the present: nothing to take out of the query.
  if (!Object.hasOwn(query, TIME_TRAVEL_PARAM) && headers[AS_OF_HEADER] === undefined)
    return { asOf: undefined, query };
  const { [TIME_TRAVEL_PARAM]: param, ...rest } = query;
  const header = headers[AS_OF_HEADER];
  const values = [param, header].flat().filter((v) => v !== undefined);
  if (values.length === 0) return { asOf: undefined, query: rest };
  const [first] = values;
  if (typeof first !== 'string' || values.some((v) => v !== first))
    throw new TimeTravelError(
      'AS_OF_AMBIGUOUS',
      400,
      `one time please: ${TIME_TRAVEL_PARAM} / ${AS_OF_HEADER} were given as ${JSON.stringify(values)}`,
    );
  return { asOf: first, query: rest };
}

/** The endpoint read a read model the past state does not have yet. */
class NeedsReadModel extends Error {
  constructor(readonly readModel: string) {
    super(`read model ${readModel} is not in this past state`);
  }
}

/** `past`, throwing NeedsReadModel for a read model of the definition it was built without. */
function guarded(past: ReadModels, known: ReadonlySet<string>): ReadModels {
  return new Proxy(past, {
    get(target, prop, receiver) {
      if (typeof prop === 'string' && known.has(prop) && !(prop in target)) throw new NeedsReadModel(prop);
      return Reflect.get(target, prop, receiver);
    },
  });
}

/** Analytics models are not rebuilt for time travel: an endpoint reading one is a 501. */
function noPastAnalytics(name: string): TimeTravelError {
  return new TimeTravelError(
    'TIME_TRAVEL_UNSUPPORTED',
    501,
    `analytics read models (here ${name}) are not rebuilt for time travel`,
    'ask the endpoint without the time-travel parameter',
  );
}

const pastAnalytics: Analytics = new Proxy(
  {},
  {
    get(_target, prop) {
      if (typeof prop !== 'string') return undefined;
      throw noPastAnalytics(prop);
    },
  },
);

export interface PastAnswerContext {
  migration: Migration;
  /** Absent where no event store is at hand (the distributed read side): a 501. */
  timeTravel: TimeTravelPort | undefined;
  /** The live read models and analytics: a live call tells which read models the endpoint reads. */
  live: ReadModels;
  analytics: Analytics | undefined;
  now?: () => number;
}

export interface PastAnswer {
  value: unknown;
  /** The last event position the answer includes (0: none, before the first event). */
  position: number;
  atMs: number;
  /** Response headers that say so; never cached, always the read model. */
  headers: Record<string, string>;
}

/**
 * The endpoint's read-model answer at `asOf`. Which read models it reads is learnt from one
 * live call (endpoints are plain code), and only those are rebuilt; should the past answer read
 * another (a branch the live data did not take), the state is rebuilt with it too.
 */
export async function answerAsOf(
  ctx: PastAnswerContext,
  endpoint: EndpointDefinition,
  params: EndpointParams,
  asOf: string,
): Promise<PastAnswer> {
  const atMs = parseAsOf(asOf, (ctx.now ?? Date.now)());
  const travel = ctx.timeTravel;
  if (travel === undefined)
    throw new TimeTravelError(
      'TIME_TRAVEL_UNAVAILABLE',
      501,
      'time travel replays the embedded event store; this API reads the distributed read side, which keeps none',
      'ask a `run` of the embedded pipeline (cdc.mode embedded), or build a past version with `replay --to <time>`',
    );
  const position = travel.positionAt(atMs);
  if (position > travel.maxEvents)
    throw new TimeTravelError(
      'TIME_TRAVEL_TOO_FAR',
      422,
      `the state at ${new Date(atMs).toISOString()} needs ${position} events replayed; timeTravel.maxEvents allows ${travel.maxEvents}`,
      `raise timeTravel.maxEvents (CQRS_TIME_TRAVEL_MAX_EVENTS), or build that state once as a read-model version with \`replay <read-model> --to ${new Date(atMs).toISOString()}\``,
    );
  const known = new Set(ctx.migration.readModels.map((m) => m.name));
  const models = new Set<string>();
  const analytics = new Set<string>();
  try {
    await readModelReply(
      endpoint,
      params,
      notingReads(ctx.live, models),
      notingReads(ctx.analytics ?? {}, analytics),
    );
  } catch {
    // What it read before failing is noted; the past answer finds anything else it needs.
  }
  const [analyticsModel] = analytics;
  if (analyticsModel !== undefined) throw noPastAnalytics(analyticsModel);
  for (let round = 0; ; round++) {
    const lease = await travel.lease(position, models);
    try {
      const value = await readModelReply(endpoint, params, guarded(lease.readModels, known), pastAnalytics);
      const headers = {
        'x-served-by': 'read-model',
        [AS_OF_HEADER]: new Date(atMs).toISOString(),
        [AS_OF_POSITION_HEADER]: String(position),
        'cache-control': 'no-store',
      };
      return { value, position, atMs, headers };
    } catch (err) {
      if (!(err instanceof NeedsReadModel) || round >= known.size) throw err;
      models.add(err.readModel);
    } finally {
      lease.release();
    }
  }
}
