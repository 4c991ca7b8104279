import { LogicalReplicationService, type Pgoutput, PgoutputPlugin } from 'pg-logical-replication';
import type { Logger } from '../../lib/logger.js';
import { connectionConfig, type PgoutputSourceConfig, publicationOf } from './config.js';
import { formatLsn, parseLsn } from './lsn.js';

/**
 * pgoutput with every value kept as the server's text. The library hands tuple values to
 * node-postgres' global type parsers, which would turn NUMERIC into floats and TIMESTAMP(6)
 * into millisecond Dates; values.ts converts the text instead. Relation messages are parsed
 * synchronously before the tuples that refer to them, so swapping their parsers here covers
 * every later row of the relation, without touching the process-wide parser registry.
 */
class TextPgoutputPlugin extends PgoutputPlugin {
  constructor(
    options: Pgoutput.Options,
    /** Called for every message as it arrives, before it waits in the flow-control queue. */
    private readonly onArrival: () => void,
  ) {
    super(options);
  }

  override parse(buffer: Buffer): Pgoutput.Message {
    const message = super.parse(buffer);
    this.onArrival();
    if (message.tag === 'relation') {
      for (const column of message.columns) column.parser = (raw: unknown) => raw;
    }
    return message;
  }
}

export interface StreamHandlers {
  /** One decoded message and the LSN of its WAL record; the next waits for this promise. */
  message: (lsn: string, message: Pgoutput.Message) => Promise<void>;
  /**
   * Every message received so far has been handled and the server has sent all WAL up to
   * `lsn` (a keepalive's position): the owner may acknowledge it if no transaction is open.
   */
  idle: (lsn: string) => void;
  /** The connection failed or the server ended replication. */
  error: (err: unknown) => void;
}

/**
 * The replication connection of one slot: START_REPLICATION from an LSN, messages one at a
 * time with back-pressure (the socket is paused while a handler runs), and standby status
 * updates that only ever report what the owner acknowledged, never merely what was received.
 */
export class ReplicationStream {
  private readonly service: LogicalReplicationService;
  private acknowledged: string | null = null;
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;
  /** Failures before streaming started reject `start` instead of reaching handlers.error. */
  private streaming = false;
  private received = 0;
  private handled = 0;
  private maxWaiting = 0;

  constructor(
    private readonly config: PgoutputSourceConfig,
    private readonly handlers: StreamHandlers,
    private readonly logger: Logger,
  ) {
    this.service = new LogicalReplicationService(connectionConfig(config), {
      acknowledge: { auto: false, timeoutSeconds: 0 },
      flowControl: { enabled: true },
    });
    this.service.on('data', async (lsn: string, message: Pgoutput.Message) => {
      try {
        await this.handlers.message(lsn, message);
      } finally {
        this.handled++;
      }
    });
    this.service.on('error', (err: Error) => {
      if (this.streaming && !this.stopped) this.handlers.error(err);
    });
    // Keepalives carry the server's send position. While the captured tables are idle, it moves
    // on with everyone else's WAL; acknowledging it (once nothing received is still waiting)
    // lets the server recycle that WAL instead of holding it for the last captured commit.
    // The server asks for a reply when its wal_sender_timeout is half gone.
    this.service.on('heartbeat', (lsn: string, _ts: number, shouldRespond: boolean) => {
      if (this.streaming && !this.stopped && this.received === this.handled) this.handlers.idle(lsn);
      if (shouldRespond) void this.report();
    });
  }

  /** Resolves once the server has started streaming from `from`. */
  start(from: string): Promise<void> {
    this.acknowledged = from;
    return new Promise<void>((resolve, reject) => {
      this.service.once('start', () => {
        this.streaming = true;
        this.timer = setInterval(() => void this.report(), this.config.statusIntervalSec * 1000);
        this.logger.info({ slot: this.config.slotName, from }, 'pgoutput streaming started');
        resolve();
      });
      const plugin = new TextPgoutputPlugin(
        { protoVersion: 1, publicationNames: [publicationOf(this.config)] },
        () => {
          this.received++;
          this.maxWaiting = Math.max(this.maxWaiting, this.received - this.handled);
        },
      );
      this.service.subscribe(plugin, this.config.slotName, from).then(
        () => {
          if (!this.stopped) this.handlers.error(new Error('the server ended logical replication'));
        },
        (err: unknown) => {
          if (!this.streaming) reject(err);
          else if (!this.stopped) this.handlers.error(err);
        },
      );
    });
  }

  /**
   * Most messages ever received but not yet handled. The library pauses the socket while
   * handlers run, so this stays within what one socket read carries, whatever the
   * transaction's size.
   */
  maxWaitingMessages(): number {
    return this.maxWaiting;
  }

  /** Lets the server recycle WAL up to `lsn`: everything before it has been delivered. */
  acknowledge(lsn: string): void {
    if (this.acknowledged !== null && parseLsn(lsn) <= parseLsn(this.acknowledged)) return;
    this.acknowledged = lsn;
    void this.report();
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    await this.report();
    await this.service.destroy();
  }

  private async report(): Promise<void> {
    if (this.acknowledged === null) return;
    try {
      // The library reports the LSN it is given plus one ("last byte + 1"); ours is already an
      // end (a commit's end, a keepalive's send position). Reporting one past it let the server
      // treat a commit record starting exactly there, a transaction committed right after the
      // last delivered one, as confirmed: the next reader never got it.
      const end = parseLsn(this.acknowledged);
      await this.service.acknowledge(formatLsn(end > 0n ? end - 1n : 0n));
    } catch (err) {
      this.logger.warn({ err }, 'standby status update failed');
    }
  }
}
