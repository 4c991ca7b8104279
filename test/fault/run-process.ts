import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { diffJson } from '../../compare/diff.js';
import type { AccountQueries, HistoryPage } from '../../examples/bank/contract.js';

/**
 * What the fault suite and the big-transaction test share: a real `cqrs-migrate run` child
 * process configured by environment, its memory figures from /proc, and the bank's per-account
 * comparison of read models with legacy.
 */

export interface RunningProcess {
  child: ChildProcess;
  output: () => string;
  /** The shadow API's URL once the process printed it (the pipeline has started). */
  url: () => string | null;
}

export function runProcess(env: NodeJS.ProcessEnv): RunningProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', 'cli/main.ts', 'run'], { env });
  let out = '';
  child.stdout?.on('data', (d: Buffer) => {
    out += d.toString();
  });
  child.stderr?.on('data', (d: Buffer) => {
    out += d.toString();
  });
  return {
    child,
    output: () => out,
    url: () => /shadow API on (http:\/\/\S+)/.exec(out)?.[1] ?? null,
  };
}

function statusKb(pid: number | undefined, field: 'VmHWM' | 'VmRSS'): number {
  if (pid === undefined) return 0;
  try {
    const kb = new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
    return kb === undefined ? 0 : Number(kb) * 1024;
  } catch {
    return 0;
  }
}

/** Peak resident memory of a live process so far (VmHWM), bytes; 0 once it is gone. */
export const peakRss = (pid: number | undefined) => statusKb(pid, 'VmHWM');
/** Resident memory of a live process now (VmRSS), bytes. */
export const currentRss = (pid: number | undefined) => statusKb(pid, 'VmRSS');

export const exited = (child: ChildProcess) =>
  child.exitCode !== null || child.signalCode !== null
    ? Promise.resolve()
    : new Promise<void>((resolve) => child.once('exit', () => resolve()));

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export const mb = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(0)} MB`;

async function allHistory(q: AccountQueries, accountId: number): Promise<HistoryPage['items']> {
  const items: HistoryPage['items'] = [];
  let cursor: string | undefined;
  for (;;) {
    const page = await q.transactionHistory({ accountId, limit: 100, ...(cursor ? { cursor } : {}) });
    items.push(...page.items);
    if (!page.nextCursor) return items;
    cursor = page.nextCursor;
  }
}

export type AccountDrift = Array<{ accountId: number; what: string; diff: unknown }>;

/** Accounts whose summary or full history differs between legacy and the read models now. */
export async function accountDrift(
  legacy: AccountQueries,
  readModels: AccountQueries,
  accountIds: readonly number[],
  options: { summary: boolean } = { summary: true },
): Promise<AccountDrift> {
  const drift: AccountDrift = [];
  for (const accountId of accountIds) {
    if (options.summary) {
      const s = diffJson(await legacy.accountSummary(accountId), await readModels.accountSummary(accountId));
      if (s.length > 0) drift.push({ accountId, what: 'summary', diff: s.slice(0, 3) });
    }
    const h = diffJson(await allHistory(legacy, accountId), await allHistory(readModels, accountId));
    if (h.length > 0) drift.push({ accountId, what: 'history', diff: h.slice(0, 3) });
  }
  return drift;
}
