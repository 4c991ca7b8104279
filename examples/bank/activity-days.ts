import { type DomainEvent, defineProjection, z } from '../../index.js';
import { fromUnits, toUnits } from './overview.js';
import { money } from './rows.js';

/**
 * Per-account daily activity buckets, maintained from ledger postings as they are captured: the
 * overview's month-to-date and 90-day figures sum at most ~90 of these documents instead of
 * scanning an account's postings. Spending is kept per merchant (not per category) because the
 * legacy screen groups by the merchant's category *at read time*: a recategorised merchant moves
 * all its history, which per-category buckets could not follow.
 *
 * Each bucket keeps every posting's contribution by transaction id, so applying an event is
 * idempotent (a re-snapshot re-emits TransactionPosted for rows already counted) and an
 * amendment or removal replaces or drops exactly what the posting added.
 */

/** [direction, amount, merchant id or null] of one posting. */
const contribution = z.tuple([z.enum(['debit', 'credit']), money, z.number().int().nullable()]);
export type Contribution = z.infer<typeof contribution>;

export const activityDaySchema = z.object({
  accountId: z.number().int(),
  /** 'YYYY-MM-DD' (UTC) of the postings' posted_at. */
  day: z.string().regex(/^\d{4}-\d{2}-\d{2}$/),
  spent: money,
  received: money,
  /** Debits at a merchant, by merchant id. */
  spentByMerchant: z.record(z.string(), money),
  postings: z.record(z.string(), contribution),
});
export type ActivityDay = z.infer<typeof activityDaySchema>;

const postingState = z.object({
  transactionId: z.number().int(),
  accountId: z.number().int(),
  direction: z.enum(['debit', 'credit']),
  amount: money,
  merchantId: z.number().int().nullable(),
  postedAt: z.string(),
});

/** What the overview sums of a bucket; its postings are the projection's own bookkeeping. */
export type DayFigures = Pick<ActivityDay, 'day' | 'spent' | 'received' | 'spentByMerchant'>;

const POSTINGS_KEY = ',"postings":';

/**
 * A stored bucket's figures without parsing its postings, most of a busy day's text (and of an
 * overview's parsing): the schema lists postings last, and the embedded store writes a document
 * in its schema's key order. Text laid out otherwise (a store that orders keys its own way) is
 * parsed whole.
 */
export function dayFiguresOf(text: string): DayFigures {
  const cut = text.lastIndexOf(POSTINGS_KEY);
  if (cut > 0) {
    try {
      const figures = JSON.parse(`${text.slice(0, cut)}}`) as Partial<DayFigures>;
      if (
        typeof figures.day === 'string' &&
        typeof figures.spent === 'string' &&
        typeof figures.received === 'string' &&
        typeof figures.spentByMerchant === 'object' &&
        figures.spentByMerchant !== null
      )
        return figures as DayFigures;
    } catch {
      // Not the layout expected: the whole text below.
    }
  }
  return JSON.parse(text) as ActivityDay;
}

export const activityDayKey = (accountId: number, day: string): string => `${accountId}:${day}`;

type Posting = z.infer<typeof postingState>;

// documentId and evolve both read the posting of one event object: it is parsed once.
const parsedPostings = new WeakMap<DomainEvent, Posting>();

function postingOf(event: DomainEvent): Posting {
  let posting = parsedPostings.get(event);
  if (posting === undefined) {
    posting = postingState.parse((event.data as { state: unknown }).state);
    parsedPostings.set(event, posting);
  }
  return posting;
}

/** Totals recomputed from the contributions: a bucket holds one day, so this stays small. */
export function bucketWith(
  accountId: number,
  day: string,
  postings: Record<string, Contribution>,
): ActivityDay | null {
  let spent = 0n;
  let received = 0n;
  const byMerchant = new Map<number, bigint>();
  const ids = Object.keys(postings);
  if (ids.length === 0) return null;
  for (const id of ids) {
    const [direction, amount, merchantId] = postings[id] as Contribution;
    const units = toUnits(amount);
    if (direction === 'credit') {
      received += units;
      continue;
    }
    spent += units;
    if (merchantId !== null) byMerchant.set(merchantId, (byMerchant.get(merchantId) ?? 0n) + units);
  }
  const spentByMerchant: Record<string, string> = {};
  for (const id of [...byMerchant.keys()].sort((a, b) => a - b))
    spentByMerchant[String(id)] = fromUnits(byMerchant.get(id) as bigint);
  return {
    accountId,
    day,
    spent: fromUnits(spent),
    received: fromUnits(received),
    spentByMerchant,
    postings,
  };
}

/** The next state of one day bucket for one posting event; `bucket` is left as it was. */
export function evolveActivityDay(bucket: ActivityDay | null, event: DomainEvent): ActivityDay | null {
  const copy =
    bucket === null
      ? null
      : { ...bucket, spentByMerchant: { ...bucket.spentByMerchant }, postings: { ...bucket.postings } };
  return evolveOwnedActivityDay(copy, event);
}

/**
 * evolveActivityDay changing `bucket` in place: a busy account's day holds hundreds of postings,
 * and copying them per event was most of a replay's time.
 */
export function evolveOwnedActivityDay(bucket: ActivityDay | null, event: DomainEvent): ActivityDay | null {
  const posting = postingOf(event);
  const day = posting.postedAt.slice(0, 10);
  const postings = bucket?.postings ?? {};
  const key = String(posting.transactionId);
  const counted = postings[key] !== undefined;
  if (event.removed) delete postings[key];
  else postings[key] = [posting.direction, posting.amount, posting.merchantId];
  // A posting new to the bucket only adds to its totals; summing every contribution again per
  // event made a busy account's day quadratic. A re-delivery, amendment or removal recomputes.
  if (bucket === null || counted || event.removed || !ordersAsIndex(posting.merchantId))
    return bucketWith(posting.accountId, day, postings);
  addPosting(bucket, posting);
  bucket.accountId = posting.accountId;
  bucket.day = day;
  return bucket;
}

/**
 * Whether a merchant id, as an object key, is enumerated (and serialised) in numeric order
 * wherever it is inserted: true of array indices, which is what bucketWith's sort yields.
 */
function ordersAsIndex(merchantId: number | null): boolean {
  return merchantId === null || (merchantId >= 0 && merchantId <= 4_294_967_294);
}

/** Adds one posting the bucket did not count to its totals: bucketWith's sums, summed once. */
function addPosting(bucket: ActivityDay, posting: Posting): void {
  const units = toUnits(posting.amount);
  if (posting.direction === 'credit') {
    bucket.received = fromUnits(toUnits(bucket.received) + units);
    return;
  }
  bucket.spent = fromUnits(toUnits(bucket.spent) + units);
  if (posting.merchantId === null) return;
  const merchant = String(posting.merchantId);
  const before = bucket.spentByMerchant[merchant];
  bucket.spentByMerchant[merchant] = fromUnits((before === undefined ? 0n : toUnits(before)) + units);
}

/**
 * Known limit: an amendment that moves a posting to another day leaves its contribution in the
 * old day's bucket (one event changes one document). The legacy bank never back-dates postings.
 */
export const activityDaysProjection = defineProjection<ActivityDay>({
  name: 'account-activity-days',
  schema: activityDaySchema,
  canHandle: ['TransactionPosted', 'TransactionAmended', 'TransactionRemoved'],
  documentId: (event) => {
    const posting = postingOf(event);
    return activityDayKey(posting.accountId, posting.postedAt.slice(0, 10));
  },
  evolve: evolveActivityDay,
  evolveOwned: evolveOwnedActivityDay,
  indexes: [['accountId', 'day']],
});
