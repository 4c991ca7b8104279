import { describe, expect, it } from 'vitest';
import type { NewDomainEvent } from '../../eventstore/ports.js';
import { AdapterError } from '../../lib/errors.js';
import {
  categoryDoc,
  merchantDoc,
  type PostingDoc,
  postingItems,
  rowSpec,
  rowWrites,
} from '../../projectors/stores/row-documents.js';

const specs = {
  merchants: rowSpec(merchantDoc, (r) => r.merchantId),
  categories: rowSpec(categoryDoc, (r) => r.categoryId),
};
const handles = new Set(['MerchantUpserted', 'MerchantRemoved', 'CategoryUpserted']);

function merchantEvent(type: string, order: string, name: string, merchantId = 3): NewDomainEvent {
  return {
    streamType: 'merchant',
    streamId: `merchant-${merchantId}`,
    type,
    data: { state: { merchantId, name, categoryId: 9, mcc: '5411', city: 'X', country: 'DE' }, changes: {} },
    metadata: {
      op: 'u',
      table: 'merchants',
      sourcePosition: `bin.000001:${order}`,
      sourceOrder: order,
      sourceTxId: 'tx',
      sourceTsMs: 0,
      snapshot: false,
    },
  };
}

describe('rowWrites', () => {
  it('keeps the newest event per row by source order, whatever the batch order', () => {
    const writes = rowWrites(
      [
        merchantEvent('MerchantUpserted', 'b:2', 'newest'),
        merchantEvent('MerchantUpserted', 'b:1', 'older'),
        merchantEvent('MerchantUpserted', 'b:1', 'other row', 4),
      ],
      handles,
      specs,
    );
    expect(writes).toEqual([
      {
        table: 'merchants',
        id: 3,
        order: 'b:2',
        removed: false,
        fields: { merchantId: 3, name: 'newest', categoryId: 9 },
      },
      {
        table: 'merchants',
        id: 4,
        order: 'b:1',
        removed: false,
        fields: { merchantId: 4, name: 'other row', categoryId: 9 },
      },
    ]);
  });

  it('marks removals and skips event types and tables the projection does not keep', () => {
    const unknownTable = merchantEvent('MerchantUpserted', 'b:5', 'x');
    unknownTable.metadata.table = 'payments';
    const writes = rowWrites(
      [
        merchantEvent('MerchantRemoved', 'b:3', 'gone'),
        merchantEvent('MerchantAudited', 'b:4', 'x'),
        unknownTable,
      ],
      handles,
      specs,
    );
    expect(writes.map((w) => [w.id, w.order, w.removed])).toEqual([[3, 'b:3', true]]);
  });

  it('rejects an event whose state is not the table row', () => {
    const bad = merchantEvent('MerchantUpserted', 'b:1', 'x');
    bad.data = { state: { merchantId: 'three' }, changes: {} };
    expect(() => rowWrites([bad], handles, specs)).toThrow(AdapterError);
  });
});

describe('postingItems', () => {
  const posting = (transactionId: number, merchantId: number | null): PostingDoc => ({
    transactionId,
    accountId: 1,
    postedAt: '2024-05-01 09:30:00.123456',
    direction: 'debit',
    amount: '12.3400',
    currency: 'EUR',
    balanceAfter: '100.0000',
    description: 'coffee',
    merchantId,
  });

  it('resolves names like the legacy left joins: a missing merchant hides both names, a missing category only its own', async () => {
    const asked: number[][] = [];
    const items = await postingItems([posting(1, 3), posting(2, 4), posting(3, 5), posting(4, null)], {
      merchants: async (ids) => {
        asked.push(ids);
        return new Map([
          [3, { merchantId: 3, name: 'Cafe', categoryId: 9 }],
          [5, { merchantId: 5, name: 'Kiosk', categoryId: 8 }],
        ]);
      },
      categories: async (ids) => {
        asked.push(ids);
        return new Map([[9, { categoryId: 9, name: 'Food' }]]);
      },
    });
    expect(asked).toEqual([
      [3, 4, 5],
      [9, 8],
    ]);
    expect(items.map((i) => [i.transactionId, i.merchant, i.category])).toEqual([
      [1, { merchantId: 3, name: 'Cafe' }, 'Food'],
      [2, null, null],
      [3, { merchantId: 5, name: 'Kiosk' }, null],
      [4, null, null],
    ]);
  });
});
