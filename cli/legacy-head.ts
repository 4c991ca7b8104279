import mysql from 'mysql2/promise';
import type { MysqlConnOptions } from '../examples/bank/db.js';

export interface BinlogPosition {
  file: string;
  pos: number;
}

/** Binlog file names share a prefix and a zero-padded sequence, so they order as strings. */
export function positionAtLeast(a: BinlogPosition, b: BinlogPosition): boolean {
  return a.file > b.file || (a.file === b.file && a.pos >= b.pos);
}

/** Where the legacy primary's binlog ends now. */
export async function legacyHead(conn: MysqlConnOptions): Promise<BinlogPosition> {
  const c = await mysql.createConnection({
    host: conn.host,
    port: conn.port,
    user: conn.user,
    password: conn.password,
  });
  try {
    const [rows] = await c.query('SHOW MASTER STATUS');
    const r = (rows as Array<{ File: string; Position: number }>)[0];
    return { file: r?.File ?? '', pos: Number(r?.Position ?? 0) };
  } finally {
    await c.end();
  }
}
