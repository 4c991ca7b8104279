import type { RowValue } from '../change-event.js';

/** What normalisation needs to know of a column (from information_schema.COLUMNS). */
export interface ColumnInfo {
  name: string;
  dataType: string;
  /** Fractional-second digits of DATETIME/TIMESTAMP/TIME. */
  datetimePrecision: number | null;
  /** Scale of DECIMAL. */
  numericScale: number | null;
}

const TEMPORAL = /^(\d{4}-\d{2}-\d{2} )?(-?\d{1,3}:\d{2}:\d{2})(?:\.(\d+))?$/;

/** Gives a time value exactly `digits` fractional digits: mysql2 and zongji pad differently. */
export function fixFraction(text: string, digits: number): string {
  const m = TEMPORAL.exec(text);
  if (!m) return text;
  const base = `${m[1] ?? ''}${m[2]}`;
  if (digits === 0) return base;
  return `${base}.${(m[3] ?? '').padEnd(digits, '0').slice(0, digits)}`;
}

function fixScale(text: string, scale: number): string {
  if (scale === 0) return text;
  const [whole, frac = ''] = text.split('.');
  return `${whole}.${frac.padEnd(scale, '0')}`;
}

/**
 * One representation of a column value whichever path read it (snapshot query or binlog):
 * see connectors/change-event.ts. Never goes through a float for DECIMAL or time values.
 */
export function normalizeValue(value: unknown, column: ColumnInfo): RowValue {
  if (value === null || value === undefined) return null;
  const type = column.dataType.toLowerCase();
  if (Buffer.isBuffer(value)) return value.toString('base64');
  switch (type) {
    case 'datetime':
    case 'timestamp':
    case 'time':
      return fixFraction(String(value), column.datetimePrecision ?? 0);
    case 'date':
      return String(value);
    case 'decimal':
      return fixScale(String(value), column.numericScale ?? 0);
    case 'bigint': {
      const text = String(value);
      const n = Number(text);
      return Number.isSafeInteger(n) ? n : text;
    }
    case 'tinyint':
    case 'smallint':
    case 'mediumint':
    case 'int':
    case 'integer':
    case 'year':
      return Number(value);
    case 'float':
    case 'double':
      return Number(value);
    case 'json':
      return typeof value === 'string' ? value : JSON.stringify(value);
    default:
      if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') return value;
      if (typeof value === 'bigint')
        return Number.isSafeInteger(Number(value)) ? Number(value) : value.toString();
      return typeof value === 'object' ? JSON.stringify(value) : String(value);
  }
}

export function normalizeRow(
  raw: Record<string, unknown>,
  columns: readonly ColumnInfo[],
): Record<string, RowValue> {
  const row: Record<string, RowValue> = {};
  for (const column of columns) row[column.name] = normalizeValue(raw[column.name], column);
  return row;
}
