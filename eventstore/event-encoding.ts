import type { AppendBatch, NewDomainEvent } from './ports.js';

/**
 * A NewDomainEvent with its data and metadata already JSON text, the columns the store inserts.
 * Encoded on the thread that mapped it: the writer thread then receives flat strings (a
 * structured clone of nested payloads cost it ~3x the JSON.stringify) and stringifies nothing.
 */
export interface EncodedEvent {
  streamType: string;
  streamId: string;
  type: string;
  data: string;
  metadata: string;
  sourceTxId: string;
  sourcePosition: string;
  snapshot: boolean;
}

/** An AppendBatch whose events are encoded: what AppendThread posts to its writer thread. */
export type EncodedAppendBatch = Omit<AppendBatch, 'events'> & { events: EncodedEvent[] };

export function encodeEvent(event: NewDomainEvent): EncodedEvent {
  return {
    streamType: event.streamType,
    streamId: event.streamId,
    type: event.type,
    data: JSON.stringify(event.data),
    metadata: JSON.stringify(event.metadata),
    sourceTxId: event.metadata.sourceTxId,
    sourcePosition: event.metadata.sourcePosition,
    snapshot: event.metadata.snapshot,
  };
}

export function encodeBatch(batch: AppendBatch): EncodedAppendBatch {
  return { ...batch, events: batch.events.map(encodeEvent) };
}

/** The event as JSON.stringify(NewDomainEvent) would spell it (staged fragments keep that form). */
export function eventJson(event: EncodedEvent): string {
  return `{"streamType":${JSON.stringify(event.streamType)},"streamId":${JSON.stringify(event.streamId)},"type":${JSON.stringify(event.type)},"data":${event.data},"metadata":${event.metadata}}`;
}
