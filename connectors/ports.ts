import type { SourceOffset, SourceTransaction } from './change-event.js';

export type Sink = (tx: SourceTransaction) => Promise<void>;

/** How a source hands its snapshot chunks to the sink. */
export interface DeliveryOptions {
  /**
   * Snapshot chunks handed to the sink before the earliest one's call resolved (default 1: one at
   * a time). With 2 the source reads the next chunk and hands it over while the sink still stores
   * the previous one; the sink must then store chunks in call order and fail every call after a
   * failed one without storing it (orderedSink does both). A chunk counts as accepted, and its
   * offset as the source's, only once its own call resolved.
   */
  snapshotInFlight?: number;
  /**
   * The same for streamed transactions (default 1; the binlog and pgoutput readers): those that arrived
   * while the sink stored one are handed over before it resolved, up to this many pending, so
   * an ordered sink can store them together (orderedSink's storeMany). A schema change or a
   * fragment of a large transaction is handed over alone.
   */
  streamInFlight?: number;
}

/**
 * A change-data-capture source. `start` delivers committed transactions in commit order to
 * `sink`, one at a time: the next is not delivered until the sink's promise resolves (unless
 * DeliveryOptions allow more in flight), so a slow sink applies back-pressure instead of growing a
 * buffer. Resuming from the offset of the last transaction the sink accepted loses nothing and
 * repeats nothing.
 */
export interface ChangeSource {
  readonly name: string;
  start(from: SourceOffset | null, sink: Sink, options?: DeliveryOptions): Promise<void>;
  /** Resolves once no further sink call will be made. */
  stop(): Promise<void>;
}
