import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { AdapterError } from './errors.js';

/**
 * One writer per data directory. Two embedded pipelines on one dataDir would share the source
 * offset and the replica id / replication slot: the server disconnects the first one's reader
 * and both write the same SQLite files. The lock is a file created exclusively, holding the
 * owner's pid; a lock whose process is gone (kill -9) is stale and taken over.
 */
export interface DataDirLock {
  release(): void;
}

export interface Holder {
  pid: number;
  role: string;
  since: string;
}

const LOCK_FILE = 'adapter.lock';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: the process exists but belongs to someone else.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function holderOf(path: string): Holder | null {
  try {
    const parsed = JSON.parse(readFileSync(path, 'utf8')) as Partial<Holder>;
    return typeof parsed.pid === 'number'
      ? { pid: parsed.pid, role: String(parsed.role), since: String(parsed.since) }
      : null;
  } catch {
    return null;
  }
}

/** The live process holding `dir` (e.g. a running `run`), or null when none does. */
export function liveHolder(dir: string): Holder | null {
  const holder = holderOf(join(dir, LOCK_FILE));
  return holder !== null && alive(holder.pid) ? holder : null;
}

/** Takes the data directory for `role` (e.g. "run", "rebuild"); throws DATA_DIR_LOCKED when a live process holds it. */
export function lockDataDir(dir: string, role: string): DataDirLock {
  const path = join(dir, LOCK_FILE);
  const me: Holder = { pid: process.pid, role, since: new Date().toISOString() };
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      writeFileSync(path, JSON.stringify(me), { flag: 'wx' });
      return {
        release() {
          if (holderOf(path)?.pid === process.pid) rmSync(path, { force: true });
        },
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const holder = holderOf(path);
      if (holder !== null && holder.pid !== process.pid && alive(holder.pid)) {
        throw new AdapterError(
          'DATA_DIR_LOCKED',
          `${dir} is in use by \`${holder.role}\` (pid ${holder.pid}, since ${holder.since})`,
          {
            hint: 'one process at a time owns a data directory: stop it first, or give this command another dataDir (CQRS_DATA_DIR); `reconcile` and `report` only read, and run beside a live `run`',
          },
        );
      }
      // Stale (its process is gone) or unreadable: take it over.
      rmSync(path, { force: true });
    }
  }
  throw new AdapterError('DATA_DIR_LOCKED', `cannot take the lock ${path}`, {
    hint: 'another process keeps re-creating it; stop the other adapter processes on this dataDir',
  });
}
