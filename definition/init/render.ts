import {
  type Catalog,
  type CatalogColumn,
  type CatalogForeignKey,
  type CatalogTable,
  CHANGING_ACTIONS,
} from '../../connectors/catalog/catalog.js';
import { topicSafe } from '../../connectors/kafka/topic-names.js';
import { AdapterError } from '../../lib/errors.js';

/**
 * Writes a starter migration definition from a legacy database's catalog: the text
 * `cqrs-migrate init` saves as migration.ts. Pure and deterministic (same catalog, same text),
 * so the output can be compared in tests and re-generated without noise in a diff.
 *
 * Naming rules, the same everywhere in the output:
 * - domain field = camelCase of the column name: words split at "_", "-", spaces, other
 *   non-alphanumerics and lower→upper case changes, lower-cased, joined as camelCase
 *   (`customer_id` → `customerId`, `id` → `id`, `OrderDate` → `orderDate`); a clash within a
 *   table gets a numeric suffix (`customerId2`), an empty result is `field<N>`;
 * - events = PascalCase of the table + `Created` / `Updated` / `Deleted`;
 * - stream = type: the table name; id: `<table>-<key value(s) joined by "-">`;
 * - read-model names = the table's words in lower snake_case (`order_items`).
 */

export interface RenderOptions {
  /** Module the definition imports the public API from, e.g. 'cqrs-migrate'. */
  importFrom: string;
  /** Migration name (default: the database name, made a valid name). */
  name?: string;
}

export interface RenderSummary {
  text: string;
  /** Captured tables (those with a primary key). */
  tables: number;
  /** Views written: the active one plus the commented-out starters. */
  views: number;
  /** Tables left out (commented out) because no key identifies their rows. */
  keyless: string[];
  /** Table of the active view and endpoint. */
  activeTable: string;
  /**
   * MariaDB/MySQL only: foreign keys of captured tables whose ON DELETE / ON UPDATE action
   * (CASCADE, SET NULL, SET DEFAULT) changes rows the binlog never shows, one line each
   * ("payment.rental_id → rental(rental_id): ON DELETE SET NULL"), for the CLI to warn about.
   * The definition carries the same warning at each affected capture rule.
   */
  cascades: string[];
  /** Generated columns left out of the row schemas because CDC does not carry them ("film.length_hours"). */
  omittedColumns: string[];
}

// ---------------------------------------------------------------------------------------------
// Names

const ASCII_IDENT = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

function words(name: string, ascii: boolean): string[] {
  const split = name
    .replace(/(\p{Ll}|\p{N})(\p{Lu})/gu, '$1 $2')
    .split(ascii ? /[^A-Za-z0-9]+/ : /[^\p{L}\p{N}]+/u);
  return split.filter((w) => w.length > 0).map((w) => w.toLowerCase());
}

const capitalise = (w: string) => (w.length === 0 ? w : `${w[0]?.toUpperCase()}${w.slice(1)}`);

function camel(ws: readonly string[]): string {
  return ws.map((w, i) => (i === 0 ? w : capitalise(w))).join('');
}

/** Returns `base`, or `base2`, `base3`, ... whichever is not taken yet, and takes it. */
function unique(base: string, taken: Set<string>): string {
  let name = base;
  for (let n = 2; taken.has(name); n++) name = `${base}${n}`;
  taken.add(name);
  return name;
}

/** A JS string literal: single-quoted, or double-quoted when that needs fewer escapes (as biome prints it). */
function str(value: string): string {
  const quote = value.includes("'") && !value.includes('"') ? '"' : "'";
  return `${quote}${value
    .replace(/\\/g, '\\\\')
    .replace(quote === "'" ? /'/g : /"/g, `\\${quote}`)
    .replace(/\n/g, '\\n')
    .replace(/\r/g, '\\r')
    .replace(/\u2028/g, '\\u2028')
    .replace(/\u2029/g, '\\u2029')}${quote}`;
}

/** Text inside a template literal. */
const tplText = (value: string) => value.replace(/\\/g, '\\\\').replace(/`/g, '\\`').replace(/\$\{/g, '\\${');

/** An object-literal key: bare when it is an identifier, quoted otherwise. */
function propKey(name: string): string {
  // A literal `__proto__` key (bare or quoted) sets the prototype; a computed one is a property.
  if (name === '__proto__') return `['__proto__']`;
  return ASCII_IDENT.test(name) ? name : str(name);
}

/** Property access: `.name` or `['name']`. */
const access = (name: string) =>
  ASCII_IDENT.test(name) && name !== '__proto__' ? `.${name}` : `[${str(name)}]`;

/** Text inside a block comment or after `//`: a "*\/" would end the comment early. */
const commentText = (value: string) => value.replace(/\*\//g, '*\\/').replace(/[\r\n\u2028\u2029]+/g, ' ');

// ---------------------------------------------------------------------------------------------
// Plan: every name decided once, before any text is written

interface FieldPlan {
  column: CatalogColumn;
  field: string;
}

/**
 * Why a column is left out of the row schema, or null when CDC delivers it. PostgreSQL's logical
 * replication (pgoutput, up to 17) sends no generated column in any streamed row, while the
 * snapshot's `SELECT *` has it: a required field would reject every streamed change. A key column
 * stays (the table could not be keyed without it); its note says so. MariaDB's ROW binlog
 * (binlog_row_image=FULL) carries STORED and VIRTUAL generated columns alike (verified on 10.11),
 * so they stay. Zod objects strip unknown keys, so rows that do have the column (the snapshot, the
 * legacy side's `SELECT *`) parse to the same state.
 */
function omissionOf(column: CatalogColumn, table: CatalogTable, dialect: Catalog['dialect']): string | null {
  if (dialect !== 'postgres' || column.generated === undefined) return null;
  if (table.primaryKey.includes(column.name)) return null;
  return "PostgreSQL's logical replication does not send generated columns, so no streamed row has it";
}

interface TablePlan {
  table: CatalogTable;
  /** JS identifier stem (ASCII camelCase, never a reserved word once suffixed). */
  ident: string;
  pascal: string;
  /** Read-model name stem and route segment stem. */
  snake: string;
  /** The columns CDC delivers, with their domain fields (in column order). */
  fields: FieldPlan[];
  /** Columns left out of the row schema (see omissionOf), with the reason. */
  omitted: Map<string, string>;
  fieldOf: Map<string, string>;
  keyFields: string[];
}

function planTables(catalog: Catalog): TablePlan[] {
  const dialect = catalog.dialect;
  const idents = new Set<string>();
  const snakes = new Set<string>();
  return catalog.tables.map((table, i) => {
    const ascii = words(table.name, true);
    let ident = camel(ascii);
    if (ident === '') ident = `table${i + 1}`;
    else if (/^[0-9]/.test(ident)) ident = `t${capitalise(ident)}`;
    ident = unique(ident, idents);
    // Read-model names: 1-63 of [a-z0-9_-] starting with a letter; room is left for "_joined".
    let snake = ascii.join('_').slice(0, 48);
    if (snake === '') snake = `table_${i + 1}`;
    else if (!/^[a-z]/.test(snake)) snake = `t_${snake}`;
    snake = unique(snake, snakes);

    // Names are given to every column first, so leaving one out does not rename the others.
    const taken = new Set<string>();
    const named = table.columns.map((column, c) => {
      const base = camel(words(column.name, false));
      return { column, field: unique(base === '' ? `field${c + 1}` : base, taken) };
    });
    const omitted = new Map<string, string>();
    for (const { column } of named) {
      const why = omissionOf(column, table, dialect);
      if (why !== null) omitted.set(column.name, why);
    }
    const fields = named.filter((f) => !omitted.has(f.column.name));
    const fieldOf = new Map(fields.map((f) => [f.column.name, f.field]));
    const keyFields = table.primaryKey.map((c) => fieldOf.get(c) ?? c);
    return { table, ident, pascal: capitalise(ident), snake, fields, omitted, fieldOf, keyFields };
  });
}

const MIGRATION_NAME = /^[a-z][a-z0-9_-]{0,62}$/;

/** A valid migration name from the option or the database name. */
function migrationName(catalog: Catalog, name: string | undefined): string {
  if (name !== undefined) {
    if (!MIGRATION_NAME.test(name)) {
      throw new AdapterError('INIT_NAME_INVALID', `migration name ${JSON.stringify(name)} is not valid`, {
        hint: 'use 1-63 lower-case letters, digits, "-" or "_", starting with a letter',
      });
    }
    return name;
  }
  const stem = words(catalog.database, true).join('-').slice(0, 63);
  return /^[a-z]/.test(stem) ? stem : `m-${stem}`.slice(0, 63).replace(/-$/, '') || 'migration';
}

// ---------------------------------------------------------------------------------------------
// Row schemas

function columnSchema(column: CatalogColumn, dialect: Catalog['dialect']): string {
  let schema: string;
  switch (column.type) {
    case 'int':
      schema = 'z.number().int()';
      break;
    case 'bigint':
      // A number while it is a safe integer, exact text beyond 2^53.
      schema = 'z.union([z.number().int(), z.string()])';
      break;
    case 'float':
      schema = 'z.number()';
      break;
    case 'boolean':
      // PostgreSQL booleans arrive as booleans; MySQL's tinyint(1) as 0/1.
      schema = dialect === 'postgres' ? 'z.boolean()' : 'z.number().int()';
      break;
    case 'enum':
      schema =
        column.enumValues !== undefined && column.enumValues.length > 0
          ? `z.enum([${column.enumValues.map(str).join(', ')}])`
          : 'z.string()';
      break;
    case 'other':
      schema = 'z.union([z.string(), z.number(), z.boolean()])';
      break;
    default:
      // decimal (exact text), date, datetime, time, string, json (text), bytes (base64 text).
      schema = 'z.string()';
  }
  return column.nullable ? `${schema}.nullable()` : schema;
}

/** True when `e` is one parenthesised expression, "(a + (b))" (as PostgreSQL prints it). */
function enclosed(e: string): boolean {
  if (!e.startsWith('(')) return false;
  let depth = 0;
  for (let i = 0; i < e.length; i++) {
    if (e[i] === '(') depth++;
    else if (e[i] === ')' && --depth === 0) return i === e.length - 1;
  }
  return false;
}

/** What a comment says about a generated column: "generated STORED as (`length` / 60)". */
function generatedText(column: CatalogColumn): string {
  const e = column.generationExpression;
  const expression = e === undefined ? '' : ` as ${enclosed(e) ? e : `(${e})`}`;
  return `generated ${column.generated === 'virtual' ? 'VIRTUAL' : 'STORED'}${expression}`;
}

function columnNote(column: CatalogColumn, dialect: Catalog['dialect']): string {
  const note = typeNote(column, dialect);
  if (column.generated === undefined) return note;
  return dialect === 'mysql'
    ? `${note}; ${generatedText(column)}: the binlog's row images carry its value`
    : // Only a key column reaches here (omissionOf keeps it).
      `${note}; ${generatedText(column)}, in the primary key: PostgreSQL's logical replication does not send it, so streamed changes cannot be keyed; key the rule on other columns`;
}

/** MySQL TIMESTAMP and PostgreSQL timestamptz: instants, delivered (and looked up) in UTC. */
function deliveredInUtc(column: CatalogColumn): boolean {
  return /^timestamp(\(\d+\))?$|with time zone/i.test(column.sqlType ?? column.type);
}

function typeNote(column: CatalogColumn, dialect: Catalog['dialect']): string {
  const sql = column.sqlType ?? column.type;
  switch (column.type) {
    case 'decimal':
      return `${sql}: exact text${column.scale === undefined ? '' : ` with ${column.scale} decimals`}`;
    case 'date':
      return `${sql}: 'YYYY-MM-DD'`;
    case 'datetime':
    case 'time': {
      // Debezium's io.debezium.time.ZonedTime, which the embedded reader matches.
      if (/^time(\(\d+\))? with time zone$/i.test(sql)) return `${sql}: 'HH:MM:SS[.fff]Z' in UTC`;
      const digits = column.precision ?? 0;
      const base = column.type === 'datetime' ? 'YYYY-MM-DD HH:MM:SS' : 'HH:MM:SS';
      const utc = deliveredInUtc(column) ? ' in UTC' : '';
      return `${sql}: '${base}${digits > 0 ? `.${'f'.repeat(digits)}` : ''}'${utc}`;
    }
    case 'bigint':
      return `${sql}: text beyond 2^53`;
    case 'boolean':
      return sql;
    case 'json':
      return `${sql}: the stored JSON text`;
    case 'bytes':
      return `${sql}: base64`;
    default:
      return dialect === 'mysql' ? mysqlOtherNote(sql) : postgresOtherNote(sql);
  }
}

/** MariaDB/MySQL BIT as both CDC paths and the legacy reads give it (Debezium's forms). */
function mysqlOtherNote(sql: string): string {
  if (/^bit\(1\)$/i.test(sql)) return `${sql}: true or false`;
  return /^bit\(\d+\)$/i.test(sql) ? `${sql}: base64 of its bytes, least significant first` : sql;
}

/** The forms connectors/pgoutput/values.ts gives, which the Debezium side matches. */
function postgresOtherNote(sql: string): string {
  if (/\[\]$/.test(sql)) return `${sql}: the array as PostgreSQL prints it, '{1,2,NULL}'`;
  if (/^money$/i.test(sql)) return `${sql}: decimal text, '-1234.50'`;
  if (/^interval/i.test(sql)) return `${sql}: ISO 8601 with every field, 'P0Y0M1DT2H0M0S'`;
  if (/^bit(\(1\))?$/i.test(sql)) return `${sql}: true or false`;
  if (/^bit( varying)?\(\d+\)$|^bit varying$/i.test(sql))
    return `${sql}: base64 of its bytes, least significant first`;
  return sql;
}

function renderRowSchema(plan: TablePlan, dialect: Catalog['dialect']): string[] {
  const lines = [`const ${plan.ident}Row = z`, '  .object({'];
  for (const column of plan.table.columns) {
    const why = plan.omitted.get(column.name);
    if (why !== undefined) {
      lines.push(
        `    // ${commentText(`${column.name}: left out, ${column.sqlType ?? column.type} ${generatedText(column)}: ${why}.`)}`,
        '    // Rows that have it (the snapshot, the legacy reads) parse the same: zod drops the extra key.',
        '    // If a read needs the value, compute it from the other fields in the view.',
      );
      continue;
    }
    lines.push(
      `    ${propKey(column.name)}: ${columnSchema(column, dialect)}, // ${commentText(columnNote(column, dialect))}`,
    );
  }
  lines.push('  })', '  .transform((r) => ({');
  for (const { column, field } of plan.fields) lines.push(`    ${propKey(field)}: r${access(column.name)},`);
  lines.push('  }));');
  return lines;
}

function streamId(plan: TablePlan): string {
  const parts = plan.keyFields.map((f) => `\${s${access(f)}}`).join('-');
  return `\`${tplText(plan.table.name)}-${parts}\``;
}

function renderCapture(plan: TablePlan): string[] {
  const key =
    plan.keyFields.length === 1 ? str(plan.keyFields[0] ?? '') : `[${plan.keyFields.map(str).join(', ')}]`;
  return [
    `const ${plan.ident}Capture = captureTable({`,
    `  table: ${str(plan.table.name)},`,
    `  row: ${plan.ident}Row,`,
    `  key: ${key},`,
    // The stream type names a domain topic on the distributed path (<prefix>.events.<type>).
    `  stream: { type: ${str(topicSafe(plan.table.name))}, id: (s) => ${streamId(plan)} },`,
    `  onCreate: ${str(`${plan.pascal}Created`)},`,
    `  otherwise: ${str(`${plan.pascal}Updated`)},`,
    `  onDelete: ${str(`${plan.pascal}Deleted`)},`,
    '});',
  ];
}

/** `open items close` on one line when it fits in 110 columns, else one item per line (biome's layout). */
function wrapList(indent: string, open: string, items: readonly string[], close: string): string[] {
  const line = `${indent}${open}${items.join(', ')}${close}`;
  if (line.length <= 110) return [line];
  return [
    `${indent}${open.trimEnd()}`,
    ...items.map((i) => `${indent}  ${i},`),
    `${indent}${close.trimStart()}`,
  ];
}

const commentOut = (lines: readonly string[]) => lines.map((l) => (l === '' ? '//' : `// ${l}`));

function renderKeyless(plan: TablePlan, dialect: Catalog['dialect']): string[] {
  return [
    `// ${commentText(plan.table.name)} has no primary key (nor a UNIQUE key over NOT NULL columns), so it is not captured: a read model cannot key its rows.`,
    '// Add a primary key in the legacy database (or name a unique column as `key`), then uncomment:',
    ...commentOut([
      ...renderRowSchema(plan, dialect),
      `const ${plan.ident}Capture = captureTable({`,
      `  table: ${str(plan.table.name)},`,
      `  row: ${plan.ident}Row,`,
      `  key: 'aUniqueField',`,
      `  stream: { type: ${str(topicSafe(plan.table.name))}, id: (s) => \`${tplText(plan.table.name)}-\${s.aUniqueField}\` },`,
      `  onCreate: ${str(`${plan.pascal}Created`)},`,
      `  otherwise: ${str(`${plan.pascal}Updated`)},`,
      `  onDelete: ${str(`${plan.pascal}Deleted`)},`,
      '});',
    ]),
  ];
}

// ---------------------------------------------------------------------------------------------
// Views

interface JoinPlan {
  name: string;
  /** `{ table: ..., on: ... }`, or null when the foreign key cannot be a lookup. */
  spec: string | null;
  /** What the foreign key is, and why it is left out when it is. */
  note: string;
}

function planJoins(plan: TablePlan, byName: ReadonlyMap<string, TablePlan>): JoinPlan[] {
  const taken = new Set(plan.fields.map((f) => f.field));
  return plan.table.foreignKeys.map((fk) => {
    const target = byName.get(fk.references.table);
    const describe = `${fk.columns.join(', ')} → ${fk.references.table}(${fk.references.columns.join(', ')})`;
    // Name: the column without the referenced column's name or an "id" word (customer_id →
    // customer, product_sku → product), else the target table's.
    const single = fk.columns.length === 1 ? words(fk.columns[0] ?? '', true) : [];
    const refWords = fk.references.columns.length === 1 ? words(fk.references.columns[0] ?? '', true) : [];
    const endsWith = (suffix: readonly string[]) =>
      suffix.length > 0 &&
      single.length > suffix.length &&
      suffix.every((w, i) => single[single.length - suffix.length + i] === w);
    const stem = endsWith(refWords)
      ? single.slice(0, -refWords.length)
      : endsWith(['id'])
        ? single.slice(0, -1)
        : [];
    let base = stem.length > 0 ? camel(stem) : (target?.ident ?? camel(words(fk.references.table, true)));
    if (base === '' || /^[0-9]/.test(base)) base = 'ref';
    // A join named like a row field would overwrite that field in `{ ...r.row, <join>: ... }`.
    const name = unique(taken.has(base) ? `${base}Ref` : base, taken);
    if (target === undefined) {
      return {
        name,
        spec: null,
        note: `${describe}: ${fk.references.table} is not in the catalog (see --tables)`,
      };
    }
    if (target.table.keyless) {
      return {
        name,
        spec: null,
        note: `${describe}: ${target.table.name} has no key, so it is not captured`,
      };
    }
    const missing = fk.columns.filter((c) => plan.omitted.has(c));
    if (missing.length > 0) {
      return {
        name,
        spec: null,
        note: `${describe}: ${missing.join(', ')} is a generated column CDC does not carry`,
      };
    }
    // A lookup finds the target row by its key, so `on` lists our columns in the key's order.
    const pk = target.table.primaryKey;
    const sameSet =
      pk.length === fk.references.columns.length && pk.every((c) => fk.references.columns.includes(c));
    if (!sameSet) {
      return {
        name,
        spec: null,
        note: `${describe}: references a unique key, not the primary key of ${target.table.name}; a lookup needs the key`,
      };
    }
    const on = pk.map((c) => plan.fieldOf.get(fk.columns[fk.references.columns.indexOf(c)] ?? '') ?? c);
    const onText = on.length === 1 ? str(on[0] ?? '') : `[${on.map(str).join(', ')}]`;
    return { name, spec: `{ table: ${str(target.table.name)}, on: ${onText} }`, note: describe };
  });
}

function renderJoinedView(plan: TablePlan, joins: readonly JoinPlan[]): string[] {
  const lines = [
    `const ${plan.ident}JoinedView = defineView({`,
    `  name: ${str(`${plan.snake}_joined`)},`,
    `  from: ${str(plan.table.name)},`,
    '  join: {',
  ];
  for (const j of joins) {
    if (j.spec === null) lines.push(`    // not joined: ${commentText(j.note)}`);
    else lines.push(`    ${j.name}: ${j.spec}, // ${commentText(j.note)}`);
  }
  lines.push('  },');
  const active = joins.filter((j) => j.spec !== null);
  const extra = active.map((j) => `${j.name}: lookedUp(r.joins${access(j.name)})`);
  lines.push(
    // Wrapped as biome prints it, so an uncommented starter needs no reformatting.
    ...(extra.length === 0
      ? ['  select: (r) => r.row,']
      : wrapList('  ', 'select: (r) => ({ ', ['...r.row', ...extra], ' }),')),
    '  schema: z.record(z.string(), z.unknown()),',
    '});',
  );
  return lines;
}

// ---------------------------------------------------------------------------------------------
// The active view and endpoint

function quoteIdent(name: string, dialect: Catalog['dialect']): string {
  return dialect === 'mysql' ? `\`${name.replace(/`/g, '``')}\`` : `"${name.replace(/"/g, '""')}"`;
}

interface KeyParam {
  column: CatalogColumn;
  field: string;
  /** Route/SQL parameter name: `:name` must match /:[A-Za-z_]\w*\/. */
  param: string;
}

function keyParams(plan: TablePlan): KeyParam[] {
  const taken = new Set<string>();
  return plan.table.primaryKey.map((name, i) => {
    const column = plan.table.columns.find((c) => c.name === name) ?? {
      name,
      type: 'string',
      nullable: false,
    };
    const field = plan.fieldOf.get(name) ?? name;
    const param = unique(/^[A-Za-z_]\w*$/.test(field) ? field : `key${i + 1}`, taken);
    return { column, field, param };
  });
}

/**
 * The parameter's schema: it must give the value the captured row's key field holds, so the
 * read-model key built from it equals the row key (and reconciliation's rows, which come back
 * typed from the legacy database, parse too).
 */
function paramSchema(column: CatalogColumn): string {
  switch (column.type) {
    case 'int':
      return 'integerParam()';
    case 'bigint':
      return 'bigintKey';
    case 'float':
      return 'z.coerce.number()';
    case 'boolean':
      return 'integerParam()';
    case 'datetime':
      // The captured text has the column's fraction digits; a client's '… 09:00:00' is padded to
      // them, and for an instant column a client's offset is converted to UTC.
      return `datetimeParam(${column.precision ?? 0}${deliveredInUtc(column) ? ', { utc: true }' : ''})`;
    default:
      // Captured in lower case; the database finds an upper-case UUID too, so the param lowers it.
      return /^uuid$/i.test(column.sqlType ?? '') ? 'uuidParam()' : 'z.string()';
  }
}

/**
 * A key column with a case-insensitive collation (MariaDB's default utf8mb4_general_ci among
 * them) or PostgreSQL's citext: the legacy lookup finds the row for spellings the read model,
 * keyed by the captured text, does not. The comparisons record those requests as differences,
 * which they are; the note says so where the user reads the endpoint, and what to change if
 * clients send them.
 */
function foldedKeyNote(column: CatalogColumn): string[] {
  if (column.type !== 'string') return [];
  // MariaDB/MySQL's case-insensitive collations; PostgreSQL's citext compares the same way.
  const folding =
    column.collation !== undefined && /_ci$/i.test(column.collation)
      ? column.collation
      : /^citext$/i.test(column.sqlType ?? '')
        ? 'citext'
        : null;
  if (folding === null) return [];
  const note = commentText(
    `${column.name} is ${folding}: the legacy query finds 'ABC' for 'abc' (case ignored, and for most such collations accents and trailing spaces), the read model's key is the captured text, so a client's other spelling is recorded as a difference. If clients send them, key the view by a folded form (e.g. lower case) and fold the param the same way.`,
  );
  const lines: string[] = [];
  for (const word of note.split(' ')) {
    const last = lines.length - 1;
    if (last >= 0 && `${lines[last]} ${word}`.length <= 98) lines[last] += ` ${word}`;
    else lines.push(`  // ${word}`);
  }
  return lines;
}

function paramsLines(params: readonly KeyParam[]): string[] {
  const entries = params.map((p) => `${propKey(p.param)}: ${paramSchema(p.column)}`);
  const oneLine = `  params: z.object({ ${entries.join(', ')} }),`;
  if (oneLine.length <= 100) return [oneLine];
  return ['  params: z.object({', ...entries.map((e) => `    ${e},`), '  }),'];
}

function renderEndpoint(plan: TablePlan, dialect: Catalog['dialect']): string[] {
  const params = keyParams(plan);
  const q = (n: string) => quoteIdent(n, dialect);
  const table = q(plan.table.name);
  const columnList = plan.fields.map((f) => q(f.column.name)).join(', ');
  const where = params.map((p) => `${q(p.column.name)} = :${p.param}`).join(' AND ');
  const keyColumns = params.map((p) => q(p.column.name)).join(', ');
  const reconcileCols = params.map((p) => `${q(p.column.name)} AS ${q(p.param)}`).join(', ');
  const route = `/${plan.snake.replace(/_/g, '-')}/${params.map((p) => `:${p.param}`).join('/')}`;
  const key =
    params.length === 1
      ? `String(params${access(params[0]?.param ?? '')})`
      : `JSON.stringify([${params.map((p) => `params${access(p.param)}`).join(', ')}])`;
  return [
    `const ${plan.ident}Endpoint = defineEndpoint({`,
    `  route: ${str(route)},`,
    ...params.flatMap((p) => foldedKeyNote(p.column)),
    ...paramsLines(params),
    '  legacy: {',
    `    sql: ${str(`SELECT ${columnList} FROM ${table} WHERE ${where}`)},`,
    "    // Through the capture rule's own row schema, so both sides hold the same domain state.",
    '    map: (rows) => {',
    '      const row = rows[0];',
    `      return row === undefined ? null : ${plan.ident}Row.parse(row);`,
    '    },',
    '  },',
    '  readModel: async ({ params, readModels }) => {',
    `    const view = readModels[${plan.ident}View.name];`,
    `    if (view === undefined) throw new Error(\`read model \${${plan.ident}View.name} is not defined\`);`,
    // The view keys documents by the row key: the value as text, or a JSON array for several.
    `    return view.get(${key});`,
    '  },',
    '  reconcile: {',
    `    sql: ${str(`SELECT ${reconcileCols} FROM ${table} ORDER BY ${keyColumns}`)},`,
    "    // The read model's keys too: one only it still has is a row the database removed by itself.",
    '    readModel: async (readModels) => {',
    `      const view = readModels[${plan.ident}View.name];`,
    `      if (view === undefined) throw new Error(\`read model \${${plan.ident}View.name} is not defined\`);`,
    '      const sets: Array<Record<string, unknown>> = [];',
    ...wrapList(
      '      ',
      'for await (const doc of documentsInOrder(view, [',
      params.map((p) => str(p.field)),
      ']))',
    ),
    `        sets.push({ ${params.map((p) => `${propKey(p.param)}: doc${access(p.field)}`).join(', ')} });`,
    '      return sets;',
    '    },',
    '  },',
    '});',
  ];
}

// ---------------------------------------------------------------------------------------------
// Foreign-key actions the binlog does not show

/** "ON DELETE SET NULL, ON UPDATE CASCADE": the actions of `fk` that change this table's rows. */
function changingActions(fk: CatalogForeignKey): string | null {
  const parts: string[] = [];
  if (CHANGING_ACTIONS.has(fk.onDelete)) parts.push(`ON DELETE ${fk.onDelete}`);
  if (CHANGING_ACTIONS.has(fk.onUpdate)) parts.push(`ON UPDATE ${fk.onUpdate}`);
  return parts.length === 0 ? null : parts.join(', ');
}

/**
 * MariaDB/MySQL: each foreign key of the table whose action changes its rows, as
 * "payment.rental_id → rental(rental_id): ON DELETE SET NULL". InnoDB runs those actions inside
 * the engine and neither server writes the rows they change to the binlog (verified on MariaDB
 * 10.11: deleting the parent row logs one Delete_rows event for the parent, nothing for the
 * children; test/integration/init-cdc-gaps.test.ts), so the read models never see them.
 * PostgreSQL's logical decoding carries cascaded changes as ordinary row changes: none there.
 */
function cascadesOf(table: CatalogTable, dialect: Catalog['dialect']): string[] {
  if (dialect !== 'mysql') return [];
  return table.foreignKeys.flatMap((fk) => {
    const actions = changingActions(fk);
    if (actions === null) return [];
    const cols = fk.columns.length === 1 ? `.${fk.columns[0]}` : `.(${fk.columns.join(', ')})`;
    return [`${table.name}${cols} → ${fk.references.table}(${fk.references.columns.join(', ')}): ${actions}`];
  });
}

function renderCascadeWarning(table: CatalogTable, cascades: readonly string[]): string[] {
  return [
    `// WARNING: the database changes ${commentText(table.name)} rows by itself, through foreign-key actions:`,
    ...cascades.map((c) => `//   ${commentText(c)}`),
    '// InnoDB applies these inside the engine and MariaDB/MySQL do not write the rows they change to the',
    '// binlog, so those changes never reach the read models: the documents silently keep deleted rows or',
    '// old references. Run `cqrs-migrate reconcile` to detect the drift; repair it by capturing again from',
    '// a new snapshot (`rebuild` replays the same events and does not help). To avoid it, change the foreign',
    '// key to RESTRICT and make the legacy writer update/delete these rows itself: those statements are captured.',
  ];
}

// ---------------------------------------------------------------------------------------------

function header(catalog: Catalog, plans: readonly TablePlan[], active: TablePlan, name: string): string[] {
  const captured = plans.filter((p) => !p.table.keyless).length;
  const db = commentText(catalog.database);
  return [
    '/**',
    ` * Migration definition "${commentText(name)}", written by \`cqrs-migrate init\` from the ${catalog.dialect === 'mysql' ? 'MariaDB/MySQL' : 'PostgreSQL'}`,
    ` * database "${db}" (${plans.length} tables, ${captured} captured). It runs as written; it is yours to edit.`,
    ' *',
    ' * 1. Row schemas: one zod schema per table for the raw change-data-capture row (column names',
    ' *    as the database has them; integers as numbers, BIGINT beyond 2^53 as text, DECIMAL as exact',
    " *    text, dates and date-times as text with the column's fractional digits; SQL NULL as null),",
    ' *    transformed to the domain state (camelCase fields). Tighten them (string formats, ranges):',
    ' *    a row a schema rejects becomes a dead letter instead of an event.',
    ' * 2. Capture rules: which table becomes which events. Each table emits <Table>Created,',
    ' *    <Table>Updated and <Table>Deleted into one stream per row; name the events after what',
    ' *    happens in your domain and add `onUpdate: [{ when: [fields], emit: "..." }]` clauses.',
    ' *    Tables without a primary key are keyed by a UNIQUE key over NOT NULL columns; those with',
    ' *    neither are commented out: a read model cannot key their rows.',
    ' * 3. Read models: one active view (a document per row of one table), and, commented out, a',
    ' *    starter view per table with foreign keys that looks the referenced rows up. Uncomment and',
    ' *    shape `select` to the document your API returns; add `ChildrenJoin`s ({ table, by }) and',
    ' *    aggregates for one-to-many data.',
    ` * 4. Endpoints: one read the legacy database serves (GET ${commentText(`/${active.snake.replace(/_/g, '-')}/…`)}), answered from both`,
    ' *    sides and compared by the shadow API; `reconcile` lists every key to compare. Replace it',
    ' *    with the reads your monolith really serves (their SQL, with `:name` parameters).',
    ' * 5. The migration: everything above, put together.',
    ' */',
  ];
}

/** The definition text and what it contains, for `init`'s summary line. */
export function renderDefinitionWithSummary(catalog: Catalog, options: RenderOptions): RenderSummary {
  const plans = planTables(catalog);
  const keyed = plans.filter((p) => !p.table.keyless);
  if (keyed.length === 0) {
    throw new AdapterError(
      'INIT_NO_KEYED_TABLE',
      catalog.tables.length === 0
        ? `database ${catalog.database} has no tables to capture`
        : `no table of ${catalog.database} has a primary key, so no read model can key its rows`,
      {
        hint: 'point init at the database (and --tables) of the legacy application; tables need a primary key',
      },
    );
  }
  // The active view: the table that references the most others (likely the one reads centre on).
  let active = keyed[0] as TablePlan;
  for (const p of keyed) if (p.table.foreignKeys.length > active.table.foreignKeys.length) active = p;
  const byName = new Map(plans.map((p) => [p.table.name, p]));
  const starters = keyed
    .filter((p) => p.table.foreignKeys.length > 0)
    .map((p) => ({ plan: p, joins: planJoins(p, byName) }));
  const anyLookup = starters.some((s) => s.joins.some((j) => j.spec !== null));
  const name = migrationName(catalog, options.name);

  const imports = ['captureTable', 'defineEndpoint', 'defineMigration', 'defineView', 'documentsInOrder'];
  const activeParams = keyParams(active).map((p) => paramSchema(p.column));
  if (activeParams.some((schema) => schema.startsWith('datetimeParam(')))
    imports.splice(1, 0, 'datetimeParam');
  if (activeParams.includes('integerParam()')) imports.push('integerParam');
  if (activeParams.includes('uuidParam()')) imports.push('uuidParam');
  if (anyLookup) imports.push('type DomainState', 'type ViewNode');
  imports.push('z');
  const out: string[] = [
    ...header(catalog, plans, active, name),
    ...wrapList('', 'import { ', imports, ` } from ${str(options.importFrom)};`),
    '',
  ];

  out.push('// 1 + 2. Row schemas and capture rules, table by table', '');
  const cascades: string[] = [];
  for (const p of plans) {
    const t = p.table;
    if (t.keyless) {
      out.push(...renderKeyless(p, catalog.dialect), '');
      continue;
    }
    const fks = t.foreignKeys.map((fk) => `${fk.columns.join(', ')} → ${fk.references.table}`);
    const tableCascades = cascadesOf(t, catalog.dialect);
    cascades.push(...tableCascades);
    if (tableCascades.length > 0) out.push(...renderCascadeWarning(t, tableCascades));
    out.push(
      `// ${commentText(t.name)}: ${t.uniqueKey === undefined ? 'primary key' : `no primary key; keyed by unique key ${commentText(t.uniqueKey)}`} (${commentText(t.primaryKey.join(', '))})${fks.length > 0 ? `; references ${commentText(fks.join('; '))}` : ''}`,
      ...renderRowSchema(p, catalog.dialect),
      '',
      ...renderCapture(p),
      '',
    );
  }

  out.push('// 3. Read models', '');
  if (anyLookup) {
    out.push(
      '/** The row a lookup join found, or null (used by the starter views below). */',
      'export const lookedUp = (node: ViewNode | ViewNode[] | null | undefined): DomainState | null =>',
      '  node === null || node === undefined || Array.isArray(node) ? null : node.row;',
      '',
    );
  }
  out.push(
    `// The active view: one document per ${commentText(active.table.name)} row, the row's own domain state.`,
    `const ${active.ident}View = defineView({`,
    `  name: ${str(active.snake)},`,
    `  from: ${str(active.table.name)},`,
    '  select: (root) => root.row,',
    '  schema: z.record(z.string(), z.unknown()),',
    '  // Reconciliation lists the documents in key order (documentsInOrder): a range of this index.',
    `  indexes: [[${keyParams(active)
      .map((p) => str(p.field))
      .join(', ')}]],`,
    '});',
    '',
  );
  for (const s of starters) {
    out.push(
      `// Starter: ${commentText(s.plan.table.name)} with the rows its foreign keys reference. Uncomment it (and its line in readModels).`,
      ...commentOut(renderJoinedView(s.plan, s.joins)),
      '',
    );
  }

  out.push('// 4. Endpoints', '');
  if (keyParams(active).some((p) => p.column.type === 'bigint')) {
    out.push(
      '/** A BIGINT key parameter as CDC delivers the value: a number while it is safe, else its text. */',
      'const bigintKey = z.coerce',
      '  .string()',
      '  .regex(/^-?\\d+$/)',
      '  .transform((v) => (Number.isSafeInteger(Number(v)) ? Number(v) : v));',
      '',
    );
  }
  out.push(...renderEndpoint(active, catalog.dialect), '');

  out.push(
    '// 5. The migration',
    'export default defineMigration({',
    `  name: ${str(name)},`,
    '  capture: {',
    ...wrapList(
      '    ',
      'tables: [',
      keyed.map((p) => `${p.ident}Capture`),
      '],',
    ),
    '  },',
    '  readModels: [',
    `    ${active.ident}View,`,
    ...starters.map((s) => `    // ${s.plan.ident}JoinedView,`),
    '  ],',
    '  domains: {',
    `    ${propKey(active.ident)}: { endpoints: { get: ${active.ident}Endpoint } },`,
    '  },',
    '});',
    '',
  );
  return {
    text: out.join('\n'),
    tables: keyed.length,
    views: 1 + starters.length,
    keyless: plans.filter((p) => p.table.keyless).map((p) => p.table.name),
    activeTable: active.table.name,
    cascades,
    omittedColumns: plans.flatMap((p) => [...p.omitted.keys()].map((c) => `${p.table.name}.${c}`)),
  };
}

/** A starter migration definition (TypeScript module text) for the catalog's tables. */
export function renderDefinition(catalog: Catalog, options: RenderOptions): string {
  return renderDefinitionWithSummary(catalog, options).text;
}
