import mysql from 'mysql2/promise';
import { SourceError } from '../../lib/errors.js';
import {
  type BinlogPosition,
  type BinlogSourceConfigInput,
  binlogSourceConfigSchema,
  connectionOptions,
} from './config.js';
import { binlogHead } from './server-position.js';

/** The server variables the binlog reader depends on. */
export interface ServerSettings {
  version: string;
  flavor: 'mariadb' | 'mysql';
  logBin: boolean;
  binlogFormat: string;
  binlogRowImage: string;
  /** Global privileges of the connected account (information_schema.USER_PRIVILEGES). */
  privileges: readonly string[];
  databaseExists: boolean;
  database: string;
  user: string;
}

export interface ServerFacts extends ServerSettings {
  /** The server's own server_id (MySQL events carry no originating id the reader can see). */
  serverId: number;
  /** Where the binlog ends now, with the server's GTID position. */
  head: BinlogPosition;
}

const START_HINT =
  "start the project's own MariaDB with the binlog on: `npm run legacy-db up` (127.0.0.1:3307), or set " +
  'CQRS_LEGACY_URL to a server running with log_bin=ON, binlog_format=ROW, binlog_row_image=FULL';

export function detectFlavor(version: string): 'mariadb' | 'mysql' {
  return /mariadb/i.test(version) ? 'mariadb' : 'mysql';
}

/** Privileges the account lacks for CDC: reading the binlog, its position and (MySQL) the snapshot lock. */
export function missingPrivileges(flavor: 'mariadb' | 'mysql', granted: readonly string[]): string[] {
  const has = new Set(granted.map((p) => p.toUpperCase()));
  const missing: string[] = [];
  if (!has.has('REPLICATION SLAVE')) missing.push('REPLICATION SLAVE');
  // MariaDB 10.5 split REPLICATION CLIENT into BINLOG MONITOR (and kept the old name as an alias).
  if (!['REPLICATION CLIENT', 'BINLOG MONITOR', 'SUPER'].some((p) => has.has(p)))
    missing.push(flavor === 'mariadb' ? 'BINLOG MONITOR' : 'REPLICATION CLIENT');
  // MySQL has no snapshot binlog position, so the snapshot briefly takes FLUSH TABLES WITH READ LOCK.
  if (flavor === 'mysql' && !has.has('RELOAD')) missing.push('RELOAD');
  return missing;
}

/** Pure: the first reason the server cannot serve CDC, with the fix in `hint`, or null. */
export function binlogProblem(s: ServerSettings): SourceError | null {
  if (!s.logBin) {
    return new SourceError('BINLOG_OFF', `the legacy server (${s.version}) writes no binlog (log_bin=OFF)`, {
      hint:
        'log_bin cannot be switched on at run time: add `log_bin=binlog`, `server_id=1`, `binlog_format=ROW` ' +
        `and \`binlog_row_image=FULL\` under [mysqld] in my.cnf and restart the server; or ${START_HINT}`,
    });
  }
  if (s.binlogFormat.toUpperCase() !== 'ROW') {
    return new SourceError('BINLOG_FORMAT', `binlog_format is ${s.binlogFormat}; CDC needs ROW`, {
      hint:
        "run SET GLOBAL binlog_format='ROW'; and add binlog_format=ROW under [mysqld] in my.cnf " +
        '(sessions already open keep the old format until they reconnect)',
    });
  }
  if (s.binlogRowImage.toUpperCase() !== 'FULL') {
    return new SourceError('BINLOG_ROW_IMAGE', `binlog_row_image is ${s.binlogRowImage}; CDC needs FULL`, {
      hint: "run SET GLOBAL binlog_row_image='FULL'; and add binlog_row_image=FULL under [mysqld] in my.cnf",
    });
  }
  const missing = missingPrivileges(s.flavor, s.privileges);
  if (missing.length > 0) {
    return new SourceError(
      'MISSING_PRIVILEGES',
      `${s.user} lacks ${missing.join(', ')} needed to read the binlog`,
      {
        hint: `GRANT ${[...missing, 'SELECT'].join(', ')} ON *.* TO ${s.user};`,
      },
    );
  }
  if (!s.databaseExists) {
    return new SourceError(
      'DATABASE_MISSING',
      `database '${s.database}' does not exist on the legacy server`,
      {
        hint: 'create it, or fix the database name in CQRS_LEGACY_URL',
      },
    );
  }
  return null;
}

function accountOf(currentUser: string): string {
  const at = currentUser.lastIndexOf('@');
  return at < 0 ? `'${currentUser}'` : `'${currentUser.slice(0, at)}'@'${currentUser.slice(at + 1)}'`;
}

/**
 * Connects and checks the server can feed the binlog reader; throws a SourceError saying how to
 * fix it (SOURCE_UNREACHABLE, SOURCE_ACCESS_DENIED, BINLOG_*, MISSING_PRIVILEGES, DATABASE_MISSING).
 */
export async function preflight(input: BinlogSourceConfigInput): Promise<ServerFacts> {
  const config = binlogSourceConfigSchema.parse(input);
  let conn: mysql.Connection;
  try {
    conn = await mysql.createConnection({ ...connectionOptions(config), connectTimeout: 5000 });
  } catch (cause) {
    const denied = (cause as { code?: unknown }).code === 'ER_ACCESS_DENIED_ERROR';
    throw denied
      ? new SourceError(
          'SOURCE_ACCESS_DENIED',
          `the legacy database refused ${config.user}: wrong password?`,
          {
            cause,
            hint: 'check the user and password in CQRS_LEGACY_URL',
          },
        )
      : new SourceError(
          'SOURCE_UNREACHABLE',
          `cannot connect to the legacy database at ${config.host}:${config.port}`,
          { cause, hint: START_HINT },
        );
  }
  try {
    const [vars] = await conn.query(
      `SELECT VERSION() AS version, @@server_id AS serverId, @@log_bin AS logBin,
              @@binlog_format AS binlogFormat, @@binlog_row_image AS binlogRowImage, CURRENT_USER() AS user`,
    );
    const v = (vars as Array<Record<string, unknown>>)[0] ?? {};
    const user = accountOf(String(v.user));
    const [grants] = await conn.query(
      'SELECT PRIVILEGE_TYPE AS privilege FROM information_schema.USER_PRIVILEGES WHERE GRANTEE = ?',
      [user],
    );
    const [schemata] = await conn.query(
      'SELECT SCHEMA_NAME AS name FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?',
      [config.database],
    );
    const version = String(v.version);
    const settings: ServerSettings = {
      version,
      flavor: config.flavor ?? detectFlavor(version),
      logBin: Number(v.logBin) === 1,
      binlogFormat: String(v.binlogFormat),
      binlogRowImage: String(v.binlogRowImage),
      privileges: (grants as Array<{ privilege: string }>).map((g) => g.privilege),
      databaseExists: (schemata as unknown[]).length > 0,
      database: config.database,
      user,
    };
    const problem = binlogProblem(settings);
    if (problem) throw problem;
    return { ...settings, serverId: Number(v.serverId), head: await binlogHead(conn, settings.flavor) };
  } finally {
    await conn.end();
  }
}
