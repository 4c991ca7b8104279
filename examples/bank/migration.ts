import {
  type DocumentQuery,
  defineEndpoint,
  defineMigration,
  jsonText,
  type LegacyDb,
  type ReadModels,
  storedDocument,
  z,
} from '../../index.js';
import {
  type AccountQueries,
  type AccountSummary,
  decodeCursor,
  type HistoryPage,
  type HistoryQuery,
  historyQuerySchema,
  nextCursorFor,
  type TransactionItem,
} from './contract.js';
import { legacyAccountOverview } from './legacy-overview.js';
import { legacyAccountSummary, legacyTransactionHistory } from './legacy-queries.js';
import { bankEventNames, bankTableRules } from './mapping.js';
import { midnightAfterLatestPosting, overviewQuerySchema } from './overview.js';
import { overviewReadModels, readModelOverviewReply } from './overview-read-models.js';
import { accountSummaryView, transactionHistoryView } from './read-models.js';
import { bankSample } from './sample.js';
import { customerSpending, spendingAnalytics } from './spending.js';

/**
 * The sample bank as a cqrs-migrate migration, written only against the public API: the 13
 * captured tables, the document read models and the `accounts` domain's endpoints over them,
 * and an analytics model behind the `customers` domain's spending report.
 * `cqrs-migrate run --definition examples/bank/migration.ts` runs it on MariaDB/MySQL or
 * PostgreSQL, whichever `legacy.url` names.
 */

const accountParams = z.object({ accountId: historyQuerySchema.shape.accountId });

/** Every account id, as reconciliation's parameter sets (PostgreSQL folds unquoted aliases). */
const everyAccount = {
  sql: {
    mysql: 'SELECT id AS accountId FROM accounts ORDER BY id',
    postgres: 'SELECT id AS "accountId" FROM accounts ORDER BY id',
  },
};

/** The two reads answered from the read models: a key lookup and a keyset range, no joins. */
export class ReadModelQueries implements AccountQueries {
  constructor(private readonly readModels: ReadModels) {}

  private model(name: string) {
    const model = this.readModels[name];
    if (model === undefined) throw new Error(`read model ${name} is not served here`);
    return model;
  }

  async accountSummary(accountId: number): Promise<AccountSummary | null> {
    return (await this.model('account-summary').get(String(accountId))) as AccountSummary | null;
  }

  async transactionHistory(query: HistoryQuery): Promise<HistoryPage> {
    const items = (await this.model('transaction-history').find(
      historyPageQuery(query),
    )) as TransactionItem[];
    return { accountId: query.accountId, items, nextCursor: nextCursorFor(items, query.limit) };
  }

  /**
   * The same page as JSON text built around the stored items' texts, when the store has them:
   * only the last item is parsed (for the cursor). The answer is equal, as JSON, to
   * transactionHistory's.
   */
  async transactionHistoryReply(query: HistoryQuery): Promise<unknown> {
    const model = this.model('transaction-history');
    if (model.findJson === undefined) return this.transactionHistory(query);
    const texts = await model.findJson(historyPageQuery(query));
    const lastText = texts.length === query.limit ? texts[texts.length - 1] : undefined;
    // A full page continues after its last item; the cursor needs only that one.
    const nextCursor =
      lastText === undefined ? null : nextCursorFor([JSON.parse(lastText) as TransactionItem], 1);
    const head = `{"accountId":${JSON.stringify(query.accountId)},"items":[`;
    const tail = `],"nextCursor":${JSON.stringify(nextCursor)}}`;
    if (texts.length === 0) return jsonText(head + tail);
    // The envelope joined in with the items (findJson's array is this call's own): one flat copy
    // of the page. Concatenated around the joined items it was a second one, made when the
    // response counted its bytes (~2.6 µs of a 50-item page, measured in process).
    texts[0] = head + texts[0];
    texts[texts.length - 1] += tail;
    return jsonText(texts.join(','));
  }
}

function historyPageQuery(query: HistoryQuery): DocumentQuery {
  const cursor = query.cursor === undefined ? null : decodeCursor(query.cursor);
  const postedAt = {
    ...(query.from !== undefined ? { gte: query.from } : {}),
    ...(query.to !== undefined ? { lt: query.to } : {}),
  };
  return {
    where: { accountId: query.accountId },
    range: { postedAt },
    orderBy: [
      { field: 'postedAt', direction: 'desc' },
      { field: 'transactionId', direction: 'desc' },
    ],
    ...(cursor === null ? {} : { after: [cursor.postedAt, cursor.transactionId] }),
    limit: query.limit,
  };
}

export const accountSummary = defineEndpoint({
  route: '/accounts/:accountId/summary',
  params: accountParams,
  legacy: ({ params, db }) => legacyAccountSummary(db, params.accountId),
  // The stored document is the answer: sent as stored, without a parse (storedDocument).
  readModel: ({ params, readModels }) =>
    storedDocument(readModels, 'account-summary', String(params.accountId)),
  reconcile: everyAccount,
  sensitive: ['owner.name', 'owner.email', 'recentTransactions[*].description'],
});

export const accountHistory = defineEndpoint({
  route: '/accounts/:accountId/transactions',
  params: historyQuerySchema,
  legacy: ({ params, db }) => legacyTransactionHistory(db, params),
  readModel: ({ params, readModels }) => new ReadModelQueries(readModels).transactionHistoryReply(params),
  reconcile: everyAccount,
  sensitive: ['items[*].description'],
});

/**
 * Every account at one reference instant: the midnight after the latest posting, so the
 * windows cover the ledger's last 90 days. Both sides are asked the same question.
 */
async function everyAccountAsOfLatest(db: LegacyDb): Promise<Array<{ accountId: number; asOf: string }>> {
  const asOf = await midnightAfterLatestPosting(db);
  const ids = await db.query(everyAccount.sql);
  return ids.map((r) => ({ accountId: Number(r.accountId), asOf }));
}

/**
 * The case-study screen: the summary plus aggregates over the ledger. `overview` is the legacy
 * service's statement-per-figure code; `overviewWide` the same screen from one wide statement.
 * Both are answered from the same read models.
 */
export const accountOverview = defineEndpoint({
  route: '/accounts/:accountId/overview',
  params: overviewQuerySchema,
  legacy: ({ params, db }) => legacyAccountOverview(db, params, 'split'),
  readModel: ({ params, readModels }) => readModelOverviewReply(readModels, params),
  reconcile: everyAccountAsOfLatest,
});

export const accountOverviewWide = defineEndpoint({
  route: '/accounts/:accountId/overview-wide',
  params: overviewQuerySchema,
  legacy: ({ params, db }) => legacyAccountOverview(db, params, 'wide'),
  readModel: ({ params, readModels }) => readModelOverviewReply(readModels, params),
  reconcile: everyAccountAsOfLatest,
});

export default defineMigration({
  name: 'bank',
  capture: {
    tables: bankTableRules,
    knownEvents: bankEventNames,
    // Personal data: masked in stored dead-letter row images.
    sensitive: {
      customers: ['first_name', 'last_name', 'email', 'phone', 'birth_date'],
      transactions: ['description'],
    },
  },
  readModels: [accountSummaryView, transactionHistoryView, ...overviewReadModels],
  analytics: [spendingAnalytics],
  domains: {
    accounts: {
      endpoints: {
        summary: accountSummary,
        history: accountHistory,
        overview: accountOverview,
        overviewWide: accountOverviewWide,
      },
    },
    customers: { endpoints: { spending: customerSpending } },
  },
  sample: bankSample,
});
