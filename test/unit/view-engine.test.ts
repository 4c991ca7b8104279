import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { rowKeyOf } from '../../connectors/mapping/rules.js';
import {
  type DomainState,
  defineView,
  type ViewDefinition,
  type ViewNode,
  type ViewSpec,
} from '../../definition/read-models.js';
import {
  affectedKeys,
  aggregateRows,
  compareRows,
  compileView,
  composeDocument,
  keptIndexes,
  MemoryRows,
  matchesWhere,
  runAsync,
  runSync,
  type ViewPlan,
} from '../../definition/view/index.js';

// ---------------------------------------------------------------------------------------------
// A small schema: a bank (branches, customers, accounts, cards, postings, merchants, categories)
// and a catalogue with a many-to-many join table (products ↔ categories).

const KEYS: Record<string, readonly string[]> = {
  branches: ['branchId'],
  customers: ['customerId'],
  accounts: ['accountId'],
  cards: ['cardId'],
  postings: ['postingId'],
  merchants: ['merchantId'],
  categories: ['categoryId'],
  products: ['productId'],
  product_categories: ['productId', 'categoryId'],
  featured: ['featuredId'],
};
const keyFieldsOf = (table: string) => KEYS[table];
const rowKey = (table: string, state: DomainState) => rowKeyOf((KEYS[table] ?? []).map((f) => state[f]));

/** Flattens a view node into a readable document: row fields, aggregates, then joins by name. */
function plain(node: ViewNode): Record<string, unknown> {
  const joins = Object.entries(node.joins).map(([name, value]) => [
    name,
    value === null ? null : Array.isArray(value) ? value.map(plain) : plain(value),
  ]);
  return { ...node.row, ...node.aggregates, ...Object.fromEntries(joins) };
}

function view(spec: Omit<ViewSpec<Record<string, unknown>>, 'select' | 'schema'>): ViewDefinition {
  return defineView({ ...spec, select: plain, schema: z.record(z.string(), z.unknown()) }) as ViewDefinition;
}

const compile = (v: ViewDefinition) => compileView(v, keyFieldsOf, Object.keys(KEYS));

const recentPostings = {
  table: 'postings',
  by: 'accountId',
  orderBy: [
    { field: 'postedAt', direction: 'desc' },
    { field: 'postingId', direction: 'desc' },
  ],
  limit: 3,
  join: {
    merchant: {
      table: 'merchants',
      on: 'merchantId',
      join: { category: { table: 'categories', on: 'categoryId' } },
    },
  },
} as const;

const accountView = view({
  name: 'accounts',
  from: 'accounts',
  join: {
    branch: { table: 'branches', on: 'branchId' },
    owner: {
      table: 'customers',
      on: 'customerId',
      required: true,
      join: { branch: { table: 'branches', on: 'branchId' } },
    },
    cards: { table: 'cards', by: 'accountId', where: { status: ['active', 'frozen'] } },
    recent: recentPostings,
    postings: { table: 'postings', by: 'accountId', limit: 0 },
  },
  aggregate: {
    activeCards: { count: 'cards', where: { status: 'active' } },
    balance: { sum: 'postings', field: 'amount', scale: 2 },
    postingCount: { count: 'postings' },
    firstPostedAt: { min: 'postings', field: 'postedAt' },
    lastPostedAt: { max: 'postings', field: 'postedAt' },
  },
  indexes: [['customerId'], ['branchId', 'accountId']],
});

/** INNER JOIN semantics at every level: required merchants inside children, required chains. */
const strictView = view({
  name: 'strict',
  from: 'accounts',
  join: {
    owner: {
      table: 'customers',
      on: 'customerId',
      join: { branch: { table: 'branches', on: 'branchId', required: true } },
    },
    recent: {
      table: 'postings',
      by: 'accountId',
      orderBy: [{ field: 'postedAt', direction: 'desc' }],
      limit: 2,
      join: { merchant: { table: 'merchants', on: 'merchantId', required: true } },
    },
  },
});

/** Children of children, with aggregates below the root. */
const categoryView = view({
  name: 'categories',
  from: 'categories',
  join: {
    merchants: {
      table: 'merchants',
      by: 'categoryId',
      orderBy: [{ field: 'name' }],
      limit: 2,
      join: {
        postings: {
          table: 'postings',
          by: 'merchantId',
          limit: 1,
          join: {
            account: {
              table: 'accounts',
              on: 'accountId',
              required: true,
              join: { owner: { table: 'customers', on: 'customerId' } },
            },
          },
        },
      },
      aggregate: { spent: { sum: 'postings', field: 'amount', scale: 2 } },
    },
  },
});

const productView = view({
  name: 'products',
  from: 'products',
  join: {
    links: {
      table: 'product_categories',
      by: 'productId',
      join: { category: { table: 'categories', on: 'categoryId', required: true } },
    },
  },
  aggregate: { linkCount: { count: 'links' } },
});

/** A compound-key lookup (featured → product_categories) and a compound-key root. */
const featuredView = view({
  name: 'featured',
  from: 'featured',
  join: {
    link: {
      table: 'product_categories',
      on: ['productId', 'categoryId'],
      join: {
        product: { table: 'products', on: 'productId' },
        category: { table: 'categories', on: 'categoryId' },
      },
    },
  },
});
const linkView = view({
  name: 'links',
  from: 'product_categories',
  join: {
    category: { table: 'categories', on: 'categoryId' },
    featured: { table: 'featured', by: ['productId', 'categoryId'], orderBy: [{ field: 'rank' }] },
  },
});

// ---------------------------------------------------------------------------------------------
// A store: the row mirror and incrementally maintained documents, the way a store adapter runs
// the engine (affectedKeys before the write, write, affectedKeys after, recompose the marked).

class Store {
  readonly rows = new MemoryRows();
  readonly docs = new Map<string, Map<string, unknown>>();
  lastMarked = new Map<string, string[]>();

  constructor(readonly plans: readonly ViewPlan[]) {
    for (const plan of plans) this.docs.set(plan.name, new Map());
  }

  put(table: string, state: DomainState): void {
    this.write(table, rowKey(table, state), state);
  }

  remove(table: string, state: DomainState): void {
    this.write(table, rowKey(table, state), null);
  }

  write(table: string, key: string, state: DomainState | null): void {
    const before = this.rows.get(table, key);
    const marked = new Map<string, Set<string>>();
    for (const plan of this.plans) {
      const keys = new Set<string>();
      if (before !== null) for (const k of runSync(affectedKeys(plan, table, before), this.rows)) keys.add(k);
      marked.set(plan.name, keys);
    }
    if (state === null) this.rows.delete(table, key);
    else this.rows.put(table, key, state);
    this.lastMarked = new Map();
    for (const plan of this.plans) {
      const keys = marked.get(plan.name) ?? new Set<string>();
      if (state !== null) for (const k of runSync(affectedKeys(plan, table, state), this.rows)) keys.add(k);
      const docs = this.docs.get(plan.name) ?? new Map<string, unknown>();
      for (const k of keys) {
        const doc = runSync(composeDocument(plan, k), this.rows);
        if (doc === null) docs.delete(k);
        else docs.set(k, doc);
      }
      this.lastMarked.set(plan.name, [...keys].sort());
    }
  }

  doc(plan: ViewPlan, key: string | number): unknown {
    return this.docs.get(plan.name)?.get(String(key)) ?? null;
  }

  marked(plan: ViewPlan): string[] {
    return this.lastMarked.get(plan.name) ?? [];
  }

  /** Every document computed from scratch, for comparison with the maintained ones. */
  recompute(plan: ViewPlan): Map<string, unknown> {
    const docs = new Map<string, unknown>();
    for (const key of this.rows.keys(plan.root.table)) {
      const doc = runSync(composeDocument(plan, key), this.rows);
      if (doc !== null) docs.set(key, doc);
    }
    return docs;
  }
}

const accounts = compile(accountView);
const strict = compile(strictView);
const categories = compile(categoryView);
const products = compile(productView);
const featured = compile(featuredView);
const links = compile(linkView);

function bank(): Store {
  const s = new Store([accounts, strict, categories]);
  s.put('branches', { branchId: 1, name: 'North' });
  s.put('branches', { branchId: 2, name: 'South' });
  s.put('customers', { customerId: 10, branchId: 1, name: 'Ada' });
  s.put('customers', { customerId: 11, branchId: 2, name: 'Bob' });
  s.put('accounts', { accountId: 100, customerId: 10, branchId: 1 });
  s.put('accounts', { accountId: 101, customerId: 10, branchId: 1 });
  s.put('accounts', { accountId: 102, customerId: 11, branchId: 2 });
  s.put('categories', { categoryId: 7, name: 'Food' });
  s.put('merchants', { merchantId: 50, categoryId: 7, name: 'Deli' });
  s.put('merchants', { merchantId: 51, categoryId: null, name: 'Kiosk' });
  return s;
}

const posting = (
  postingId: number,
  accountId: number,
  postedAt: string,
  amount = '1.00',
  merchantId = 50,
) => ({
  postingId,
  accountId,
  merchantId,
  amount,
  postedAt,
});
const ids = (list: unknown) => (list as { postingId: number }[]).map((p) => p.postingId);
const docOf = (s: Store, plan: ViewPlan, key: string | number) => s.doc(plan, key) as Record<string, unknown>;

// ---------------------------------------------------------------------------------------------

describe('lookups', () => {
  it('follows nested lookup chains and leaves a null foreign key as null', () => {
    const s = bank();
    s.put('postings', posting(1, 100, '2024-01-01', '5.00', 50));
    s.put('postings', posting(2, 100, '2024-01-02', '5.00', 51));
    s.put('accounts', { accountId: 103, customerId: 11, branchId: null });
    expect(s.doc(accounts, 100)).toMatchObject({
      accountId: 100,
      branch: { name: 'North' },
      owner: { name: 'Ada', branch: { name: 'North' } },
      recent: [
        { postingId: 2, merchant: { name: 'Kiosk', category: null } },
        { postingId: 1, merchant: { name: 'Deli', category: { name: 'Food' } } },
      ],
    });
    expect(s.doc(accounts, 103)).toMatchObject({ branch: null, owner: { name: 'Bob' } });
  });

  it('a missing optional lookup is null; a missing required one removes the document', () => {
    const s = bank();
    s.put('accounts', { accountId: 104, customerId: 11, branchId: 9 });
    expect(s.doc(accounts, 104)).toMatchObject({ branch: null, owner: { name: 'Bob' } });
    s.put('accounts', { accountId: 105, customerId: 99, branchId: 1 });
    expect(s.doc(accounts, 105)).toBeNull();
    s.put('customers', { customerId: 99, branchId: 1, name: 'Late' });
    expect(s.doc(accounts, 105)).toMatchObject({ owner: { name: 'Late' } });
    s.remove('customers', { customerId: 99 });
    expect(s.doc(accounts, 105)).toBeNull();
  });

  it('a required lookup inside a lookup nulls that lookup; inside a child it drops the child', () => {
    const s = bank();
    s.put('customers', { customerId: 12, branchId: 9, name: 'Nowhere' });
    s.put('accounts', { accountId: 106, customerId: 12, branchId: 1 });
    expect(s.doc(strict, 106)).toMatchObject({ owner: null });
    s.put('postings', posting(1, 100, '2024-01-03', '1.00', 50));
    s.put('postings', posting(2, 100, '2024-01-02', '1.00', 77));
    s.put('postings', posting(3, 100, '2024-01-01', '1.00', 51));
    // Posting 2's merchant does not exist: the top 2 are 1 and 3, as LIMIT after an INNER JOIN.
    expect(ids(docOf(s, strict, 100).recent)).toEqual([1, 3]);
    s.put('merchants', { merchantId: 77, categoryId: 7, name: 'Bakery' });
    expect(ids(docOf(s, strict, 100).recent)).toEqual([1, 2]);
  });

  it('a required lookup propagates through a required parent lookup up to the document', () => {
    const chain = compile(
      view({
        name: 'chain',
        from: 'accounts',
        join: {
          owner: {
            table: 'customers',
            on: 'customerId',
            required: true,
            join: { branch: { table: 'branches', on: 'branchId', required: true } },
          },
        },
      }),
    );
    const s = new Store([chain]);
    s.put('customers', { customerId: 1, branchId: 5, name: 'A' });
    s.put('accounts', { accountId: 1, customerId: 1, branchId: null });
    expect(s.doc(chain, 1)).toBeNull();
    s.put('branches', { branchId: 5, name: 'East' });
    expect(s.doc(chain, 1)).toMatchObject({ owner: { branch: { name: 'East' } } });
  });
});

describe('fan-out', () => {
  it('a branch rename marks every account of that branch, directly and through the owner', () => {
    const s = bank();
    s.put('customers', { customerId: 13, branchId: 1, name: 'Cy' });
    s.put('accounts', { accountId: 107, customerId: 13, branchId: 2 });
    s.put('branches', { branchId: 1, name: 'North-East' });
    expect(s.marked(accounts)).toEqual(['100', '101', '107']);
    expect(s.doc(accounts, 100)).toMatchObject({
      branch: { name: 'North-East' },
      owner: { branch: { name: 'North-East' } },
    });
    expect(s.doc(accounts, 107)).toMatchObject({
      branch: { name: 'South' },
      owner: { branch: { name: 'North-East' } },
    });
  });

  it('a category rename reaches accounts through merchant → posting → account', () => {
    const s = bank();
    s.put('postings', posting(1, 100, '2024-01-01', '1.00', 50));
    s.put('postings', posting(2, 102, '2024-01-01', '1.00', 50));
    s.put('postings', posting(3, 101, '2024-01-01', '1.00', 51));
    s.put('categories', { categoryId: 7, name: 'Groceries' });
    expect(s.marked(accounts)).toEqual(['100', '102']);
    expect(s.marked(categories)).toEqual(['7']);
    expect(s.doc(accounts, 102)).toMatchObject({
      recent: [{ merchant: { category: { name: 'Groceries' } } }],
    });
  });

  it('a row no view reads marks nothing', () => {
    const s = bank();
    s.put('cards', { cardId: 1, accountId: 100, status: 'closed' });
    // Closed cards are outside the cards join's where, so no account document reads them.
    expect(s.marked(accounts)).toEqual([]);
    s.put('cards', { cardId: 1, accountId: 100, status: 'active' });
    expect(s.marked(accounts)).toEqual(['100']);
    s.put('cards', { cardId: 1, accountId: 100, status: 'closed' });
    expect(s.marked(accounts)).toEqual(['100']);
    expect(docOf(s, accounts, 100).cards).toEqual([]);
  });
});

describe('child collections', () => {
  it('keeps the top N; the next child appears when a top one is deleted', () => {
    const s = bank();
    for (const [id, day] of [
      [1, '01'],
      [2, '02'],
      [3, '03'],
      [4, '04'],
    ] as const) {
      s.put('postings', posting(id, 100, `2024-01-${day}`));
    }
    expect(ids(docOf(s, accounts, 100).recent)).toEqual([4, 3, 2]);
    s.remove('postings', posting(3, 100, ''));
    expect(ids(docOf(s, accounts, 100).recent)).toEqual([4, 2, 1]);
  });

  it('re-orders when a child order field changes, breaking ties by key', () => {
    const s = bank();
    s.put('postings', posting(1, 100, '2024-01-01'));
    s.put('postings', posting(2, 100, '2024-01-02'));
    s.put('postings', posting(3, 100, '2024-01-03'));
    s.put('postings', posting(4, 100, '2024-01-01'));
    expect(ids(docOf(s, accounts, 100).recent)).toEqual([3, 2, 4]);
    s.put('postings', posting(1, 100, '2024-02-01'));
    expect(ids(docOf(s, accounts, 100).recent)).toEqual([1, 3, 2]);
  });

  it('a child moving to another parent leaves one document and joins the other', () => {
    const s = bank();
    s.put('cards', { cardId: 1, accountId: 100, status: 'active' });
    s.put('cards', { cardId: 2, accountId: 100, status: 'frozen' });
    expect(docOf(s, accounts, 100)).toMatchObject({ activeCards: 1, cards: [{ cardId: 1 }, { cardId: 2 }] });
    s.put('cards', { cardId: 1, accountId: 102, status: 'active' });
    expect(s.marked(accounts)).toEqual(['100', '102']);
    expect(docOf(s, accounts, 100)).toMatchObject({ activeCards: 0, cards: [{ cardId: 2 }] });
    expect(docOf(s, accounts, 102)).toMatchObject({ activeCards: 1, cards: [{ cardId: 1 }] });
  });

  it('deleting a child updates lists and aggregates; deleting the parent removes the document', () => {
    const s = bank();
    s.put('postings', posting(1, 100, '2024-01-01', '2.50'));
    s.put('postings', posting(2, 100, '2024-01-02', '1.25'));
    s.remove('postings', posting(2, 100, ''));
    expect(docOf(s, accounts, 100)).toMatchObject({
      balance: '2.50',
      postingCount: 1,
      recent: [{ postingId: 1 }],
    });
    s.remove('accounts', { accountId: 100 });
    expect(s.doc(accounts, 100)).toBeNull();
    expect(s.recompute(accounts).has('100')).toBe(false);
    // The orphaned posting no longer reaches any account document.
    s.put('postings', posting(1, 100, '2024-01-05', '3.00'));
    expect(s.marked(accounts)).toEqual([]);
  });
});

describe('aggregates', () => {
  it('count with where, exact decimal sum with scale, min/max, and empty sets', () => {
    const s = bank();
    expect(docOf(s, accounts, 101)).toMatchObject({
      activeCards: 0,
      balance: '0.00',
      postingCount: 0,
      firstPostedAt: null,
      lastPostedAt: null,
    });
    s.put('postings', posting(1, 101, '2024-03-01', '12345678901234567.89'));
    s.put('postings', posting(2, 101, '2024-01-01', '0.01'));
    s.put('postings', posting(3, 101, '2024-02-01', '-0.10'));
    s.put('cards', { cardId: 1, accountId: 101, status: 'active' });
    s.put('cards', { cardId: 2, accountId: 101, status: 'frozen' });
    s.put('cards', { cardId: 3, accountId: 101, status: 'closed' });
    expect(docOf(s, accounts, 101)).toMatchObject({
      activeCards: 1,
      balance: '12345678901234567.80',
      postingCount: 3,
      firstPostedAt: '2024-01-01',
      lastPostedAt: '2024-03-01',
    });
    expect(docOf(s, accounts, 101).postings).toEqual([]);
  });

  it('aggregateRows: sums numbers without scale, rounds half away from zero with one, skips nulls', () => {
    const rows = [{ v: 1.5 }, { v: 2 }, { v: null }, {}];
    expect(aggregateRows(rows, 'sum', 'v')).toBe(3.5);
    expect(aggregateRows(rows, 'count')).toBe(4);
    expect(aggregateRows([], 'sum', 'v')).toBe(0);
    expect(aggregateRows([], 'sum', 'v', 4)).toBe('0.0000');
    expect(aggregateRows([{ v: '0.125' }, { v: '-0.25' }], 'sum', 'v', 2)).toBe('-0.13');
    expect(aggregateRows([{ v: '0.1' }, { v: '0.2' }], 'sum', 'v', 1)).toBe('0.3');
    expect(aggregateRows([{ v: 'b' }, { v: null }, { v: 'a' }], 'min', 'v')).toBe('a');
    expect(aggregateRows([{ v: 9 }, { v: 10 }], 'max', 'v')).toBe(10);
    expect(() => aggregateRows([{ v: 'x' }], 'sum', 'v', 2)).toThrow(/not a decimal/);
  });
});

describe('row semantics', () => {
  it('matchesWhere is strict: 5 and "5" differ; lists are any-of; null matches null', () => {
    expect(matchesWhere({ a: 5 }, { a: 5 })).toBe(true);
    expect(matchesWhere({ a: 5 }, { a: '5' })).toBe(false);
    expect(matchesWhere({ a: 'x' }, { a: ['y', 'x'] })).toBe(true);
    expect(matchesWhere({}, { a: null })).toBe(true);
    expect(matchesWhere({ a: { b: 2 } }, { 'a.b': 2 })).toBe(true);
    expect(matchesWhere({ a: 1 }, { a: [] })).toBe(false);
  });

  it('compareRows: numbers numerically, strings by code unit, null first in asc and last in desc', () => {
    const rows = [{ v: 10 }, { v: null }, { v: 9 }];
    expect([...rows].sort(compareRows([{ field: 'v' }])).map((r) => r.v)).toEqual([null, 9, 10]);
    expect([...rows].sort(compareRows([{ field: 'v', direction: 'desc' }])).map((r) => r.v)).toEqual([
      10,
      9,
      null,
    ]);
    const text = [{ v: 'b' }, { v: 'B' }, { v: 'a' }];
    expect(text.sort(compareRows([{ field: 'v' }])).map((r) => r.v)).toEqual(['B', 'a', 'b']);
  });

  it('runAsync answers the same as runSync', async () => {
    const s = bank();
    s.put('postings', posting(1, 100, '2024-01-01', '2.00'));
    const sync = runSync(composeDocument(accounts, '100'), s.rows);
    await expect(runAsync(composeDocument(accounts, '100'), s.rows.async)).resolves.toEqual(sync);
    await expect(
      runAsync(affectedKeys(accounts, 'branches', { branchId: 1 }), s.rows.async),
    ).resolves.toEqual(runSync(affectedKeys(accounts, 'branches', { branchId: 1 }), s.rows));
  });
});

describe('compound keys', () => {
  function catalogue(): Store {
    const s = new Store([products, featured, links]);
    s.put('categories', { categoryId: 1, name: 'Tools' });
    s.put('categories', { categoryId: 2, name: 'Garden' });
    s.put('products', { productId: 10, name: 'Spade' });
    s.put('products', { productId: 11, name: 'Hammer' });
    s.put('product_categories', { productId: 10, categoryId: 1 });
    s.put('product_categories', { productId: 10, categoryId: 2 });
    s.put('product_categories', { productId: 11, categoryId: 1 });
    s.put('featured', { featuredId: 1, productId: 10, categoryId: 2, rank: 1 });
    return s;
  }

  it('joins a many-to-many table with a two-field key', () => {
    const s = catalogue();
    expect(s.doc(products, 10)).toMatchObject({
      linkCount: 2,
      links: [{ category: { name: 'Tools' } }, { category: { name: 'Garden' } }],
    });
    expect(s.doc(featured, 1)).toMatchObject({
      link: { product: { name: 'Spade' }, category: { name: 'Garden' } },
    });
    expect(s.doc(links, '[10,2]')).toMatchObject({
      category: { name: 'Garden' },
      featured: [{ featuredId: 1 }],
    });
  });

  it('fans out through compound lookups and compound children', () => {
    const s = catalogue();
    s.put('categories', { categoryId: 2, name: 'Outdoor' });
    expect(s.marked(products)).toEqual(['10']);
    expect(s.marked(featured)).toEqual(['1']);
    expect(s.marked(links)).toEqual(['[10,2]']);
    expect(s.doc(featured, 1)).toMatchObject({ link: { category: { name: 'Outdoor' } } });
    s.remove('product_categories', { productId: 10, categoryId: 2 });
    expect(s.doc(products, 10)).toMatchObject({ linkCount: 1, links: [{ categoryId: 1 }] });
    expect(s.doc(featured, 1)).toMatchObject({ link: null });
    expect(s.doc(links, '[10,2]')).toBeNull();
    s.put('featured', { featuredId: 1, productId: 11, categoryId: 1, rank: 1 });
    expect(s.marked(links)).toEqual(['[11,1]']);
    expect(s.doc(featured, 1)).toMatchObject({ link: { product: { name: 'Hammer' } } });
  });
});

describe('compileView', () => {
  const fails = (spec: Omit<ViewSpec<Record<string, unknown>>, 'select' | 'schema'>) => () =>
    compile(view(spec));

  it('lists the tables, nodes and the indexes the engine reads by', () => {
    expect([...accounts.tables].sort()).toEqual([
      'accounts',
      'branches',
      'cards',
      'categories',
      'customers',
      'merchants',
      'postings',
    ]);
    // The joins that list rows (cards, recent postings) read them from covering indexes.
    expect(accounts.indexes).toEqual([
      // activeCards seeks its status; the ordered cards join leaves its list of statuses out.
      { table: 'cards', fields: ['accountId', 'status'], covering: false },
      { table: 'accounts', fields: ['customerId'], covering: false },
      { table: 'customers', fields: ['branchId'], covering: false },
      { table: 'cards', fields: ['accountId', 'cardId'], covering: true },
      { table: 'postings', fields: ['accountId', 'postedAt', 'postingId'], covering: true },
      { table: 'postings', fields: ['merchantId'], covering: false },
      { table: 'merchants', fields: ['categoryId'], covering: false },
      { table: 'accounts', fields: ['branchId', 'accountId'], covering: false },
    ]);
    const recent = accounts.root.joins.find((j) => j.name === 'recent')?.node;
    expect(recent?.path).toBe('join.recent');
    expect(recent?.joins[0]?.node.path).toBe('join.recent.join.merchant');
    expect(recent?.relation).toMatchObject({ kind: 'children', limit: 3 });
    expect(accounts.root.aggregates.find((a) => a.name === 'activeCards')).toMatchObject({
      table: 'cards',
      by: ['accountId'],
      where: { status: 'active' },
    });
  });

  it("seeks a join's where fields after its by fields, a list of values only where no order follows", () => {
    const plan = compile(
      view({
        name: 'holds',
        from: 'accounts',
        join: {
          held: { table: 'cards', by: 'accountId', where: { status: ['blocked', 'frozen'] }, limit: 0 },
          latest: {
            table: 'postings',
            by: 'accountId',
            where: { kind: 'hold' },
            orderBy: [{ field: 'postedAt' }],
          },
        },
        aggregate: { heldCount: { count: 'held' } },
      }),
    );
    expect(plan.indexes).toEqual([
      { table: 'cards', fields: ['accountId', 'status'], covering: false },
      { table: 'postings', fields: ['accountId', 'kind', 'postedAt', 'postingId'], covering: true },
    ]);
  });

  it('keeps one index per field prefix, covering where any index it stands in for lists rows', () => {
    expect(
      keptIndexes([
        { table: 'postings', fields: ['accountId'], covering: true },
        { table: 'postings', fields: ['accountId', 'postedAt'], covering: false },
        { table: 'postings', fields: ['accountId', 'postedAt'], covering: false },
        { table: 'postings', fields: ['merchantId'], covering: false },
        { table: 'cards', fields: ['accountId'], covering: false },
      ]),
    ).toEqual([
      { table: 'postings', fields: ['accountId', 'postedAt'], covering: true },
      { table: 'postings', fields: ['merchantId'], covering: false },
      { table: 'cards', fields: ['accountId'], covering: false },
    ]);
  });

  it('names an unknown table with its place and the captured tables', () => {
    expect(fails({ name: 'v', from: 'nope' })).toThrow(
      'from: "nope" is not a captured table (captured: branches,',
    );
    expect(
      fails({
        name: 'v',
        from: 'accounts',
        join: { recent: { ...recentPostings, join: { merchant: { table: 'merchant', on: 'merchantId' } } } },
      }),
    ).toThrow('join.recent.join.merchant.table: "merchant" is not a captured table (captured: branches,');
  });

  it('checks key arity of on and by', () => {
    expect(
      fails({
        name: 'v',
        from: 'accounts',
        join: { owner: { table: 'customers', on: ['customerId', 'branchId'] } },
      }),
    ).toThrow('join.owner.on: 2 field(s) given but customers has a 1-field key (customerId)');
    expect(
      fails({ name: 'v', from: 'products', join: { f: { table: 'featured', by: 'productId' } } }),
    ).not.toThrow();
    expect(
      fails({ name: 'v', from: 'product_categories', join: { f: { table: 'featured', by: 'productId' } } }),
    ).toThrow('join.f.by: 1 field(s) given but product_categories has a 2-field key (productId, categoryId)');
  });

  it('checks aggregates', () => {
    expect(
      fails({
        name: 'v',
        from: 'accounts',
        join: { owner: { table: 'customers', on: 'customerId' }, cards: { table: 'cards', by: 'accountId' } },
        aggregate: { cardsTotal: { count: 'card' } },
      }),
    ).toThrow(
      'aggregate.cardsTotal.count: "card" is not a children join of this node (children joins: cards)',
    );
    expect(
      fails({
        name: 'v',
        from: 'accounts',
        join: { owner: { table: 'customers', on: 'customerId' } },
        aggregate: { n: { count: 'owner' } },
      }),
    ).toThrow('aggregate.n.count: "owner" is not a children join of this node (it has none');
    expect(
      fails({
        name: 'v',
        from: 'accounts',
        join: { cards: { table: 'cards', by: 'accountId', where: { status: 'active' } } },
        aggregate: { n: { count: 'cards', where: { status: 'closed' } } },
      }),
    ).toThrow("aggregate.n.where.status: no value is allowed by both this and the join's where");
    expect(
      fails({
        name: 'v',
        from: 'accounts',
        join: { cards: { table: 'cards', by: 'accountId' } },
        aggregate: { cards: { count: 'cards' } },
      }),
    ).toThrow('aggregate.cards: "cards" is also a join of this node');
    expect(
      fails({
        name: 'v',
        from: 'accounts',
        join: { cards: { table: 'cards', by: 'accountId' } },
        aggregate: { n: { min: 'cards', field: 'cardId', scale: 2 } as never },
      }),
    ).toThrow('aggregate.n.scale: only sum takes a scale');
  });

  it('checks limit, where, orderBy, and the shape of a join', () => {
    const cards = (extra: Record<string, unknown>) =>
      fails({ name: 'v', from: 'accounts', join: { cards: { table: 'cards', by: 'accountId', ...extra } } });
    expect(cards({ limit: -1 })).toThrow('join.cards.limit: -1 is not a non-negative integer');
    expect(cards({ limit: 2.5 })).toThrow('join.cards.limit: 2.5 is not a non-negative integer');
    expect(cards({ where: { accountId: 1 } })).toThrow(
      'join.cards.where.accountId: accountId is a "by" field',
    );
    expect(cards({ where: { status: [] } })).toThrow('join.cards.where.status: give a non-empty list');
    expect(cards({ orderBy: [{ field: 'cardId', direction: 'up' }] })).toThrow(
      `join.cards.orderBy[0].direction: "up" is not 'asc' or 'desc'`,
    );
    expect(cards({ required: true })).toThrow('join.cards.required: only lookups');
    expect(cards({ on: 'accountId' })).toThrow('join.cards: give either "on"');
    expect(
      fails({
        name: 'v',
        from: 'accounts',
        join: { owner: { table: 'customers', on: 'customerId', limit: 1 } as never },
      }),
    ).toThrow('join.owner.limit: only children joins');
  });

  it('reports every problem at once and refuses a join that contains itself', () => {
    const loop: Record<string, unknown> = { table: 'customers', on: 'customerId' };
    loop.join = { again: loop };
    const message = (() => {
      try {
        compile(
          view({ name: 'v', from: 'accounts', join: { a: loop as never, b: { table: 'x', on: 'y' } } }),
        );
        return '';
      } catch (err) {
        return (err as Error).message;
      }
    })();
    expect(message).toContain('join.a.join.again: this join contains itself');
    expect(message).toContain('join.b.table: "x" is not a captured table');
  });
});

// ---------------------------------------------------------------------------------------------

/** mulberry32: small, seeded, good enough to pick test data. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('incremental maintenance (property)', () => {
  for (const seed of [1, 2, 3]) {
    it(`equals a full recompute after every random write (seed ${seed})`, () => {
      const random = prng(seed);
      const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)] as T;
      const id = () => pick([1, 2, 3, 4]);
      // Sometimes null, sometimes dangling (5 is never a key... until it is).
      const fk = () => pick([1, 2, 3, 4, 5, null]);
      const rowOf: Record<string, () => DomainState> = {
        branches: () => ({ branchId: id(), name: pick(['N', 'S', 'E']) }),
        customers: () => ({ customerId: id(), branchId: fk(), name: pick(['a', 'b']) }),
        accounts: () => ({ accountId: id(), customerId: fk(), branchId: fk() }),
        cards: () => ({ cardId: id(), accountId: fk(), status: pick(['active', 'frozen', 'closed']) }),
        postings: () => ({
          postingId: pick([1, 2, 3, 4, 5, 6, 7, 8]),
          accountId: fk(),
          merchantId: fk(),
          amount: pick(['1.10', '-0.05', '100.00', '0.01']),
          postedAt: pick(['2024-01-01', '2024-01-02', '2024-01-03', null]),
        }),
        merchants: () => ({ merchantId: id(), categoryId: fk(), name: pick(['m', 'n', 'o']) }),
        categories: () => ({ categoryId: id(), name: pick(['x', 'y']) }),
        products: () => ({ productId: id(), name: pick(['p', 'q']) }),
        product_categories: () => ({ productId: id(), categoryId: id() }),
        featured: () => ({ featuredId: id(), productId: fk(), categoryId: fk(), rank: pick([1, 2]) }),
      };
      const tables = Object.keys(rowOf);
      const plans = [accounts, strict, categories, products, featured, links];
      const s = new Store(plans);
      for (let op = 0; op < 400; op++) {
        const table = pick(tables);
        const state = (rowOf[table] as () => DomainState)();
        if (random() < 0.25) s.remove(table, state);
        else s.put(table, state);
        for (const plan of plans) {
          const maintained = s.docs.get(plan.name);
          const full = s.recompute(plan);
          expect(new Map([...(maintained ?? [])].sort()), `op ${op} ${table} ${plan.name}`).toEqual(
            new Map([...full].sort()),
          );
        }
      }
      // Guards against a vacuous pass: the random data must have built documents of every view.
      for (const plan of plans) expect(s.recompute(plan).size, plan.name).toBeGreaterThan(0);
    });
  }
});
