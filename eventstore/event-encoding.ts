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
  return encodedWith(event, JSON.stringify(event.metadata));
}

function encodedWith(event: NewDomainEvent, metadataJson: string): EncodedEvent {
  return {
    streamType: event.streamType,
    streamId: event.streamId,
    type: event.type,
    data: JSON.stringify(event.data),
    metadata: metadataJson,
    sourceTxId: event.metadata.sourceTxId,
    sourcePosition: event.metadata.sourcePosition,
    snapshot: event.metadata.snapshot,
  };
}

/**
 * Events that share one metadata object (the mapping gives a snapshot page's events one) share
 * its text too: serialised once, not once per event. Nothing writes to a mapped event's metadata.
 */
export function encodeBatch(batch: AppendBatch): EncodedAppendBatch {
  const events = new Array<EncodedEvent>(batch.events.length);
  let metadata: NewDomainEvent['metadata'] | undefined;
  let text = '';
  for (let i = 0; i < events.length; i++) {
    const event = batch.events[i] as NewDomainEvent;
    if (event.metadata !== metadata) {
      metadata = event.metadata;
      text = JSON.stringify(metadata);
    }
    events[i] = encodedWith(event, text);
  }
  return { ...batch, events };
}

/** The event as JSON.stringify(NewDomainEvent) would spell it (staged fragments keep that form). */
export function eventJson(event: EncodedEvent): string {
  return `{"streamType":${JSON.stringify(event.streamType)},"streamId":${JSON.stringify(event.streamId)},"type":${JSON.stringify(event.type)},"data":${event.data},"metadata":${event.metadata}}`;
}

/**
 * The data column's text, as the store read it, on a StoredEvent the SQLite store decoded: what
 * a projection that only stores (part of) the data can write instead of serialising the parsed
 * value again. A symbol key: JSON.stringify, Object.keys and for-in never see it.
 */
export const STORED_DATA_JSON: unique symbol = Symbol('cqrs-migrate.storedDataJson');

const STATE_PREFIX = '{"state":';

/**
 * The JSON text of a row event's `data.state` cut out of the stored data text, or undefined when
 * the event came without it or its text is not the `{"state":…,"changes":…}` encodeEvent wrote.
 * Equal to JSON.stringify(data.state): the store's text is JSON.stringify output (encodeEvent),
 * and parsing such text and serialising it again gives the same bytes.
 */
export function storedStateJson(
  event: object,
  data: { state?: unknown; changes?: unknown },
): string | undefined {
  const text = (event as { [STORED_DATA_JSON]?: string })[STORED_DATA_JSON];
  if (text === undefined || !text.startsWith(STATE_PREFIX)) return undefined;
  // Exactly state then changes: another key would sit between them in the text.
  let keys = 0;
  for (const key in data) if (++keys > 2 || (key !== 'state' && key !== 'changes')) return undefined;
  if (keys !== 2) return undefined;
  const changes = JSON.stringify(data.changes);
  // ,"changes":<changes>} closes the text: 12 characters around the changes' own text.
  const end = text.length - changes.length - 12;
  if (
    end <= STATE_PREFIX.length ||
    !text.startsWith(',"changes":', end) ||
    !text.startsWith(changes, end + 11) ||
    text.charCodeAt(text.length - 1) !== 0x7d
  )
    return undefined;
  return text.slice(STATE_PREFIX.length, end);
}
