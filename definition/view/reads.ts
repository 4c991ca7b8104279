import type { DomainState, OrderBy, Scalar, Where } from '../read-models.js';

/**
 * The engine's only way to read the rows it keeps: it yields read operations and receives
 * their answers, so one pure implementation of composition and fan-out runs against a
 * synchronous store (SQLite, inside the projector's transaction) and an asynchronous one
 * (MongoDB, OpenSearch) alike.
 */
export type AggregateFn = 'count' | 'sum' | 'min' | 'max';

export type RowRead =
  /** The row of `table` with this row key, or null. */
  | { op: 'get'; table: string; key: string }
  /** Rows of `table` matching `where` (equality / any-of), ordered, at most `limit` (all when absent). */
  | { op: 'find'; table: string; where: Where; orderBy?: readonly OrderBy[]; limit?: number }
  /** count/sum/min/max of `field` over the rows matching `where` (see aggregateRows). */
  | { op: 'aggregate'; table: string; where: Where; fn: AggregateFn; field?: string; scale?: number };

/** Answers: get → DomainState | null, find → DomainState[], aggregate → Scalar. */
export type Reads<T> = Generator<RowRead, T, unknown>;

export interface SyncRowReader {
  get(table: string, key: string): DomainState | null;
  find(table: string, where: Where, orderBy?: readonly OrderBy[], limit?: number): DomainState[];
  aggregate(table: string, where: Where, fn: AggregateFn, field?: string, scale?: number): Scalar;
}

export interface AsyncRowReader {
  get(table: string, key: string): Promise<DomainState | null>;
  find(table: string, where: Where, orderBy?: readonly OrderBy[], limit?: number): Promise<DomainState[]>;
  aggregate(table: string, where: Where, fn: AggregateFn, field?: string, scale?: number): Promise<Scalar>;
}
