import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { defineTableRule } from '../../connectors/mapping/rules.js';
import { defineEndpoint, type EndpointDefinition } from '../../definition/endpoints.js';
import { defineMigration, type MigrationSpec } from '../../definition/migration.js';
import { defineProjection, defineView } from '../../definition/read-models.js';
import { DefinitionError } from '../../lib/errors.js';

/** defineMigration refuses a definition that cannot run, naming the field and the fix. */
const itemRow = z
  .object({ id: z.number(), name: z.string(), list_id: z.number() })
  .transform((r) => ({ itemId: r.id, name: r.name, listId: r.list_id }));
const items = defineTableRule({
  table: 'items',
  row: itemRow,
  key: 'itemId',
  stream: { type: 'item', id: (s) => `item-${s.itemId}` },
  onCreate: 'ItemAdded',
  otherwise: 'ItemChanged',
  onDelete: 'ItemRemoved',
});
const itemView = defineView({
  name: 'item',
  from: 'items',
  schema: z.object({ name: z.string() }),
  select: (root) => ({ name: String(root.row.name) }),
});
const itemEndpoint = (route = '/items/:itemId'): EndpointDefinition =>
  defineEndpoint({
    route,
    params: z.object({ itemId: z.coerce.number() }),
    legacy: { sql: 'SELECT name FROM items WHERE id = :itemId' },
    readModel: ({ params, readModels }) =>
      readModels.item?.get(String(params.itemId)) ?? Promise.resolve(null),
  });

const spec = (over: Partial<MigrationSpec> = {}): MigrationSpec => ({
  name: 'items',
  capture: { tables: [items] },
  readModels: [itemView],
  domains: { items: { endpoints: { get: itemEndpoint() } } },
  ...over,
});

function problemsOf(input: MigrationSpec): string {
  try {
    defineMigration(input);
  } catch (err) {
    expect(err).toBeInstanceOf(DefinitionError);
    return (err as DefinitionError).message;
  }
  throw new Error('the definition was accepted');
}

describe('defineMigration', () => {
  it('accepts a valid definition and lists its endpoints as flag keys', () => {
    const migration = defineMigration(spec());
    expect(migration.tables).toEqual(['items']);
    expect(migration.endpoints.map((e) => e.key)).toEqual(['items.get']);
    expect(migration.viewPlans.get('item')?.tables).toEqual(new Set(['items']));
    const event = migration.toDomainEvent({
      streamType: 'item',
      streamId: 'item-1',
      type: 'ItemRemoved',
      data: {},
      metadata: {
        op: 'd',
        table: 'items',
        sourcePosition: 'x',
        sourceOrder: 'x',
        sourceTxId: 't',
        sourceTsMs: 0,
        snapshot: false,
      },
    });
    expect(event.removed).toBe(true);
  });

  it('names the view join that reads an uncaptured table', () => {
    const broken = defineView({
      ...itemView,
      name: 'broken',
      join: { list: { table: 'lists', on: 'listId' } },
    });
    expect(problemsOf(spec({ readModels: [itemView, broken] }))).toMatch(/broken.*join\.list\.table.*lists/s);
  });

  it('refuses two read models of one name, a projection of events nobody emits, and reserved or clashing routes', () => {
    const projection = defineProjection({
      name: 'item',
      schema: z.object({}),
      canHandle: ['ItemSold'],
      documentId: () => null,
      evolve: () => null,
    });
    const message = problemsOf(
      spec({
        readModels: [itemView, projection],
        domains: {
          items: {
            endpoints: {
              get: itemEndpoint(),
              again: itemEndpoint(),
              metrics: itemEndpoint('/metrics'),
              docs: itemEndpoint('/docs/json'),
              ruled: { ...itemEndpoint('/ruled/:itemId'), compare: { tolerance: { price: -0.01 } } },
            },
          },
        },
      }),
    );
    expect(message).toMatch(/two read models are named item/);
    expect(message).toMatch(/canHandle: no capture rule emits "ItemSold"/);
    expect(message).toMatch(
      /again\.route: \/items\/:itemId is also the route of domains\.items\.endpoints\.get/,
    );
    expect(message).toMatch(/metrics\.route: \/metrics is the API's own/);
    expect(message).toMatch(/docs\.route: \/docs\/json is the API's own/);
    expect(message).toMatch(/ruled\.compare: tolerance of "price" must be a number ≥ 0/);
  });

  it("refuses an endpoint parameter named like the API's time-travel parameter", () => {
    const clash = defineEndpoint({
      route: '/items/:itemId/at',
      params: z.object({ itemId: z.coerce.number(), _asOf: z.string().optional() }),
      legacy: { sql: 'SELECT 1' },
      readModel: async () => null,
    });
    expect(problemsOf(spec({ domains: { items: { endpoints: { at: clash } } } }))).toMatch(
      /endpoints\.at\.params: _asOf is the API's time-travel parameter/,
    );
  });

  it('refuses a route parameter missing from the params schema and a delete event shared with updates', () => {
    const noParam = defineEndpoint({
      route: '/lists/:listId/items',
      params: z.object({ itemId: z.coerce.number() }),
      legacy: { sql: 'SELECT 1' },
      readModel: async () => null,
    });
    expect(problemsOf(spec({ domains: { items: { endpoints: { list: noParam } } } }))).toMatch(
      /route parameter :listId is not in the params schema/,
    );
    const sharedDelete = defineTableRule({
      table: 'items',
      row: itemRow,
      key: 'itemId',
      stream: { type: 'item', id: (s) => `item-${s.itemId}` },
      onCreate: 'ItemChanged',
      otherwise: 'ItemChanged',
      onDelete: 'ItemChanged',
    });
    expect(problemsOf(spec({ capture: { tables: [sharedDelete] } }))).toMatch(/onDelete event "ItemChanged"/);
  });

  it('collects sensitive fields and columns, refusing bad paths and uncaptured tables', () => {
    const sensitiveEndpoint = { ...itemEndpoint(), sensitive: ['name', 'tags[*].label'] };
    const migration = defineMigration(
      spec({
        capture: { tables: [items], sensitive: { items: ['name'] } },
        domains: { items: { endpoints: { get: sensitiveEndpoint } } },
      }),
    );
    expect(migration.sensitiveFields).toEqual(new Map([['items.get', ['name', 'tags[*].label']]]));
    expect(migration.sensitiveColumns).toEqual(new Map([['items', ['name']]]));
    expect(defineMigration(spec()).sensitiveFields.size).toBe(0);

    const problems = problemsOf(
      spec({
        capture: { tables: [items], sensitive: { lists: ['owner'], items: [] } },
        domains: {
          items: { endpoints: { get: { ...itemEndpoint(), sensitive: ['owner..email', 'a[0]'] } } },
        },
      }),
    );
    expect(problems).toMatch(
      /domains\.items\.endpoints\.get\.sensitive: 0: expected a JSON path.*; 1: expected a JSON path/,
    );
    expect(problems).toMatch(/capture\.sensitive\.lists: not a captured table \(captured: items\)/);
    expect(problems).toMatch(/capture\.sensitive\.items: expected a list of column names/);
  });
});
