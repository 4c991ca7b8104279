import { AdapterError } from '../../lib/errors.js';

/**
 * A legacy database's tables as `cqrs-migrate init` needs them to write a starter definition:
 * columns with the kind of value change-data-capture delivers for them (see
 * connectors/change-event.ts), primary keys and foreign keys. Both dialects read into this one
 * shape, so the generator never looks at a dialect's type names.
 */

export type CatalogDialect = 'mysql' | 'postgres';

/**
 * What a column's CDC value looks like, normalised across dialects:
 * - int: a JS number (every integer type that always fits 2^53);
 * - bigint: a number, or text beyond 2^53;
 * - decimal: exact text ("12.3400");
 * - float: a number;
 * - boolean: true/false on PostgreSQL; MySQL's tinyint(1), which CDC delivers as 0/1;
 * - date: 'YYYY-MM-DD'; datetime: 'YYYY-MM-DD HH:MM:SS[.ffffff]'; time: 'HH:MM:SS[.ffffff]';
 * - string, enum (one of enumValues), json (the stored text), bytes (base64 text);
 * - other: anything else (geometry, arrays, domains, bit, ...), as CDC prints it.
 */
export type ColumnKind =
  | 'int'
  | 'bigint'
  | 'decimal'
  | 'float'
  | 'boolean'
  | 'date'
  | 'datetime'
  | 'time'
  | 'string'
  | 'enum'
  | 'json'
  | 'bytes'
  | 'other';

export interface CatalogColumn {
  name: string;
  type: ColumnKind;
  nullable: boolean;
  /** Labels of an enum column, in declaration order. */
  enumValues?: string[];
  /** DECIMAL/NUMERIC: digits after the point (absent for an unconstrained NUMERIC). */
  scale?: number;
  /** DECIMAL/NUMERIC: total digits; DATETIME/TIMESTAMP/TIME: fractional-second digits. */
  precision?: number;
  /** The column's type as the database spells it ("decimal(19,4)", "timestamp(6) without time zone"), for comments. */
  sqlType?: string;
  /**
   * Set for a generated (computed) column: `stored` (PostgreSQL's GENERATED ALWAYS AS ... STORED,
   * MariaDB/MySQL STORED/PERSISTENT) or `virtual` (MariaDB/MySQL VIRTUAL). Whether change-data-capture
   * carries its value depends on the dialect: PostgreSQL's logical replication (up to 17) leaves
   * generated columns out of every streamed row; MariaDB's ROW binlog (binlog_row_image=FULL) holds
   * STORED and VIRTUAL ones alike (verified on 10.11, see test/integration/init-cdc-gaps.test.ts).
   */
  generated?: 'stored' | 'virtual';
  /** A generated column's expression as the database prints it, for comments. */
  generationExpression?: string;
  /** MariaDB/MySQL: a text column's collation ("utf8mb4_general_ci"), which decides how keys compare. */
  collation?: string;
}

/**
 * A foreign key's referential action. CASCADE, SET NULL and SET DEFAULT change rows of the
 * referencing table when the referenced row is deleted or its key updated; MariaDB/MySQL's InnoDB
 * does that inside the engine and writes none of those row changes to the binlog.
 */
export type ForeignKeyAction = 'NO ACTION' | 'RESTRICT' | 'CASCADE' | 'SET NULL' | 'SET DEFAULT';

/** The actions that change the referencing rows (the others only refuse the parent's change). */
export const CHANGING_ACTIONS: ReadonlySet<ForeignKeyAction> = new Set([
  'CASCADE',
  'SET NULL',
  'SET DEFAULT',
]);

export interface CatalogForeignKey {
  /** Columns of this table, in the constraint's order. */
  columns: string[];
  /** The referenced table and its columns, position for position with `columns`. */
  references: { table: string; columns: string[] };
  /** Constraint name, for comments. */
  name: string;
  /** What the database does to this table's rows when the referenced row is deleted. */
  onDelete: ForeignKeyAction;
  /** ... and when the referenced key is updated. */
  onUpdate: ForeignKeyAction;
}

export interface CatalogTable {
  name: string;
  /** In ordinal order. */
  columns: CatalogColumn[];
  /**
   * The columns that key the table's rows, in key order: the primary key; without one, the
   * first UNIQUE key (by name) over NOT NULL columns only (legacy link tables often have no
   * primary key but such a key, which identifies a row as well); empty when there is neither.
   */
  primaryKey: string[];
  /** The name of the UNIQUE key `primaryKey` lists, when the table has no primary key. */
  uniqueKey?: string;
  /**
   * True when no key identifies the table's rows: it is kept in the catalog so the generator can
   * say why it is left out (a read model cannot key its rows), not silently dropped.
   */
  keyless: boolean;
  /** Foreign keys to tables of the same database/schema, ordered by constraint name. */
  foreignKeys: CatalogForeignKey[];
}

export interface Catalog {
  dialect: CatalogDialect;
  /** Database name (PostgreSQL: the database; the tables are those of the URL's `?schema=`, else `public`). */
  database: string;
  /** Base tables, ordered by name (code-unit order, the same on every dialect). */
  tables: CatalogTable[];
}

export interface ReadCatalogOptions {
  /** Only these tables (by exact name); an unknown name is an error. Default: every base table. */
  tables?: string[];
}

/** One column of a primary, unique or foreign key, as both dialects' key queries list them. */
export interface KeyColumnRow {
  table: string;
  constraint: string;
  kind: 'primary' | 'unique' | 'foreign';
  /** 1-based position within the constraint. */
  position: number;
  column: string;
  refTable: string | null;
  refColumn: string | null;
  /** A foreign key's rules (null for a primary key; an unknown rule reads as NO ACTION). */
  onDelete?: string | null;
  onUpdate?: string | null;
}

const ACTIONS: readonly ForeignKeyAction[] = ['NO ACTION', 'RESTRICT', 'CASCADE', 'SET NULL', 'SET DEFAULT'];

/** A rule as information_schema spells it ("SET NULL"), or NO ACTION for anything else. */
export function foreignKeyAction(rule: string | null | undefined): ForeignKeyAction {
  const upper = (rule ?? '').trim().toUpperCase();
  return ACTIONS.find((a) => a === upper) ?? 'NO ACTION';
}

/**
 * The table names to read: all, or the requested ones, which must exist; sorted by code unit
 * (not the server's collation), so both dialects list the same tables in the same order and a
 * re-generated definition does not move.
 */
export function selectTables(all: readonly string[], only: readonly string[] | undefined): string[] {
  const sorted = [...all].sort();
  if (only === undefined || only.length === 0) return sorted;
  const known = new Set(sorted);
  const unknown = only.filter((t) => !known.has(t));
  if (unknown.length > 0) {
    throw new AdapterError('CATALOG_TABLE_UNKNOWN', `no base table named ${unknown.join(', ')}`, {
      hint: `pick from: ${sorted.join(', ') || '(the database has no tables)'}`,
    });
  }
  const wanted = new Set(only);
  return sorted.filter((t) => wanted.has(t));
}

/**
 * Builds the tables from the column and key rows of a whole schema. Foreign keys to tables
 * left out by `--tables` are kept: the generator explains why it cannot join them.
 */
export function assembleTables(
  names: readonly string[],
  columns: ReadonlyMap<string, CatalogColumn[]>,
  keys: readonly KeyColumnRow[],
): CatalogTable[] {
  return names.map((name) => {
    const own = keys
      .filter((k) => k.table === name)
      .sort((a, b) =>
        a.constraint === b.constraint ? a.position - b.position : a.constraint < b.constraint ? -1 : 1,
      );
    const primary = own.filter((k) => k.kind === 'primary').map((k) => k.column);
    const unique = primary.length === 0 ? uniqueNotNullKey(own, columns.get(name) ?? []) : null;
    const primaryKey = unique?.columns ?? primary;
    const byConstraint = new Map<string, KeyColumnRow[]>();
    for (const k of own.filter((r) => r.kind === 'foreign')) {
      const list = byConstraint.get(k.constraint) ?? [];
      list.push(k);
      byConstraint.set(k.constraint, list);
    }
    const foreignKeys: CatalogForeignKey[] = [];
    for (const parts of byConstraint.values()) {
      const refTable = parts[0]?.refTable;
      if (refTable === null || refTable === undefined) continue;
      const first = parts[0];
      foreignKeys.push({
        columns: parts.map((p) => p.column),
        references: { table: refTable, columns: parts.map((p) => p.refColumn ?? '') },
        name: first?.constraint ?? '',
        onDelete: foreignKeyAction(first?.onDelete),
        onUpdate: foreignKeyAction(first?.onUpdate),
      });
    }
    return {
      name,
      columns: columns.get(name) ?? [],
      primaryKey,
      ...(unique === null ? {} : { uniqueKey: unique.name }),
      keyless: primaryKey.length === 0,
      foreignKeys,
    };
  });
}

/**
 * The first UNIQUE key (by name) whose columns are all NOT NULL, or null. A unique key over a
 * nullable column admits any number of rows with NULL there, so it does not identify a row.
 */
function uniqueNotNullKey(
  own: readonly KeyColumnRow[],
  columns: readonly CatalogColumn[],
): { name: string; columns: string[] } | null {
  const notNull = new Set(columns.filter((c) => !c.nullable).map((c) => c.name));
  const byName = new Map<string, string[]>();
  for (const k of own) {
    if (k.kind !== 'unique') continue;
    const list = byName.get(k.constraint) ?? [];
    list.push(k.column);
    byName.set(k.constraint, list);
  }
  for (const [name, keyColumns] of byName)
    if (keyColumns.every((c) => notNull.has(c))) return { name, columns: keyColumns };
  return null;
}
