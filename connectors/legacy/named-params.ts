import type { LegacyDialect, LegacySql } from '../../definition/endpoints.js';
import { DefinitionError } from '../../lib/errors.js';

/**
 * Named parameters (`:accountId`) of legacy SQL, turned into the driver's bound placeholders:
 * `?` for mysql2 (one value per occurrence) and `$n` for node-postgres (one number per name, so
 * a name used twice is bound once). Values are never spliced into the text.
 *
 * The scanner skips what the server would not read as code, so a colon there is left alone:
 * string literals ('…', "…" in MySQL, E'…' escapes and $tag$…$tag$ in PostgreSQL), quoted
 * identifiers ("…", `…`), comments (--, # in MySQL, /* … *\/ nested in PostgreSQL) and `::`
 * casts. A colon right after an identifier character is not a parameter either, so array
 * slices such as `a[lo:hi]` survive.
 */

export interface BoundSql {
  text: string;
  values: unknown[];
}

const NAME_START = /[A-Za-z_]/;
const NAME_PART = /[A-Za-z0-9_]/;
const IDENT_PART = /[A-Za-z0-9_$]/;

/** The text of `sql` for `dialect`; a per-dialect text without this dialect is a DefinitionError. */
export function sqlFor(sql: LegacySql, dialect: LegacyDialect): string {
  if (typeof sql === 'string') return sql;
  const text = sql[dialect];
  if (text !== undefined) return text;
  const has = Object.keys(sql).join(', ') || 'none';
  throw new DefinitionError(`a legacy query has no ${dialect} text (it has: ${has})`, {
    hint: `add a "${dialect}" entry to the query's { mysql, postgres } texts, or give one text for every dialect`,
  });
}

/** Index just past the end of a quoted run that started at `start` (the opening quote). */
function skipQuoted(sql: string, start: number, quote: string, backslashEscapes: boolean): number {
  let i = start + 1;
  while (i < sql.length) {
    const c = sql[i];
    if (backslashEscapes && c === '\\') {
      i += 2;
      continue;
    }
    if (c === quote) {
      // A doubled quote is the quote character itself.
      if (sql[i + 1] === quote) {
        i += 2;
        continue;
      }
      return i + 1;
    }
    i++;
  }
  return sql.length;
}

function skipLine(sql: string, start: number): number {
  const end = sql.indexOf('\n', start);
  return end < 0 ? sql.length : end + 1;
}

function skipBlockComment(sql: string, start: number, nested: boolean): number {
  let depth = 0;
  let i = start;
  while (i < sql.length) {
    if (sql.startsWith('/*', i)) {
      depth = nested ? depth + 1 : 1;
      i += 2;
    } else if (sql.startsWith('*/', i)) {
      depth--;
      i += 2;
      if (depth === 0) return i;
    } else i++;
  }
  return sql.length;
}

/** PostgreSQL `$tag$`/`$$` at `start`: the index past the closing tag, or null when it is no dollar quote. */
function skipDollarQuoted(sql: string, start: number): number | null {
  const m = /^\$([A-Za-z_][A-Za-z0-9_]*)?\$/.exec(sql.slice(start, start + 66));
  if (m === null) return null;
  const end = sql.indexOf(m[0], start + m[0].length);
  return end < 0 ? sql.length : end + m[0].length;
}

function positionalError(dialect: LegacyDialect, placeholder: string): DefinitionError {
  return new DefinitionError(`legacy SQL uses the positional placeholder ${placeholder}`, {
    hint: `write named parameters (:name) instead; the ${dialect} adapter numbers them itself`,
  });
}

/**
 * Walks `sql` as the dialect's server would read it and calls `visit` for each named parameter
 * (its name, and where `:name` starts and ends), skipping literals, identifiers and comments.
 */
function scanNamedParams(
  sql: string,
  dialect: LegacyDialect,
  visit: (name: string, start: number, end: number) => void,
): void {
  const mysql = dialect === 'mysql';
  let i = 0;
  while (i < sql.length) {
    const c = sql[i] as string;
    const next = sql[i + 1];
    const prev = i > 0 ? sql[i - 1] : undefined;
    let skipTo: number | null = null;
    if (c === "'") {
      // MySQL reads backslash escapes in every string (the default sql_mode); PostgreSQL only in E'…'.
      const escaped = mysql || ((prev === 'E' || prev === 'e') && !IDENT_PART.test(sql[i - 2] ?? ' '));
      skipTo = skipQuoted(sql, i, "'", escaped);
    } else if (c === '"') skipTo = skipQuoted(sql, i, '"', mysql);
    else if (c === '`' && mysql) skipTo = skipQuoted(sql, i, '`', false);
    else if (c === '-' && next === '-') {
      // MySQL needs whitespace after "--" (a--1 is a minus minus one); PostgreSQL does not.
      const after = sql[i + 2];
      if (!mysql || after === undefined || /\s/.test(after)) skipTo = skipLine(sql, i);
    } else if (c === '#' && mysql) skipTo = skipLine(sql, i);
    else if (c === '/' && next === '*') skipTo = skipBlockComment(sql, i, !mysql);
    else if (c === '$' && !mysql && !IDENT_PART.test(prev ?? ' ')) {
      if (next !== undefined && /\d/.test(next)) throw positionalError(dialect, `$${next}`);
      skipTo = skipDollarQuoted(sql, i);
    } else if (c === '?' && mysql) throw positionalError(dialect, '?');
    else if (c === ':' && next === ':') skipTo = i + 2;
    else if (c === ':' && next !== undefined && NAME_START.test(next) && !IDENT_PART.test(prev ?? ' ')) {
      let end = i + 1;
      while (end < sql.length && NAME_PART.test(sql[end] as string)) end++;
      visit(sql.slice(i + 1, end), i, end);
      skipTo = end;
    }
    i = skipTo ?? i + 1;
  }
}

/** The named parameters `sql` uses, each once, in order of first use. */
export function namedParamsOf(sql: string, dialect: LegacyDialect): string[] {
  const names = new Set<string>();
  scanNamedParams(sql, dialect, (name) => names.add(name));
  return [...names];
}

/** Legacy SQL rewritten for its dialect: the text to send and the name bound at each value. */
interface ParsedSql {
  text: string;
  names: readonly string[];
}

/** Parsed texts by dialect and SQL; an endpoint's few texts are parsed once, not per query. */
const parsedCache = new Map<string, ParsedSql>();
/** A definition that builds its SQL text per call must not grow the cache without end: the oldest goes. */
const PARSED_CACHE_SIZE = 256;

function parsed(sql: string, dialect: LegacyDialect): ParsedSql {
  const key = `${dialect}\0${sql}`;
  let entry = parsedCache.get(key);
  if (entry === undefined) {
    entry = parse(sql, dialect);
    if (parsedCache.size >= PARSED_CACHE_SIZE) parsedCache.delete(parsedCache.keys().next().value as string);
    parsedCache.set(key, entry);
  }
  return entry;
}

/**
 * `?` per occurrence for mysql2 (a name used twice is bound twice); `$n` per name for
 * node-postgres, numbered in order of first use.
 */
function parse(sql: string, dialect: LegacyDialect): ParsedSql {
  const names: string[] = [];
  const numbers = new Map<string, number>();
  let text = '';
  let copied = 0;
  scanNamedParams(sql, dialect, (name, start, end) => {
    let placeholder: string;
    if (dialect === 'mysql') {
      names.push(name);
      placeholder = '?';
    } else {
      let n = numbers.get(name);
      if (n === undefined) {
        names.push(name);
        n = names.length;
        numbers.set(name, n);
      }
      placeholder = `$${n}`;
    }
    text += sql.slice(copied, start) + placeholder;
    copied = end;
  });
  return { text: text + sql.slice(copied), names };
}

/**
 * Rewrites `:name` placeholders into the dialect's bound ones. A name the SQL uses but `params`
 * lacks (or holds as undefined) is a DefinitionError naming it; extra params are ignored, since
 * an endpoint's parameters are often a superset of what one of its queries needs.
 */
export function bindNamedParams(
  sql: string,
  params: Readonly<Record<string, unknown>>,
  dialect: LegacyDialect,
): BoundSql {
  const { text, names } = parsed(sql, dialect);
  const values = names.map((name) => {
    const value = Object.hasOwn(params, name) ? params[name] : undefined;
    if (value === undefined) {
      const given = Object.keys(params).join(', ') || 'none';
      throw new DefinitionError(`legacy SQL uses parameter :${name}, which was not given (given: ${given})`, {
        hint: `pass "${name}" in the query's parameters (null binds SQL NULL), or fix the name in the SQL`,
      });
    }
    return value;
  });
  return { text, values };
}
