import { type Config, dataPath } from '../lib/config.js';
import type { Logger } from '../lib/logger.js';
import { SharedState } from '../lib/shared-state.js';
import { FileRolloutState, RedisRolloutState, type RolloutStateStore } from '../rollout/rollout-state.js';
import { FileFlagStore, type FlagStore } from '../shadow-api/flag-store.js';
import { RedisFlagStore } from '../shadow-api/redis-flag-store.js';

/** The run-time state an API process changes: flags and rollout state, from files or a shared Redis. */
export interface RunState {
  flags: FlagStore;
  rollout: RolloutStateStore;
  /** Follows changes other processes make (a shared flags file; Redis pushes them). */
  watch(): () => void;
  /** Takes the stored flags now, told another process changed them (an API worker told by its primary). */
  refresh(): void;
  close(): Promise<void>;
}

/** The stores `state.redisUrl` selects: Redis shared by every replica, or files in dataDir. */
export async function openRunState(config: Config, logger: Logger): Promise<RunState> {
  // Until a flag is changed, the configuration rules; after, the stored flags do (across restarts).
  const initial = { defaultMode: config.flags.defaultMode, endpoints: config.flags.endpoints };
  const url = config.state.redisUrl;
  if (url !== undefined) {
    const shared = await SharedState.connect({ url, prefix: config.state.prefix, logger });
    try {
      const flags = await RedisFlagStore.open({ state: shared, initial, logger });
      const rollout = await RedisRolloutState.open(shared, logger);
      return {
        flags,
        rollout,
        watch: () => () => undefined,
        // Redis pushes every change already.
        refresh: () => undefined,
        async close() {
          await flags.close();
          await rollout.close();
          await shared.close();
        },
      };
    } catch (err) {
      await shared.close();
      throw err;
    }
  }
  // Flags changed at run time (a rollback to legacy during an incident) must survive a restart,
  // so they persist even when no file is configured.
  const flags = FileFlagStore.open({
    initial,
    ...(config.flags.file
      ? { file: config.flags.file }
      : { file: dataPath(config, 'flags.json'), writeInitial: false }),
    logger,
  });
  return {
    flags,
    rollout: new FileRolloutState(dataPath(config, 'rollout.json')),
    watch: () => flags.watch(1000),
    refresh() {
      try {
        flags.reload();
      } catch (err) {
        logger.warn({ err }, 'flags changed elsewhere but cannot be re-read; the current flags stay');
      }
    },
    close: async () => undefined,
  };
}
