import { describe, expect, it } from 'vitest';
import { HeldOffsets } from '../../connectors/kafka/held-offsets.js';

/** A small deterministic generator, so a failure replays. */
function random(seed: number) {
  let s = seed;
  return () => {
    s = (s * 1103515245 + 12345) % 2 ** 31;
    return s / 2 ** 31;
  };
}

describe('HeldOffsets', () => {
  it('gives the lowest offset still held per partition, whatever order records are released in', () => {
    const rand = random(7);
    const held = new HeldOffsets();
    const reference = new Map<number, bigint[]>([
      [0, []],
      [1, []],
    ]);
    const next = [0n, 0n];
    for (let step = 0; step < 5000; step++) {
      const partition = rand() < 0.5 ? 0 : 1;
      const list = reference.get(partition) as bigint[];
      if (list.length === 0 || rand() < 0.55) {
        const offset = next[partition] as bigint;
        next[partition] = offset + 1n;
        held.hold('t', partition, offset);
        list.push(offset);
      } else {
        // Mostly the oldest first, as transactions complete in commit order; sometimes any.
        const at = rand() < 0.7 ? 0 : Math.floor(rand() * list.length);
        const [offset] = list.splice(at, 1);
        held.release('t', partition, offset as bigint);
      }
      // Pushed ascending and removed with splice: each reference list stays sorted.
      for (const [p, offsets] of reference) expect(held.lowest('t', p)).toBe(offsets[0]);
    }
  });

  it('keeps a partition re-read out of order sorted, and an offset held twice until released twice', () => {
    const held = new HeldOffsets();
    held.hold('t', 0, 10n);
    held.hold('t', 0, 12n);
    held.hold('t', 0, 5n);
    held.hold('t', 0, 5n);
    expect(held.lowest('t', 0)).toBe(5n);
    held.release('t', 0, 5n);
    expect(held.lowest('t', 0)).toBe(5n);
    held.release('t', 0, 5n);
    expect(held.lowest('t', 0)).toBe(10n);
    held.release('t', 0, 12n);
    expect(held.lowest('t', 0)).toBe(10n);
    held.release('t', 0, 10n);
    expect(held.lowest('t', 0)).toBeUndefined();
    expect(held.lowest('other', 0)).toBeUndefined();
  });
});
