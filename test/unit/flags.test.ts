import { describe, expect, it } from 'vitest';
import {
  canaryBucket,
  decide,
  type FlagDocument,
  flagDocumentSchema,
  inCanary,
  patchFlags,
  resolveFlag,
  stableHash,
} from '../../shadow-api/flags.js';

const doc = (input: unknown): FlagDocument => flagDocumentSchema.parse(input);
const ids = Array.from({ length: 10_000 }, (_, i) => String(i + 1));

describe('decide', () => {
  it('maps each mode to a side and a compare choice', () => {
    const flags = (mode: string) => doc({ endpoints: { 'accounts.summary': { mode, percent: 50 } } });
    expect(decide(flags('legacy'), 'accounts.summary', '7')).toEqual({
      serveFrom: 'legacy',
      compare: false,
      mode: 'legacy',
    });
    expect(decide(flags('shadow'), 'accounts.summary', '7')).toEqual({
      serveFrom: 'legacy',
      compare: true,
      mode: 'shadow',
    });
    expect(decide(flags('new'), 'accounts.summary', '7')).toEqual({
      serveFrom: 'readModel',
      compare: false,
      mode: 'new',
    });
    const canary = decide(flags('canary'), 'accounts.summary', '7');
    expect(canary.compare).toBe(true);
    expect(canary.serveFrom).toBe(canaryBucket('7') < 50 ? 'readModel' : 'legacy');
  });

  it('compares the compareSample share of new requests in reverse, none without one', () => {
    const flags = doc({ endpoints: { accounts: { mode: 'new', compareSample: 0.25 } } });
    expect(decide(flags, 'accounts.summary', '7', 0.2)).toEqual({
      serveFrom: 'readModel',
      compare: true,
      mode: 'new',
    });
    expect(decide(flags, 'accounts.summary', '7', 0.25).compare).toBe(false);
    expect(decide(doc({ defaultMode: 'new' }), 'accounts.summary', '7', 0).compare).toBe(false);
    const patched = doc(patchFlags(flags, 'accounts.summary', { mode: 'new' }));
    expect(patched.endpoints['accounts.summary']).toEqual({ mode: 'new', compareSample: 0.25 });
  });

  it('switches with the document: the same request follows each new mode', () => {
    let flags = doc({ defaultMode: 'legacy' });
    expect(decide(flags, 'accounts.history', '3').serveFrom).toBe('legacy');
    flags = doc(patchFlags(flags, 'accounts.history', { mode: 'new' }));
    expect(decide(flags, 'accounts.history', '3')).toMatchObject({ serveFrom: 'readModel', mode: 'new' });
    flags = doc(patchFlags(flags, 'accounts.history', { mode: 'shadow' }));
    expect(decide(flags, 'accounts.history', '3')).toMatchObject({ serveFrom: 'legacy', compare: true });
  });

  it('resolves endpoint, then domain, then default', () => {
    const flags = doc({
      defaultMode: 'shadow',
      endpoints: { accounts: { mode: 'new' }, 'accounts.history': { mode: 'legacy' } },
    });
    expect(resolveFlag(flags, 'accounts.history')).toEqual({ mode: 'legacy' });
    expect(resolveFlag(flags, 'accounts.summary')).toEqual({ mode: 'new' });
    expect(resolveFlag(flags, 'loans.summary')).toEqual({ mode: 'shadow' });
    expect(decide(doc({ defaultMode: 'canary', defaultPercent: 100 }), 'x.y', '1').serveFrom).toBe(
      'readModel',
    );
  });
});

describe('canary', () => {
  it('is sticky: the same account always gets the same decision', () => {
    const flags = doc({ endpoints: { accounts: { mode: 'canary', percent: 30 } } });
    for (const id of ['1', '2', '42', '1234', '99999']) {
      const first = decide(flags, 'accounts.summary', id);
      for (let i = 0; i < 5; i++) expect(decide(flags, 'accounts.summary', id)).toEqual(first);
    }
    expect(stableHash('42')).toBe(stableHash('42'));
    expect(stableHash('42')).not.toBe(stableHash('24'));
  });

  it.each([1, 10, 25, 50, 75, 90])('puts ~%i%% of 10k sequential accounts in the slice (±2%%)', (percent) => {
    const share = (ids.filter((id) => inCanary(id, percent)).length / ids.length) * 100;
    expect(Math.abs(share - percent)).toBeLessThanOrEqual(2);
  });

  it('takes no account at 0% and every account at 100%', () => {
    expect(ids.some((id) => inCanary(id, 0))).toBe(false);
    expect(ids.every((id) => inCanary(id, 100))).toBe(true);
  });

  it('only moves accounts to the read model when the percentage rises', () => {
    const steps = [0, 5, 12.5, 25, 40, 60, 99, 100];
    for (let i = 1; i < steps.length; i++) {
      const before = ids.filter((id) => inCanary(id, steps[i - 1]!));
      const after = new Set(ids.filter((id) => inCanary(id, steps[i]!)));
      for (const id of before) expect(after.has(id)).toBe(true);
      expect(after.size).toBeGreaterThanOrEqual(before.length);
    }
  });
});

describe('flag document schema', () => {
  it('defaults to everything legacy', () => {
    expect(doc({})).toEqual({ defaultMode: 'legacy', endpoints: {} });
  });

  it('rejects a canary without percent, a percent out of range, bad keys and unknown fields', () => {
    const issues = (input: unknown) =>
      flagDocumentSchema.safeParse(input).error?.issues.map((i) => i.path.join('.'));
    expect(issues({ endpoints: { 'accounts.summary': { mode: 'canary' } } })).toEqual([
      'endpoints.accounts.summary.percent',
    ]);
    expect(issues({ endpoints: { 'accounts.summary': { mode: 'canary', percent: 101 } } })).toEqual([
      'endpoints.accounts.summary.percent',
    ]);
    expect(issues({ endpoints: { 'a.b.c': { mode: 'new' } } })).toEqual(['endpoints.a.b.c']);
    expect(issues({ defaultMode: 'sometimes' })).toEqual(['defaultMode']);
    expect(issues({ endpoint: {} })).toEqual(['']);
    expect(issues({ defaultMode: 'canary' })).toEqual(['defaultPercent']);
  });

  it('patches over the entry that governs the key', () => {
    const flags = doc({ endpoints: { accounts: { mode: 'canary', percent: 10 } } });
    expect(doc(patchFlags(flags, 'accounts.summary', { percent: 30 })).endpoints['accounts.summary']).toEqual(
      {
        mode: 'canary',
        percent: 30,
      },
    );
    expect(
      flagDocumentSchema.safeParse(patchFlags(doc({}), 'accounts.summary', { mode: 'canary' })).success,
    ).toBe(false);
  });
});
