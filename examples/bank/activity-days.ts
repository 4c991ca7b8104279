import { type DomainEvent, defineProjection, z } from '../../index.js';
import { fromUnits, toUnits } from './overview.js';
import { money, SCALE_4 } from './rows.js';

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
export type Contribution = ['debit' | 'credit', string, number | null];

/**
 * Whether `value` maps transaction ids to contributions. A loop over the entries rather than
 * `z.record(z.string(), z.tuple(…))`: the store validates a document at every write, a busy
 * account's day is written once a batch, and zod's record builds a copy of each entry. The
 * bench's hottest account reached 8,410 postings in one day (300 KB): 13.8 ms a check with the
 * record, 2.3 ms for the whole document with this.
 */
function isContributions(value: unknown): value is Record<string, Contribution> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const entries = value as Record<string, unknown>;
  for (const id in entries) {
    const entry = entries[id];
    if (!Array.isArray(entry) || entry.length !== 3) return false;
    const [direction, amount, merchantId] = entry as unknown[];
    if (direction !== 'debit' && direction !== 'credit') return false;
    if (typeof amount !== 'string' || !SCALE_4.test(amount)) return false;
    if (merchantId !== null && !Number.isSafeInteger(merchantId)) return false;
  }
  return true;
}

export const activityDaySchema = z.object({
  accountId: z.number().int(),
  /** 'YYYY-MM-DD' (UTC) of the postings' posted_at. */
  day: z.string().regex(/^\d{4}-\d{2}-\d{2}$/),
  spent: money,
  received: money,
  /** Debits at a merchant, by merchant id. */
  spentByMerchant: z.record(z.string(), money),
  postings: z.custom<Record<string, Contribution>>(isContributions, {
    message:
      'expected postings: [debit or credit, a DECIMAL(19,4) amount, a merchant id or null] by transaction id',
  }),
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

/**
 * Where the overview's sums receive a bucket's figures (its postings are the projection's own
 * bookkeeping): `day` gets its day and totals and says whether its spending by merchant is
 * wanted, which `merchant` then gets entry by entry.
 */
export interface DayFiguresSink {
  day(day: string, spent: string, received: string): boolean;
  merchant(merchantId: number, spent: string): void;
}

/** What the overview sums of a bucket. */
export type DayFigures = Pick<ActivityDay, 'day' | 'spent' | 'received' | 'spentByMerchant'>;

/** Hands a bucket's figures to `sink` (readDayFigures does it from the stored text). */
export function sendDayFigures(bucket: DayFigures, sink: DayFiguresSink): void {
  if (!sink.day(bucket.day, bucket.spent, bucket.received)) return;
  const bySpend = bucket.spentByMerchant;
  for (const id in bySpend) sink.merchant(Number(id), bySpend[id] as string);
}

/**
 * Hands a stored bucket's figures to `sink`, read off the text as the embedded store writes it
 * (the schema's key order, postings last) without parsing its postings, most of a busy day's
 * text, nor building an object per bucket: parsing and walking one per bucket was most of an
 * overview's CPU. Text laid out otherwise (a store that orders keys its own way, an escape in a
 * string) is parsed whole.
 */
export function readDayFigures(text: string, sink: DayFiguresSink): void {
  const scanned = scanDayFigures(text);
  if (scanned === null) {
    sendDayFigures(JSON.parse(text) as ActivityDay, sink);
    return;
  }
  if (!sink.day(scanned.day, scanned.spent, scanned.received)) return;
  const merchants = scanned.merchants;
  for (let i = 0; i < merchants.length; i += 2)
    sink.merchant(Number(merchants[i]), merchants[i + 1] as string);
}

interface ScannedDay {
  day: string;
  spent: string;
  received: string;
  /** Merchant id and amount texts, alternating. */
  merchants: string[];
}

/** The content of the string literal at `at`; null unless there is one, without escapes. */
function literalAt(text: string, at: number): string | null {
  if (text.charCodeAt(at) !== QUOTE) return null;
  const close = text.indexOf('"', at + 1);
  if (close < 0) return null;
  const content = text.slice(at + 1, close);
  return content.includes('\\') ? null : content;
}

const QUOTE = 0x22;
const COMMA = 0x2c;
const COLON = 0x3a;
const CLOSE_BRACE = 0x7d;
const LEAD = '{"accountId":';
const FIELDS = [',"day":', ',"spent":', ',"received":'] as const;
const MERCHANTS = ',"spentByMerchant":{';
const POSTINGS_KEY = ',"postings":';

/**
 * The figures of a bucket's text laid out exactly as the embedded store writes it (JSON.stringify
 * of the schema's output: no whitespace, no repeated key), or null: anything unexpected leaves
 * the text to JSON.parse, so a figure read here is the one a parse gives.
 */
function scanDayFigures(text: string): ScannedDay | null {
  if (!text.startsWith(LEAD)) return null;
  let at = LEAD.length;
  while (at < text.length && text.charCodeAt(at) !== COMMA) at++;
  const values: string[] = [];
  for (const field of FIELDS) {
    if (!text.startsWith(field, at)) return null;
    const value = literalAt(text, at + field.length);
    if (value === null) return null;
    values.push(value);
    at += field.length + value.length + 2;
  }
  if (!text.startsWith(MERCHANTS, at)) return null;
  at += MERCHANTS.length;
  const merchants: string[] = [];
  while (text.charCodeAt(at) !== CLOSE_BRACE) {
    if (merchants.length > 0) {
      if (text.charCodeAt(at) !== COMMA) return null;
      at++;
    }
    const id = literalAt(text, at);
    if (id === null) return null;
    at += id.length + 2;
    if (text.charCodeAt(at) !== COLON) return null;
    const spent = literalAt(text, at + 1);
    if (spent === null) return null;
    merchants.push(id, spent);
    at += spent.length + 3;
  }
  if (!text.startsWith(POSTINGS_KEY, at + 1)) return null;
  const [day, spent, received] = values as [string, string, string];
  return { day, spent, received, merchants };
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
