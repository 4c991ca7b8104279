import ZongJi from '@vlasky/zongji';
import mysql from 'mysql2/promise';
import { SourceError } from '../../lib/errors.js';
import { type Logger, silentLogger } from '../../lib/logger.js';
import { MYSQL_TYPE_OPTIONS } from '../../lib/mysql-types.js';
import type { ChangeEvent, Op, SourceInfo, SourceOffset, SourceTransaction } from '../change-event.js';
import type { ChangeSource } from '../ports.js';
import {
  type BinlogOffset,
  type BinlogSourceConfig,
  type BinlogSourceConfigInput,
  binlogOffsetSchema,
  binlogSourceConfigSchema,
} from './config.js';
import { normalizeRow } from './normalize.js';
import { preflight } from './preflight.js';
import { readTableInfo, type TableInfo } from './schema-info.js';
import { type BinlogPosition, openConsistentView, readSnapshot } from './snapshot.js';

const VERSION = '0.1.0';

/** The parts of zongji's binlog events this reader uses. */
interface BinlogEvent {
  getEventName(): string;
  timestamp: number;
  nextPosition: number;
  gtid?: string;
  tableId?: number;
  tableMap?: Record<number, { parentSchema: string; tableName: string }>;
  rows?: Array<Record<string, unknown>>;
}

interface ZongJiInstance {
  on(event: 'binlog', handler: (e: BinlogEvent) => void): void;
  on(event: 'error', handler: (e: Error) => void): void;
  on(event: 'ready', handler: () => void): void;
  start(options: Record<string, unknown>): void;
  stop(): void;
  options: { filename?: string; position?: number };
  connection?: { pause(): void; resume(): void };
}

/**
 * Embedded CDC from a MariaDB/MySQL binlog: an initial consistent snapshot (op 'r') and then
 * the row events from the snapshot's position, one SourceTransaction per committed
 * transaction, each delivered only after the sink finished the previous one. Failures after
 * start (connection loss, a sink that throws) go to `onError`; the source is stopped then.
 */
export class MysqlBinlogSource implements ChangeSource {
  readonly name: string;
  private readonly config: BinlogSourceConfig;
  private readonly logger: Logger;
  private readonly onError: (err: Error) => void;
  private zongji: ZongJiInstance | null = null;
  private tables = new Map<string, TableInfo>();
  private queue: SourceTransaction[] = [];
  private draining: Promise<void> | null = null;
  private paused = false;
  private stopped = false;
  private lastOffset: BinlogOffset | null = null;
  private receivedPosition: BinlogPosition | null = null;
  private flavor: 'mariadb' | 'mysql' = 'mariadb';

  constructor(
    config: BinlogSourceConfigInput,
    options: { logger?: Logger; onError?: (err: Error) => void } = {},
  ) {
    this.config = binlogSourceConfigSchema.parse(config);
    this.name = this.config.name;
    this.logger = (options.logger ?? silentLogger).child({ component: 'binlog-source' });
    this.onError = options.onError ?? ((err) => this.logger.error({ err }, 'binlog source failed'));
  }

  /** The position of the last transaction the sink accepted. */
  offset(): BinlogOffset | null {
    return this.lastOffset;
  }

  /** True when every transaction received so far has been delivered and accepted. */
  idle(): boolean {
    return this.queue.length === 0 && this.draining === null;
  }

  /** Position of the last commit the reader has seen (delivered or not), for catch-up checks. */
  seenPosition(): BinlogPosition | null {
    return this.receivedPosition;
  }

  async start(from: SourceOffset | null, sink: (tx: SourceTransaction) => Promise<void>): Promise<void> {
    const facts = await preflight(this.config);
    this.flavor = facts.flavor;
    const offset = from === null ? null : binlogOffsetSchema.parse(from);
    const conn = await this.connect();
    try {
      this.tables = await readTableInfo(conn, this.config.database, this.config.tables);
    } finally {
      await conn.end();
    }
    let streamFrom: BinlogPosition | null = null;
    let gtid: string | null = null;
    if (offset?.phase === 'stream') {
      streamFrom = { file: offset.file, pos: offset.pos };
      gtid = offset.gtid;
    } else if (this.config.snapshotMode === 'never') {
      streamFrom = await this.masterPosition();
    } else {
      // An interrupted snapshot is redone in a new read view, but streaming still starts from
      // the first attempt's position: changes between the two views are replayed on top of the
      // newer rows. Every event carries full row images, so consumers converge to the same state.
      streamFrom = await this.snapshot(sink, offset?.phase === 'snapshot' ? offset.streamFrom : null);
      if (this.stopped) return;
    }
    this.lastOffset = { phase: 'stream', file: streamFrom.file, pos: streamFrom.pos, gtid };
    this.stream(streamFrom, sink);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.queue = [];
    this.zongji?.stop();
    this.zongji = null;
    await this.draining;
  }

  private connect(): Promise<mysql.Connection> {
    return mysql.createConnection({
      host: this.config.host,
      port: this.config.port,
      user: this.config.user,
      password: this.config.password,
      ...MYSQL_TYPE_OPTIONS,
    });
  }

  private async masterPosition(): Promise<BinlogPosition> {
    const conn = await this.connect();
    try {
      const [rows] = await conn.query('SHOW MASTER STATUS');
      const r = (rows as Array<{ File: string; Position: number }>)[0];
      if (!r) throw new SourceError('BINLOG_OFF', 'SHOW MASTER STATUS returned nothing');
      return { file: r.File, pos: Number(r.Position) };
    } finally {
      await conn.end();
    }
  }

  private baseSource(): Omit<SourceInfo, 'table' | 'snapshot' | 'ts_ms'> {
    return { version: VERSION, connector: this.flavor, name: this.name, db: this.config.database };
  }

  private async snapshot(
    sink: (tx: SourceTransaction) => Promise<void>,
    earlier: BinlogPosition | null,
  ): Promise<BinlogPosition> {
    const conn = await this.connect();
    try {
      const viewAt = await openConsistentView(conn, this.flavor);
      const streamFrom = earlier ?? viewAt;
      this.logger.info({ viewAt, streamFrom, tables: this.tables.size }, 'snapshot started');
      for await (const chunk of readSnapshot(
        this.config,
        conn,
        this.tables,
        this.baseSource(),
        this.logger,
      )) {
        if (this.stopped) break;
        const offset: BinlogOffset = chunk.last
          ? { phase: 'stream', file: streamFrom.file, pos: streamFrom.pos, gtid: null }
          : { phase: 'snapshot', streamFrom };
        await sink({ id: chunk.id, events: chunk.events, offset, snapshot: true });
        this.lastOffset = offset;
      }
      await conn.query('COMMIT');
      return streamFrom;
    } finally {
      await conn.end();
    }
  }

  private stream(from: BinlogPosition, sink: (tx: SourceTransaction) => Promise<void>): void {
    const zongji = new ZongJi({
      host: this.config.host,
      port: this.config.port,
      user: this.config.user,
      password: this.config.password,
      ...MYSQL_TYPE_OPTIONS,
    }) as unknown as ZongJiInstance;
    this.zongji = zongji;
    let events: ChangeEvent[] = [];
    let txStart: BinlogPosition | null = null;
    let txGtid: string | null = null;
    zongji.on('error', (err) => this.fail(err));
    zongji.on('binlog', (e) => {
      if (this.stopped) return;
      const name = e.getEventName();
      if (name === 'mariadbgtid' || name === 'gtid') {
        events = [];
        txGtid = e.gtid ?? null;
        txStart = { file: zongji.options.filename ?? from.file, pos: e.nextPosition };
        return;
      }
      if (name === 'writerows' || name === 'updaterows' || name === 'deleterows') {
        txStart ??= { file: zongji.options.filename ?? from.file, pos: e.nextPosition };
        events.push(...this.rowEvents(e, name, zongji.options.filename ?? from.file, txGtid));
        return;
      }
      if (name === 'query' && events.length === 0) {
        // DDL and other statements outside row transactions still move the reader forward.
        this.receivedPosition = { file: zongji.options.filename ?? from.file, pos: e.nextPosition };
        return;
      }
      if (name === 'xid') {
        const file = zongji.options.filename ?? from.file;
        const pos = zongji.options.position ?? e.nextPosition;
        this.receivedPosition = { file, pos };
        if (events.length > 0) {
          const id = e.gtid ?? txGtid ?? `${txStart?.file}:${txStart?.pos}`;
          const total = events.length;
          const perTable = new Map<string, number>();
          for (const [i, ev] of events.entries()) {
            const n = (perTable.get(ev.source.table) ?? 0) + 1;
            perTable.set(ev.source.table, n);
            ev.transaction = { id, total_order: i + 1, data_collection_order: n };
          }
          this.enqueue(
            { id, events, offset: { phase: 'stream', file, pos, gtid: id }, snapshot: false },
            sink,
            total,
          );
        }
        events = [];
        txStart = null;
        txGtid = null;
      }
    });
    zongji.start({
      serverId: this.config.serverId,
      filename: from.file,
      position: from.pos,
      includeEvents: [
        'tablemap',
        'writerows',
        'updaterows',
        'deleterows',
        'xid',
        'mariadbgtid',
        'gtid',
        'rotate',
      ],
      includeSchema: { [this.config.database]: this.config.tables.length > 0 ? this.config.tables : true },
    });
    this.logger.info({ from }, 'binlog streaming started');
  }

  private rowEvents(e: BinlogEvent, name: string, file: string, gtid: string | null): ChangeEvent[] {
    const meta = e.tableMap?.[e.tableId ?? -1];
    const table = meta ? this.tables.get(meta.tableName) : undefined;
    if (!meta || !table) return [];
    const op: Op = name === 'writerows' ? 'c' : name === 'updaterows' ? 'u' : 'd';
    const source = (row: number): SourceInfo => ({
      ...this.baseSource(),
      table: table.name,
      ts_ms: e.timestamp,
      snapshot: 'false',
      server_id: undefined,
      gtid,
      file,
      pos: e.nextPosition,
      row,
    });
    return (e.rows ?? []).map((raw, row) => {
      const before =
        op === 'u'
          ? normalizeRow(raw.before as Record<string, unknown>, table.columns)
          : op === 'd'
            ? normalizeRow(raw, table.columns)
            : null;
      const after =
        op === 'u'
          ? normalizeRow(raw.after as Record<string, unknown>, table.columns)
          : op === 'c'
            ? normalizeRow(raw, table.columns)
            : null;
      return { before, after, op, ts_ms: Date.now(), source: source(row), transaction: null };
    });
  }

  private enqueue(
    tx: SourceTransaction,
    sink: (tx: SourceTransaction) => Promise<void>,
    _rows: number,
  ): void {
    this.queue.push(tx);
    if (!this.paused && this.queue.length >= this.config.maxQueuedTransactions) {
      this.paused = true;
      this.zongji?.connection?.pause();
    }
    if (this.draining === null) this.draining = this.drain(sink).finally(() => (this.draining = null));
  }

  private async drain(sink: (tx: SourceTransaction) => Promise<void>): Promise<void> {
    while (!this.stopped) {
      const tx = this.queue.shift();
      if (!tx) return;
      try {
        await sink(tx);
      } catch (err) {
        this.fail(err instanceof Error ? err : new Error(String(err)));
        return;
      }
      this.lastOffset = binlogOffsetSchema.parse(tx.offset);
      if (this.paused && this.queue.length < this.config.maxQueuedTransactions / 2) {
        this.paused = false;
        this.zongji?.connection?.resume();
      }
    }
  }

  private fail(err: Error): void {
    if (this.stopped) return;
    this.stopped = true;
    this.zongji?.stop();
    this.zongji = null;
    this.onError(new SourceError('SOURCE_FAILED', `binlog source stopped: ${err.message}`, { cause: err }));
  }
}
