import { z } from 'zod';
import type { NewDomainEvent } from '../../eventstore/ports.js';
import type { TransactionItem } from '../../examples/bank/contract.js';
import { datetime6, money } from '../../examples/bank/rows.js';
import { AdapterError } from '../../lib/errors.js';
import { toItem } from '../postings.js';

/**
 * The server read models keep one document per legacy row, holding the fields of the row's
 * domain state that the queries read. These schemas validate an event's state on the way in
 * and a stored document on the way out (zod drops every other field both ways).
 */
const id = z.number().int().positive();

export const customerDoc = z.object({
  customerId: id,
  firstName: z.string(),
  lastName: z.string(),
  email: z.string(),
});
export const productDoc = z.object({ productId: id, code: z.string(), name: z.string(), kind: z.string() });
export const branchDoc = z.object({ branchId: id, code: z.string(), name: z.string() });
export const categoryDoc = z.object({ categoryId: id, name: z.string() });
export const merchantDoc = z.object({ merchantId: id, name: z.string(), categoryId: id });
export const accountDoc = z.object({
  accountId: id,
  accountNumber: z.string(),
  customerId: id,
  productId: id,
  branchId: id,
  currency: z.string(),
  status: z.enum(['active', 'frozen', 'closed']),
  openedAt: datetime6,
});
export const balanceDoc = z.object({ accountId: id, available: money, ledger: money, updatedAt: datetime6 });
export const cardDoc = z.object({ cardId: id, accountId: id, status: z.string() });
export const loanDoc = z.object({ loanId: id, accountId: id, status: z.string(), outstanding: money });
export const postingDoc = z.object({
  transactionId: id,
  accountId: id,
  postedAt: datetime6,
  direction: z.enum(['debit', 'credit']),
  amount: money,
  currency: z.string(),
  balanceAfter: money,
  description: z.string(),
  merchantId: id.nullable(),
});
export type CategoryDoc = z.infer<typeof categoryDoc>;
export type MerchantDoc = z.infer<typeof merchantDoc>;
export type PostingDoc = z.infer<typeof postingDoc>;

/** How one legacy table's event state becomes a document: its fields and the row id. */
export interface RowSpec {
  parse(state: unknown): { id: number; fields: Record<string, unknown> };
}

export function rowSpec<T extends Record<string, unknown>>(
  schema: z.ZodType<T>,
  idOf: (row: T) => number,
): RowSpec {
  return {
    parse(state) {
      const fields = schema.parse(state);
      return { id: idOf(fields), fields };
    },
  };
}

/** The newest write a batch holds for one row: its fields, or a removal. */
export interface RowWrite {
  table: string;
  id: number;
  order: string;
  removed: boolean;
  fields: Record<string, unknown>;
}

const eventData = z.object({ state: z.unknown() });

/**
 * The batch's events reduced to the newest one per row (by source order), for the tables the
 * projection keeps. One write per row and batch means the store never races two upserts of
 * the same new row against each other, which would lose one of them to a duplicate key.
 */
export function rowWrites(
  events: readonly NewDomainEvent[],
  handles: ReadonlySet<string>,
  specs: Readonly<Record<string, RowSpec>>,
): RowWrite[] {
  const latest = new Map<string, RowWrite>();
  for (const event of events) {
    const spec = specs[event.metadata.table];
    if (!handles.has(event.type) || spec === undefined) continue;
    let row: { id: number; fields: Record<string, unknown> };
    try {
      row = spec.parse(eventData.parse(event.data).state);
    } catch (err) {
      throw new AdapterError(
        'EVENT_INVALID',
        `${event.type} of ${event.streamId} at ${event.metadata.sourcePosition} does not carry a valid ${event.metadata.table} state`,
        { cause: err },
      );
    }
    const key = `${event.metadata.table}:${row.id}`;
    const order = event.metadata.sourceOrder;
    const seen = latest.get(key);
    if (seen !== undefined && seen.order >= order) continue;
    latest.set(key, {
      table: event.metadata.table,
      id: row.id,
      order,
      removed: event.type.endsWith('Removed'),
      fields: row.fields,
    });
  }
  return [...latest.values()];
}

/** Live (not removed) merchants and categories by id; unknown ids are absent from the map. */
export interface NameLookup {
  merchants(ids: number[]): Promise<Map<number, MerchantDoc>>;
  categories(ids: number[]): Promise<Map<number, CategoryDoc>>;
}

/**
 * The postings as API items with names resolved at read time: one lookup for their merchants,
 * one for those merchants' categories, so a rename never rewrites postings.
 */
export async function postingItems(postings: PostingDoc[], lookup: NameLookup): Promise<TransactionItem[]> {
  const merchants = await lookup.merchants(uniqueIds(postings.map((p) => p.merchantId)));
  const categories = await lookup.categories(uniqueIds([...merchants.values()].map((m) => m.categoryId)));
  return postings.map((p) => {
    const merchant = p.merchantId === null ? undefined : merchants.get(p.merchantId);
    return postingItem(p, merchant, merchant && categories.get(merchant.categoryId));
  });
}

function uniqueIds(ids: Array<number | null>): number[] {
  return [...new Set(ids.filter((id): id is number => id !== null))];
}

/**
 * A posting as the API shows it, with its merchant and category resolved like the legacy
 * LEFT JOINs: no merchant row, no merchant (and no category).
 */
function postingItem(
  posting: PostingDoc,
  merchant: MerchantDoc | undefined,
  category: CategoryDoc | undefined,
): TransactionItem {
  return toItem({
    transaction_id: posting.transactionId,
    posted_at: posting.postedAt,
    direction: posting.direction,
    amount: posting.amount,
    currency: posting.currency,
    balance_after: posting.balanceAfter,
    description: posting.description,
    merchant_id: merchant?.merchantId ?? null,
    merchant_name: merchant?.name ?? null,
    category_name: merchant !== undefined ? (category?.name ?? null) : null,
  });
}
