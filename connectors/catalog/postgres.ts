import pg from 'pg';
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

const KINDS: Readonly<Record<string, ColumnKind>> = {
  int2: 'int',
  int4: 'int',
  oid: 'int',
  int8: 'bigint',
  numeric: 'decimal',
  float4: 'float',
  float8: 'float',
  bool: 'boolean',
  date: 'date',
  timestamp: 'datetime',
  timestamptz: 'datetime',
  time: 'time',
  timetz: 'time',
  text: 'string',
  varchar: 'string',
  bpchar: 'string',
  char: 'string',
  name: 'string',
  uuid: 'string',
  citext: 'string',
  inet: 'string',
  cidr: 'string',
  macaddr: 'string',
  interval: 'string',
  money: 'string',
  xml: 'string',
  json: 'json',
  jsonb: 'json',
  bytea: 'bytes',
};

/**
 * The kind of value the pgoutput reader delivers for a column (connectors/pgoutput/values.ts).
 * A domain column comes with the domain's own type OID, which that reader passes on as text
 * whatever the base type, so domains (like arrays and ranges) are `other`.
 */
export function pgColumnKind(typname: string, typtype: string): ColumnKind {
  if (typtype === 'e') return 'enum';
  if (typtype !== 'b') return 'other';
  return KINDS[typname] ?? 'other';
}

interface ColumnRow {
  table_name: string;
  column_name: string;
  typname: string;
  typtype: string;
  type_oid: number;
  typmod: number;
  not_null: boolean;
  sql_type: string;
  /** pg_attribute.attgenerated: 's' for GENERATED ALWAYS AS (...) STORED, 'v' (PostgreSQL 18) virtual, '' otherwise. */
  generated: string;
  generation_expression: string | null;
}

interface KeyRow {
  table_name: string;
  constraint_name: string;
  contype: string;
  position: number;
  column_name: string;
  ref_table: string | null;
  ref_column: string | null;
  on_delete: string | null;
  on_update: string | null;
}

/** pg_constraint.confdeltype / confupdtype codes. */
const ACTION_CODES: Readonly<Record<string, string>> = {
  a: 'NO ACTION',
  r: 'RESTRICT',
  c: 'CASCADE',
  n: 'SET NULL',
  d: 'SET DEFAULT',
};

/** Reads base tables of the URL's schema (`public` unless `?schema=`), their columns and primary/foreign keys. */
export async function readPostgresCatalog(
  url: DatabaseUrl,
  options: ReadCatalogOptions = {},
): Promise<Catalog> {
  const client = new pg.Client({
    host: url.host,
    port: url.port,
    user: url.user,
    password: url.password,
    database: url.database,
  });
  try {
    await client.connect();
  } catch (cause) {
    await client.end().catch(() => undefined);
    throw new AdapterError(
      'CATALOG_UNREACHABLE',
      `cannot read the catalog of ${url.database} at ${url.host}:${url.port}: ${(cause as Error).message}`,
      { cause, hint: 'check the URL (host, port, user, password, database) and that the server is running' },
    );
  }
  try {
    // Partitions are left out: changes are captured (and keyed) on their parent table.
    const tables = await client.query<{ name: string }>(
      `SELECT c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') AND NOT c.relispartition
        ORDER BY c.relname COLLATE "C"`,
      [url.schema],
    );
    const names = selectTables(
      tables.rows.map((r) => r.name),
      options.tables,
    );
    const wanted = new Set(names);

    const columnRows = await client.query<ColumnRow>(
      `SELECT c.relname AS table_name, a.attname AS column_name, t.typname, t.typtype, t.oid::int AS type_oid,
              a.atttypmod AS typmod, a.attnotnull AS not_null, format_type(a.atttypid, a.atttypmod) AS sql_type,
              a.attgenerated::text AS generated,
              CASE WHEN a.attgenerated <> '' THEN pg_get_expr(d.adbin, d.adrelid) END AS generation_expression
         FROM pg_attribute a
         JOIN pg_class c ON c.oid = a.attrelid
         LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
         JOIN pg_namespace n ON n.oid = c.relnamespace
         JOIN pg_type t ON t.oid = a.atttypid
        WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped
        ORDER BY c.relname, a.attnum`,
      [url.schema],
    );
    const labels = await client.query<{ type_oid: number; label: string }>(
      `SELECT enumtypid::int AS type_oid, enumlabel AS label FROM pg_enum ORDER BY enumtypid, enumsortorder`,
    );
    const enumLabels = new Map<number, string[]>();
    for (const r of labels.rows) {
      const list = enumLabels.get(r.type_oid) ?? [];
      list.push(r.label);
      enumLabels.set(r.type_oid, list);
    }
    const columns = new Map<string, CatalogColumn[]>();
    for (const r of columnRows.rows) {
      if (!wanted.has(r.table_name)) continue;
      const kind = pgColumnKind(r.typname, r.typtype);
      const column: CatalogColumn = {
        name: r.column_name,
        type: kind,
        nullable: !r.not_null,
        sqlType: r.sql_type,
      };
      if (kind === 'enum') column.enumValues = enumLabels.get(r.type_oid) ?? [];
      // NUMERIC(p,s)'s typmod is ((p << 16) | s) + 4; an unconstrained NUMERIC has none.
      if (kind === 'decimal' && r.typmod >= 4) {
        column.precision = ((r.typmod - 4) >> 16) & 0xffff;
        column.scale = (r.typmod - 4) & 0xffff;
      }
      // Without a declared precision the reader pads to 6 digits, as Debezium does.
      if (kind === 'datetime' || kind === 'time')
        column.precision = r.typmod >= 0 && r.typmod <= 6 ? r.typmod : 6;
      // Logical replication leaves generated columns out of every streamed row (up to PostgreSQL
      // 17 always; 18 only publishes STORED ones with publish_generated_columns): see render.ts.
      if (r.generated === 's' || r.generated === 'v') {
        column.generated = r.generated === 's' ? 'stored' : 'virtual';
        if (r.generation_expression !== null) column.generationExpression = r.generation_expression;
      }
      const list = columns.get(r.table_name) ?? [];
      list.push(column);
      columns.set(r.table_name, list);
    }

    // Foreign keys into another schema cannot be captured from this one: left out.
    const keyRows = await client.query<KeyRow>(
      `SELECT c.relname AS table_name, con.conname AS constraint_name, con.contype, k.ord::int AS position,
              a.attname AS column_name, fc.relname AS ref_table, fa.attname AS ref_column,
              CASE WHEN con.contype = 'f' THEN con.confdeltype::text END AS on_delete,
              CASE WHEN con.contype = 'f' THEN con.confupdtype::text END AS on_update
         FROM pg_constraint con
         JOIN pg_class c ON c.oid = con.conrelid
         JOIN pg_namespace n ON n.oid = c.relnamespace
         CROSS JOIN LATERAL unnest(con.conkey) WITH ORDINALITY AS k(attnum, ord)
         JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.attnum
         LEFT JOIN pg_class fc ON fc.oid = con.confrelid
         LEFT JOIN pg_namespace fn ON fn.oid = fc.relnamespace
         LEFT JOIN pg_attribute fa ON fa.attrelid = con.confrelid AND fa.attnum = con.confkey[k.ord::int]
        WHERE n.nspname = $1 AND con.contype IN ('p', 'f') AND (con.contype = 'p' OR fn.nspname = $1)
       UNION ALL
       -- Unique keys from the indexes, so CREATE UNIQUE INDEX counts as a UNIQUE constraint does:
       -- plain columns only (no expression, no WHERE), the key part without INCLUDE columns.
       SELECT c.relname, ic.relname, 'u', k.ord::int, a.attname, NULL, NULL, NULL, NULL
         FROM pg_index i
         JOIN pg_class c ON c.oid = i.indrelid
         JOIN pg_namespace n ON n.oid = c.relnamespace
         JOIN pg_class ic ON ic.oid = i.indexrelid
         CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
         JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
        WHERE n.nspname = $1 AND i.indisunique AND NOT i.indisprimary AND i.indpred IS NULL
          AND i.indexprs IS NULL AND k.ord <= i.indnkeyatts
        ORDER BY 1, 2, 4`,
      [url.schema],
    );
    const keys: KeyColumnRow[] = keyRows.rows.map((r) => ({
      table: r.table_name,
      constraint: r.constraint_name,
      kind: r.contype === 'p' ? 'primary' : r.contype === 'u' ? 'unique' : 'foreign',
      position: r.position,
      column: r.column_name,
      refTable: r.ref_table,
      refColumn: r.ref_column,
      onDelete: r.on_delete === null ? null : (ACTION_CODES[r.on_delete] ?? null),
      onUpdate: r.on_update === null ? null : (ACTION_CODES[r.on_update] ?? null),
    }));
    return { dialect: 'postgres', database: url.database, tables: assembleTables(names, columns, keys) };
  } finally {
    await client.end().catch(() => undefined);
  }
}
