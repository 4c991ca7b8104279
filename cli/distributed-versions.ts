import { errorMessage } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';
import { skippingInterval } from '../lib/skipping-interval.js';
import type { KafkaProjector } from '../projectors/kafka-runner.js';
import type { DocumentProjection } from '../projectors/ports.js';
import { maintainedVersions, type StoreVersions } from '../projectors/stores/document-versions.js';

/**
 * The projectors of one `project` process: a KafkaProjector (its own consumer group) for every
 * version of every read model of the store that the registry says is maintained (building or
 * ready), version 1 included unless it was dropped. The registry is read again every
 * `intervalMs`, so a version a `replay` registers is fed by the running projectors from then
 * on (they share its consumer group with the replay, which stops when it is done), and a
 * dropped version's projector stops before its data is deleted (`read-model drop` waits for
 * its group to empty). Rolling back is therefore instant: the previous version never stopped
 * being fed.
 */
export interface VersionedProjectorsOptions {
  readModels: readonly string[];
  versions: StoreVersions;
  /** The version-1 adapters the store opened (reused so callers see the same objects). */
  firstVersions: ReadonlyMap<string, DocumentProjection>;
  start(projection: DocumentProjection): Promise<KafkaProjector>;
  intervalMs: number;
  logger: Logger;
}

export class VersionedProjectors {
  /** Running projectors in start order; version 1 of each read model first. */
  readonly projectors: KafkaProjector[] = [];
  readonly projections: DocumentProjection[] = [];
  /** By read model, then version. */
  private readonly running = new Map<
    string,
    Map<number, { projector: KafkaProjector; projection: DocumentProjection }>
  >();
  private timer: NodeJS.Timeout | null = null;
  private syncing: Promise<void> = Promise.resolve();
  private stopped = false;

  constructor(private readonly options: VersionedProjectorsOptions) {}

  async start(): Promise<void> {
    await this.sync();
    // A registry slower than the interval skips ticks instead of queueing a check per tick.
    this.timer = skippingInterval(() => {
      this.syncing = this.sync().catch((err: unknown) =>
        this.options.logger.warn(
          { err: errorMessage(err) },
          'read-model versions check failed; trying again later',
        ),
      );
      return this.syncing;
    }, this.options.intervalMs);
  }

  private async sync(): Promise<void> {
    const { versions, readModels, firstVersions, logger } = this.options;
    for (const readModel of readModels) {
      const wanted = new Set(maintainedVersions(await versions.registry.read(readModel)));
      const running = this.running.get(readModel) ?? new Map();
      this.running.set(readModel, running);
      for (const version of wanted) {
        if (running.has(version) || this.stopped) continue;
        const projection =
          (version === 1 ? firstVersions.get(readModel) : undefined) ?? versions.adapter(readModel, version);
        const projector = await this.options.start(projection);
        running.set(version, { projector, projection });
        this.projectors.push(projector);
        this.projections.push(projection);
        if (version !== 1) logger.info({ readModel, version }, 'projecting read-model version');
      }
      for (const [version, { projector, projection }] of running) {
        if (wanted.has(version)) continue;
        await projector.stop();
        running.delete(version);
        this.projectors.splice(this.projectors.indexOf(projector), 1);
        this.projections.splice(this.projections.indexOf(projection), 1);
        logger.info({ readModel, version }, 'stopped projecting read-model version (dropped or frozen)');
      }
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer !== null) clearInterval(this.timer);
    await this.syncing;
    for (const running of this.running.values())
      for (const { projector } of running.values()) await projector.stop();
    this.running.clear();
  }
}
