import { describe, expect, it } from 'vitest';
import { type MarkerTimes, stageLatencies } from '../../bench/scenarios/cdc-stages.js';

/** A marker whose hops took the given milliseconds, from a commit at `at`. */
function marker(at: number, hops: [number, number | undefined, number, number, number]): MarkerTimes {
  const [toCaptured, toProduced, toReceived, toPublished, toVisible] = hops;
  const captured = at + toCaptured;
  const produced = toProduced === undefined ? undefined : captured + toProduced;
  const received = (produced ?? captured + 1000) + toReceived;
  const published = received + toPublished;
  return {
    committed: at,
    captured,
    ...(produced === undefined ? {} : { produced }),
    received,
    published,
    visible: published + toVisible,
  };
}

describe('cdc stage breakdown', () => {
  it('takes each hop p50/p99 over the markers that became visible', () => {
    // 100 markers: hop i of marker k takes k (1 … 100) times the hop's unit.
    const markers = Array.from({ length: 100 }, (_, i) =>
      marker(1_000_000 + i * 10, [i + 1, 2 * (i + 1), 3 * (i + 1), 4 * (i + 1), 5 * (i + 1)]),
    );
    const stages = stageLatencies(markers);
    expect(stages.commitToCaptured).toEqual({ p50Ms: 50, p99Ms: 99, samples: 100 });
    expect(stages.capturedToProduced).toEqual({ p50Ms: 100, p99Ms: 198, samples: 100 });
    expect(stages.producedToReceived).toEqual({ p50Ms: 150, p99Ms: 297, samples: 100 });
    expect(stages.receivedToPublished).toEqual({ p50Ms: 200, p99Ms: 396, samples: 100 });
    expect(stages.publishedToVisible).toEqual({ p50Ms: 250, p99Ms: 495, samples: 100 });
  });

  it('leaves out markers not yet visible, and splits capture → receipt only where the END record was read', () => {
    const pending: MarkerTimes = { committed: 1000, captured: 1010 };
    const noEnd = marker(2000, [7, undefined, 30, 40, 50]);
    const withEnd = marker(3000, [-2, 20, 30, 40, 50]);
    const stages = stageLatencies([pending, noEnd, withEnd]);
    // Debezium's clock may read a millisecond or two before the harness's acknowledgement.
    expect(stages.commitToCaptured).toEqual({ p50Ms: -2, p99Ms: 7, samples: 2 });
    expect(stages.capturedToProduced).toEqual({ p50Ms: 20, p99Ms: 20, samples: 1 });
    expect(stages.producedToReceived).toEqual({ p50Ms: 30, p99Ms: 30, samples: 1 });
    expect(stages.receivedToPublished.samples).toBe(2);
    expect(stages.publishedToVisible).toEqual({ p50Ms: 50, p99Ms: 50, samples: 2 });
  });

  it('reports no samples as zeroes with a count of 0', () => {
    expect(stageLatencies([]).publishedToVisible).toEqual({ p50Ms: 0, p99Ms: 0, samples: 0 });
  });
});
