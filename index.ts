/**
 * cqrs-migrate's public API: everything a migration definition needs, and nothing else.
 * A definition module default-exports `defineMigration({...})`; the CLI loads it with
 * `--definition ./migration.ts` (see "Migrate your own database" in README.md).
 */
export { z } from 'zod';
export type { Row, RowValue } from './connectors/change-event.js';
export type { RowEventPayload } from './connectors/mapping/mapper.js';
export {
  type DomainState as CapturedState,
  defineTableRule as captureTable,
  type EventNamesFor,
  type TableRule,
  type TableRuleSpec,
  tableRuleBuilder,
  type UpdateClause,
} from './connectors/mapping/rules.js';
export {
  type Analytics,
  type AnalyticsColumnType,
  type AnalyticsDefinition,
  type AnalyticsDialect,
  type AnalyticsHandle,
  type AnalyticsKeyType,
  AnalyticsNotServedError,
  type AnalyticsRow,
  type AnalyticsSpec,
  type AnalyticsSql,
  type AnalyticsTableSpec,
  type AnalyticsValues,
  analyticsTable,
  defineAnalytics,
} from './definition/analytics.js';
export {
  type DomainDefinition,
  defineEndpoint,
  type EndpointDefinition,
  type EndpointParams,
  type EndpointSpec,
  type LegacyContext,
  type LegacyDb,
  type LegacyDialect,
  type LegacyRow,
  type LegacySql,
  type ReadModelContext,
  type ReconcileSource,
} from './definition/endpoints.js';
export { JsonText, jsonText, storedDocument } from './definition/json-text.js';
export {
  defineMigration,
  isMigration,
  type Migration,
  type MigrationSpec,
  type SampleCreateContext,
  type SampleHooks,
  type SampleLoadContext,
} from './definition/migration.js';
export { datetimeParam, type IntegerParamOptions, integerParam, uuidParam } from './definition/params.js';
export {
  type Aggregate,
  type Aggregates,
  type ChildrenJoin,
  type DocumentQuery,
  type DomainEvent,
  type DomainState,
  defineProjection,
  defineView,
  documentsInOrder,
  getMany,
  type IndexFields,
  type Join,
  type Joins,
  type LookupJoin,
  type OrderBy,
  type ProjectionDefinition,
  type ProjectionSpec,
  type Range,
  type ReadModelDefinition,
  type ReadModelHandle,
  type ReadModels,
  type Scalar,
  type SortDirection,
  type ViewDefinition,
  type ViewNode,
  type ViewSpec,
  type Where,
} from './definition/read-models.js';
export type { CompareRulesSpec } from './lib/compare-rules.js';
export { AdapterError, ConfigError, DefinitionError, errorMessage } from './lib/errors.js';
export { type Progress, ProgressMeter } from './lib/progress.js';
