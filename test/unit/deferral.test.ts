import { describe, expect, it } from 'vitest';
import { deferralEnabled, defersAt } from '../../projectors/deferral.js';

const live = { maxDocuments: 100, maxMs: 1000, bulk: false };
const end = { behind: true, pending: 10, deferredSinceMs: null, nowMs: 5_000 };

describe('when a batch defers composing its documents', () => {
  it('defers only while behind, under both bounds', () => {
    expect(defersAt(live, end)).toBe(true);
    expect(defersAt(live, { ...end, behind: false })).toBe(false);
    expect(defersAt(live, { ...end, pending: 99 })).toBe(true);
    expect(defersAt(live, { ...end, pending: 100 })).toBe(false);
    expect(defersAt(live, { ...end, deferredSinceMs: 4_001 })).toBe(true);
    expect(defersAt(live, { ...end, deferredSinceMs: 4_000 })).toBe(false);
  });

  it('ignores the time bound in bulk, never the document bound', () => {
    const bulk = { ...live, bulk: true };
    expect(defersAt(bulk, { ...end, deferredSinceMs: 0 })).toBe(true);
    expect(defersAt(bulk, { ...end, pending: 100 })).toBe(false);
    expect(defersAt({ ...bulk, maxMs: 0 }, end)).toBe(true);
  });

  it("defers a bulk build's last batch too, under the document bound", () => {
    const bulk = { ...live, bulk: true };
    expect(defersAt(bulk, { ...end, behind: false })).toBe(true);
    expect(defersAt(bulk, { ...end, behind: false, pending: 100 })).toBe(false);
    expect(defersAt({ ...bulk, maxDocuments: 0 }, { ...end, behind: false })).toBe(false);
  });

  it('is off with a zero bound', () => {
    expect(deferralEnabled({ ...live, maxDocuments: 0 })).toBe(false);
    expect(deferralEnabled({ ...live, maxMs: 0 })).toBe(false);
    expect(deferralEnabled({ ...live, maxMs: 0, bulk: true })).toBe(true);
    expect(defersAt({ ...live, maxMs: 0 }, end)).toBe(false);
  });
});
