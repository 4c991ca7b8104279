import type { Registry } from 'prom-client';
import type { ReadModelHandle } from '../definition/read-models.js';
import type { Config } from '../lib/config.js';
import type { Logger } from '../lib/logger.js';
import { followLive, type StoreVersions, versionName } from '../projectors/stores/document-versions.js';
import { DistributedReadModelCache } from '../shadow-api/distributed-cache.js';

/** The distributed read-model cache when `cache.redisUrl` is set. */
export function openServerCache(
  config: Config,
  logger: Logger,
  registry?: Registry,
): DistributedReadModelCache | null {
  const { redisUrl, ttlSeconds, prefix } = config.cache;
  if (redisUrl === undefined) return null;
  return new DistributedReadModelCache({
    url: redisUrl,
    ttlSeconds,
    prefix,
    logger,
    ...(registry ? { registry } : {}),
  });
}

/**
 * A reader of the live version whose key lookups go through `cache`, keyed by the version's
 * name so a switch never serves the previous version's entries. Only stores whose adapters
 * report the documents a batch addressed (drainTouched: MongoDB) are cached; the others are
 * read directly, since their projectors could not invalidate.
 */
export function cachedLiveHandle(
  versions: StoreVersions,
  readModel: string,
  cache: DistributedReadModelCache,
): ReadModelHandle {
  const handles = new Map<number, ReadModelHandle>();
  return followLive(async () => {
    const version = await versions.live(readModel);
    let handle = handles.get(version);
    if (handle === undefined) {
      const adapter = versions.adapter(readModel, version);
      handle =
        adapter.drainTouched === undefined
          ? adapter.handle()
          : cache.wrap(versionName(readModel, version), adapter.handle());
      handles.set(version, handle);
    }
    return handle;
  });
}
