import type { DomainState, OrderBy, Scalar, Where } from '../read-models.js';
import type { AggregateFn, AsyncRowReader, SyncRowReader } from './reads.js';
import { aggregateRows, compareRows, matchesWhere } from './rows.js';

/**
 * Rows kept in memory, by table and row key: the reference reader the engine's unit tests run
 * against and a baseline for store contract tests. Every read scans the table, which is what
 * makes it a reference: no index can hide a wrong answer.
 */
export class MemoryRows implements SyncRowReader {
  private readonly tables = new Map<string, Map<string, DomainState>>();

  /** The same rows, answered as promises (for code written against an async store). */
  readonly async: AsyncRowReader = {
    get: async (table, key) => this.get(table, key),
    find: async (table, where, orderBy, limit) => this.find(table, where, orderBy, limit),
    aggregate: async (table, where, fn, field, scale) => this.aggregate(table, where, fn, field, scale),
  };

  /** Stores a copy, so a caller changing its object later does not change the mirror. */
  put(table: string, key: string, state: DomainState): void {
    let rows = this.tables.get(table);
    if (rows === undefined) {
      rows = new Map();
      this.tables.set(table, rows);
    }
    rows.set(key, { ...state });
  }

  delete(table: string, key: string): void {
    this.tables.get(table)?.delete(key);
  }

  /** Row keys of a table, in insertion order. */
  keys(table: string): string[] {
    return [...(this.tables.get(table)?.keys() ?? [])];
  }

  get(table: string, key: string): DomainState | null {
    return this.tables.get(table)?.get(key) ?? null;
  }

  find(table: string, where: Where, orderBy?: readonly OrderBy[], limit?: number): DomainState[] {
    const rows = [...(this.tables.get(table)?.values() ?? [])].filter((row) => matchesWhere(row, where));
    if (orderBy !== undefined) rows.sort(compareRows(orderBy));
    return limit === undefined ? rows : rows.slice(0, limit);
  }

  aggregate(table: string, where: Where, fn: AggregateFn, field?: string, scale?: number): Scalar {
    return aggregateRows(this.find(table, where), fn, field, scale);
  }
}
