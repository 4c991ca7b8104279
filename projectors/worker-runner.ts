import type Database from 'better-sqlite3';
import { AdapterError } from '../lib/errors.js';
import { type Logger, silentLogger } from '../lib/logger.js';
import { nameThread, startWorker, WorkerSlot } from '../lib/worker-thread.js';
import type { TouchedDocument } from './ports.js';
import type { ReplayHost, ReplayJobSpec, ReplayReport } from './replay.js';
import { appliedPosition, type Projector } from './runner.js';
import { type FromWorker, type ToWorker, WorkerError, type WorkerSettings } from './worker-protocol.js';

export interface ProjectionWorkerOptions extends Omit<WorkerSettings, 'logLevel' | 'name' | 'reportCommits'> {
  name?: string;
  /** This thread's connection to the read-model database: the checkpoint is read from it. */
  db: Database.Database;
  logger?: Logger;
  /** A failure after the worker started (its own error, or its thread ending unasked). */
  onError: (err: Error) => void;
  /** After each batch the worker committed (RunnerOptions.onCommitted, relayed from its thread). */
  onCommitted?: (position: number, touched: TouchedDocument[]) => void;
}

/**
 * Runs the projection loop (ProjectionRunner) in a worker thread of its own, over its own
 * connections to the event store and the read-model database: a batch, even a 200k-row source
 * transaction applied in one write transaction, never holds this thread, which serves the API
 * (reading the read models on its own connection, WAL) and reads the change stream. A failure
 * of the worker, or its thread ending unasked, reaches `onError`; `restart` starts a new worker
 * from the checkpoint.
 */
export class ProjectionWorker implements Projector, ReplayHost {
  private readonly name: string;
  private readonly replays = new Map<string, (report: ReplayReport) => void>();
  private readonly forgetting = new Map<number, () => void>();
  private nextId = 1;
  private readonly readCheckpoint: Database.Statement;
  private readonly logger: Logger;
  private readonly slot = new WorkerSlot();

  constructor(private readonly options: ProjectionWorkerOptions) {
    this.name = options.name ?? 'read-models';
    this.logger = (options.logger ?? silentLogger).child({ component: 'projector', runner: this.name });
    this.readCheckpoint = options.db
      .prepare('SELECT position FROM projector_checkpoints WHERE name = ?')
      .pluck();
  }

  checkpoint(): number {
    return (this.readCheckpoint.get(this.name) as number | undefined) ?? 0;
  }

  appliedPosition(): number {
    return appliedPosition(this.options.db, this.name);
  }

  notify(): void {
    this.send({ type: 'notify' });
  }

  /** Resolves once the worker has created (or migrated) the read models' tables. */
  async start(): Promise<void> {
    if (this.slot.current !== null) return;
    await this.spawn('migrated');
  }

  async restart(): Promise<void> {
    await this.stop();
    await this.spawn('stepped');
  }

  /** Asks the worker to stop after its batch in progress and waits for its thread to end. */
  async stop(): Promise<void> {
    await this.slot.stop({ type: 'stop' } satisfies ToWorker);
  }

  replay(spec: ReplayJobSpec, onReport: (report: ReplayReport) => void): void {
    if (this.slot.current === null) {
      onReport({ state: 'failed', done: 0, total: null, error: 'the projection worker is not running' });
      return;
    }
    this.replays.set(`${spec.readModel}\u0000${spec.version}`, onReport);
    this.send({ type: 'replay', spec });
  }

  forget(name: string): Promise<void> {
    if (this.slot.current === null) return Promise.resolve();
    const id = this.nextId++;
    return new Promise<void>((resolve) => {
      this.forgetting.set(id, resolve);
      this.send({ type: 'forget', id, name });
    });
  }

  /** A worker that ended takes its replays with it (the versions stay `building`) and answers nothing more. */
  private abandon(reason: string): void {
    for (const onReport of this.replays.values())
      onReport({ state: 'failed', done: 0, total: null, error: reason });
    this.replays.clear();
    for (const resolve of this.forgetting.values()) resolve();
    this.forgetting.clear();
  }

  private send(message: ToWorker): void {
    this.slot.post(message);
  }

  private spawn(until: 'migrated' | 'stepped'): Promise<void> {
    const settings: WorkerSettings = {
      eventsPath: this.options.eventsPath,
      readModelsPath: this.options.readModelsPath,
      definition: this.options.definition,
      name: this.name,
      batchSize: this.options.batchSize,
      pollIntervalMs: this.options.pollIntervalMs,
      ...(this.options.deferMaxDocuments === undefined
        ? {}
        : { deferMaxDocuments: this.options.deferMaxDocuments }),
      ...(this.options.deferMaxMs === undefined ? {} : { deferMaxMs: this.options.deferMaxMs }),
      ...(this.options.minBatchIntervalMs === undefined
        ? {}
        : { minBatchIntervalMs: this.options.minBatchIntervalMs }),
      bulkInitialBuild: this.options.bulkInitialBuild,
      awaitInitialSnapshot: this.options.awaitInitialSnapshot,
      composeThreads: this.options.composeThreads,
      logLevel: this.logger.level,
      reportCommits: this.options.onCommitted !== undefined,
    };
    const worker = startWorker(import.meta.url, 'projection-worker', settings);
    return this.slot.watch<FromWorker>(worker, {
      isReady: (message) => message.type === until,
      failureOf: (message) =>
        message.type === 'failed' ? new WorkerError(message.error, 'PROJECTION_WORKER_FAILED') : null,
      onMessage: (message) => {
        if (message.type === 'committed') this.options.onCommitted?.(message.position, message.touched);
        else if (message.type === 'replay-report') {
          const id = `${message.readModel}\u0000${message.version}`;
          this.replays.get(id)?.(message.report);
          if (message.report.state !== 'running') this.replays.delete(id);
        } else if (message.type === 'forgotten') {
          this.forgetting.get(message.id)?.();
          this.forgetting.delete(message.id);
        } else if (message.type === 'migrated') nameThread(message.tid, `projection-worker:${this.name}`);
      },
      onFailure: (err) => {
        this.logger.error({ err }, 'projection worker failed');
        this.options.onError(err);
      },
      onExit: (code) => this.abandon(`the projection worker ended (exit code ${code}); run replay again`),
      stoppedError: () => new AdapterError('PROJECTION_WORKER_STOPPED', 'projection worker stopped'),
      exitedError: (code) =>
        new AdapterError('PROJECTION_WORKER_EXITED', `projection worker ended unasked (exit code ${code})`),
    });
  }
}
