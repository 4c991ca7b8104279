import { type Connection as CoreConnection, createConnection } from 'mysql2';
import { errorMessage, SourceError } from '../../lib/errors.js';
import { type Logger, silentLogger } from '../../lib/logger.js';
import {
  endsTransaction,
  type Row,
  type SourceInfo,
  type SourceOffset,
  type SourceSchemaChange,
} from '../change-event.js';
import { DeliveryQueue, type DeliveryStats } from '../delivery-queue.js';
import type { ChangeSource, DeliveryOptions, Sink } from '../ports.js';
import { deliverResnapshot } from '../resnapshot-delivery.js';
import { deliverSnapshot } from '../snapshot-delivery.js';
import { BinlogStream } from './binlog-stream.js';
import {
  type BinlogOffset,
  type BinlogPosition,
  type BinlogSourceConfig,
  type BinlogSourceConfigInput,
  binlogOffsetSchema,
  binlogSourceConfigSchema,
  connectionOptions,
  type StreamOffset,
} from './config.js';
import { ddlTables } from './ddl.js';
import { GtidPosition } from './gtid-position.js';
import { normalizeRow } from './normalize.js';
import { preflight, type ServerFacts } from './preflight.js';
import { readTableInfo } from './schema-info.js';
import { binlogFiles, binlogHead, positionAtLeast } from './server-position.js';
import { openConsistentView, quoteIdent, readSnapshot, type SnapshotChunk, selectList } from './snapshot.js';
import { planStart, type SnapshotResume } from './start-plan.js';
import { type StreamedTransaction, TransactionAssembler } from './transaction-assembler.js';

const CONNECTOR_VERSION = '0.1.0';

/**
 * Replica ids of the readers running in this process. The server drops an earlier binlog
 * connection when another one registers the same id, so a second reader with the same id would
 * silently end the first one.
 */
const serverIdsInUse = new Set<number>();

export interface BinlogSourceOptions {
  logger?: Logger;
  /**
   * Called once when the source stops on its own after `start` resolved: the binlog connection
   * failed or the sink rejected a transaction. The source has closed its connections by then;
   * restart it from `offset()`. Defaults to logging the error.
   */
  onError?: (err: SourceError) => void;
}

export interface BinlogSourceStats extends DeliveryStats {
  /** Row changes decoded from the binlog since start. */
  streamedRows: number;
}

/**
 * Embedded CDC from a MariaDB/MySQL binlog: an initial consistent snapshot (op 'r') in
 * primary-key chunks, then the row events from the snapshot's binlog position, one
 * SourceTransaction per committed transaction (in fragments of maxTransactionRows rows when it
 * is bigger), each handed to the sink only after the previous one's promise resolved.
 *
 * `start` resolves once the snapshot (if one is needed) has been delivered and the binlog stream
 * is connected; it rejects on preflight, snapshot or sink failures up to then. Later failures go
 * to `onError`. `stop` must not be awaited inside the sink: it waits for the sink call in flight.
 */
export class MysqlBinlogSource implements ChangeSource {
  readonly name: string;
  private readonly config: BinlogSourceConfig;
  private readonly logger: Logger;
  private readonly onError: (err: SourceError) => void;
  private started = false;
  private stopping = false;
  private running: Promise<void> = Promise.resolve();
  private teardown: Promise<void> | null = null;
  private stream: BinlogStream | null = null;
  private queue: DeliveryQueue<StreamedTransaction> | null = null;
  private lastOffset: BinlogOffset | null = null;
  private seen: { file: string; pos: number } | null = null;
  private heartbeat: NodeJS.Timeout | null = null;
  private streamedRows = 0;

  constructor(config: BinlogSourceConfigInput, options: BinlogSourceOptions = {}) {
    this.config = binlogSourceConfigSchema.parse(config);
    this.name = this.config.name;
    this.logger = (options.logger ?? silentLogger).child({ component: 'binlog-source', source: this.name });
    this.onError =
      options.onError ?? ((err) => this.logger.error({ err }, 'binlog source stopped on an error'));
  }

  /** Offset of the last transaction or snapshot chunk the sink accepted. */
  offset(): BinlogOffset | null {
    return this.lastOffset;
  }

  /** True when every transaction received so far has been delivered and accepted. */
  idle(): boolean {
    return this.queue?.idle() ?? true;
  }

  /** The last transaction boundary the reader has passed (delivered or not), for catch-up checks. */
  seenPosition(): { file: string; pos: number } | null {
    return this.seen;
  }

  stats(): BinlogSourceStats {
    const queue = this.queue?.stats() ?? {
      queued: 0,
      maxQueued: 0,
      queuedSize: 0,
      maxQueuedSize: 0,
      pauses: 0,
      delivered: 0,
    };
    return { ...queue, streamedRows: this.streamedRows };
  }

  start(from: SourceOffset | null, sink: Sink, delivery: DeliveryOptions = {}): Promise<void> {
    if (this.started || this.stopping)
      return Promise.reject(
        new SourceError('SOURCE_STARTED', `${this.name} was already started; create a new one`),
      );
    if (serverIdsInUse.has(this.config.serverId))
      return Promise.reject(
        new SourceError(
          'SERVER_ID_IN_USE',
          `replica id ${this.config.serverId} is used by another running source`,
          {
            hint: 'give every source its own cdc.serverId (CQRS_CDC_SERVER_ID)',
          },
        ),
      );
    serverIdsInUse.add(this.config.serverId);
    this.started = true;
    const run = this.run(from, sink, delivery);
    this.running = run.catch(() => undefined);
    return run.catch(async (err: unknown) => {
      await this.close();
      throw err;
    });
  }

  /** Resolves once no further sink call will be made and every connection is closed. */
  stop(): Promise<void> {
    this.stopping = true;
    // Synchronously: a sink that calls stop() must not be followed by another delivery.
    void this.queue?.close();
    this.teardown ??= this.running.then(() => this.close());
    return this.teardown;
  }

  private async run(from: SourceOffset | null, sink: Sink, delivery: DeliveryOptions): Promise<void> {
    const facts = await preflight(this.config);
    const offset = this.parseOffset(from);
    if (this.stopping) return;
    const core = createConnection(connectionOptions(this.config));
    // Failures of a running query reach its caller; this only keeps a dropped idle
    // connection from crashing the process as an unhandled 'error' event.
    core.on('error', (err) => this.logger.warn({ err }, 'snapshot connection error'));
    const conn = core.promise();
    let streamFrom: BinlogPosition | null;
    try {
      await conn.connect();
      const files = offset ? await binlogFiles(conn) : [];
      const plan = planStart(offset, this.config.snapshotMode, (file) => files.includes(file));
      this.logger.info({ plan, version: facts.version, flavor: facts.flavor }, 'binlog source starting');
      if (plan.kind === 'stream') streamFrom = plan.from ?? (await binlogHead(conn, facts.flavor));
      else streamFrom = await this.snapshot(core, facts, plan.streamFrom, plan.resume, sink, delivery);
    } finally {
      // A stopped snapshot may leave a streamed query behind: destroy rather than wait for it.
      if (this.stopping) conn.destroy();
      else await conn.end().catch(() => conn.destroy());
    }
    if (this.stopping || streamFrom === null) return;
    await this.startStream(facts, streamFrom, sink, delivery);
  }

  private parseOffset(from: SourceOffset | null): BinlogOffset | null {
    if (from === null) return null;
    const parsed = binlogOffsetSchema.safeParse(from);
    if (parsed.success) return parsed.data;
    throw new SourceError('OFFSET_INVALID', `the stored offset of ${this.name} is not a binlog offset`, {
      cause: parsed.error,
      hint: 'the offset was written by another connector or version: reset the source offset and resnapshot',
    });
  }

  /** Delivers the snapshot chunk by chunk; returns where streaming starts, or null if stopped. */
  private async snapshot(
    core: CoreConnection,
    facts: ServerFacts,
    earlier: BinlogPosition | null,
    resume: SnapshotResume | null,
    sink: Sink,
    delivery: DeliveryOptions,
  ): Promise<BinlogPosition | null> {
    const conn = core.promise();
    const tables = await readTableInfo(conn, this.config.database, this.config.tables);
    const absent = this.config.tables.filter((t) => !tables.has(t));
    if (absent.length > 0) this.logger.warn({ tables: absent }, 'configured tables not found; not captured');
    const view = await openConsistentView(conn, facts.flavor);
    const streamFrom = earlier ?? view;
    this.logger.info({ view, streamFrom, tables: [...tables.keys()] }, 'snapshot started');
    const source: Omit<SourceInfo, 'table' | 'snapshot' | 'ts_ms'> = {
      ...this.baseSource(facts),
      server_id: facts.serverId,
      gtid: view.gtid,
      file: view.file,
      pos: view.pos,
    };
    // Names the snapshot across its interruptions: every attempt streams from the same place.
    const run = `${streamFrom.file}:${streamFrom.pos}`;
    const chunks = readSnapshot(core, tables, {
      database: this.config.database,
      chunkRows: this.config.snapshotChunkRows,
      source,
      logger: this.logger,
      run,
      resume,
    });
    const offsetOf = (chunk: SnapshotChunk): BinlogOffset =>
      chunk.last
        ? { phase: 'stream', snapshotCompleted: true, ...streamFrom }
        : {
            phase: 'snapshot',
            snapshotCompleted: false,
            ...streamFrom,
            table: chunk.table,
            chunk: chunk.chunkNo,
            rows: chunk.rowsDone,
            after: chunk.after,
          };
    // The connection is destroyed on the way out, which ends the read view.
    const completed = await deliverSnapshot(chunks, sink, {
      offsetOf,
      database: this.config.database,
      run,
      onStored: (chunk) => {
        this.lastOffset = offsetOf(chunk);
      },
      inFlight: delivery.snapshotInFlight ?? 1,
      stopped: () => this.stopping,
    });
    if (!completed) return null;
    await conn.query('COMMIT');
    return streamFrom;
  }

  /**
   * Reads one captured table again (only the rows of `where`, when given) in its own consistent
   * view, as snapshot chunks of run `run`, without touching the binlog or this source's offset.
   * Read whole, the last chunk carries completesTable, so the store removes aggregates gone from
   * the source. For `resnapshot`; the caller makes sure no other reader writes the same store.
   */
  async snapshotTable(
    table: string,
    where: string | undefined,
    run: string,
    sink: Sink,
  ): Promise<{ rows: number; chunks: number }> {
    const facts = await preflight(this.config);
    const core = createConnection(connectionOptions(this.config));
    core.on('error', (err) => this.logger.warn({ err }, 'resnapshot connection error'));
    const conn = core.promise();
    try {
      await conn.connect();
      const tables = await readTableInfo(conn, this.config.database, [table]);
      if (!tables.has(table))
        throw new SourceError('TABLE_MISSING', `table ${table} does not exist in ${this.config.database}`, {
          hint: 'name a captured table of the legacy database',
        });
      const view = await openConsistentView(conn, facts.flavor);
      const source: Omit<SourceInfo, 'table' | 'snapshot' | 'ts_ms'> = {
        ...this.baseSource(facts),
        server_id: facts.serverId,
        gtid: view.gtid,
        file: view.file,
        pos: view.pos,
      };
      const read = readSnapshot(core, tables, {
        database: this.config.database,
        chunkRows: this.config.snapshotChunkRows,
        source,
        logger: this.logger,
        run,
        ...(where === undefined ? {} : { where }),
      });
      const delivered = await deliverResnapshot(read, sink, { db: this.config.database, table, run, where });
      await conn.query('COMMIT');
      return delivered;
    } finally {
      await conn.end().catch(() => conn.destroy());
    }
  }

  private async startStream(
    facts: ServerFacts,
    from: BinlogPosition,
    sink: Sink,
    delivery: DeliveryOptions,
  ): Promise<void> {
    const gtids = GtidPosition.start(facts.flavor, from.gtid);
    const assembler = new TransactionAssembler({
      source: this.baseSource(facts),
      serverId: facts.serverId,
      gtids,
      maxTransactionRows: this.config.maxTransactionRows,
    });
    /** The end of the last group the reader closed, captured or not. */
    let boundary: StreamOffset | null = null;
    const passed = (end: { file: string; pos: number }) => {
      boundary = { phase: 'stream', snapshotCompleted: true, ...end, gtid: gtids.toString() };
    };
    const queue = new DeliveryQueue<StreamedTransaction>({
      highWater: this.config.maxQueuedTransactions,
      highWaterSize: this.config.maxQueuedRows,
      sizeOf: (tx) => tx.events.length,
      // A sink that stores in order (orderedSink) gets the transactions waiting together and
      // stores them as one group; a schema change (tables described first) and a fragment of a
      // large transaction go alone.
      inFlight: delivery.streamInFlight ?? 1,
      alone: (tx) => tx.schemaChanges !== undefined || tx.fragment !== undefined,
      deliver: async (tx) => {
        if (tx.schemaChanges !== undefined) await this.describeTables(tx.schemaChanges);
        await sink(tx);
        // An unfinished fragment is no resume point: a restart replays its transaction whole.
        if (endsTransaction(tx)) this.lastOffset = tx.offset;
      },
      pause: () => this.stream?.pause(),
      resume: () => this.stream?.resume(),
      onError: (cause) =>
        this.fail(
          new SourceError('SINK_FAILED', `the sink rejected a transaction: ${errorMessage(cause)}`, {
            cause,
          }),
        ),
    });
    this.queue = queue;
    const stream = new BinlogStream(
      this.config,
      {
        begin: (start) => assembler.begin(start),
        rows: (input) => {
          this.streamedRows += input.rows.length;
          const fragments = assembler.rows(input);
          if (!this.stopping) for (const fragment of fragments) queue.push(fragment);
        },
        commit: (end) => {
          const tx = assembler.commit(end);
          if (tx && !this.stopping) queue.push(tx);
          passed(end);
        },
        ddl: ({ sql, schema, end }) => {
          const captured = (table: string) =>
            this.config.tables.length === 0 || this.config.tables.includes(table);
          const tables = [
            ...new Set(
              ddlTables(sql, schema)
                .filter((t) => t.db === this.config.database && captured(t.table))
                .map((t) => t.table),
            ),
          ];
          if (tables.length === 0) {
            // Its group has no commit marker: closed here, so a heartbeat may pass it.
            assembler.commit(end);
            passed(end);
            return;
          }
          this.logger.warn({ tables, ddl: sql, at: end }, 'schema change on captured tables');
          const changes = tables.map(
            (table): SourceSchemaChange => ({
              db: this.config.database,
              table,
              ddl: sql,
              position: `${end.file}:${end.pos}`,
              columns: [],
              sample: [],
            }),
          );
          const tx = assembler.ddl(end, changes);
          if (!this.stopping) queue.push(tx);
          passed(end);
        },
        position: (at) => {
          this.seen = at;
        },
        error: (cause) =>
          this.fail(
            new SourceError('BINLOG_READ_FAILED', `reading the binlog failed: ${errorMessage(cause)}`, {
              cause,
              hint:
                (cause as { errno?: unknown }).errno === 1236
                  ? "the binlog at the stored position is gone: restart with snapshotMode 'when_needed'"
                  : 'restart the source from its last offset once the server is reachable',
            }),
          ),
      },
      this.logger,
    );
    this.stream = stream;
    if (this.config.heartbeatIntervalMs > 0) {
      // With everything before it delivered, the last group end passed is a resume point.
      this.heartbeat = setInterval(() => {
        const last = this.lastOffset;
        // A group open now begins after `boundary`; only one whose fragments are staged must
        // finish first (under steady writes elsewhere most ticks fall inside some group).
        if (this.stopping || boundary === null || assembler.staging || !queue.idle()) return;
        if (last?.phase === 'stream' && positionAtLeast(last, boundary)) return;
        queue.push({
          id: `heartbeat:${boundary.file}:${boundary.pos}`,
          events: [],
          offset: boundary,
          snapshot: false,
        });
      }, this.config.heartbeatIntervalMs);
      this.heartbeat.unref();
    }
    this.seen = { file: from.file, pos: from.pos };
    if (this.lastOffset === null) this.lastOffset = { phase: 'stream', snapshotCompleted: true, ...from };
    await stream.start(from);
    this.logger.info({ from }, 'binlog streaming started');
  }

  /**
   * Fills in each changed table's columns now and a few of its rows, read and normalised as a
   * snapshot reads them, so the capture rules can be tried on the new shape.
   */
  private async describeTables(changes: SourceSchemaChange[]): Promise<void> {
    const conn = createConnection(connectionOptions(this.config)).promise();
    try {
      await conn.connect();
      await conn.query("SET SESSION time_zone = '+00:00'");
      const tables = await readTableInfo(
        conn,
        this.config.database,
        changes.map((c) => c.table),
      );
      for (const change of changes) {
        const table = tables.get(change.table);
        change.columns = table?.columns.map((c) => c.name) ?? [];
        if (table === undefined) continue;
        const [rows] = await conn.query(
          `SELECT ${selectList(table)} FROM ${quoteIdent(this.config.database)}.${quoteIdent(table.name)} LIMIT 5`,
        );
        change.sample = (rows as Record<string, unknown>[]).map((r): Row => normalizeRow(r, table.columns));
      }
    } finally {
      await conn.end().catch(() => conn.destroy());
    }
  }

  private baseSource(facts: ServerFacts): Omit<SourceInfo, 'table' | 'snapshot' | 'ts_ms'> {
    return { version: CONNECTOR_VERSION, connector: facts.flavor, name: this.name, db: this.config.database };
  }

  /** A failure after start: stop everything, then tell the owner. */
  private fail(err: SourceError): void {
    if (this.stopping) return;
    this.logger.error({ err }, 'binlog source failing');
    void this.stop().then(() => this.onError(err));
  }

  private async close(): Promise<void> {
    this.stopping = true;
    if (this.heartbeat !== null) clearInterval(this.heartbeat);
    this.heartbeat = null;
    await this.stream?.stop();
    await this.queue?.close();
    serverIdsInUse.delete(this.config.serverId);
  }
}
