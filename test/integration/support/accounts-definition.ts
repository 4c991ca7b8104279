import { captureTable, defineEndpoint, defineView, z } from '../../../index.js';

/**
 * The smallest definition the projection-runner tests share: an `accounts` table captured into
 * `account` streams, the `account` view of each row, and one endpoint reading it.
 */
export const accountsCapture = captureTable({
  table: 'accounts',
  row: z
    .object({ id: z.number(), owner: z.number(), balance: z.number() })
    .transform((r) => ({ accountId: r.id, ownerId: r.owner, balance: r.balance })),
  key: 'accountId',
  stream: { type: 'account', id: (s) => `account-${s.accountId}` },
  onCreate: 'AccountOpened',
  otherwise: 'AccountChanged',
  onDelete: 'AccountClosed',
});

export const accountView = defineView({
  name: 'account',
  from: 'accounts',
  schema: z.object({ owner: z.number(), balance: z.number() }),
  select: (root) => ({ owner: Number(root.row.ownerId), balance: Number(root.row.balance) }),
});

export const accountsDomains = {
  accounts: {
    endpoints: {
      get: defineEndpoint({
        route: '/accounts/:id',
        params: z.object({ id: z.coerce.number() }),
        legacy: { sql: 'SELECT owner, balance FROM accounts WHERE id = :id' },
        readModel: ({ params, readModels }) =>
          readModels.account?.get(String(params.id)) ?? Promise.resolve(null),
      }),
    },
  },
};
