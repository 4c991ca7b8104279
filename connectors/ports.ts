import type { SourceOffset, SourceTransaction } from './change-event.js';

/**
 * A change-data-capture source. `start` delivers committed transactions in commit order to
 * `sink`, one at a time: the next is not delivered until the sink's promise resolves, so a
 * slow sink applies back-pressure instead of growing a buffer. Resuming from the offset of
 * the last transaction the sink accepted loses nothing and repeats nothing.
 */
export interface ChangeSource {
  readonly name: string;
  start(from: SourceOffset | null, sink: (tx: SourceTransaction) => Promise<void>): Promise<void>;
  /** Resolves once no further sink call will be made. */
  stop(): Promise<void>;
}
