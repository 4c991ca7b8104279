import { type ChildProcess, spawn } from 'node:child_process';
import mysql from 'mysql2/promise';
import { waitFor } from './debezium-bank.js';

/** Where a live run answers: the reads, and the admin listener. */
export interface RunUrls {
  api: string;
  admin: string;
}

/** A real `cqrs-migrate run` process (from the source tree) with `env`, once its shadow API serves. */
export async function startRun(env: NodeJS.ProcessEnv): Promise<{ child: ChildProcess } & RunUrls> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'cli/main.ts', 'run'], { env });
  let out = '';
  const collect = (d: Buffer) => {
    out += d.toString();
  };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  const serving = /shadow API on (http:\/\/\S+) — admin on (http:\/\/\S+)/;
  await waitFor('run to serve', () => serving.test(out) || child.exitCode !== null, 300_000);
  const [, api, admin] = serving.exec(out) ?? [];
  if (api === undefined || admin === undefined)
    throw new Error(`run exited with ${child.exitCode}: ${out.slice(-2000)}`);
  return { child, api, admin };
}

/**
 * A balance changed on the legacy bank reaches the live run's summary read model: the endpoint
 * is switched to `new` so the answer comes from the read model.
 */
export async function expectBalanceInReadModel(
  { api, admin }: RunUrls,
  legacy: mysql.ConnectionOptions,
  accountId: number,
  available: string,
): Promise<void> {
  await fetch(`${admin}/admin/flags/accounts.summary`, {
    method: 'PATCH',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ mode: 'new' }),
  });
  const c = await mysql.createConnection(legacy);
  try {
    await c.query('UPDATE balances SET available = ? WHERE account_id = ?', [available, accountId]);
  } finally {
    await c.end();
  }
  await waitFor(
    'the change in the read model',
    async () => {
      const res = await fetch(`${api}/accounts/${accountId}/summary`);
      return (
        res.ok &&
        res.headers.get('x-served-by') === 'read-model' &&
        ((await res.json()) as { balance: { available: string } }).balance.available === available
      );
    },
    30_000,
  );
}
