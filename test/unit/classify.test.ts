import { describe, expect, it } from 'vitest';
import {
  type Classification,
  caughtUpFrom,
  classifyAttempt,
  needsRecheck,
  type SideResult,
  settle,
} from '../../compare/classify.js';

const ok = (value: unknown): SideResult => ({ ok: true, value, latencyMs: 1 });
const failed = (error: string): SideResult => ({ ok: false, error, latencyMs: 1 });
const summary = (ledger: string) => ({ accountId: 1, balance: { ledger } });

describe('classifyAttempt', () => {
  it('matches equal answers, and two absent ones', () => {
    expect(classifyAttempt({ legacy: ok(summary('1.0000')), readModel: ok(summary('1.0000')) })).toEqual({
      outcome: 'match',
      differences: [],
      error: null,
      readModelCaughtUp: null,
    });
    expect(classifyAttempt({ legacy: ok(null), readModel: ok(null) }).outcome).toBe('match');
  });

  it('calls a difference a mismatch when the read model had caught up, or nobody can tell', () => {
    const input = { legacy: ok(summary('1.0000')), readModel: ok(summary('2.0000')) };
    const caughtUp = classifyAttempt({ ...input, freshness: { readModelCaughtUp: true } });
    expect(caughtUp.outcome).toBe('mismatch');
    expect(caughtUp.differences).toEqual([
      { path: 'balance.ledger', kind: 'changed', legacy: '1.0000', readModel: '2.0000' },
    ]);
    expect(classifyAttempt(input).outcome).toBe('mismatch');
  });

  it('calls a difference lag when the read model was behind, by flag or by positions', () => {
    const input = { legacy: ok(summary('1.0000')), readModel: ok(summary('2.0000')) };
    expect(classifyAttempt({ ...input, freshness: { readModelCaughtUp: false } }).outcome).toBe('lag');
    expect(
      classifyAttempt({ ...input, freshness: { sourcePosition: 10, readModelPosition: 9 } }).outcome,
    ).toBe('lag');
    expect(
      classifyAttempt({ ...input, freshness: { sourcePosition: 10, readModelPosition: 10 } }).outcome,
    ).toBe('mismatch');
  });

  it('calls one absent side missing, or lag when the read model is behind', () => {
    const onlyLegacy = classifyAttempt({ legacy: ok(summary('1.0000')), readModel: ok(null) });
    expect(onlyLegacy.outcome).toBe('missing');
    expect(onlyLegacy.differences).toEqual([
      { path: '$', kind: 'missing', legacy: summary('1.0000'), readModel: null },
    ]);
    const onlyReadModel = classifyAttempt({ legacy: ok(null), readModel: ok(summary('1.0000')) });
    expect(onlyReadModel.outcome).toBe('missing');
    expect(onlyReadModel.differences[0]?.kind).toBe('extra');
    expect(
      classifyAttempt({
        legacy: ok(summary('1.0000')),
        readModel: ok(null),
        freshness: { readModelCaughtUp: false },
      }).outcome,
    ).toBe('lag');
  });

  it('calls a difference a mismatch, not lag, when the read model is behind but stalled', () => {
    const differing = { legacy: ok(summary('1.0000')), readModel: ok(summary('2.0000')) };
    const absent = { legacy: ok(summary('1.0000')), readModel: ok(null) };
    const stalled = { readModelCaughtUp: false, stalled: true };
    expect(classifyAttempt({ ...differing, freshness: stalled }).outcome).toBe('mismatch');
    expect(classifyAttempt({ ...absent, freshness: stalled }).outcome).toBe('missing');
    expect(
      classifyAttempt({
        ...differing,
        freshness: { sourcePosition: 10, readModelPosition: 9, stalled: true },
      }).outcome,
    ).toBe('mismatch');
    // Advancing (stalled: false or not said) keeps the lag rule; a stall does not hide a match.
    expect(
      classifyAttempt({ ...differing, freshness: { readModelCaughtUp: false, stalled: false } }).outcome,
    ).toBe('lag');
    expect(
      classifyAttempt({ legacy: ok(summary('1.0000')), readModel: ok(summary('1.0000')), freshness: stalled })
        .outcome,
    ).toBe('match');
    // A stalled read model's difference is final after one fresh look (no waiting for lag).
    const attempt = classifyAttempt({ ...differing, freshness: stalled });
    expect(needsRecheck(attempt, { bothSidesFresh: true })).toBe(false);
    expect(settle([attempt, attempt]).outcome).toBe('mismatch');
  });

  it('calls a caught-up difference lag when the legacy answer changed during the attempt', () => {
    const differing = { legacy: ok(summary('1.0000')), readModel: ok(summary('2.0000')) };
    const written = classifyAttempt({
      ...differing,
      freshness: { readModelCaughtUp: true, legacyChanged: true },
    });
    expect(written).toMatchObject({ outcome: 'lag', readModelCaughtUp: true });
    expect(needsRecheck(written, { bothSidesFresh: true })).toBe(true);
    expect(
      classifyAttempt({ ...differing, freshness: { readModelCaughtUp: true, legacyChanged: false } }).outcome,
    ).toBe('mismatch');
    expect(
      classifyAttempt({
        legacy: ok(summary('1.0000')),
        readModel: ok(null),
        freshness: { sourcePosition: 10, readModelPosition: 10, legacyChanged: true },
      }).outcome,
    ).toBe('lag');
    // Behind and stalled stays a mismatch: the read model will not converge by itself.
    expect(
      classifyAttempt({
        ...differing,
        freshness: { readModelCaughtUp: false, stalled: true, legacyChanged: true },
      }).outcome,
    ).toBe('mismatch');
  });

  it('reports errors of either side with the side named, before anything else', () => {
    expect(classifyAttempt({ legacy: ok(null), readModel: failed('no such table') })).toMatchObject({
      outcome: 'error',
      error: 'read model: no such table',
    });
    expect(classifyAttempt({ legacy: failed('timeout'), readModel: failed('boom') }).error).toBe(
      'legacy: timeout; read model: boom',
    );
  });
});

describe('caughtUpFrom', () => {
  it('reads either kind of freshness fact, and unknown as null', () => {
    expect(caughtUpFrom({ readModelCaughtUp: true })).toBe(true);
    expect(caughtUpFrom({ sourcePosition: 5, readModelPosition: 6 })).toBe(true);
    expect(caughtUpFrom({ sourcePosition: 7, readModelPosition: 6 })).toBe(false);
    expect(caughtUpFrom(undefined)).toBeNull();
  });
});

const attempt = (
  outcome: Classification['outcome'],
  readModelCaughtUp: boolean | null,
  path = 'x',
): Classification => ({
  outcome,
  differences:
    outcome === 'match' || outcome === 'error' ? [] : [{ path, kind: 'changed', legacy: 1, readModel: 2 }],
  error: outcome === 'error' ? 'read model: boom' : null,
  readModelCaughtUp,
});

describe('needsRecheck', () => {
  it('re-checks lag, and mismatches that could still be lag or a stale served answer', () => {
    expect(needsRecheck(attempt('lag', false), { bothSidesFresh: true })).toBe(true);
    expect(needsRecheck(attempt('mismatch', null), { bothSidesFresh: true })).toBe(true);
    expect(needsRecheck(attempt('mismatch', true), { bothSidesFresh: false })).toBe(true);
    expect(needsRecheck(attempt('missing', true), { bothSidesFresh: false })).toBe(true);
  });

  it('stops at a match, an error, or a mismatch of fresh answers with the read model caught up', () => {
    expect(needsRecheck(attempt('match', true), { bothSidesFresh: false })).toBe(false);
    expect(needsRecheck(attempt('error', null), { bothSidesFresh: false })).toBe(false);
    expect(needsRecheck(attempt('mismatch', true), { bothSidesFresh: true })).toBe(false);
  });
});

describe('settle', () => {
  it('keeps a first-attempt result as it is', () => {
    expect(settle([attempt('match', true)]).outcome).toBe('match');
    expect(settle([attempt('mismatch', true)]).outcome).toBe('mismatch');
  });

  it('calls a difference that went away on a re-check lag, keeping the differences seen', () => {
    const settled = settle([attempt('lag', false, 'balance.ledger'), attempt('match', true)]);
    expect(settled.outcome).toBe('lag');
    expect(settled.differences.map((d) => d.path)).toEqual(['balance.ledger']);
  });

  it('lets the last attempt decide otherwise', () => {
    expect(
      settle([attempt('lag', false), attempt('lag', false), attempt('mismatch', true, 'y')]),
    ).toMatchObject({
      outcome: 'mismatch',
      differences: [{ path: 'y' }],
    });
    expect(settle([attempt('lag', false), attempt('lag', false)]).outcome).toBe('lag');
    expect(() => settle([])).toThrow(RangeError);
  });
});
