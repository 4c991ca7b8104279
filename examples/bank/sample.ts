import { AdapterError, type SampleHooks } from '../../index.js';
import { guardExisting, markCreated } from '../sample-marker.js';
import { createBankDatabase, openPool, parseMysqlUrl } from './db.js';
import { generateBank, SCALE_PRESETS, type ScaleName } from './generate.js';
import { createPgBankDatabase, loadPgBank, pgConnSchema, pgPool } from './postgres/db.js';
import { runPgWorkload } from './postgres/workload.js';
import { runWorkload } from './workload.js';

/**
 * The bank's sample data for `demo`: the deterministic generator and the write workload, on
 * MariaDB/MySQL or PostgreSQL whichever the URL names.
 */

const isPostgres = (url: string) => /^postgres(ql)?:/.test(url);

function pgTarget(url: string) {
  const u = new URL(url);
  const database = decodeURIComponent(u.pathname.replace(/^\//, ''));
  if (database === '') throw new AdapterError('BANK_URL_INVALID', `no database in ${u.protocol}//${u.host}`);
  const conn = pgConnSchema.parse({
    host: u.hostname,
    port: u.port === '' ? 5432 : Number(u.port),
    user: decodeURIComponent(u.username) || undefined,
    password: decodeURIComponent(u.password) || undefined,
  });
  return { conn, database };
}

function mysqlTarget(url: string) {
  const legacy = parseMysqlUrl(url);
  if (legacy.database === undefined)
    throw new AdapterError('BANK_URL_INVALID', 'no database in the legacy URL');
  return { legacy, database: legacy.database };
}

const scaleOf = (name: string): ScaleName => {
  if (!(name in SCALE_PRESETS)) throw new AdapterError('BANK_SCALE_UNKNOWN', `unknown bank scale ${name}`);
  return name as ScaleName;
};

export const bankSample: SampleHooks = {
  scales: ['small', 'tiny', 'bench'],
  url: 'mysql://cqrs:cqrs@127.0.0.1:3307/legacy_bank',

  async create({ url, scale, seed, force, progress }) {
    const chosen = scaleOf(scale);
    await guardExisting(url, 'bank', force);
    if (isPostgres(url)) {
      const { conn, database } = pgTarget(url);
      await createPgBankDatabase(conn, database, { dropExisting: true });
      await markCreated(url, 'bank');
      const counts = await loadPgBank(conn, database, { seed, scale: chosen });
      return { rows: Object.values(counts).reduce((a, b) => a + b, 0) };
    }
    const { legacy, database } = mysqlTarget(url);
    await createBankDatabase(legacy, database, { dropExisting: true });
    await markCreated(url, 'bank');
    const pool = openPool(legacy, database, { connectionLimit: 12 });
    let last = 0;
    try {
      const generated = await generateBank(pool, { seed, scale: chosen }, (p) => {
        if (Date.now() - last < 2000) return;
        last = Date.now();
        progress(`${p.table}: ${p.rows}/${p.total} rows, ${p.rowsPerSec} rows/s, ETA ${p.etaSec ?? '?'} s`);
      });
      return { rows: generated.rows };
    } finally {
      await pool.end();
    }
  },

  async load({ url, ratePerSec, durationMs, seed, signal }) {
    if (isPostgres(url)) {
      const { conn, database } = pgTarget(url);
      // The PostgreSQL workload runs a count of operations: one second's worth at a time.
      const deadline = Date.now() + durationMs;
      const total = { ops: 0, rowChanges: 0, errors: 0 };
      for (let round = 0; Date.now() < deadline && !signal?.aborted; round++) {
        const started = Date.now();
        const stats = await runPgWorkload(conn, database, {
          seed: `${seed}-${round}`,
          ops: Math.max(1, ratePerSec),
        });
        total.ops += stats.ops;
        total.rowChanges += stats.rowChanges;
        const rest = 1000 - (Date.now() - started);
        if (rest > 0) await new Promise((r) => setTimeout(r, rest));
      }
      return total;
    }
    const { legacy, database } = mysqlTarget(url);
    const pool = openPool(legacy, database, { connectionLimit: 8 });
    try {
      const stats = await runWorkload(pool, { seed, ratePerSec, durationMs }, signal);
      return { ops: stats.ops, rowChanges: stats.rowChanges, errors: stats.errors };
    } finally {
      await pool.end();
    }
  },

  async readPaths({ url, count, seed }) {
    const ids: number[] = [];
    if (isPostgres(url)) {
      const { conn, database } = pgTarget(url);
      const pool = pgPool(conn, database, 1);
      try {
        const found = await pool.query<{ id: string }>('SELECT id FROM accounts ORDER BY id');
        ids.push(...found.rows.map((r) => Number(r.id)));
      } finally {
        await pool.end();
      }
    } else {
      const { legacy, database } = mysqlTarget(url);
      const pool = openPool(legacy, database, { connectionLimit: 1 });
      try {
        const [found] = await pool.query('SELECT id FROM accounts ORDER BY id');
        ids.push(...(found as Array<{ id: number }>).map((r) => r.id));
      } finally {
        await pool.end();
      }
    }
    if (ids.length === 0) return [];
    return Array.from({ length: count }, (_, i) => {
      const id = ids[(i * 7919 + seed) % ids.length] as number;
      return i % 2 === 0 ? `/accounts/${id}/summary` : `/accounts/${id}/transactions?limit=20`;
    });
  },
};
