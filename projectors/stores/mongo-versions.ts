import { type Db, type MongoClient, MongoServerError } from 'mongodb';
import type { Migration } from '../../definition/migration.js';
import type { ReadModelHandle } from '../../definition/read-models.js';
import { StoreError } from '../../lib/errors.js';
import type { Logger } from '../../lib/logger.js';
import {
  followLive,
  type RegistryBackend,
  type StoreVersions,
  switchedTo,
  VersionRegistry,
  type VersionsRecord,
  versionName,
  versionsRecordSchema,
} from './document-versions.js';
import { APPLIED_MARKS_COLLECTION, MongoReadModel, mirrorCollection } from './mongo-read-models.js';
import { readModelOf, readModelTopics } from './read-model-documents.js';

/**
 * Read-model versions on MongoDB. The live version of each read model is one field of one
 * document in `cqrs_read_model_versions` (beside the collections, so a restored backup
 * restores it with them); a switch is a single-document update guarded by the revision read,
 * which MongoDB applies atomically. Readers cache the live version and read the document again
 * at most every LIVE_REFRESH_MS: the Mongo-wire server here has no change streams (`watch`
 * fails), so a reader may serve the old version for up to that long after a switch, and both
 * versions are complete and maintained while it does.
 */
export const VERSIONS_COLLECTION = 'cqrs_read_model_versions';

const DUPLICATE_KEY = 11000;

interface RegistryDocument {
  _id: string;
  rev: number;
  record: VersionsRecord;
}

class MongoRegistryBackend implements RegistryBackend {
  constructor(private readonly db: Db) {}

  private get collection() {
    return this.db.collection<RegistryDocument>(VERSIONS_COLLECTION);
  }

  async load(readModel: string) {
    const found = await this.collection.findOne({ _id: readModel });
    if (found === null) return null;
    const parsed = versionsRecordSchema.safeParse(found.record);
    if (!parsed.success) {
      throw new StoreError(
        'STORE_DOCUMENT_INVALID',
        `${VERSIONS_COLLECTION}/${readModel} is not a version record`,
        { cause: parsed.error },
      );
    }
    return { record: parsed.data, token: found.rev };
  }

  /** Replaces the revision read; a missing one (token undefined) is revision 0, which no stored document has. */
  async save(record: VersionsRecord, token: unknown): Promise<boolean> {
    const rev = typeof token === 'number' ? token : 0;
    try {
      const result = await this.collection.replaceOne(
        { _id: record.readModel, rev },
        { rev: rev + 1, record },
        { upsert: true },
      );
      return result.modifiedCount + result.upsertedCount === 1;
    } catch (err) {
      // The revision moved on: the upsert collided with the stored document's _id.
      if (err instanceof MongoServerError && err.code === DUPLICATE_KEY) return false;
      throw new StoreError('STORE_WRITE_FAILED', `MongoDB write to ${VERSIONS_COLLECTION} failed`, {
        cause: err,
      });
    }
  }
}

export interface MongoVersionsOptions {
  migration: Migration;
  client: MongoClient;
  database: string;
  logger: Logger;
}

export class MongoVersions implements StoreVersions {
  readonly registry: VersionRegistry;
  private readonly db: Db;

  constructor(private readonly options: MongoVersionsOptions) {
    this.db = options.client.db(options.database);
    this.registry = new VersionRegistry(new MongoRegistryBackend(this.db));
  }

  adapter(readModel: string, version: number): MongoReadModel {
    const { migration, client, database, logger } = this.options;
    return new MongoReadModel({ migration, readModel, client, database, logger, version });
  }

  async live(readModel: string): Promise<number> {
    return (await this.registry.read(readModel)).live;
  }

  async switchLive(readModel: string, from: number, to: number): Promise<void> {
    await this.registry.update(readModel, (current) => {
      if (current.live !== from) {
        throw new StoreError(
          'READ_MODEL_SWITCH_CONFLICT',
          `${readModel} is live on v${current.live}, not v${from}: another switch came first`,
        );
      }
      return switchedTo(current, to, new Date());
    });
  }

  async dropData(readModel: string, version: number): Promise<void> {
    const { migration } = this.options;
    const model = readModelOf(migration, readModel);
    const storage = versionName(readModel, version);
    const collections =
      model.kind === 'view'
        ? readModelTopics(migration, model).tables.map((t) => mirrorCollection(storage, t))
        : [storage];
    // Only the collections that exist: this Mongo-wire server answers a drop of a missing one
    // with "ns not found" and no error code to tell it from a real failure.
    const existing = new Set(
      (await this.db.listCollections({}, { nameOnly: true }).toArray()).map((c) => c.name),
    );
    for (const name of collections.filter((c) => existing.has(c))) {
      await this.db
        .collection(name)
        .drop()
        .catch((err: unknown) => {
          throw new StoreError('STORE_WRITE_FAILED', `could not drop MongoDB collection ${name}`, {
            cause: err,
          });
        });
    }
    await this.db.collection(APPLIED_MARKS_COLLECTION).deleteMany({ readModel: storage });
  }

  liveHandle(readModel: string): ReadModelHandle {
    const handles = new Map<number, ReadModelHandle>();
    return followLive(async () => {
      const version = await this.live(readModel);
      let handle = handles.get(version);
      if (handle === undefined) {
        handle = this.adapter(readModel, version).handle();
        handles.set(version, handle);
      }
      return handle;
    });
  }
}
