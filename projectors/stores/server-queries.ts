import { Client } from '@opensearch-project/opensearch';
import { MongoClient } from 'mongodb';
import type {
  AccountQueries,
  AccountSummary,
  HistoryPage,
  HistoryQuery,
} from '../../examples/bank/contract.js';
import type { Config } from '../../lib/config.js';
import { MongoAccountSummaryQueries } from './mongo-queries.js';
import { historyIndexes } from './opensearch.js';
import { OpenSearchHistoryQueries } from './opensearch-queries.js';

/** The read side of the distributed mode: summaries from MongoDB, history pages from OpenSearch. */
export class ServerReadModelQueries implements AccountQueries {
  constructor(
    private readonly summaries: Pick<AccountQueries, 'accountSummary'>,
    private readonly history: Pick<AccountQueries, 'transactionHistory'>,
    private readonly onClose: () => Promise<void> = async () => undefined,
  ) {}

  accountSummary(accountId: number): Promise<AccountSummary | null> {
    return this.summaries.accountSummary(accountId);
  }

  transactionHistory(query: HistoryQuery): Promise<HistoryPage> {
    return this.history.transactionHistory(query);
  }

  /** Closes the clients the queries were opened with (openServerReadModelQueries). */
  close(): Promise<void> {
    return this.onClose();
  }
}

/** Opens a MongoDB and an OpenSearch client from `stores` config; `close()` closes both. */
export function openServerReadModelQueries(stores: Config['stores']): ServerReadModelQueries {
  const mongo = new MongoClient(stores.mongoUrl);
  const opensearch = new Client({ node: stores.opensearchUrl });
  return new ServerReadModelQueries(
    new MongoAccountSummaryQueries(mongo.db(stores.mongoDatabase)),
    new OpenSearchHistoryQueries(opensearch, historyIndexes(stores.opensearchIndexPrefix)),
    async () => {
      await Promise.all([mongo.close(), opensearch.close()]);
    },
  );
}
