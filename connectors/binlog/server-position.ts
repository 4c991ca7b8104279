import type mysql from 'mysql2/promise';
import { SourceError } from '../../lib/errors.js';
import type { BinlogPosition } from './config.js';

type Queryable = Pick<mysql.Connection, 'query'>;

function rowsOf(result: unknown): Array<Record<string, unknown>> {
  return Array.isArray(result) ? (result as Array<Record<string, unknown>>) : [];
}

/** Binlog file names share a prefix and a zero-padded sequence, so they order as strings. */
export function positionAtLeast(
  a: Pick<BinlogPosition, 'file' | 'pos'>,
  b: Pick<BinlogPosition, 'file' | 'pos'>,
): boolean {
  return a.file > b.file || (a.file === b.file && a.pos >= b.pos);
}

/**
 * Where the server's binlog ends now, as file and offset only: cheap enough for every freshness
 * check, unlike the GTID at that point (MariaDB's BINLOG_GTID_POS reads the binlog file up to
 * it, half a second per call on a 250 MB file). MySQL 8.4 renamed SHOW MASTER STATUS.
 */
export async function binlogEnd(
  conn: Queryable,
  flavor: 'mariadb' | 'mysql',
): Promise<{ file: string; pos: number; executedGtidSet: string | null }> {
  let rows: Array<Record<string, unknown>>;
  try {
    rows = rowsOf((await conn.query('SHOW MASTER STATUS'))[0]);
  } catch (cause) {
    if (flavor !== 'mysql') throw cause;
    rows = rowsOf((await conn.query('SHOW BINARY LOG STATUS'))[0]);
  }
  const r = rows[0];
  if (!r) {
    throw new SourceError('BINLOG_OFF', 'the server reports no binlog position (is log_bin on?)', {
      hint: 'start the server with --log-bin --binlog-format=ROW --binlog-row-image=FULL --server-id=1',
    });
  }
  const executed = r.Executed_Gtid_Set;
  return {
    file: String(r.File),
    pos: Number(r.Position),
    executedGtidSet: typeof executed === 'string' && executed ? executed : null,
  };
}

/** Where the server's binlog ends now, with the GTID position there. */
export async function binlogHead(conn: Queryable, flavor: 'mariadb' | 'mysql'): Promise<BinlogPosition> {
  const end = await binlogEnd(conn, flavor);
  const gtid = flavor === 'mariadb' ? await gtidAt(conn, end.file, end.pos) : null;
  return { file: end.file, pos: end.pos, gtid: gtid ?? end.executedGtidSet };
}

/**
 * MariaDB: the GTID position at a binlog file/offset; '' before any GTID was logged, null when
 * the server cannot say (the file is gone).
 */
export async function gtidAt(conn: Queryable, file: string, pos: number): Promise<string | null> {
  const [rows] = await conn.query('SELECT BINLOG_GTID_POS(?, ?) AS gtid', [file, pos]);
  const gtid = rowsOf(rows)[0]?.gtid;
  return typeof gtid === 'string' ? gtid : null;
}

/** The binlog files the server still holds, oldest first. */
export async function binlogFiles(conn: Queryable): Promise<string[]> {
  const [rows] = await conn.query('SHOW BINARY LOGS');
  return rowsOf(rows).map((r) => String(r.Log_name));
}
