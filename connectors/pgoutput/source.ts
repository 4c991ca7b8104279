import pg from 'pg';
import type { Pgoutput } from 'pg-logical-replication';
import { z } from 'zod';
import { errorMessage, SourceError } from '../../lib/errors.js';
import { type Logger, silentLogger } from '../../lib/logger.js';
import {
  endsTransaction,
  type Row,
  type SourceInfo,
  type SourceOffset,
  type SourceSchemaChange,
} from '../change-event.js';
import { DeliveryQueue } from '../delivery-queue.js';
import type { ChangeSource, DeliveryOptions, Sink } from '../ports.js';
import { deliverResnapshot } from '../resnapshot-delivery.js';
import { deliverSnapshot } from '../snapshot-delivery.js';
import {
  connectionConfig,
  type PgoutputOffset,
  type PgoutputSourceConfig,
  type PgoutputSourceConfigInput,
  pgoutputOffsetSchema,
  pgoutputSourceConfigSchema,
} from './config.js';
import { canonicalLsn, parseLsn } from './lsn.js';
import { ReplicationStream } from './replication-stream.js';
import {
  type CreatedSlot,
  createSlot,
  dropSlot,
  ensurePublication,
  publishedTables,
  readSlot,
} from './slot.js';
import { openSnapshotView, readSnapshot, type SnapshotChunk, type SnapshotResumePoint } from './snapshot.js';
import {
  type ChangeMessage,
  type StreamedTransaction,
  TransactionAssembler,
} from './transaction-assembler.js';
import { DOMAIN_STEPS_SQL, type DomainStep, PgTypeResolver, pgTextValue } from './values.js';

const CONNECTOR_VERSION = '0.1.0';

const domainRow = z.object({ oid: z.string(), base: z.string(), typmod: z.string() });

export interface PgoutputSourceOptions {
  logger?: Logger;
  /**
   * Called once when the source stops on its own after `start` resolved: replication failed
   * or the sink rejected a transaction. Restart it from `offset()`. Defaults to logging.
   */
  onError?: (err: SourceError) => void;
}

/** What `start` does, decided from the stored offset, the snapshot mode and the slot. */
type Plan =
  /**
   * Snapshot, then stream from `streamFrom`; null: create the slot, exporting the snapshot's
   * view. With `resume`, only what an interrupted attempt had not delivered yet.
   */
  | { kind: 'snapshot'; streamFrom: string | null; resume: SnapshotResumePoint | null }
  /** Stream only, from `from`; null: from the slot's position, creating it when missing. */
  | { kind: 'stream'; from: string | null };

/**
 * What the stream hands on in commit order: a transaction or a fragment of one, or the end of a
 * commit that captured nothing, which only moves the position on.
 */
type Delivery = { tx: StreamedTransaction } | { passed: string };

/**
 * Embedded CDC from PostgreSQL logical replication with the built-in pgoutput plugin: an
 * initial snapshot (op 'r') read in the snapshot the slot exported when it was created, then
 * the slot's stream from its consistent point, one SourceTransaction per committed transaction
 * (in fragments of maxTransactionRows rows when it is bigger), each handed to the sink only
 * after the previous one's promise resolved, or with DeliveryOptions.streamInFlight up to that
 * many pending (a fragment or a schema change alone). The replication socket is not read while
 * the sink works on a fragment, or while twice streamInFlight transactions (or a fragment's
 * worth of rows) wait, so memory stays bounded for any transaction size. The slot is
 * acknowledged (the server may recycle WAL) only up to the last commit the sink accepted, never
 * inside a transaction.
 *
 * `start` resolves once the snapshot (if one is needed) has been delivered and streaming has
 * started; later failures go to `onError`. `stop` must not be awaited inside the sink.
 */
export class PgoutputSource implements ChangeSource {
  readonly name: string;
  private readonly config: PgoutputSourceConfig;
  private readonly logger: Logger;
  private readonly onError: (err: SourceError) => void;
  private started = false;
  private stopping = false;
  private failed = false;
  private running: Promise<void> = Promise.resolve();
  private teardown: Promise<void> | null = null;
  private stream: ReplicationStream | null = null;
  private lastOffset: PgoutputOffset | null = null;
  private delivering: Promise<void> = Promise.resolve();
  private queue: DeliveryQueue<Delivery> | null = null;
  /** Deliveries the sink may have pending at once (DeliveryOptions.streamInFlight). */
  private inFlight = 1;
  /** Set while the queue holds its high water: the stream's handler waits for it to open. */
  private full: { opened: Promise<void>; open: () => void } | null = null;
  private streamedRows = 0;
  private seen: string | null = null;
  private heartbeat: NodeJS.Timeout | null = null;
  /** Domain → base type of streamed columns, looked up on `catalog` (opened on first need). */
  private readonly types = new PgTypeResolver((oids) => this.domainSteps(oids));
  private readonly relations = new WeakMap<Pgoutput.MessageRelation, Pgoutput.MessageRelation>();
  private catalog: pg.Client | null = null;
  /** Column shape of each captured relation as its last Relation message described it. */
  private readonly relationShapes = new Map<number, string>();
  /** Schema changes seen in the open transaction, delivered with it. */
  private pendingSchemaChanges: SourceSchemaChange[] = [];

  constructor(config: PgoutputSourceConfigInput, options: PgoutputSourceOptions = {}) {
    this.config = pgoutputSourceConfigSchema.parse(config);
    this.name = this.config.name;
    this.logger = (options.logger ?? silentLogger).child({ component: 'pgoutput-source', source: this.name });
    this.onError =
      options.onError ?? ((err) => this.logger.error({ err }, 'pgoutput source stopped on an error'));
  }

  /** Offset of the last transaction or snapshot chunk the sink accepted. */
  offset(): PgoutputOffset | null {
    return this.lastOffset;
  }

  /**
   * The WAL position up to which the sink has accepted every captured change, for catch-up
   * checks against the server's WAL insert position: the end of the last delivered (or empty)
   * commit, or a keepalive's send position once everything received before it was delivered.
   * Null until streaming starts (a snapshot is still being delivered).
   */
  seenLsn(): string | null {
    return this.seen;
  }

  /**
   * Row changes streamed since start, and the most replication messages that ever waited to
   * be handled (see ReplicationStream.maxWaitingMessages): the part of the source's memory that
   * is not one fragment filling and one being delivered.
   */
  stats(): { streamedRows: number; maxWaitingMessages: number } {
    return { streamedRows: this.streamedRows, maxWaitingMessages: this.stream?.maxWaitingMessages() ?? 0 };
  }

  start(from: SourceOffset | null, sink: Sink, delivery: DeliveryOptions = {}): Promise<void> {
    if (this.started || this.stopping) {
      return Promise.reject(
        new SourceError('SOURCE_STARTED', `${this.name} was already started; create a new one`),
      );
    }
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
    this.teardown ??= this.running.then(() => this.close());
    return this.teardown;
  }

  private async run(from: SourceOffset | null, sink: Sink, delivery: DeliveryOptions): Promise<void> {
    const offset = this.parseOffset(from);
    const client = new pg.Client(connectionConfig(this.config));
    // Failures of a running query reach its caller; this keeps a dropped idle connection
    // from crashing the process as an unhandled 'error' event.
    client.on('error', (err) => this.logger.warn({ err }, 'control connection error'));
    let streamFrom: string | null = null;
    try {
      try {
        await client.connect();
      } catch (cause) {
        throw new SourceError(
          'SOURCE_UNREACHABLE',
          `cannot connect to PostgreSQL at ${this.config.host}:${this.config.port}`,
          {
            cause,
            hint: 'is the server running and the user allowed to log in? (`bash scripts/legacy-pg.sh up`)',
          },
        );
      }
      await ensurePublication(client, this.config);
      const plan = await this.plan(client, offset);
      this.logger.info({ plan }, 'pgoutput source starting');
      if (plan.kind === 'stream') streamFrom = plan.from ?? (await this.streamStart(client));
      else streamFrom = await this.snapshot(client, plan, sink, delivery);
    } finally {
      await client.end().catch(() => undefined);
    }
    if (this.stopping || streamFrom === null) return;
    await this.startStream(streamFrom, sink, delivery.streamInFlight ?? 1);
  }

  private parseOffset(from: SourceOffset | null): PgoutputOffset | null {
    if (from === null) return null;
    const parsed = pgoutputOffsetSchema.safeParse(from);
    if (parsed.success) return parsed.data;
    throw new SourceError('OFFSET_INVALID', `the stored offset of ${this.name} is not a pgoutput offset`, {
      cause: parsed.error,
      hint: 'the offset was written by another connector or version: reset the source offset and resnapshot',
    });
  }

  private async plan(client: pg.Client, offset: PgoutputOffset | null): Promise<Plan> {
    const slot = await readSlot(client, this.config);
    if (slot?.active) {
      throw new SourceError(
        'SLOT_IN_USE',
        `replication slot ${this.config.slotName} is in use by another connection`,
        {
          hint: 'stop the other reader, or give this source its own slotName',
        },
      );
    }
    if (offset === null) {
      if (this.config.snapshotMode === 'never') return { kind: 'stream', from: null };
      // Nothing was delivered from this slot, so it can be replaced by one that exports a snapshot.
      if (slot !== null) await dropSlot(client, this.config.slotName);
      return { kind: 'snapshot', streamFrom: null, resume: null };
    }
    if (slot === null) {
      throw new SourceError(
        'SLOT_MISSING',
        `replication slot ${this.config.slotName} is gone: the changes since offset ${offset.lsn} are lost`,
        { hint: 'reset the stored offset to take a new snapshot' },
      );
    }
    // An interrupted snapshot goes on after its last delivered chunk in a new read view while
    // streaming still starts at the slot's position, which the slot keeps: every change after
    // each chunk was read is replayed on top of the rows, and consumers apply full row images
    // idempotently (as in the binlog reader, connectors/binlog/start-plan.ts).
    if (offset.phase === 'snapshot')
      return {
        kind: 'snapshot',
        streamFrom: offset.lsn,
        resume: {
          table: offset.table,
          after: offset.after,
          nextChunk: offset.chunk + 1,
          rowsDone: offset.rows,
        },
      };
    return { kind: 'stream', from: offset.lsn };
  }

  private async streamStart(client: pg.Client): Promise<string> {
    const slot = await readSlot(client, this.config);
    if (slot?.confirmedFlushLsn) return slot.confirmedFlushLsn;
    const created = await createSlot(this.config, false);
    await created.release();
    return created.consistentPoint;
  }

  /** Delivers the snapshot chunk by chunk; returns where streaming starts, or null if stopped. */
  private async snapshot(
    client: pg.Client,
    plan: Extract<Plan, { kind: 'snapshot' }>,
    sink: Sink,
    delivery: DeliveryOptions,
  ): Promise<string | null> {
    const view: CreatedSlot =
      plan.streamFrom === null
        ? await createSlot(this.config, true)
        : { consistentPoint: plan.streamFrom, snapshotName: null, release: async () => undefined };
    const streamFrom = view.consistentPoint;
    let txId: number;
    try {
      txId = await openSnapshotView(client, view.snapshotName);
    } finally {
      // Once imported, the view lives in our transaction; the export can end.
      await view.release();
    }
    const tables = await publishedTables(client, this.config);
    this.logger.info({ streamFrom, tables }, 'snapshot started');
    const source: Omit<SourceInfo, 'table' | 'snapshot' | 'ts_ms'> = {
      ...this.baseSource(),
      schema: this.config.schema,
      lsn: streamFrom,
      txId,
    };
    const run = streamFrom;
    const chunks = readSnapshot(client, {
      schema: this.config.schema,
      tables,
      chunkRows: this.config.snapshotChunkRows,
      source,
      logger: this.logger,
      run,
      resume: plan.resume,
    });
    const offsetOf = (chunk: SnapshotChunk): PgoutputOffset =>
      chunk.last
        ? { phase: 'stream', snapshotCompleted: true, lsn: streamFrom, txId: null }
        : {
            phase: 'snapshot',
            snapshotCompleted: false,
            lsn: streamFrom,
            table: chunk.table,
            chunk: chunk.chunkNo,
            rows: chunk.rowsDone,
            after: chunk.after,
          };
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
    await client.query('COMMIT');
    return streamFrom;
  }

  /**
   * Reads one published table again (only the rows of `where`, when given) in its own
   * repeatable-read view, as snapshot chunks of run `run`, without touching the slot or this
   * source's offset. Read whole, the last chunk carries completesTable (see the binlog reader).
   */
  async snapshotTable(
    table: string,
    where: string | undefined,
    run: string,
    sink: Sink,
  ): Promise<{ rows: number; chunks: number }> {
    const client = new pg.Client(connectionConfig(this.config));
    client.on('error', (err) => this.logger.warn({ err }, 'resnapshot connection error'));
    try {
      await client.connect();
      const published = await publishedTables(client, this.config);
      if (!published.includes(table))
        throw new SourceError('TABLE_MISSING', `table ${table} is not captured (not in the publication)`, {
          hint: 'name a captured table of the legacy database',
        });
      const txId = await openSnapshotView(client, null);
      const [{ lsn } = { lsn: '0/0' }] = (
        await client.query<{ lsn: string }>('SELECT pg_current_wal_lsn()::text AS lsn')
      ).rows;
      const read = readSnapshot(client, {
        schema: this.config.schema,
        tables: [table],
        chunkRows: this.config.snapshotChunkRows,
        source: { ...this.baseSource(), schema: this.config.schema, lsn, txId },
        logger: this.logger,
        run,
        ...(where === undefined ? {} : { where }),
      });
      const delivered = await deliverResnapshot(read, sink, { db: this.config.database, table, run, where });
      await client.query('COMMIT');
      return delivered;
    } finally {
      await client.end().catch(() => undefined);
    }
  }

  private async startStream(from: string, sink: Sink, inFlight: number): Promise<void> {
    const assembler = new TransactionAssembler({
      source: this.baseSource(),
      from,
      maxTransactionRows: this.config.maxTransactionRows,
    });
    this.inFlight = inFlight;
    this.queue = new DeliveryQueue<Delivery>({
      inFlight,
      // A sink that stores in order (orderedSink) gets the transactions that waited together and
      // stores them as one group; a fragment of a large transaction and a schema change go alone.
      alone: (d) => 'tx' in d && (d.tx.fragment !== undefined || d.tx.schemaChanges !== undefined),
      highWater: Math.max(2, 2 * inFlight),
      highWaterSize: this.config.maxTransactionRows,
      sizeOf: (d) => ('tx' in d ? d.tx.events.length : 0),
      deliver: (d) => this.deliver(d, sink),
      pause: () => {
        let open = () => {};
        const opened = new Promise<void>((resolve) => {
          open = resolve;
        });
        this.full = { opened, open };
      },
      resume: () => this.openQueue(),
      onError: (cause) =>
        this.fail(
          cause instanceof SourceError
            ? cause
            : new SourceError('SINK_FAILED', `the sink rejected a transaction: ${errorMessage(cause)}`, {
                cause,
              }),
        ),
    });
    const stream = new ReplicationStream(
      this.config,
      {
        message: (lsn, message) => {
          // Chained so stop() can wait for the delivery in flight.
          this.delivering = this.handle(assembler, lsn, message);
          return this.delivering;
        },
        idle: (lsn) => {
          // Not past a commit still on its way to the sink: the server would recycle its WAL.
          if (!this.failed && !this.stopping && !assembler.inTransaction && this.queue?.idle() === true) {
            stream.acknowledge(lsn);
            this.passed(lsn);
          }
        },
        error: (cause) =>
          this.fail(
            new SourceError('REPLICATION_FAILED', `logical replication failed: ${errorMessage(cause)}`, {
              cause,
              hint: 'restart the source from its last offset once the server is reachable',
            }),
          ),
      },
      this.logger,
    );
    this.stream = stream;
    // Everything before `from` was delivered: by the snapshot, or by the run that stored the offset.
    this.passed(from);
    this.lastOffset ??= { phase: 'stream', snapshotCompleted: true, lsn: from, txId: null };
    if (this.config.heartbeatIntervalMs > 0) {
      // Outside a transaction, with everything before delivered: the stored offset may move to
      // what the source passed (commits of other tables, keepalives), as the slot already has.
      this.heartbeat = setInterval(() => {
        const last = this.lastOffset;
        const seen = this.seen;
        if (this.stopping || this.failed || seen === null || last?.phase !== 'stream') return;
        if (assembler.inTransaction || this.queue?.idle() !== true) return;
        if (parseLsn(seen) <= parseLsn(last.lsn)) return;
        const offset = {
          phase: 'stream' as const,
          snapshotCompleted: true as const,
          lsn: seen,
          txId: last.txId,
        };
        this.queue.push({ tx: { id: `heartbeat:${seen}`, events: [], offset, snapshot: false } });
      }, this.config.heartbeatIntervalMs);
      this.heartbeat.unref();
    }
    try {
      await stream.start(from);
    } catch (cause) {
      throw new SourceError(
        'REPLICATION_FAILED',
        `cannot start replication from slot ${this.config.slotName}: ${errorMessage(cause)}`,
        {
          cause,
        },
      );
    }
  }

  private async handle(
    assembler: TransactionAssembler,
    lsn: string,
    message: Pgoutput.Message,
  ): Promise<void> {
    if (this.stopping || this.failed) return;
    switch (message.tag) {
      case 'begin':
        assembler.begin(message);
        return;
      case 'insert':
      case 'update':
      case 'delete': {
        let change: ChangeMessage;
        try {
          change = { ...message, relation: await this.resolvedRelation(message.relation) } as ChangeMessage;
        } catch (cause) {
          this.fail(
            new SourceError(
              'TYPE_LOOKUP_FAILED',
              `cannot read the column types of ${message.relation.schema}.${message.relation.name}: ${errorMessage(cause)}`,
              { cause, hint: 'restart the source from its last offset once the server is reachable' },
            ),
          );
          return;
        }
        this.streamedRows++;
        const full = assembler.change(lsn, change);
        // Delivered before the next message is read (the stream waits for this handler), so
        // at most one fragment fills while another is stored, whatever the transaction's size.
        if (full !== null) await this.handOn({ tx: full }, true);
        return;
      }
      case 'relation':
        this.relationSeen(lsn, message);
        return;
      case 'truncate':
        this.truncateSeen(lsn, message);
        return;
      case 'commit': {
        const tx = assembler.commit(message, this.pendingSchemaChanges.length > 0);
        if (tx !== null && this.pendingSchemaChanges.length > 0) {
          tx.schemaChanges = this.pendingSchemaChanges;
          this.pendingSchemaChanges = [];
          try {
            await this.describeTables(tx.schemaChanges);
          } catch (cause) {
            this.fail(
              new SourceError(
                'TYPE_LOOKUP_FAILED',
                `cannot read the changed tables: ${errorMessage(cause)}`,
                {
                  cause,
                  hint: 'restart the source from its last offset once the server is reachable',
                },
              ),
            );
            return;
          }
        }
        if (tx === null) {
          // Nothing captured: only the position moves on, once what came before it was stored.
          if (message.commitEndLsn !== null)
            await this.handOn({ passed: canonicalLsn(message.commitEndLsn) }, false);
          return;
        }
        await this.handOn({ tx }, false);
        return;
      }
      default:
        return;
    }
  }

  /**
   * Queues a delivery and returns once the stream may read on: when it is delivered (`settle`,
   * and always with one in flight, which keeps the socket still while the sink works), or
   * else once the queue is below its high water.
   */
  private async handOn(delivery: Delivery, settle: boolean): Promise<void> {
    const queue = this.queue as DeliveryQueue<Delivery>;
    queue.push(delivery);
    if (settle || this.inFlight === 1) await queue.settled();
    else await this.full?.opened;
  }

  private openQueue(): void {
    this.full?.open();
    this.full = null;
  }

  /**
   * Hands a transaction or fragment to the sink, in commit order. An unfinished fragment moves
   * neither the offset nor the acknowledged LSN: a restart replays its transaction from the start.
   */
  private async deliver(delivery: Delivery, sink: Sink): Promise<void> {
    if ('passed' in delivery) {
      this.stream?.acknowledge(delivery.passed);
      this.passed(delivery.passed);
      return;
    }
    const { tx } = delivery;
    try {
      await sink(tx);
    } catch (cause) {
      const what = tx.fragment === undefined ? '' : ` (fragment ${tx.fragment.index})`;
      throw new SourceError(
        'SINK_FAILED',
        `the sink rejected transaction ${tx.id}${what}: ${errorMessage(cause)}`,
        {
          cause,
        },
      );
    }
    if (!endsTransaction(tx)) return;
    this.lastOffset = tx.offset;
    this.stream?.acknowledge(tx.offset.lsn);
    this.passed(tx.offset.lsn);
  }

  /**
   * The relation with every DOMAIN column typed by its base type (pgoutput names the domain),
   * so streamed values are normalised as the snapshot's and the legacy reads' are. Computed
   * once per Relation message: the decoder replaces the object when the table changes.
   */
  private async resolvedRelation(relation: Pgoutput.MessageRelation): Promise<Pgoutput.MessageRelation> {
    const known = this.relations.get(relation);
    if (known !== undefined) return known;
    if (this.types.needs(relation.columns)) await this.types.load(relation.columns);
    const resolved = {
      ...relation,
      columns: relation.columns.map((column) => ({ ...column, ...this.types.base(column) })),
    };
    this.relations.set(relation, resolved);
    return resolved;
  }

  /**
   * pgoutput sends a Relation message before a relation's first change in a session and again
   * after its definition changed (ALTER TABLE): a captured relation whose columns differ from
   * the ones it had in this session is a schema change. (A change made while no reader ran is
   * not seen this way: its first Relation message has nothing to compare with.)
   */
  private captures(relation: Pgoutput.MessageRelation): boolean {
    const captured = this.config.tables.length === 0 || this.config.tables.includes(relation.name);
    return relation.schema === this.config.schema && captured;
  }

  /**
   * Debezium skips truncates (skipped.operations=t by default), and so does this reader: no row
   * deletes. Each truncated captured table is recorded as a schema change, as the binlog's
   * TRUNCATE statement is, so `schema-changes` says the read models still hold its rows.
   */
  private truncateSeen(lsn: string, message: Pgoutput.MessageTruncate): void {
    for (const relation of message.relations)
      if (this.captures(relation))
        this.schemaChangeSeen(
          lsn,
          relation,
          `TRUNCATE ${relation.schema}.${relation.name}${message.cascade ? ' CASCADE' : ''}`,
        );
  }

  private relationSeen(lsn: string, relation: Pgoutput.MessageRelation): void {
    if (!this.captures(relation)) return;
    const shape = JSON.stringify(relation.columns.map((c) => [c.name, c.typeOid, c.typeMod]));
    const before = this.relationShapes.get(relation.relationOid);
    this.relationShapes.set(relation.relationOid, shape);
    if (before === undefined || before === shape) return;
    const names = (text: string) => (JSON.parse(text) as Array<[string]>).map(([n]) => n).join(', ');
    this.schemaChangeSeen(
      lsn,
      relation,
      `relation ${relation.schema}.${relation.name} changed: (${names(before)}) → (${names(shape)})`,
    );
  }

  /** Recorded with the transaction it came in (its rows and columns read at the commit). */
  private schemaChangeSeen(lsn: string, relation: Pgoutput.MessageRelation, ddl: string): void {
    this.logger.warn({ table: relation.name, lsn, ddl }, 'schema change on a captured table');
    this.pendingSchemaChanges.push({
      db: this.config.database,
      table: relation.name,
      ddl,
      position: canonicalLsn(lsn),
      columns: relation.columns.map((c) => c.name),
      sample: [],
    });
  }

  /** A few current rows of each changed table, normalised as snapshot rows are. */
  private async describeTables(changes: SourceSchemaChange[]): Promise<void> {
    const client = await this.catalogClient();
    for (const change of changes) {
      const page = await client.query<Array<string | null>>({
        text: `SELECT * FROM "${this.config.schema.replace(/"/g, '""')}"."${change.table.replace(/"/g, '""')}" LIMIT 5`,
        rowMode: 'array',
        types: { getTypeParser: () => (value: string) => value },
      });
      change.columns = page.fields.map((f) => f.name);
      change.sample = page.rows.map((values) => {
        const row: Row = {};
        page.fields.forEach((field, i) => {
          row[field.name] = pgTextValue(values[i] ?? null, {
            typeOid: field.dataTypeID,
            typeMod: field.dataTypeModifier,
          });
        });
        return row;
      });
    }
  }

  private async catalogClient(): Promise<pg.Client> {
    if (this.catalog === null) {
      const client = new pg.Client(connectionConfig(this.config));
      client.on('error', (err) => this.logger.warn({ err }, 'catalog connection error'));
      try {
        await client.connect();
      } catch (cause) {
        await client.end().catch(() => undefined);
        throw cause;
      }
      this.catalog = client;
    }
    return this.catalog;
  }

  private async domainSteps(oids: number[]): Promise<DomainStep[]> {
    const catalog = await this.catalogClient();
    const result = await catalog.query(DOMAIN_STEPS_SQL, [oids]);
    return result.rows.map((r) => {
      const row = domainRow.parse(r);
      return { oid: Number(row.oid), baseOid: Number(row.base), baseTypeMod: Number(row.typmod) };
    });
  }

  /** Moves `seenLsn()` forward to `lsn` (never back: keepalives may trail a delivered commit). */
  private passed(lsn: string): void {
    if (this.seen === null || parseLsn(lsn) > parseLsn(this.seen)) this.seen = canonicalLsn(lsn);
  }

  private baseSource(): Omit<SourceInfo, 'table' | 'snapshot' | 'ts_ms' | 'schema' | 'lsn' | 'txId'> {
    return { version: CONNECTOR_VERSION, connector: 'postgresql', name: this.name, db: this.config.database };
  }

  /** A failure after start: stop everything, then tell the owner. */
  private fail(err: SourceError): void {
    if (this.stopping || this.failed) return;
    this.failed = true;
    this.logger.error({ err }, 'pgoutput source failing');
    void this.stop().then(() => this.onError(err));
  }

  private async close(): Promise<void> {
    this.stopping = true;
    if (this.heartbeat !== null) clearInterval(this.heartbeat);
    this.heartbeat = null;
    // What waits is dropped (a restart reads it again from the last stored offset); what the
    // sink has is waited for, and a handler waiting for room is let go.
    await this.queue?.close();
    this.openQueue();
    await this.delivering.catch(() => undefined);
    await this.stream?.stop();
    const catalog = this.catalog;
    this.catalog = null;
    await catalog?.end().catch(() => undefined);
  }
}
