import type { Registry } from 'prom-client';
import { Counter, Gauge } from 'prom-client';
import type { SourceTransaction } from '../connectors/change-event.js';
import type { MappedTransaction } from '../connectors/mapping/mapper.js';
import type { RuleSet } from '../connectors/mapping/rule-set.js';
import {
  isTruncate,
  mapWithPauses,
  schemaChangeBreaks,
  truncateHint,
} from '../connectors/mapping/schema-check.js';
import type { SchemaChange, StoredSchemaChange } from '../eventstore/ports.js';
import type { Logger } from '../lib/logger.js';

/**
 * The embedded pipeline's mapping step with schema-change handling: DDL on a captured table is
 * recorded (with the batch that carries it), counted, and when it breaks the table's rule the
 * table's capture pauses loudly: an error log, the paused-tables gauge, a record that
 * `schema-changes` shows, and its rows kept in order as dead letters instead of being rejected
 * one by one in silence. `dead-letters redrive` with the fixed rule resolves the pause.
 */
export class CaptureGuard {
  private readonly paused: Map<string, string>;
  private readonly changes: Counter<'table' | 'breaking'>;
  private readonly pausedGauge: Gauge;

  constructor(
    private readonly rules: RuleSet,
    private readonly sourceName: string,
    open: readonly StoredSchemaChange[],
    private readonly logger: Logger,
    registry?: Registry,
  ) {
    this.paused = new Map(open.flatMap((c) => (c.breaks === null ? [] : [[c.table, c.breaks] as const])));
    const registers = registry ? [registry] : [];
    this.changes = new Counter({
      name: 'cqrs_schema_changes_total',
      help: 'Schema changes seen on captured tables (breaking: the capture rule no longer reads the table)',
      labelNames: ['table', 'breaking'],
      registers,
    });
    this.pausedGauge = new Gauge({
      name: 'cqrs_capture_paused_tables',
      help: 'Captured tables whose capture is paused by a schema change that broke their rule',
      registers,
    });
    this.pausedGauge.set(this.paused.size);
    for (const [table, breaks] of this.paused)
      this.logger.error(
        { table, breaks },
        'capture paused by a schema change: fix the rule, then dead-letters redrive',
      );
  }

  map(tx: SourceTransaction): MappedTransaction & { schemaChanges: SchemaChange[] } {
    const schemaChanges = (tx.schemaChanges ?? []).map((change): SchemaChange => {
      const breaks = schemaChangeBreaks(change, this.rules);
      this.changes.inc({ table: change.table, breaking: String(breaks !== null) });
      if (breaks !== null && !this.paused.has(change.table)) {
        this.paused.set(change.table, breaks);
        this.pausedGauge.set(this.paused.size);
        this.logger.error(
          { table: change.table, ddl: change.ddl, at: change.position, breaks },
          'schema change broke a capture rule: capture of the table is paused (its rows are kept as dead letters); fix the rule, then run `dead-letters redrive`',
        );
      } else if (isTruncate(change.ddl))
        this.logger.warn(
          { table: change.table, ddl: change.ddl, at: change.position, hint: truncateHint(change.table) },
          'TRUNCATE of a captured table recorded: the change log carries no row deletes for it',
        );
      else
        this.logger.warn(
          { table: change.table, ddl: change.ddl, at: change.position },
          'schema change recorded',
        );
      return {
        sourceName: this.sourceName,
        table: change.table,
        ddl: change.ddl,
        sourcePosition: change.position,
        columns: change.columns,
        breaks,
      };
    });
    return { ...mapWithPauses(tx, this.rules, this.paused), schemaChanges };
  }
}
