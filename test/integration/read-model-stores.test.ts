import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from '@opensearch-project/opensearch';
import Database from 'better-sqlite3';
import { MongoClient } from 'mongodb';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { defineTableRule } from '../../connectors/mapping/rules.js';
import { defineEndpoint } from '../../definition/endpoints.js';
import { defineMigration, type Migration } from '../../definition/migration.js';
import {
  type DocumentQuery,
  defineProjection,
  defineView,
  getMany,
  type ReadModels,
  type ViewNode,
} from '../../definition/read-models.js';
import type { NewDomainEvent, StoredEvent } from '../../eventstore/ports.js';
import { StoreError } from '../../lib/errors.js';
import { silentLogger } from '../../lib/logger.js';
import { MongoReadModel } from '../../projectors/stores/mongo-read-models.js';
import { OpenSearchReadModel } from '../../projectors/stores/opensearch-read-models.js';
import { SqliteReadModels } from '../../projectors/stores/sqlite-read-models.js';
import { applyBatch } from '../support/stored-events.js';

/**
 * One behaviour suite for every read-model store: the same migration definition, the same
 * events, the same answers. Each store factory runs every case below; a store passes when its
 * answers equal the expected documents after redelivery, reordering, renames and deletes.
 */

// ---------------------------------------------------------------------------------------------
// The definition under test: owners, accounts and entries (an entry names a counterparty owner).

const owner = z.object({ ownerId: z.number(), name: z.string() });
const account = z.object({ accountId: z.number(), ownerId: z.number(), status: z.string() });
const entry = z.object({
  entryId: z.number(),
  accountId: z.number(),
  postedAt: z.string(),
  amount: z.string(),
  counterpartyId: z.number().nullable(),
});
type Owner = z.infer<typeof owner>;
type Account = z.infer<typeof account>;
type Entry = z.infer<typeof entry>;

const tables = [
  defineTableRule({
    table: 'owners',
    row: owner,
    key: 'ownerId',
    stream: { type: 'owner', id: (s) => `owner-${s.ownerId}` },
    onCreate: 'OwnerAdded',
    otherwise: 'OwnerChanged',
    onDelete: 'OwnerRemoved',
  }),
  defineTableRule({
    table: 'accounts',
    row: account,
    key: 'accountId',
    stream: { type: 'account', id: (s) => `account-${s.accountId}` },
    onCreate: 'AccountOpened',
    otherwise: 'AccountChanged',
    onDelete: 'AccountRemoved',
  }),
  defineTableRule({
    table: 'entries',
    row: entry,
    key: 'entryId',
    stream: { type: 'account', id: (s) => `account-${s.accountId}` },
    onCreate: 'EntryPosted',
    otherwise: 'EntryChanged',
    onDelete: 'EntryRemoved',
  }),
];

const entryItem = z.object({
  entryId: z.number(),
  postedAt: z.string(),
  amount: z.string(),
  counterparty: z.string().nullable(),
});
const accountDoc = z.object({
  accountId: z.number(),
  owner: z.string(),
  status: z.string(),
  recent: z.array(entryItem),
  entries: z.number(),
  total: z.string(),
});
type EntryItem = z.infer<typeof entryItem>;
type AccountDoc = z.infer<typeof accountDoc>;

const counterparty = { counterparty: { table: 'owners', on: 'counterpartyId' } } as const;
function item(node: ViewNode): EntryItem {
  const e = node.row as Entry;
  const cp = node.joins.counterparty;
  return {
    entryId: e.entryId,
    postedAt: e.postedAt,
    amount: e.amount,
    counterparty: cp && !Array.isArray(cp) ? (cp.row as Owner).name : null,
  };
}

const accountView = defineView<AccountDoc>({
  name: 'account-view',
  from: 'accounts',
  join: {
    owner: { table: 'owners', on: 'ownerId', required: true },
    recent: {
      table: 'entries',
      by: 'accountId',
      orderBy: [{ field: 'postedAt', direction: 'desc' }],
      limit: 2,
      join: counterparty,
    },
    all: { table: 'entries', by: 'accountId', limit: 0 },
  },
  aggregate: { entries: { count: 'all' }, total: { sum: 'all', field: 'amount', scale: 2 } },
  schema: accountDoc,
  indexes: [['status', 'accountId']],
  select(root) {
    const a = root.row as Account;
    const o = root.joins.owner;
    if (!o || Array.isArray(o)) return null;
    return {
      accountId: a.accountId,
      owner: (o.row as Owner).name,
      status: a.status,
      recent: (Array.isArray(root.joins.recent) ? root.joins.recent : []).map(item),
      entries: Number(root.aggregates.entries),
      total: String(root.aggregates.total),
    };
  },
});

const entryView = defineView<EntryItem>({
  name: 'entry-list',
  from: 'entries',
  join: counterparty,
  schema: entryItem,
  indexes: [['accountId', 'postedAt', 'entryId']],
  select: item,
});

/** Owners whose name is empty are refused by the schema: a store must report, not serve, them. */
const ownerView = defineView<Owner>({
  name: 'owner-view',
  from: 'owners',
  schema: z.object({ ownerId: z.number(), name: z.string().min(1) }),
  select: (root) => root.row as Owner,
});

const activityDoc = z.object({
  accountId: z.number(),
  entries: z.number().int().positive(),
  last: z.number(),
});
type Activity = z.infer<typeof activityDoc>;
const activity = defineProjection<Activity>({
  name: 'account-activity',
  schema: activityDoc,
  canHandle: ['EntryPosted', 'EntryRemoved'],
  documentId: (event) => String((event.data.state as Entry).accountId),
  evolve(doc, event) {
    const e = event.data.state as Entry;
    if (event.removed) return doc === null || doc.entries === 1 ? null : { ...doc, entries: doc.entries - 1 };
    return {
      accountId: e.accountId,
      entries: (doc?.entries ?? 0) + 1,
      last: Math.max(doc?.last ?? 0, e.entryId),
    };
  },
  indexes: [['entries']],
});

const migration: Migration = defineMigration({
  name: 'contract',
  capture: { tables },
  readModels: [accountView, entryView, ownerView, activity],
  domains: {
    accounts: {
      endpoints: {
        account: defineEndpoint({
          route: '/accounts/:accountId',
          params: z.object({ accountId: z.string() }),
          legacy: { sql: 'SELECT 1' },
          readModel: ({ params, readModels }) => readModels['account-view']!.get(params.accountId),
        }),
      },
    },
  },
});

// ---------------------------------------------------------------------------------------------
// Synthetic events, as the mapper would emit them

let clock = 0;
/** Source orders that sort like sourceOrderOf's binlog keys, one per change, increasing. */
const nextOrder = () => `b:0000000001:${String(++clock).padStart(12, '0')}:0000000000:000000:1`;

function event(
  table: 'owners' | 'accounts' | 'entries',
  type: string,
  state: Record<string, unknown>,
): NewDomainEvent {
  const rule = migration.ruleOf(table)!;
  const id = table === 'owners' ? `owner-${state.ownerId}` : `account-${state.accountId}`;
  const order = nextOrder();
  return {
    streamType: rule.streamType,
    streamId: id,
    type,
    data: { state, changes: {} },
    metadata: {
      op: type.endsWith('Removed') ? 'd' : type.endsWith('Changed') ? 'u' : 'c',
      table,
      sourcePosition: order,
      sourceOrder: order,
      sourceTxId: `tx-${clock}`,
      sourceTsMs: 1_700_000_000_000 + clock,
      snapshot: false,
    },
  };
}
const ownerAdded = (ownerId: number, name: string) => event('owners', 'OwnerAdded', { ownerId, name });
const accountOpened = (accountId: number, ownerId: number, status: string) =>
  event('accounts', 'AccountOpened', { accountId, ownerId, status });
const entryPosted = (
  entryId: number,
  accountId: number,
  postedAt: string,
  amount: string,
  cp: number | null,
) => event('entries', 'EntryPosted', { entryId, accountId, postedAt, amount, counterpartyId: cp });

/** The base data: five accounts (one whose owner is missing), seven entries. */
function baseEvents(): NewDomainEvent[] {
  return [
    ownerAdded(1, 'Alice'),
    ownerAdded(2, 'Bob'),
    ownerAdded(3, 'Carol'),
    accountOpened(1, 1, 'active'),
    accountOpened(2, 2, 'frozen'),
    accountOpened(3, 9, 'active'),
    accountOpened(4, 3, 'active'),
    accountOpened(5, 1, 'active'),
    entryPosted(11, 1, '2024-01-01 10:00:00', '10.50', 2),
    entryPosted(12, 1, '2024-01-02 10:00:00', '-3.25', null),
    entryPosted(13, 1, '2024-01-03 10:00:00', '100.00', 3),
    entryPosted(14, 2, '2024-01-01 09:00:00', '0.10', 1),
    entryPosted(15, 1, '2024-01-02 10:00:00', '2.00', 9),
    entryPosted(16, 4, '2024-02-01 00:00:00', '1.00', 3),
    entryPosted(17, 4, '2024-02-02 00:00:00', '1.00', 1),
  ];
}

// ---------------------------------------------------------------------------------------------
// The contract

/** What every store factory returns: a way to feed events and the read models' query surface. */
export interface StoreUnderTest {
  apply(events: NewDomainEvent[]): Promise<void>;
  readModels: ReadModels;
  reset(): Promise<void>;
  close(): Promise<void>;
}
export type StoreFactory = (migration: Migration) => Promise<StoreUnderTest>;

const A1: AccountDoc = {
  accountId: 1,
  owner: 'Alice',
  status: 'active',
  recent: [
    { entryId: 13, postedAt: '2024-01-03 10:00:00', amount: '100.00', counterparty: 'Carol' },
    { entryId: 12, postedAt: '2024-01-02 10:00:00', amount: '-3.25', counterparty: null },
  ],
  entries: 4,
  total: '109.25',
};

/** Runs every case against the store `factory` opens; skipped when the store is not `available`. */
/**
 * How a store is fed. The server stores take Kafka's at-least-once delivery, in any order across
 * partitions, and guard each row by its source order. The embedded SQLite store takes each event
 * once, in store order, from the projection runner, in the transaction of its checkpoint: it has
 * no such guard, so the redelivery and reordering cases do not apply to it.
 */
interface Delivery {
  atLeastOnce: boolean;
}

function contract(name: string, factory: StoreFactory, available: boolean, delivery: Delivery) {
  const redelivered = it.skipIf(!delivery.atLeastOnce);
  describe.skipIf(!available)(`read-model store contract: ${name}`, () => {
    let store: StoreUnderTest;
    let base: NewDomainEvent[];
    const get = (model: string, key: string) => store.readModels[model]!.get(key);
    const find = (model: string, query: DocumentQuery) => store.readModels[model]!.find(query);
    /** Every answer the cases look at, for "nothing changed" comparisons. */
    const snapshot = async () => ({
      accounts: await Promise.all([1, 2, 3, 4, 5].map((k) => get('account-view', String(k)))),
      entries: await find('entry-list', { orderBy: [{ field: 'entryId' }], limit: 100 }),
      activity: await Promise.all([1, 2, 4].map((k) => get('account-activity', String(k)))),
    });

    beforeAll(async () => {
      store = await factory(migration);
    });
    afterAll(async () => {
      await store?.close();
    });
    beforeEach(async () => {
      await store.reset();
      base = baseEvents();
      await store.apply(base);
    });

    it('composes documents: required lookup, top-N children with a nested lookup, count and exact sum', async () => {
      expect(await get('account-view', '1')).toEqual(A1);
      expect(await get('account-view', '2')).toEqual({
        accountId: 2,
        owner: 'Bob',
        status: 'frozen',
        recent: [{ entryId: 14, postedAt: '2024-01-01 09:00:00', amount: '0.10', counterparty: 'Alice' }],
        entries: 1,
        total: '0.10',
      });
      // Owner 9 was never captured: the required lookup drops the document.
      expect(await get('account-view', '3')).toBeNull();
      expect(await get('account-view', '5')).toEqual({
        accountId: 5,
        owner: 'Alice',
        status: 'active',
        recent: [],
        entries: 0,
        total: '0.00',
      });
      expect(await get('account-view', '404')).toBeNull();
      expect(await get('entry-list', '15')).toEqual({
        entryId: 15,
        postedAt: '2024-01-02 10:00:00',
        amount: '2.00',
        counterparty: null,
      });
      expect(await get('account-activity', '1')).toEqual({ accountId: 1, entries: 4, last: 15 });
      expect(await get('account-activity', '3')).toBeNull();
    });

    it('reports a document its schema refuses instead of serving it', async () => {
      expect(await get('owner-view', '1')).toEqual({ ownerId: 1, name: 'Alice' });
      const invalid = (e: unknown) =>
        e instanceof StoreError && e.code === 'STORE_DOCUMENT_INVALID' && /owner-view/.test(e.message);
      if (delivery.atLeastOnce) {
        await store.apply([ownerAdded(4, '')]);
        await expect(get('owner-view', '4')).rejects.toSatisfy(invalid);
      } else {
        // The runner's batch fails whole (the supervisor retries it, then stops the process
        // with this error): nothing of it is committed, nothing invalid is served.
        await expect(store.apply([ownerAdded(4, ''), ownerAdded(5, 'Eve')])).rejects.toSatisfy(invalid);
        expect(await get('owner-view', '4')).toBeNull();
        expect(await get('owner-view', '5')).toBeNull();
      }
    });

    it("reads many keys at once as get reads each, in the keys' order, null where there is none", async () => {
      for (const model of ['account-view', 'entry-list', 'account-activity']) {
        const keys = ['4', '404', '1', '3', '1'];
        const each = await Promise.all(keys.map((k) => get(model, k)));
        expect(await getMany(store.readModels[model]!, keys)).toEqual(each);
        expect(await getMany(store.readModels[model]!, [])).toEqual([]);
      }
    });

    redelivered(
      'gives the same answers after the batch is redelivered and replayed in reverse order',
      async () => {
        const before = await snapshot();
        await store.apply(base);
        await store.apply([...base].reverse());
        for (const e of base) await store.apply([e]);
        expect(await snapshot()).toEqual(before);
      },
    );

    redelivered(
      'keeps the newest state of a row whatever the delivery order, and removals stay removed',
      async () => {
        const frozen = event('accounts', 'AccountChanged', { accountId: 1, ownerId: 1, status: 'frozen' });
        const removed = event('entries', 'EntryRemoved', {
          entryId: 17,
          accountId: 4,
          postedAt: '2024-02-02 00:00:00',
          amount: '1.00',
          counterpartyId: 1,
        });
        await store.apply([removed, frozen]);
        // The older create of entry 17 and the older state of account 1, delivered late.
        await store.apply([...base].reverse());
        expect(await get('account-view', '1')).toMatchObject({ status: 'frozen' });
        expect(await get('entry-list', '17')).toBeNull();
        expect(await get('account-view', '4')).toMatchObject({ entries: 1, total: '1.00' });
        expect(await get('account-activity', '4')).toEqual({ accountId: 4, entries: 1, last: 17 });
      },
    );

    it('shows a renamed looked-up row in every document that reads it', async () => {
      await store.apply([event('owners', 'OwnerChanged', { ownerId: 3, name: 'Caroline' })]);
      expect(await get('account-view', '1')).toMatchObject({
        recent: [{ entryId: 13, counterparty: 'Caroline' }, { entryId: 12 }],
      });
      expect(await get('account-view', '4')).toMatchObject({
        owner: 'Caroline',
        recent: [
          { entryId: 17, counterparty: 'Alice' },
          { entryId: 16, counterparty: 'Caroline' },
        ],
      });
      const page = (await find('entry-list', {
        where: { counterpartyId: 3 },
        orderBy: [{ field: 'entryId' }],
        limit: 10,
      })) as EntryItem[];
      expect(page.map((e) => [e.entryId, e.counterparty])).toEqual([
        [13, 'Caroline'],
        [16, 'Caroline'],
      ]);
      // A removed looked-up row: an optional lookup becomes null, a required one drops the document.
      await store.apply([event('owners', 'OwnerRemoved', { ownerId: 3, name: 'Caroline' })]);
      expect(await get('account-view', '4')).toBeNull();
      expect(await get('account-view', '1')).toMatchObject({
        recent: [{ entryId: 13, counterparty: null }, {}],
      });
    });

    it('brings the next child into the top-N when one is deleted, and updates the aggregates', async () => {
      await store.apply([
        event('entries', 'EntryRemoved', {
          entryId: 13,
          accountId: 1,
          postedAt: '2024-01-03 10:00:00',
          amount: '100.00',
          counterpartyId: 3,
        }),
      ]);
      const doc = (await get('account-view', '1')) as AccountDoc;
      // 12 and 15 share postedAt: the row key (entryId) breaks the tie, ascending.
      expect(doc.recent.map((e) => e.entryId)).toEqual([12, 15]);
      expect(doc).toMatchObject({ entries: 3, total: '9.25' });
      expect(await get('account-activity', '1')).toEqual({ accountId: 1, entries: 3, last: 15 });
    });

    const entry14Removed = () =>
      event('entries', 'EntryRemoved', {
        entryId: 14,
        accountId: 2,
        postedAt: '2024-01-01 09:00:00',
        amount: '0.10',
        counterpartyId: 1,
      });

    it('deletes a projection document when evolve returns null', async () => {
      await store.apply([entry14Removed()]);
      expect(await get('account-activity', '2')).toBeNull();
      expect(await find('account-activity', { orderBy: [{ field: 'accountId' }], limit: 10 })).toEqual([
        { accountId: 1, entries: 4, last: 15 },
        { accountId: 4, entries: 2, last: 17 },
      ]);
    });

    redelivered('does not bring a deleted projection document back on redelivery', async () => {
      const removal = entry14Removed();
      await store.apply([removal]);
      expect(await get('account-activity', '2')).toBeNull();
      await store.apply(base);
      await store.apply([removal]);
      expect(await get('account-activity', '2')).toBeNull();
      expect(await find('account-activity', { orderBy: [{ field: 'accountId' }], limit: 10 })).toEqual([
        { accountId: 1, entries: 4, last: 15 },
        { accountId: 4, entries: 2, last: 17 },
      ]);
    });

    it('finds view documents with where, range, orderBy, after and limit', async () => {
      const history: DocumentQuery = {
        where: { accountId: 1 },
        orderBy: [
          { field: 'postedAt', direction: 'desc' },
          { field: 'entryId', direction: 'desc' },
        ],
        limit: 2,
      };
      const ids = async (q: DocumentQuery) =>
        ((await find('entry-list', q)) as EntryItem[]).map((e) => e.entryId);
      expect(await ids(history)).toEqual([13, 15]);
      expect(await ids({ ...history, after: ['2024-01-02 10:00:00', 15] })).toEqual([12, 11]);
      expect(await ids({ ...history, after: ['2024-01-01 10:00:00', 11] })).toEqual([]);
      expect(
        await ids({
          ...history,
          range: { postedAt: { gte: '2024-01-02 00:00:00', lt: '2024-01-03 00:00:00' } },
          limit: 10,
        }),
      ).toEqual([15, 12]);
      expect(
        await ids({ where: { accountId: [2, 4] }, orderBy: [{ field: 'postedAt' }], limit: 10 }),
      ).toEqual([14, 16, 17]);
      expect(await ids({ where: { counterpartyId: null }, limit: 10 })).toEqual([12]);
      expect(await ids({ range: { entryId: { gt: 15 } }, limit: 10 })).toEqual([16, 17]);
      expect(await ids({ where: { accountId: 1 }, limit: 0 })).toEqual([]);

      // Account 3 has no document (its owner is missing): the page fills up with the next one.
      const active = async (q: Partial<DocumentQuery>) =>
        (
          (await find('account-view', {
            where: { status: 'active' },
            orderBy: [{ field: 'accountId' }],
            limit: 2,
            ...q,
          })) as AccountDoc[]
        ).map((a) => a.accountId);
      expect(await active({})).toEqual([1, 4]);
      expect(await active({ after: [4] })).toEqual([5]);
      expect(await active({ orderBy: [{ field: 'accountId', direction: 'desc' }], after: [5] })).toEqual([
        4, 1,
      ]);
      expect(await find('account-view', { where: { status: 'frozen' }, limit: 5 })).toEqual([
        await get('account-view', '2'),
      ]);
    });

    it('finds projection documents by their fields', async () => {
      const found = async (q: DocumentQuery) =>
        ((await find('account-activity', q)) as Activity[]).map((a) => a.accountId);
      expect(await found({ orderBy: [{ field: 'entries', direction: 'desc' }], limit: 10 })).toEqual([
        1, 4, 2,
      ]);
      expect(
        await found({ orderBy: [{ field: 'entries', direction: 'desc' }], after: [2], limit: 10 }),
      ).toEqual([2]);
      expect(await found({ where: { entries: [1, 2] }, orderBy: [{ field: 'last' }], limit: 1 })).toEqual([
        2,
      ]);
      expect(await found({ range: { last: { gte: 15 } }, limit: 10 })).toEqual([1, 4]);
    });

    it('rejects a keyset position that does not match the order', async () => {
      await expect(
        find('entry-list', { orderBy: [{ field: 'entryId' }], after: [1, 2], limit: 1 }),
      ).rejects.toSatisfy((e) => e instanceof StoreError && e.code === 'QUERY_INVALID');
    });

    it('reset empties every read model', async () => {
      await store.reset();
      expect(await snapshot()).toEqual({
        accounts: [null, null, null, null, null],
        entries: [],
        activity: [null, null, null],
      });
    });
  });
}

// ---------------------------------------------------------------------------------------------
// Store factories

const suffix = randomBytes(4).toString('hex');
const MONGO_URL = process.env.MONGO_URL ?? 'mongodb://127.0.0.1:27017';
const OPENSEARCH_URL = process.env.OPENSEARCH_URL ?? 'http://127.0.0.1:9200';

async function mongoUp(): Promise<boolean> {
  const client = new MongoClient(MONGO_URL, { serverSelectionTimeoutMS: 2000 });
  try {
    await client.db('admin').command({ ping: 1 });
    return true;
  } catch {
    return false;
  } finally {
    await client.close();
  }
}

async function openSearchUp(): Promise<boolean> {
  const client = new Client({ node: OPENSEARCH_URL, requestTimeout: 2000 });
  try {
    await client.ping();
    return true;
  } catch {
    return false;
  } finally {
    await client.close();
  }
}

const mongoFactory: StoreFactory = async (m) => {
  const client = new MongoClient(MONGO_URL);
  const database = `t_rm_${suffix}`;
  const models = m.readModels.map(
    (rm) => new MongoReadModel({ migration: m, readModel: rm.name, client, database, logger: silentLogger }),
  );
  for (const model of models) await model.migrate();
  // Twice: migrations must be no-ops on a store that has them.
  for (const model of models) await model.migrate();
  return {
    readModels: Object.fromEntries(models.map((model) => [model.name, model.handle()])),
    async apply(events) {
      await Promise.all(models.map((model) => model.apply(events)));
    },
    async reset() {
      await Promise.all(models.map((model) => model.reset()));
    },
    async close() {
      await client.db(database).dropDatabase();
      await client.close();
    },
  };
};

const openSearchFactory: StoreFactory = async (m) => {
  const client = new Client({ node: OPENSEARCH_URL });
  const indexPrefix = `t-rm-${suffix}`;
  const models = m.readModels.map(
    (rm) =>
      new OpenSearchReadModel({
        migration: m,
        readModel: rm.name,
        client,
        indexPrefix,
        logger: silentLogger,
      }),
  );
  for (const model of models) await model.migrate();
  for (const model of models) await model.migrate();
  // Searches see writes after a refresh (1 s); the contract is about answers, so refresh now.
  const refresh = () => Promise.all(models.map((model) => model.refresh()));
  return {
    readModels: Object.fromEntries(models.map((model) => [model.name, model.handle()])),
    async apply(events) {
      await Promise.all(models.map((model) => model.apply(events)));
      await refresh();
    },
    async reset() {
      await Promise.all(models.map((model) => model.reset()));
      await refresh();
    },
    async close() {
      await client.indices.delete({ index: `${indexPrefix}-*` });
      await client.close();
    },
  };
};

/**
 * The embedded store as `run` uses it: events applied and flushed in one write transaction per
 * batch, read through a second, read-only connection, as the API workers and reconcile read.
 */
const sqliteFactory: StoreFactory = async (m) => {
  const dir = mkdtempSync(join(tmpdir(), 'rm-contract-'));
  const file = join(dir, 'read-models.db');
  const writer = new Database(file);
  writer.pragma('journal_mode = WAL');
  const models = new SqliteReadModels(m);
  models.migrate(writer);
  // Twice: migrations must be no-ops on a store that has them.
  models.migrate(writer);
  const reader = new Database(file, { readonly: true });
  let position = 0;
  const versions = new Map<string, number>();
  const stored = (e: NewDomainEvent): StoredEvent => {
    const version = (versions.get(e.streamId) ?? 0) + 1;
    versions.set(e.streamId, version);
    return { ...e, position: ++position, version, recordedAt: new Date().toISOString() };
  };
  // A read-only connection's reads of one event-loop turn share a snapshot: a write shows from
  // the next turn, as it does for a reader in another process.
  const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));
  return {
    readModels: models.readModels(reader),
    async apply(events) {
      applyBatch(models, writer, events.map(stored));
      await nextTurn();
    },
    async reset() {
      writer.transaction(() => models.reset(writer))();
      await nextTurn();
    },
    async close() {
      reader.close();
      writer.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
};

const mongoAvailable = await mongoUp();
const openSearchAvailable = await openSearchUp();
if (!mongoAvailable)
  console.warn('read-model-stores: MongoDB is not reachable; start it with `bash stack/stack.sh up mongo`');
if (!openSearchAvailable)
  console.warn(
    'read-model-stores: OpenSearch is not reachable; start it with `bash stack/stack.sh up opensearch`',
  );

contract('MongoDB', mongoFactory, mongoAvailable, { atLeastOnce: true });
contract('OpenSearch', openSearchFactory, openSearchAvailable, { atLeastOnce: true });
contract('SQLite', sqliteFactory, true, { atLeastOnce: false });
