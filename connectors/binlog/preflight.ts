import mysql from 'mysql2/promise';
import { SourceError } from '../../lib/errors.js';
import type { BinlogSourceConfig } from './config.js';

export interface ServerFacts {
  version: string;
  flavor: 'mariadb' | 'mysql';
  logBin: boolean;
  binlogFormat: string;
  binlogRowImage: string;
}

const FIX_HINT =
  "start the project's own MariaDB with the binlog on: `npm run legacy-db up` (port 3307), " +
  'or run your server with --log-bin --binlog-format=ROW --binlog-row-image=FULL --server-id=1';

/** Pure: turns a server's variables into the first reason it cannot serve CDC, or null. */
export function binlogProblem(facts: ServerFacts): SourceError | null {
  if (!facts.logBin) {
    return new SourceError(
      'BINLOG_OFF',
      `the legacy server (${facts.version}) writes no binlog (log_bin=OFF)`,
      {
        hint: `${FIX_HINT}; log_bin cannot be changed at run time`,
      },
    );
  }
  if (facts.binlogFormat.toUpperCase() !== 'ROW') {
    return new SourceError('BINLOG_FORMAT', `binlog_format is ${facts.binlogFormat}; CDC needs ROW`, {
      hint: "SET GLOBAL binlog_format='ROW' (and binlog_format=ROW in my.cnf), then reconnect the writers",
    });
  }
  if (facts.binlogRowImage.toUpperCase() !== 'FULL') {
    return new SourceError(
      'BINLOG_ROW_IMAGE',
      `binlog_row_image is ${facts.binlogRowImage}; CDC needs FULL`,
      {
        hint: "SET GLOBAL binlog_row_image='FULL' (and binlog_row_image=FULL in my.cnf)",
      },
    );
  }
  return null;
}

/** Connects and checks the server can feed the binlog reader; throws a SourceError saying how to fix it. */
export async function preflight(config: BinlogSourceConfig): Promise<ServerFacts> {
  let conn: mysql.Connection;
  try {
    conn = await mysql.createConnection({
      host: config.host,
      port: config.port,
      user: config.user,
      password: config.password,
      connectTimeout: 5000,
    });
  } catch (cause) {
    throw new SourceError(
      'SOURCE_UNREACHABLE',
      `cannot connect to the legacy database at ${config.host}:${config.port} as ${config.user}`,
      { cause, hint: FIX_HINT },
    );
  }
  try {
    const [rows] = await conn.query(
      'SELECT VERSION() AS version, @@log_bin AS logBin, @@binlog_format AS binlogFormat, @@binlog_row_image AS binlogRowImage',
    );
    const r = (rows as Array<Record<string, unknown>>)[0] ?? {};
    const version = String(r.version);
    const facts: ServerFacts = {
      version,
      flavor: config.flavor ?? (/mariadb/i.test(version) ? 'mariadb' : 'mysql'),
      logBin: Number(r.logBin) === 1,
      binlogFormat: String(r.binlogFormat),
      binlogRowImage: String(r.binlogRowImage),
    };
    const problem = binlogProblem(facts);
    if (problem) throw problem;
    return facts;
  } finally {
    await conn.end();
  }
}
