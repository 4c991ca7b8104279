import { describe, expect, it } from 'vitest';
import { BackgroundCommits } from '../../connectors/kafka/background-commits.js';

interface Point {
  partition: number;
  offset: number;
}

function committer(fail: (call: number) => boolean) {
  const calls: Point[][] = [];
  const committed: Point[][] = [];
  const failures: unknown[] = [];
  let release: (() => void) | null = null;
  const commits = new BackgroundCommits<Point>({
    key: (p) => String(p.partition),
    commit: async (points) => {
      calls.push(points);
      // The first commit waits until released, so points added meanwhile queue behind it.
      if (calls.length === 1) await new Promise<void>((r) => (release = r));
      if (fail(calls.length)) throw new Error(`commit ${calls.length} refused`);
    },
    onCommitted: (points) => committed.push(points),
    onFailed: (err) => failures.push(err),
  });
  return { commits, calls, committed, failures, release: () => release?.() };
}

describe('BackgroundCommits', () => {
  it('runs one commit at a time, with the newest waiting point of each partition', async () => {
    const c = committer(() => false);
    c.commits.add([{ partition: 0, offset: 10 }]);
    c.commits.add([
      { partition: 0, offset: 20 },
      { partition: 1, offset: 5 },
    ]);
    c.commits.add([{ partition: 0, offset: 30 }]);
    expect(c.calls).toEqual([[{ partition: 0, offset: 10 }]]);
    c.release();
    await c.commits.settled();
    expect(c.calls).toEqual([
      [{ partition: 0, offset: 10 }],
      [
        { partition: 0, offset: 30 },
        { partition: 1, offset: 5 },
      ],
    ]);
    expect(c.committed).toEqual(c.calls);
    expect(c.failures).toEqual([]);
  });

  it('keeps a refused commit for the next one, where newer points of a partition win', async () => {
    const c = committer((call) => call === 1);
    c.commits.add([
      { partition: 0, offset: 10 },
      { partition: 1, offset: 7 },
    ]);
    c.commits.add([{ partition: 1, offset: 9 }]);
    c.release();
    await c.commits.settled();
    // The refusal ended the drain: what waited stays until the next add.
    expect(c.failures).toHaveLength(1);
    expect(c.committed).toEqual([]);
    expect(c.calls).toHaveLength(1);
    c.commits.add([{ partition: 2, offset: 1 }]);
    await c.commits.settled();
    expect(c.calls[1]).toEqual([
      { partition: 1, offset: 9 },
      { partition: 0, offset: 10 },
      { partition: 2, offset: 1 },
    ]);
    expect(c.committed).toEqual([c.calls[1]]);
  });
});
