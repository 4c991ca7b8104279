import { diffJson } from '../../../compare/diff.js';
import { legacyAnswer, readModelAnswer, readModelReply } from '../../../definition/endpoint-calls.js';
import type { EndpointDefinition, LegacyDb } from '../../../definition/endpoints.js';
import { JsonText } from '../../../definition/json-text.js';
import type { ReadModels } from '../../../definition/read-models.js';
import shop, { type ShopCheck, shopChecks } from '../../../examples/shop/migration.js';

/** What the shop's end-to-end tests share: every check of `shopChecks`, both sides, compared. */

function endpoint(key: string): EndpointDefinition {
  const entry = shop.endpoints.find((e) => e.key === key);
  if (entry === undefined) throw new Error(`no endpoint ${key}`);
  return entry.definition;
}

/** Params as the HTTP route and query give them (text), parsed by the endpoint's schema. */
function parseParams(def: EndpointDefinition, params: Record<string, unknown>) {
  return def.params.parse(Object.fromEntries(Object.entries(params).map(([k, v]) => [k, String(v)])));
}

export interface ShopComparison {
  checks: number;
  seen: Record<ShopCheck['key'] | 'nulls', number>;
  /** The first few checks whose answers differ, with the first differences of each. */
  differences: Array<{ path: string; diff: unknown }>;
}

/** The same handles without their JSON-text methods: every endpoint takes its object path. */
function objectsOnly(readModels: ReadModels): ReadModels {
  return Object.fromEntries(
    Object.entries(readModels).map(([name, h]) => [name, { get: h.get.bind(h), find: h.find.bind(h) }]),
  );
}

/** What the API sends for a read-model reply, parsed back: stored text as it is, a value serialised. */
function sentJson(reply: unknown): unknown {
  return reply === null || reply === undefined
    ? null
    : JSON.parse(reply instanceof JsonText ? reply.json : JSON.stringify(reply));
}

/**
 * Every check from `shopChecks` on the legacy data now: legacy answer vs read-model answer
 * (diffJson), and the reply the API sends (stored JSON text where the store has it) vs the
 * object path's, as JSON.
 */
export async function compareShopChecks(db: LegacyDb, readModels: ReadModels): Promise<ShopComparison> {
  const checks = await shopChecks(db, { pagedCustomers: 10 });
  const differences: ShopComparison['differences'] = [];
  const seen = { 'orders.detail': 0, 'orders.byCustomer': 0, 'catalog.product': 0, nulls: 0 };
  for (const check of checks) {
    const def = endpoint(check.key);
    const params = parseParams(def, check.params);
    const legacy = await legacyAnswer(def, params, db);
    const model = await readModelAnswer(def, params, readModels);
    seen[check.key]++;
    if (legacy === null) seen.nulls++;
    const d = diffJson(legacy, model);
    if (d.length > 0 && differences.length < 5) differences.push({ path: check.path, diff: d.slice(0, 3) });
    const sent = diffJson(
      sentJson(await readModelReply(def, params, objectsOnly(readModels))),
      sentJson(await readModelReply(def, params, readModels)),
    );
    if (sent.length > 0 && differences.length < 5)
      differences.push({ path: `sent ${check.path}`, diff: sent.slice(0, 3) });
  }
  return { checks: checks.length, seen, differences };
}

/** The workload mix of the shop e2e bursts: more renames and many-to-many changes than the default. */
export const RENAME_HEAVY_MIX = {
  rename_product: 3,
  rename_customer: 3,
  rename_category: 2,
  categorize: 4,
  uncategorize: 4,
} as const;

/** Fan-out subjects picked before a burst: a product on an order, and a customer's latest order. */
export const FANOUT_SQL = {
  productOnOrder: `SELECT oi.order_id AS "orderId", p.id AS "productId", p.name
      FROM order_items oi JOIN products p ON p.id = oi.product_id
     ORDER BY oi.order_id, oi.line_no LIMIT 1`,
  customerWithOrder: `SELECT o.id AS "orderId", c.id AS "customerId", c.first_name AS first, c.last_name AS last
      FROM orders o JOIN customers c ON c.id = o.customer_id
     ORDER BY o.id DESC LIMIT 1`,
} as const;
