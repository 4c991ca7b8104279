import type { Client } from '@opensearch-project/opensearch';
import { z } from 'zod';
import type { Migration } from '../../definition/migration.js';
import type { ReadModelHandle } from '../../definition/read-models.js';
import { StoreError } from '../../lib/errors.js';
import type { Logger } from '../../lib/logger.js';
import {
  aliasActions,
  followLive,
  type RegistryBackend,
  type StoreVersions,
  switchedTo,
  type VersionRef,
  VersionRegistry,
  type VersionsRecord,
  versionName,
  versionsRecordSchema,
} from './document-versions.js';
import { appliedMarksIndex, OpenSearchReadModel } from './opensearch-read-models.js';

/**
 * Read-model versions on OpenSearch. Readers never name a version's indexes: they read aliases
 * (`<prefix>-<readModel>__live`, and `…__live--<table>` for a view's mirrors), and a switch
 * moves every alias of the read model in one `_aliases` request, which OpenSearch applies
 * atomically: no reader ever sees one table of the old version and another of the new.
 *
 * Version 1 keeps the concrete index names it always had (`<prefix>-<readModel>`), so existing
 * deployments need no reindex: the aliases are created on first use, pointing at the version
 * the registry names live (version 1 when nothing was ever switched). The registry
 * (`<prefix>--read-model-versions`, one document per read model, written with
 * if_seq_no/if_primary_term) records the versions and their states; where it and the aliases
 * disagree (a switch interrupted between its two requests), the aliases are what readers see
 * and what `live` reports.
 */
export const versionsIndex = (prefix: string) => `${prefix}--read-model-versions`.toLowerCase();

const getResponse = z.object({
  found: z.boolean(),
  _source: z.object({ record: z.unknown() }).optional(),
  _seq_no: z.number().optional(),
  _primary_term: z.number().optional(),
});

function statusOf(err: unknown): number | undefined {
  const meta = (err as { meta?: { statusCode?: number } }).meta;
  return meta?.statusCode;
}

class OpenSearchRegistryBackend implements RegistryBackend {
  private created = false;

  constructor(
    private readonly client: Client,
    private readonly index: string,
  ) {}

  async load(readModel: string) {
    let body: unknown;
    try {
      body = (await this.client.get({ index: this.index, id: readModel })).body;
    } catch (err) {
      if (statusOf(err) === 404) return null;
      throw new StoreError('STORE_READ_FAILED', `OpenSearch read of ${this.index}/${readModel} failed`, {
        cause: err,
      });
    }
    const doc = getResponse.parse(body);
    if (!doc.found) return null;
    const parsed = versionsRecordSchema.safeParse(doc._source?.record);
    if (!parsed.success) {
      throw new StoreError('STORE_DOCUMENT_INVALID', `${this.index}/${readModel} is not a version record`, {
        cause: parsed.error,
      });
    }
    return { record: parsed.data, token: { seqNo: doc._seq_no, primaryTerm: doc._primary_term } };
  }

  async save(record: VersionsRecord, token: unknown): Promise<boolean> {
    await this.ensureIndex();
    const version = token as { seqNo?: number; primaryTerm?: number } | undefined;
    try {
      await this.client.index({
        index: this.index,
        id: record.readModel,
        body: { record },
        refresh: true,
        ...(version?.seqNo === undefined || version.primaryTerm === undefined
          ? { op_type: 'create' as const }
          : { if_seq_no: version.seqNo, if_primary_term: version.primaryTerm }),
      });
      return true;
    } catch (err) {
      if (statusOf(err) === 409) return false;
      throw new StoreError('STORE_WRITE_FAILED', `OpenSearch write to ${this.index} failed`, { cause: err });
    }
  }

  private async ensureIndex(): Promise<void> {
    if (this.created) return;
    try {
      await this.client.indices.create({
        index: this.index,
        body: {
          settings: { number_of_shards: 1 },
          mappings: { dynamic: 'strict', properties: { record: { type: 'object', enabled: false } } },
        },
      });
    } catch (err) {
      if (!(await this.client.indices.exists({ index: this.index })).body) {
        throw new StoreError('STORE_MIGRATION_FAILED', `could not create OpenSearch index ${this.index}`, {
          cause: err,
        });
      }
    }
    this.created = true;
  }
}

export interface OpenSearchVersionsOptions {
  migration: Migration;
  client: Client;
  indexPrefix: string;
  logger: Logger;
}

export class OpenSearchVersions implements StoreVersions {
  readonly registry: VersionRegistry;

  constructor(private readonly options: OpenSearchVersionsOptions) {
    this.registry = new VersionRegistry(
      new OpenSearchRegistryBackend(options.client, versionsIndex(options.indexPrefix)),
    );
  }

  adapter(readModel: string, version: VersionRef): OpenSearchReadModel {
    const { migration, client, indexPrefix, logger } = this.options;
    return new OpenSearchReadModel({ migration, readModel, client, indexPrefix, logger, version });
  }

  /** The aliases readers use, in the same order as each version's indexes(). */
  private aliases(readModel: string): string[] {
    return this.adapter(readModel, 'live').indexes();
  }

  /** Creates the read model's aliases, pointing at the registry's live version, when they do not exist. */
  async ensureAliases(readModel: string): Promise<void> {
    const { client } = this.options;
    const aliases = this.aliases(readModel);
    const [first] = aliases;
    if (first === undefined || (await client.indices.existsAlias({ name: first })).body) return;
    const live = (await this.registry.read(readModel)).live;
    const target = this.adapter(readModel, live);
    await target.migrate();
    const indexes = target.indexes();
    await client.indices.updateAliases({
      body: { actions: aliases.map((alias, i) => ({ add: { index: indexes[i] as string, alias } })) },
    });
  }

  async live(readModel: string): Promise<number> {
    await this.ensureAliases(readModel);
    const record = await this.registry.read(readModel);
    const [alias] = this.aliases(readModel);
    if (alias === undefined) return record.live;
    const found = (await this.options.client.indices.getAlias({ name: alias })).body as Record<
      string,
      unknown
    >;
    const [index] = Object.keys(found);
    const match = record.versions.find((v) => this.adapter(readModel, v.version).indexes()[0] === index);
    return match?.version ?? record.live;
  }

  async switchLive(readModel: string, from: number, to: number): Promise<void> {
    await this.ensureAliases(readModel);
    // Refused here, before the aliases move, when `to` cannot be made live.
    switchedTo(await this.registry.read(readModel), to, new Date());
    const actions = aliasActions(
      this.aliases(readModel),
      this.adapter(readModel, from).indexes(),
      this.adapter(readModel, to).indexes(),
    );
    try {
      await this.options.client.indices.updateAliases({ body: { actions } });
    } catch (err) {
      if (statusOf(err) === 404) {
        throw new StoreError(
          'READ_MODEL_SWITCH_CONFLICT',
          `${readModel}'s aliases no longer point at v${from}: another switch came first (or v${to}'s indexes are missing)`,
          { cause: err },
        );
      }
      throw new StoreError('STORE_WRITE_FAILED', `OpenSearch alias switch of ${readModel} failed`, {
        cause: err,
      });
    }
    await this.registry.update(readModel, (current) =>
      switchedTo(current.live === from ? current : { ...current, live: from }, to, new Date()),
    );
  }

  async dropData(readModel: string, version: number): Promise<void> {
    const { client, indexPrefix } = this.options;
    await client.indices.delete({
      index: this.adapter(readModel, version).indexes(),
      ignore_unavailable: true,
    });
    await client.deleteByQuery({
      index: appliedMarksIndex(indexPrefix),
      conflicts: 'proceed',
      refresh: true,
      ignore_unavailable: true,
      body: { query: { term: { readModel: versionName(readModel, version) } } },
    });
  }

  /**
   * Reads through the aliases, checked (and created when missing) at most every
   * LIVE_REFRESH_MS: indexes deleted under a running reader (a store that lost its data) take
   * their aliases with them, and a search of a missing alias would answer nothing instead of
   * failing.
   */
  liveHandle(readModel: string): ReadModelHandle {
    const handle = this.adapter(readModel, 'live').handle();
    return followLive(async () => {
      await this.ensureAliases(readModel);
      return handle;
    });
  }
}
