import type mysql from 'mysql2/promise';
import { type ColumnInfo, columnFromType } from './normalize.js';

export interface TableInfo {
  name: string;
  columns: ColumnInfo[];
  /** Primary-key columns in key order; empty for a table without one. */
  primaryKey: string[];
  /** information_schema's estimate, for progress and ETA only. */
  estimatedRows: number;
}

/** Column and key metadata of the captured base tables, in name order. */
export async function readTableInfo(
  conn: Pick<mysql.Connection, 'query'>,
  database: string,
  include: readonly string[],
): Promise<Map<string, TableInfo>> {
  const [tables] = await conn.query(
    `SELECT TABLE_NAME AS name, TABLE_ROWS AS estimatedRows FROM information_schema.TABLES
      WHERE TABLE_SCHEMA = ? AND TABLE_TYPE = 'BASE TABLE' ORDER BY TABLE_NAME`,
    [database],
  );
  const [columns] = await conn.query(
    `SELECT TABLE_NAME AS tableName, COLUMN_NAME AS name, COLUMN_TYPE AS columnType
       FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? ORDER BY TABLE_NAME, ORDINAL_POSITION`,
    [database],
  );
  const [keys] = await conn.query(
    `SELECT TABLE_NAME AS tableName, COLUMN_NAME AS name FROM information_schema.KEY_COLUMN_USAGE
      WHERE TABLE_SCHEMA = ? AND CONSTRAINT_NAME = 'PRIMARY' ORDER BY TABLE_NAME, ORDINAL_POSITION`,
    [database],
  );
  const out = new Map<string, TableInfo>();
  for (const t of tables as Array<{ name: string; estimatedRows: number | string | null }>) {
    if (include.length > 0 && !include.includes(t.name)) continue;
    out.set(t.name, {
      name: t.name,
      columns: [],
      primaryKey: [],
      estimatedRows: Number(t.estimatedRows ?? 0),
    });
  }
  for (const c of columns as Array<{ tableName: string; name: string; columnType: string }>)
    out.get(c.tableName)?.columns.push(columnFromType(c.name, c.columnType));
  for (const k of keys as Array<{ tableName: string; name: string }>)
    out.get(k.tableName)?.primaryKey.push(k.name);
  return out;
}
