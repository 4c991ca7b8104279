import { describe, expect, it } from 'vitest';
import { domainEventMessageSchema, readDomainEvent } from '../../connectors/kafka/domain-topics.js';

const EVENT = {
  streamType: 'account',
  streamId: '42',
  type: 'AccountOpened',
  data: { accountId: 42, status: 'active', nested: { a: [1, 2] } },
  metadata: {
    op: 'c',
    table: 'accounts',
    sourcePosition: 'binlog.000003:1234:0',
    sourceOrder: '0000000003:0000001234:0000',
    sourceTxId: '0-1-42',
    sourceTsMs: 1714555800000,
    snapshot: false,
  },
};

describe('readDomainEvent', () => {
  it('gives what the schema gives, members it does not know left out', () => {
    const value = { ...EVENT, extra: 1, metadata: { ...EVENT.metadata, more: 'x' } };
    const read = readDomainEvent(JSON.parse(JSON.stringify(value)));
    expect(read.event).toEqual(domainEventMessageSchema.parse(value));
    expect(read.event).toEqual(EVENT);
  });

  it.each([
    ['no stream id', { ...EVENT, streamId: '' }],
    ['an unknown op', { ...EVENT, metadata: { ...EVENT.metadata, op: 'x' } }],
    ['a fractional commit time', { ...EVENT, metadata: { ...EVENT.metadata, sourceTsMs: 1.5 } }],
    ['data that is a list', { ...EVENT, data: [1] }],
    ['no metadata', { ...EVENT, metadata: null }],
    ['not an object', 'AccountOpened'],
  ])('refuses %s with the schema’s reason', (_, value) => {
    const read = readDomainEvent(value);
    expect(read.event).toBeUndefined();
    const parsed = domainEventMessageSchema.safeParse(value);
    expect(parsed.success).toBe(false);
    expect(read.reason).toBeTypeOf('string');
    expect(read.reason?.length).toBeGreaterThan(0);
  });
});
