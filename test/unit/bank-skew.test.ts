import { describe, expect, it } from 'vitest';
import { bankRows, resolveScale, skewSchema } from '../../examples/bank/generate.js';

interface Posting {
  id: number;
  account: number;
  after: number;
  postedAt: string;
}

const POSTING = /^\((\d+),(\d+),'(?:debit|credit)','[\d.]+','\w+','(-?[\d.]+)',.*,'([\d\- :.]+)'\)$/;

function skewedTiny(seed: number) {
  const postings: Posting[] = [];
  const statuses: string[] = [];
  const shape = {
    history: 'skewed' as const,
    skew: skewSchema.parse({ heavyPostings: { min: 10_000, max: 20_000 } }),
  };
  for (const _ of bankRows(
    seed,
    resolveScale('tiny'),
    {
      row(table, tuple) {
        if (table === 'transactions') {
          const m = POSTING.exec(tuple);
          if (m === null) throw new Error(`unparsed posting ${tuple}`);
          postings.push({
            id: Number(m[1]),
            account: Number(m[2]),
            after: Number(m[3]),
            postedAt: m[4] as string,
          });
        } else if (table === 'payments' || table === 'transfers') {
          statuses.push(
            `${table}:${/'(authorized|captured|declined|pending|completed|failed)'/.exec(tuple)?.[1]}`,
          );
        }
      },
    },
    shape,
  )) {
    // drain
  }
  return { postings, statuses };
}

describe('skewed bank histories (pure model)', () => {
  const { postings, statuses } = skewedTiny(7);
  const byAccount = new Map<number, Posting[]>();
  for (const p of postings) byAccount.set(p.account, [...(byAccount.get(p.account) ?? []), p]);
  const sizes = [...byAccount.values()].map((list) => list.length).sort((a, b) => a - b);

  it('most accounts stay small, one per hundred carries 10k+ postings, a veteran posts daily for years', () => {
    const median = sizes[Math.floor(sizes.length / 2)] as number;
    expect(median).toBeLessThan(100);
    const heavy = sizes.filter((n) => n >= 8_000);
    expect(heavy.length).toBe(1);
    const veteran = [...byAccount.values()].find((list) => list.length === heavy[0]) as Posting[];
    const daysBefore = new Set(
      veteran.filter((p) => p.postedAt < '2023-01-01').map((p) => p.postedAt.slice(0, 10)),
    );
    expect(daysBefore.size).toBeGreaterThan(5 * 365 - 5);
  });

  it('keeps the ledger invariants: ids grow with posted_at per account, no balance below zero', () => {
    for (const list of byAccount.values()) {
      for (let i = 1; i < list.length; i++) {
        const [a, b] = [list[i - 1] as Posting, list[i] as Posting];
        expect(b.id > a.id && b.postedAt >= a.postedAt).toBe(true);
      }
    }
    expect(postings.every((p) => p.after >= 0)).toBe(true);
  });

  it('leaves card authorisations and transfers pending at the end of the activity year', () => {
    expect(statuses.filter((s) => s === 'payments:authorized').length).toBeGreaterThan(0);
    expect(statuses.filter((s) => s === 'transfers:pending').length).toBeGreaterThan(0);
  });
});
