import type { Migration } from '../../../definition/migration.js';
import type { ReadModels } from '../../../definition/read-models.js';
import {
  type AccountQueries,
  type AccountSummary,
  type HistoryPage,
  type HistoryQuery,
  historyPageSchema,
} from '../../../examples/bank/contract.js';

/**
 * The bank's read answers as its migration definition computes them from read models: the
 * `accounts.summary` and `accounts.history` endpoints' `readModel` functions over whichever
 * store holds them. Tests compare these with the legacy JOIN answers, so what they prove is
 * the definition and the stores together, exactly as the shadow API serves them.
 */
export function bankEndpointQueries(migration: Migration, readModels: ReadModels): AccountQueries {
  const endpoint = (key: string) => {
    const found = migration.endpoints.find((e) => e.key === key);
    if (found === undefined) throw new Error(`the bank definition has no endpoint ${key}`);
    return found.definition;
  };
  const summary = endpoint('accounts.summary');
  const history = endpoint('accounts.history');
  return {
    async accountSummary(accountId: number) {
      const params = summary.params.parse({ accountId });
      return (await summary.readModel({ params, readModels, analytics: {} })) as AccountSummary | null;
    },
    async transactionHistory(query: HistoryQuery): Promise<HistoryPage> {
      const params = history.params.parse(query);
      return historyPageSchema.parse(await history.readModel({ params, readModels, analytics: {} }));
    },
  };
}
