import type { BinlogEventByName, ColumnSchema, TableMapEntry } from '@vlasky/zongji';
import { z } from 'zod';

/**
 * Repairs the character sets zongji (0.9.0) gives the columns of a table with a GEOMETRY
 * column when the binlog describes its own columns (binlog_row_metadata=FULL). The server's
 * COLUMN_CHARSET list has an entry for every character column, GEOMETRY included (a BLOB in
 * the server's eyes: is_character_type in sql/log_event.cc); zongji leaves GEOMETRY out of
 * its count, so every character column after one takes its predecessor's charset. A VARCHAR
 * after a POINT then arrived as bytes (base64 in the event) and a VARBINARY after a VARCHAR
 * would have been decoded as text. The table's character columns are put right from
 * information_schema, read once per table and column list, while the binlog connection is
 * paused: the row events that follow the table map are decoded with the repaired columns.
 */

const MYSQL_TYPE_GEOMETRY = 255;

const columnRow = z.object({
  name: z.string(),
  columnType: z.string(),
  charset: z.string().nullable(),
});
type ColumnRow = z.infer<typeof columnRow>;

export const COLUMN_CHARSETS_SQL = `SELECT COLUMN_NAME AS name, COLUMN_TYPE AS columnType, CHARACTER_SET_NAME AS charset
  FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?`;

export interface CharsetSource {
  /** The table's columns as information_schema has them (COLUMN_CHARSETS_SQL). */
  query(schema: string, table: string): Promise<unknown[]>;
  pause(): void;
  resume(): void;
}

/** True when `event` is a table map zongji mis-aligns (a GEOMETRY column among character ones). */
function needsCharsetRepair(event: BinlogEventByName<'tablemap'>): boolean {
  return event.columnTypes.includes(MYSQL_TYPE_GEOMETRY);
}

/** Sets each character column's charset and type from `rows`, matched by name. */
export function repairCharsets(entry: TableMapEntry, rows: readonly ColumnRow[]): void {
  const byName = new Map(rows.map((r) => [r.name, r]));
  entry.columnSchemas.forEach((schema: ColumnSchema, i) => {
    const actual = byName.get(schema.COLUMN_NAME);
    // Columns information_schema gives no charset (numbers, dates, geometry, binary strings)
    // keep zongji's description, except a string zongji took for text.
    if (actual === undefined) return;
    const column = entry.columns?.[i];
    if (actual.charset === null && column?.charset === null) return;
    schema.CHARACTER_SET_NAME = actual.charset;
    if (/^(var)?(char|binary)\(/i.test(actual.columnType)) schema.COLUMN_TYPE = actual.columnType;
    if (column !== undefined) column.charset = actual.charset;
  });
}

export class GeometryCharsets {
  private readonly known = new Map<string, ColumnRow[]>();

  constructor(private readonly source: CharsetSource) {}

  /**
   * Repairs the table map's entry (synchronously when its columns were read before); calls
   * `failed` when information_schema could not be read: its rows would be decoded wrong.
   */
  repair(event: BinlogEventByName<'tablemap'>, failed: (err: Error) => void): void {
    const entry = event.tableMap[event.tableId];
    if (entry === undefined || !needsCharsetRepair(event)) return;
    const key = [entry.parentSchema, entry.tableName, ...entry.columnSchemas.map((c) => c.COLUMN_NAME)].join(
      '\0',
    );
    const rows = this.known.get(key);
    if (rows !== undefined) {
      repairCharsets(entry, rows);
      return;
    }
    this.source.pause();
    this.source
      .query(entry.parentSchema, entry.tableName)
      .then((raw) => {
        const read = z.array(columnRow).parse(raw);
        this.known.set(key, read);
        repairCharsets(entry, read);
        this.source.resume();
      })
      .catch((cause: unknown) =>
        failed(new Error(`reading the column charsets of ${entry.tableName}`, { cause })),
      );
  }
}
