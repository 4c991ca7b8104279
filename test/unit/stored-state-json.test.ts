import { describe, expect, it } from 'vitest';
import { encodeEvent, STORED_DATA_JSON, storedStateJson } from '../../eventstore/event-encoding.js';
import type { NewDomainEvent } from '../../eventstore/ports.js';

const metadata = {
  op: 'c',
  table: 'accounts',
  sourcePosition: 'binlog.000001:4:0',
  sourceOrder: '',
  sourceTxId: 'tx-1',
  sourceTsMs: 0,
  snapshot: false,
} as NewDomainEvent['metadata'];

/** The stored event as the SQLite store decodes it: data parsed, its text kept beside it. */
function stored(data: Record<string, unknown>, text = encodeEvent(event(data)).data) {
  return { data: JSON.parse(text) as Record<string, unknown>, [STORED_DATA_JSON]: text };
}
const event = (data: Record<string, unknown>): NewDomainEvent => ({
  streamType: 'account',
  streamId: '1',
  type: 'AccountOpened',
  data,
  metadata,
});

describe('storedStateJson', () => {
  it('cuts the state out of the stored text, byte for byte what serialising it again gives', () => {
    const states = [
      { accountId: 1, name: 'A "quoted" \\ name ,"changes":{}', amount: '12.5000', closedAt: null },
      { 2: 'integer-like keys first', b: [1, 2, { c: '\u2028\ud800' }], e: 1e21, f: -0, g: true },
      { changes: { nested: 'a key named changes' }, state: 'and one named state' },
      {},
    ];
    for (const state of states) {
      for (const changes of [{}, { status: { before: 'a', after: 'b' } }, null]) {
        const e = stored({ state, changes });
        expect(storedStateJson(e, e.data)).toBe(JSON.stringify(e.data.state));
      }
    }
  });

  it('is undefined when the text is not the {"state":…,"changes":…} the store writes', () => {
    const other = (text: string) => {
      const e = stored({}, text);
      return storedStateJson(e, e.data);
    };
    expect(other('{"changes":{},"state":{"a":1}}')).toBeUndefined();
    expect(other('{"state":{"a":1},"extra":2,"changes":{}}')).toBeUndefined();
    expect(other('{"state":{"a":1}}')).toBeUndefined();
    expect(other('{ "state":{"a":1},"changes":{}}')).toBeUndefined();
    expect(other('{"state":{"a":1},"changes":{ }}')).toBeUndefined();
    expect(other('{"row":{"a":1}}')).toBeUndefined();
    // An event the SQLite store did not decode carries no text.
    expect(storedStateJson({}, { state: { a: 1 }, changes: {} })).toBeUndefined();
  });
});
