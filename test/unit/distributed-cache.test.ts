import { describe, expect, it } from 'vitest';
import { chunksOf, parseEntry, parseLookup } from '../../shadow-api/distributed-cache.js';

describe('distributed cache: pure parts', () => {
  it('splits documents into distinct chunks', () => {
    const docs: [string, string][] = [
      ['item', '1'],
      ['item', '2'],
      ['item', '1'],
      ['item__v2', '1'],
      ['item', '3'],
    ];
    expect(chunksOf(docs, 2)).toEqual([
      [
        ['item', '1'],
        ['item', '2'],
      ],
      [
        ['item__v2', '1'],
        ['item', '3'],
      ],
    ]);
    expect(chunksOf([], 2)).toEqual([]);
  });

  it('reads only entries it wrote', () => {
    expect(parseEntry(JSON.stringify({ e: '3', d: '{"a":1}' }))).toEqual({ e: '3', d: '{"a":1}' });
    expect(parseEntry(JSON.stringify({ e: '3', d: null }))).toEqual({ e: '3', d: null });
    expect(parseEntry(JSON.stringify({ e: 3, d: null }))).toBeNull();
    expect(parseEntry(JSON.stringify({ e: '3' }))).toBeNull();
    expect(parseEntry('not json')).toBeNull();
  });

  it("checks the lookup script's answer", () => {
    expect(parseLookup(['2', '1700000000000001', null], 1)).toEqual({
      entries: [null],
      epoch: '2',
      now: '1700000000000001',
    });
    // Redis ends a reply's array at its last entry: the missing tail is no entry either.
    expect(parseLookup(['2', '1', 'x', null, 'y'], 4)?.entries).toEqual(['x', null, 'y', null]);
    expect(parseLookup([2, '1', 'x'], 1)).toBeNull();
    expect(parseLookup('x', 1)).toBeNull();
  });
});
