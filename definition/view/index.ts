/** The declarative view engine, as the read-model stores use it. */
export { composeDocument, composeFromRow, parentKeyWhere } from './compose.js';
export { affectedKeys } from './fanout.js';
export { MemoryRows } from './memory-rows.js';
export {
  compileView,
  keptIndexes,
  type PlanAggregate,
  type PlanJoin,
  type PlanNode,
  type PlanOrder,
  type PlanRelation,
  type ViewIndex,
  type ViewPlan,
} from './plan.js';
export type { AggregateFn, AsyncRowReader, Reads, RowRead, SyncRowReader } from './reads.js';
export {
  aggregateRows,
  compareRows,
  compareValues,
  fieldValue,
  isScalar,
  matchesWhere,
  toScalar,
} from './rows.js';
export { aggregateOf, findRows, getRow, runAsync, runSync } from './run.js';
