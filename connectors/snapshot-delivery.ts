import { errorMessage, SourceError } from '../lib/errors.js';
import type { ChangeEvent, SourceOffset, SourceTransaction } from './change-event.js';
import type { Sink } from './ports.js';

/**
 * Hands snapshot chunks to a sink with up to `inFlight` calls pending (DeliveryOptions): with 2,
 * the reader fetches chunk n+1 while the sink stores chunk n. Each chunk is acknowledged, in
 * order, once its own call resolved. Returns false when `stopped()` ended the delivery early.
 * No sink call is still running when this returns or throws: stop() and a restart rely on it.
 */
export async function deliverChunks<C>(
  chunks: AsyncIterable<C>,
  deliver: (chunk: C) => Promise<void>,
  acknowledge: (chunk: C) => void,
  options: { inFlight: number; stopped: () => boolean },
): Promise<boolean> {
  const pending: Array<{ chunk: C; delivered: Promise<void> }> = [];
  const settleOldest = async () => {
    const oldest = pending[0];
    if (oldest === undefined) return;
    await oldest.delivered;
    pending.shift();
    acknowledge(oldest.chunk);
  };
  try {
    for await (const chunk of chunks) {
      if (options.stopped()) return false;
      const delivered = deliver(chunk);
      // Awaited in order below; a later call failing first must not count as unhandled meanwhile.
      delivered.catch(() => undefined);
      pending.push({ chunk, delivered });
      while (pending.length >= Math.max(1, options.inFlight)) await settleOldest();
    }
    while (pending.length > 0) await settleOldest();
    return true;
  } finally {
    await Promise.allSettled(pending.map((p) => p.delivered));
  }
}

/** What both readers' snapshot chunks carry (snapshot-chunk.ts). */
interface DeliverableChunk {
  id: string;
  table: string;
  events: ChangeEvent[];
  tableDone: boolean;
}

/**
 * An initial snapshot's chunks into the sink as snapshot transactions, each with the offset it
 * reaches (`offsetOf`) and, for a table's last chunk, `completesTable`; `onStored` once a chunk's
 * own call resolved (deliverChunks). A sink failure becomes SINK_FAILED naming the chunk.
 */
export function deliverSnapshot<C extends DeliverableChunk>(
  chunks: AsyncIterable<C>,
  sink: Sink,
  options: {
    offsetOf: (chunk: C) => SourceOffset;
    database: string;
    run: string;
    onStored: (chunk: C) => void;
    inFlight: number;
    stopped: () => boolean;
  },
): Promise<boolean> {
  const { offsetOf, database, run } = options;
  return deliverChunks(
    chunks,
    (chunk) =>
      sink({
        id: chunk.id,
        events: chunk.events,
        offset: offsetOf(chunk),
        snapshot: true,
        ...(chunk.tableDone ? { completesTable: { db: database, table: chunk.table, run } } : {}),
      }).catch((cause: unknown) => {
        throw new SourceError(
          'SINK_FAILED',
          `the sink rejected snapshot chunk ${chunk.id}: ${errorMessage(cause)}`,
          {
            cause,
          },
        );
      }),
    options.onStored,
    { inFlight: options.inFlight, stopped: options.stopped },
  );
}

/** What orderedSink stores together, when it may (storeMany): bounds of one group. */
const STORE_GROUP_MAX_CALLS = 256;
const STORE_GROUP_MAX_EVENTS = 10_000;

/**
 * A sink that takes a call while its previous one is still pending (DeliveryOptions): `prepare`
 * runs at once, in call order (mapping chunk n+1 while chunk n is stored), `store` only once the
 * previous call's store succeeded, so stores run one at a time in call order and none follows a
 * failed one: a stored offset never skips a chunk. Make a new one for each start of a source.
 *
 * With `storeMany`, the calls that arrived while a store ran are stored together, in call
 * order, by one `storeMany` (all of them or none, as one event-store transaction): a stream of
 * small source transactions then costs one commit per group instead of one each. A group ends
 * before a call whose `prepare` failed, so that call fails with everything after it.
 */
export function orderedSink<P>(
  prepare: (tx: SourceTransaction) => P,
  store: (prepared: P, tx: SourceTransaction) => Promise<void>,
  storeMany?: (calls: ReadonlyArray<{ prepared: P; tx: SourceTransaction }>) => Promise<void>,
): Sink {
  interface Call {
    tx: SourceTransaction;
    prepared: { ok: true; value: P } | { ok: false; error: unknown };
    resolve(): void;
    reject(err: unknown): void;
  }
  const waiting: Call[] = [];
  let failure: { error: unknown } | null = null;
  let storing = false;

  const nextGroup = (): Call[] => {
    const group = [waiting.shift() as Call];
    if (storeMany === undefined) return group;
    let events = group[0]?.tx.events.length ?? 0;
    for (let next = waiting[0]; next?.prepared.ok === true; next = waiting[0]) {
      events += next.tx.events.length;
      if (group.length >= STORE_GROUP_MAX_CALLS || events > STORE_GROUP_MAX_EVENTS) break;
      group.push(waiting.shift() as Call);
    }
    return group;
  };

  const drain = async () => {
    while (waiting.length > 0) {
      const head = waiting[0] as Call;
      if (failure === null && !head.prepared.ok) failure = { error: head.prepared.error };
      if (failure !== null) {
        for (const call of waiting.splice(0)) call.reject(failure.error);
        break;
      }
      const group = nextGroup();
      try {
        if (group.length === 1) await store((head.prepared as { value: P }).value, head.tx);
        else
          await (storeMany as NonNullable<typeof storeMany>)(
            group.map((c) => ({ prepared: (c.prepared as { value: P }).value, tx: c.tx })),
          );
      } catch (error) {
        failure = { error };
        for (const call of group) call.reject(error);
        continue;
      }
      for (const call of group) call.resolve();
    }
    storing = false;
  };

  return (tx) =>
    new Promise<void>((resolve, reject) => {
      let prepared: Call['prepared'];
      try {
        prepared = { ok: true, value: prepare(tx) };
      } catch (error) {
        prepared = { ok: false, error };
      }
      waiting.push({ tx, prepared, resolve, reject });
      if (storing) return;
      storing = true;
      // Started after the caller's turn: calls it makes meanwhile join the first group.
      queueMicrotask(() => void drain());
    });
}
