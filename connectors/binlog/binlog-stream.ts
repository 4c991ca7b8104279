import ZongJi, {
  type AnyBinlogEvent,
  type BinlogEventByName,
  type BinlogEventName,
  type ColumnSchema,
} from '@vlasky/zongji';
import type { Logger } from '../../lib/logger.js';
import { type BinlogSourceConfig, connectionOptions } from './config.js';
import { COLUMN_CHARSETS_SQL, GeometryCharsets } from './geometry-charsets.js';
import { type ColumnInfo, columnFromType } from './normalize.js';
import type { GroupStart, RowsInput } from './transaction-assembler.js';

export interface BinlogStreamHandlers {
  begin(start: GroupStart): void;
  rows(input: RowsInput): void;
  /** A commit marker; `end` is the position just past it. */
  commit(end: { file: string; pos: number }): void;
  /** A statement that is not a transaction marker (DDL); `end` is the position just past it. */
  ddl(input: { sql: string; schema: string; end: { file: string; pos: number } }): void;
  /** After every event: the last safe resume point seen (never inside a transaction). */
  position(at: { file: string; pos: number }): void;
  error(err: Error): void;
}

const EVENTS: BinlogEventName[] = [
  'tablemap',
  'writerows',
  'updaterows',
  'deleterows',
  'xid',
  'query',
  'xaprepare',
  'mariadbgtid',
  'gtid',
  'anonymousgtid',
  // Not used, but seen: they move the resume point past a rotation, so catch-up checks see
  // the reader reach a binlog head that ends in a fresh file.
  'rotate',
  'format',
  'mariadbgtidlist',
  'binlogcheckpoint',
  'previousgtids',
];

const COMMIT_QUERY = /^(COMMIT|ROLLBACK|XA COMMIT|XA ROLLBACK)\b/i;

function is<N extends BinlogEventName>(event: AnyBinlogEvent, name: N): event is BinlogEventByName<N> {
  return event.getEventName() === name;
}

/**
 * The zongji connection: reads the binlog from a position and turns its events into the
 * assembler's vocabulary (group start, rows, commit), with the binlog coordinates of each.
 */
export class BinlogStream {
  private readonly zongji: ZongJi;
  /**
   * Column info by table. zongji builds a new column list at every table map event when the
   * binlog describes its own columns (binlog_row_metadata=FULL), so once per transaction: the
   * cached info is reused while the names and types are the same.
   */
  private readonly columnCache = new Map<string, { schemas: ColumnSchema[]; columns: ColumnInfo[] }>();
  private readonly geometryCharsets: GeometryCharsets;
  private groupOpen = false;
  private groupPos = 0;
  private ready = false;
  private warnedXa = false;
  private sawBegin = false;
  private sawRows = false;

  constructor(
    private readonly config: BinlogSourceConfig,
    private readonly handlers: BinlogStreamHandlers,
    private readonly logger: Logger,
  ) {
    this.zongji = new ZongJi(connectionOptions(config));
    this.geometryCharsets = new GeometryCharsets({
      query: (schema, table) =>
        new Promise((resolve, reject) => {
          const ctrl = this.zongji.ctrlConnection;
          if (ctrl === null) return reject(new Error('zongji has no control connection'));
          ctrl.query(COLUMN_CHARSETS_SQL, [schema, table], (err, rows) =>
            err ? reject(err) : resolve(rows as unknown[]),
          );
        }),
      pause: () => this.pause(),
      resume: () => this.resume(),
    });
  }

  /** Resolves once the server accepted the dump request; rejects if connecting fails. */
  start(from: { file: string; pos: number }): Promise<void> {
    return new Promise((resolve, reject) => {
      this.zongji.on('error', (err) => {
        if (this.ready) this.handlers.error(err);
        else reject(err);
      });
      this.zongji.on('ready', () => {
        this.ready = true;
        resolve();
      });
      this.zongji.on('binlog', (event) => {
        try {
          this.handle(event);
        } catch (err) {
          this.handlers.error(err instanceof Error ? err : new Error(String(err)));
        }
      });
      const tables = this.config.tables;
      this.zongji.start({
        serverId: this.config.serverId,
        filename: from.file,
        position: from.pos,
        includeEvents: EVENTS,
        includeSchema: { [this.config.database]: tables.length > 0 ? tables : true },
      });
    });
  }

  pause(): void {
    this.zongji.connection?.pause();
  }

  resume(): void {
    this.zongji.connection?.resume();
  }

  /** Closes both zongji connections; resolves once they are gone. */
  stop(): Promise<void> {
    return new Promise((resolve) => {
      this.zongji.once('stopped', () => resolve());
      this.zongji.stop();
    });
  }

  /** Where an event starts: its end minus its length (the header is 19 bytes, plus a 4-byte checksum). */
  private startOf(event: AnyBinlogEvent): number {
    if (event.nextPosition <= 0) return this.groupPos;
    return event.nextPosition - event.size - (this.zongji.useChecksum ? 23 : 19);
  }

  private file(): string {
    return this.zongji.options.filename ?? '';
  }

  /** A group opened by a GTID event with no BEGIN and no rows yet: how DDL is logged. */
  private isDdlGroup(): boolean {
    return this.groupOpen && !this.sawBegin && !this.sawRows;
  }

  private beginGroup(gtid: string | null, serverId: number | null, event: AnyBinlogEvent): void {
    this.groupOpen = true;
    this.sawBegin = false;
    this.sawRows = false;
    this.groupPos = this.startOf(event);
    this.handlers.begin({ gtid, serverId, file: this.file(), pos: this.groupPos });
  }

  private commitGroup(): void {
    this.groupOpen = false;
    this.handlers.commit({ file: this.file(), pos: this.zongji.options.position ?? 0 });
  }

  private handle(event: AnyBinlogEvent): void {
    if (is(event, 'tablemap')) this.geometryCharsets.repair(event, (err) => this.handlers.error(err));
    else if (is(event, 'mariadbgtid')) this.beginGroup(event.gtid, event.serverId, event);
    else if (is(event, 'gtid') || is(event, 'anonymousgtid'))
      this.beginGroup(is(event, 'gtid') ? event.gtid : null, null, event);
    else if (is(event, 'query')) {
      const sql = event.query.trim();
      if (/^BEGIN\b/i.test(sql)) {
        if (!this.groupOpen) this.beginGroup(null, null, event);
        this.sawBegin = true;
      } else if (COMMIT_QUERY.test(sql)) this.commitGroup();
      else if (!this.groupOpen || this.isDdlGroup())
        this.handlers.ddl({
          sql,
          schema: event.schema,
          end: { file: this.file(), pos: this.zongji.options.position ?? 0 },
        });
    } else if (is(event, 'xid')) this.commitGroup();
    else if (is(event, 'xaprepare')) {
      // The prepared branch's rows are delivered at PREPARE: XA COMMIT later carries no rows.
      if (!this.warnedXa) this.logger.warn('XA transaction in the binlog: delivered at XA PREPARE');
      this.warnedXa = true;
      this.commitGroup();
    } else if (is(event, 'writerows')) this.rows(event, 'c', event.rows);
    else if (is(event, 'updaterows'))
      this.rows(event, 'u', event.rows as unknown as Record<string, unknown>[]);
    else if (is(event, 'deleterows')) this.rows(event, 'd', event.rows);
    this.handlers.position({ file: this.file(), pos: this.zongji.options.position ?? 0 });
  }

  private columnsOf(table: string, schemas: ColumnSchema[]): ColumnInfo[] {
    const cached = this.columnCache.get(table);
    if (cached !== undefined && (cached.schemas === schemas || sameColumns(cached.schemas, schemas))) {
      cached.schemas = schemas;
      return cached.columns;
    }
    const columns = schemas.map((c) => columnFromType(c.COLUMN_NAME, c.COLUMN_TYPE));
    this.columnCache.set(table, { schemas, columns });
    return columns;
  }

  private rows(
    event: BinlogEventByName<'writerows' | 'updaterows' | 'deleterows'>,
    op: RowsInput['op'],
    rows: Record<string, unknown>[],
  ): void {
    this.sawRows = true;
    const table = event.tableMap[event.tableId];
    if (!table || table.parentSchema !== this.config.database) return;
    this.handlers.rows({
      op,
      table: table.tableName,
      columns: this.columnsOf(`${table.parentSchema}.${table.tableName}`, table.columnSchemas),
      rows,
      file: this.file(),
      pos: this.startOf(event),
      tsMs: event.timestamp,
    });
  }
}

function sameColumns(a: readonly ColumnSchema[], b: readonly ColumnSchema[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    const x = a[i] as ColumnSchema;
    const y = b[i] as ColumnSchema;
    if (x.COLUMN_NAME !== y.COLUMN_NAME || x.COLUMN_TYPE !== y.COLUMN_TYPE) return false;
  }
  return true;
}
