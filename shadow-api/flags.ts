import { z } from 'zod';

/**
 * Feature flags of the shadow API: which side answers each read endpoint and whether the
 * other side is compared with it. Pure: the flag document is data, `decide` is a function of
 * (document, endpoint, subject), so the same inputs give the same routing on every replica.
 *
 * Keys are `<domain>.<endpoint>` ("accounts.summary") or a bare domain ("accounts"); the most
 * specific entry wins, then the domain's, then the document's default.
 */
export const flagModeSchema = z.enum(['legacy', 'shadow', 'canary', 'new']);
export type FlagMode = z.infer<typeof flagModeSchema>;

export const endpointKeySchema = z
  .string()
  .regex(
    /^[A-Za-z][\w-]*(\.[A-Za-z][\w-]*)?$/,
    'expected "<domain>" or "<domain>.<endpoint>", e.g. "accounts.summary"',
  );

const percentSchema = z.number().min(0).max(100);

function requirePercentForCanary(
  flag: { mode: FlagMode; percent?: number | undefined },
  ctx: z.RefinementCtx,
) {
  // A canary without a share is ambiguous (0%? 100%?), so the operator has to say.
  if (flag.mode === 'canary' && flag.percent === undefined) {
    ctx.addIssue({ code: 'custom', path: ['percent'], message: 'mode "canary" needs a percent (0-100)' });
  }
}

/** Share of requests (0–1) a `new` endpoint still compares with legacy, to catch drift after cutover. */
const compareSampleSchema = z.number().min(0).max(1);

export const endpointFlagSchema = z
  .strictObject({
    mode: flagModeSchema,
    percent: percentSchema.optional(),
    compareSample: compareSampleSchema.optional(),
  })
  .superRefine(requirePercentForCanary);
export type EndpointFlag = z.infer<typeof endpointFlagSchema>;

export const flagDocumentSchema = z
  .strictObject({
    /** Mode of any endpoint (and domain) without an entry. */
    defaultMode: flagModeSchema.default('legacy'),
    /** Canary share used when defaultMode is "canary". */
    defaultPercent: percentSchema.optional(),
    endpoints: z.record(endpointKeySchema, endpointFlagSchema).default({}),
  })
  .superRefine((doc, ctx) => {
    if (doc.defaultMode === 'canary' && doc.defaultPercent === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['defaultPercent'],
        message: 'defaultMode "canary" needs a defaultPercent (0-100)',
      });
    }
  });
export type FlagDocument = z.infer<typeof flagDocumentSchema>;
export type FlagDocumentInput = z.input<typeof flagDocumentSchema>;

/** Body of a partial change to one key; merged over the key's current entry. */
export const endpointFlagPatchSchema = z
  .strictObject({
    mode: flagModeSchema.optional(),
    percent: percentSchema.optional(),
    compareSample: compareSampleSchema.optional(),
  })
  .refine(
    (p) => p.mode !== undefined || p.percent !== undefined || p.compareSample !== undefined,
    'give "mode", "percent", "compareSample" or a combination',
  );
export type EndpointFlagPatch = z.infer<typeof endpointFlagPatchSchema>;

/** Modes one request may force instead of its flag's (a canary share means nothing for one request). */
export const forcedModeSchema = z.enum(['legacy', 'shadow', 'new']);
export type ForcedMode = z.infer<typeof forcedModeSchema>;

export type ServeSide = 'legacy' | 'readModel';

export interface Decision {
  serveFrom: ServeSide;
  /** Compare the served answer with the other side's, off the request path. */
  compare: boolean;
  /** The mode that produced the decision, after key/domain/default resolution. */
  mode: FlagMode;
}

/** The entry that governs `endpointKey`: its own, else its domain's, else the default. */
export function resolveFlag(flags: FlagDocument, endpointKey: string): EndpointFlag {
  const own = flags.endpoints[endpointKey];
  if (own) return own;
  const dot = endpointKey.indexOf('.');
  const domain = dot === -1 ? undefined : flags.endpoints[endpointKey.slice(0, dot)];
  if (domain) return domain;
  return flags.defaultPercent === undefined
    ? { mode: flags.defaultMode }
    : { mode: flags.defaultMode, percent: flags.defaultPercent };
}

/**
 * `draw` (uniform in [0, 1)) decides whether a `new` request is one of its `compareSample`
 * share compared in reverse; passed in so the decision stays a function of its inputs.
 */
export function decide(
  flags: FlagDocument,
  endpointKey: string,
  subject: string,
  draw: number = Math.random(),
): Decision {
  return decideFlag(resolveFlag(flags, endpointKey), subject, draw);
}

/** The decision of one flag entry (e.g. a mode a request forces), as `decide` makes it. */
export function decideFlag(flag: EndpointFlag, subject: string, draw: number = Math.random()): Decision {
  switch (flag.mode) {
    case 'legacy':
      return { serveFrom: 'legacy', compare: false, mode: 'legacy' };
    case 'shadow':
      return { serveFrom: 'legacy', compare: true, mode: 'shadow' };
    case 'canary':
      return {
        serveFrom: inCanary(subject, flag.percent ?? 0) ? 'readModel' : 'legacy',
        compare: true,
        mode: 'canary',
      };
    case 'new':
      return { serveFrom: 'readModel', compare: draw < (flag.compareSample ?? 0), mode: 'new' };
  }
}

/**
 * Sticky canary membership: a subject (the entity a request is about, e.g. an account) is in
 * the slice when its bucket is below the percentage. The bucket depends only on the subject,
 * so raising the percentage only ever adds subjects to the read-model side.
 */
export function inCanary(subject: string, percent: number): boolean {
  return canaryBucket(subject) < percent;
}

/** Stable position of a subject in [0, 100), with 0.01 resolution so fractional percents work. */
export function canaryBucket(subject: string): number {
  return (stableHash(subject) % 10_000) / 100;
}

/**
 * FNV-1a over the UTF-16 code units, then murmur3's 32-bit finalizer so every input bit
 * reaches the low bits the modulo keeps. Part of the canary contract: changing it reshuffles
 * which subjects are in the slice.
 */
export function stableHash(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/**
 * Applies a patch to one key, producing the next document (parse it before use). A key
 * without its own entry starts from the entry that governs it now, so `{ percent: 30 }` on a
 * key inheriting a domain-wide canary means "this endpoint, canary at 30%".
 */
export function patchFlags(
  flags: FlagDocument,
  endpointKey: string,
  patch: EndpointFlagPatch,
): FlagDocumentInput {
  const base = resolveFlag(flags, endpointKey);
  const entry: EndpointFlag = { mode: patch.mode ?? base.mode };
  const percent = patch.percent ?? base.percent;
  if (percent !== undefined) entry.percent = percent;
  const sample = patch.compareSample ?? base.compareSample;
  if (sample !== undefined) entry.compareSample = sample;
  return { ...flags, endpoints: { ...flags.endpoints, [endpointKey]: entry } };
}
