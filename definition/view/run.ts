import type { DomainState, OrderBy, Scalar, Where } from '../read-models.js';
import type { AggregateFn, AsyncRowReader, Reads, RowRead, SyncRowReader } from './reads.js';

/**
 * Both ends of the read protocol: the typed reads the engine yields, and the drivers that
 * answer them from a store. The casts here are the protocol's only trust point: a driver
 * answers each op with the reader method of the same name.
 */

export function* getRow(table: string, key: string): Reads<DomainState | null> {
  return (yield { op: 'get', table, key }) as DomainState | null;
}

export function* findRows(
  table: string,
  where: Where,
  orderBy?: readonly OrderBy[],
  limit?: number,
): Reads<DomainState[]> {
  const read: RowRead = { op: 'find', table, where };
  if (orderBy !== undefined) read.orderBy = orderBy;
  if (limit !== undefined) read.limit = limit;
  return (yield read) as DomainState[];
}

export function* aggregateOf(
  table: string,
  where: Where,
  fn: AggregateFn,
  field?: string,
  scale?: number,
): Reads<Scalar> {
  const read: RowRead = { op: 'aggregate', table, where, fn };
  if (field !== undefined) read.field = field;
  if (scale !== undefined) read.scale = scale;
  return (yield read) as Scalar;
}

function answerSync(read: RowRead, reader: SyncRowReader): unknown {
  switch (read.op) {
    case 'get':
      return reader.get(read.table, read.key);
    case 'find':
      return reader.find(read.table, read.where, read.orderBy, read.limit);
    case 'aggregate':
      return reader.aggregate(read.table, read.where, read.fn, read.field, read.scale);
  }
}

function answerAsync(read: RowRead, reader: AsyncRowReader): Promise<unknown> {
  switch (read.op) {
    case 'get':
      return reader.get(read.table, read.key);
    case 'find':
      return reader.find(read.table, read.where, read.orderBy, read.limit);
    case 'aggregate':
      return reader.aggregate(read.table, read.where, read.fn, read.field, read.scale);
  }
}

/** Runs the engine against a synchronous store (e.g. inside a SQLite transaction). */
export function runSync<T>(reads: Reads<T>, reader: SyncRowReader): T {
  let step = reads.next();
  while (!step.done) step = reads.next(answerSync(step.value, reader));
  return step.value;
}

/** Runs the engine against an asynchronous store; reads are issued one at a time, in order. */
export async function runAsync<T>(reads: Reads<T>, reader: AsyncRowReader): Promise<T> {
  let step = reads.next();
  while (!step.done) step = reads.next(await answerAsync(step.value, reader));
  return step.value;
}
