import mysql, { type RowDataPacket } from 'mysql2/promise';
import { AdapterError } from '../../lib/errors.js';
import {
  assembleTables,
  type Catalog,
  type CatalogColumn,
  type ColumnKind,
  type KeyColumnRow,
  type ReadCatalogOptions,
  selectTables,
} from './catalog.js';
import type { DatabaseUrl } from './url.js';

/** information_schema may hand back text columns as buffers (binary collations); read them as text. */
const text = (value: unknown): string =>
  Buffer.isBuffer(value)
    ? value.toString('utf8')
    : value === null || value === undefined
      ? ''
      : String(value);
const num = (value: unknown): number | null =>
  value === null || value === undefined ? null : Number(Buffer.isBuffer(value) ? value.toString() : value);

const INT_TYPES = new Set(['smallint', 'mediumint', 'int', 'integer', 'year']);
const STRING_TYPES = new Set(['char', 'varchar', 'tinytext', 'text', 'mediumtext', 'longtext', 'set']);
const BYTES_TYPES = new Set(['binary', 'varbinary', 'tinyblob', 'blob', 'mediumblob', 'longblob']);

/**
 * The kind of value the binlog reader delivers for a column (connectors/binlog/normalize.ts):
 * tinyint(1) is MySQL's BOOLEAN, delivered as 0/1; BIT comes as bytes or a number depending on
 * the path, so it is left as `other`.
 */
export function mysqlColumnKind(dataType: string, columnType: string): ColumnKind {
  const t = dataType.toLowerCase();
  if (t === 'tinyint') return /^tinyint\(1\)/i.test(columnType) ? 'boolean' : 'int';
  if (INT_TYPES.has(t)) return 'int';
  if (t === 'bigint') return 'bigint';
  if (t === 'decimal' || t === 'numeric') return 'decimal';
  if (t === 'float' || t === 'double' || t === 'real') return 'float';
  if (t === 'date') return 'date';
  if (t === 'datetime' || t === 'timestamp') return 'datetime';
  if (t === 'time') return 'time';
  if (t === 'enum') return 'enum';
  if (t === 'json') return 'json';
  if (STRING_TYPES.has(t)) return 'string';
  if (BYTES_TYPES.has(t)) return 'bytes';
  return 'other';
}

/** Labels of "enum('a','it''s')" in order; quotes inside a label are doubled in COLUMN_TYPE. */
export function mysqlEnumValues(columnType: string): string[] {
  const body = /^enum\((.*)\)$/is.exec(columnType.trim())?.[1] ?? '';
  return [...body.matchAll(/'((?:[^']|'')*)'/g)].map((m) => (m[1] ?? '').replace(/''/g, "'"));
}

/**
 * Whether EXTRA names a generated column: MariaDB and MySQL write "VIRTUAL GENERATED" or
 * "STORED GENERATED" (older MariaDB "PERSISTENT GENERATED"); MySQL 8's "DEFAULT_GENERATED" is a
 * column with an expression default, an ordinary column.
 */
export function mysqlGenerated(extra: string): 'stored' | 'virtual' | undefined {
  const m = /\b(VIRTUAL|STORED|PERSISTENT) GENERATED\b/i.exec(extra);
  if (m === null) return undefined;
  return m[1]?.toUpperCase() === 'VIRTUAL' ? 'virtual' : 'stored';
}

/** Reads base tables, columns and primary/foreign keys of one MariaDB/MySQL database. */
export async function readMysqlCatalog(url: DatabaseUrl, options: ReadCatalogOptions = {}): Promise<Catalog> {
  let conn: mysql.Connection;
  try {
    conn = await mysql.createConnection({
      host: url.host,
      port: url.port,
      user: url.user,
      password: url.password,
      database: url.database,
    });
  } catch (cause) {
    throw new AdapterError(
      'CATALOG_UNREACHABLE',
      `cannot read the catalog of ${url.database} at ${url.host}:${url.port}: ${(cause as Error).message}`,
      { cause, hint: 'check the URL (host, port, user, password, database) and that the server is running' },
    );
  }
  try {
    const db = url.database;
    const [tableRows] = await conn.query<RowDataPacket[]>(
      `SELECT TABLE_NAME AS name FROM information_schema.TABLES
        WHERE TABLE_SCHEMA = ? AND TABLE_TYPE = 'BASE TABLE' ORDER BY TABLE_NAME`,
      [db],
    );
    const names = selectTables(
      tableRows.map((r) => text(r.name)),
      options.tables,
    );
    const wanted = new Set(names);

    const [columnRows] = await conn.query<RowDataPacket[]>(
      `SELECT TABLE_NAME AS table_name, COLUMN_NAME AS column_name, DATA_TYPE AS data_type,
              COLUMN_TYPE AS column_type, IS_NULLABLE AS is_nullable, NUMERIC_PRECISION AS num_precision,
              NUMERIC_SCALE AS num_scale, DATETIME_PRECISION AS dt_precision, EXTRA AS extra,
              GENERATION_EXPRESSION AS generation_expression, COLLATION_NAME AS collation_name
         FROM information_schema.COLUMNS
        WHERE TABLE_SCHEMA = ? ORDER BY TABLE_NAME, ORDINAL_POSITION`,
      [db],
    );
    const columns = new Map<string, CatalogColumn[]>();
    for (const r of columnRows) {
      const table = text(r.table_name);
      if (!wanted.has(table)) continue;
      const columnType = text(r.column_type);
      const kind = mysqlColumnKind(text(r.data_type), columnType);
      const column: CatalogColumn = {
        name: text(r.column_name),
        type: kind,
        nullable: text(r.is_nullable) === 'YES',
        sqlType: columnType,
      };
      if (r.collation_name !== null) column.collation = text(r.collation_name);
      if (kind === 'enum') column.enumValues = mysqlEnumValues(columnType);
      if (kind === 'decimal') {
        column.precision = num(r.num_precision) ?? undefined;
        column.scale = num(r.num_scale) ?? 0;
      }
      if (kind === 'datetime' || kind === 'time') column.precision = num(r.dt_precision) ?? 0;
      const generated = mysqlGenerated(text(r.extra));
      if (generated !== undefined) {
        column.generated = generated;
        const expression = text(r.generation_expression);
        if (expression !== '') column.generationExpression = expression;
      }
      const list = columns.get(table) ?? [];
      list.push(column);
      columns.set(table, list);
    }

    // Foreign keys to another schema cannot be captured with this database: left out.
    const [keyRows] = await conn.query<RowDataPacket[]>(
      `SELECT k.TABLE_NAME AS table_name, k.CONSTRAINT_NAME AS constraint_name, c.CONSTRAINT_TYPE AS kind,
              k.ORDINAL_POSITION AS position, k.COLUMN_NAME AS column_name,
              k.REFERENCED_TABLE_NAME AS ref_table, k.REFERENCED_COLUMN_NAME AS ref_column,
              rc.DELETE_RULE AS on_delete, rc.UPDATE_RULE AS on_update
         FROM information_schema.KEY_COLUMN_USAGE k
         JOIN information_schema.TABLE_CONSTRAINTS c
           ON c.CONSTRAINT_SCHEMA = k.CONSTRAINT_SCHEMA AND c.TABLE_NAME = k.TABLE_NAME
          AND c.CONSTRAINT_NAME = k.CONSTRAINT_NAME
         LEFT JOIN information_schema.REFERENTIAL_CONSTRAINTS rc
           ON rc.CONSTRAINT_SCHEMA = k.CONSTRAINT_SCHEMA AND rc.TABLE_NAME = k.TABLE_NAME
          AND rc.CONSTRAINT_NAME = k.CONSTRAINT_NAME AND c.CONSTRAINT_TYPE = 'FOREIGN KEY'
        WHERE k.TABLE_SCHEMA = ? AND c.CONSTRAINT_TYPE IN ('PRIMARY KEY', 'UNIQUE', 'FOREIGN KEY')
          AND (c.CONSTRAINT_TYPE <> 'FOREIGN KEY' OR k.REFERENCED_TABLE_SCHEMA = k.TABLE_SCHEMA)
        ORDER BY k.TABLE_NAME, k.CONSTRAINT_NAME, k.ORDINAL_POSITION`,
      [db],
    );
    const keys: KeyColumnRow[] = keyRows.map((r) => ({
      table: text(r.table_name),
      constraint: text(r.constraint_name),
      kind: text(r.kind) === 'PRIMARY KEY' ? 'primary' : text(r.kind) === 'UNIQUE' ? 'unique' : 'foreign',
      position: num(r.position) ?? 0,
      column: text(r.column_name),
      refTable: r.ref_table === null ? null : text(r.ref_table),
      refColumn: r.ref_column === null ? null : text(r.ref_column),
      onDelete: r.on_delete === null ? null : text(r.on_delete),
      onUpdate: r.on_update === null ? null : text(r.on_update),
    }));
    return { dialect: 'mysql', database: db, tables: assembleTables(names, columns, keys) };
  } finally {
    await conn.end().catch(() => undefined);
  }
}
