import type { NewDomainEvent } from '../../../eventstore/ports.js';
import type { SqliteEventStore } from '../../../eventstore/sqlite.js';
import {
  type AnalyticsDefinition,
  analyticsTable,
  captureTable,
  defineAnalytics,
  defineEndpoint,
  defineMigration,
  defineView,
  type Migration,
  z,
} from '../../../index.js';

/**
 * A user's one-table definition for the legacy query check: `notes (id, body)`, its endpoint's
 * legacy SQL reading `column` (a column the table lacks makes it wrong). With `functions`, a
 * second endpoint answers through functions, which no check can prepare.
 */
export function notesMigration(
  column: string,
  options: { functions?: boolean; analytics?: readonly AnalyticsDefinition[] } = {},
): Migration {
  const notes = captureTable({
    table: 'notes',
    row: z.object({ id: z.number(), body: z.string() }),
    key: 'id',
    stream: { type: 'note', id: (s) => `note-${s.id}` },
    onCreate: 'NoteAdded',
    otherwise: 'NoteChanged',
    onDelete: 'NoteRemoved',
  });
  const params = z.object({ id: z.coerce.number() });
  return defineMigration({
    name: 'notes',
    capture: { tables: [notes] },
    ...(options.analytics ? { analytics: options.analytics } : {}),
    readModels: [
      defineView({
        name: 'note',
        from: 'notes',
        schema: z.object({ body: z.string() }),
        select: (root) => ({ body: String(root.row.body) }),
      }),
    ],
    domains: {
      notes: {
        endpoints: {
          get: defineEndpoint({
            route: '/notes/:id',
            params,
            legacy: { sql: `SELECT ${column} AS body FROM notes WHERE id = :id` },
            readModel: ({ params, readModels }) =>
              readModels.note?.get(String(params.id)) ?? Promise.resolve(null),
            reconcile: { sql: 'SELECT id FROM notes' },
          }),
          ...(options.functions
            ? {
                computed: defineEndpoint({
                  route: '/notes/:id/computed',
                  params,
                  legacy: async ({ db, params }) => db.query('SELECT 1 WHERE :id = :id', params),
                  readModel: async () => null,
                  reconcile: async () => [],
                }),
              }
            : {}),
        },
      },
    },
  });
}

/** A captured change of a `notes` row, as the mapping makes it; `txId` is its own source transaction. */
export function noteEvent(
  id: number | string,
  body: string,
  txId: string,
  op: 'c' | 'u' | 'd' = 'c',
): NewDomainEvent {
  return {
    streamType: 'note',
    streamId: `note-${id}`,
    type: op === 'd' ? 'NoteRemoved' : op === 'c' ? 'NoteAdded' : 'NoteChanged',
    data: { state: { id, body }, changes: {} },
    metadata: {
      op,
      table: 'notes',
      sourcePosition: `${txId}:0`,
      sourceOrder: `${txId}:0`,
      sourceTxId: txId,
      sourceTsMs: 0,
      snapshot: false,
    },
  };
}

/** Appends noteEvent(...) as one source transaction of the source `test`. */
export function appendNote(store: SqliteEventStore, ...args: Parameters<typeof noteEvent>): void {
  const event = noteEvent(...args);
  const txId = event.metadata.sourceTxId;
  store.appendSync({
    sourceName: 'test',
    sourceTxId: txId,
    offset: { tx: txId },
    events: [event],
    deadLetters: [],
  });
}

/** The notes migration with one analytics model `model`: a `notes` table of id and body, and a `count` query. */
export function notesAnalyticsMigration(model: string): Migration {
  return notesMigration('body', {
    analytics: [
      defineAnalytics({
        name: model,
        tables: {
          notes: analyticsTable<{ id: number; body: string }>({
            from: 'notes',
            columns: { id: 'BIGINT', body: 'VARCHAR' },
            row: (n) => ({ id: n.id, body: n.body }),
          }),
        },
        queries: { count: 'SELECT count(*)::INTEGER AS n FROM notes' },
      }),
    ],
  });
}
