import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import type { Pool } from 'mysql2/promise';
import { z } from 'zod';

/**
 * CPU time of the legacy database server process, read from /proc: what a read costs the
 * database in each mode (the case study's 95% → 30% database CPU). Only measurable when the
 * server runs on this machine; elsewhere the runs record none.
 */

let ticksPerSecond: number | undefined;

function clockTicks(): number {
  if (ticksPerSecond === undefined) {
    try {
      ticksPerSecond = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      ticksPerSecond = 100;
    }
  }
  return ticksPerSecond;
}

/** User + system CPU milliseconds the process has used, or null when /proc does not show it. */
export function processCpuMs(pid: number): number | null {
  return statCpuMs(`/proc/${pid}/stat`);
}

/** User + system CPU milliseconds of a /proc stat file: a process's, or one thread's (/proc/<pid>/task/<tid>/stat). */
export function statCpuMs(path: string): number | null {
  let stat: string;
  try {
    stat = readFileSync(path, 'utf8');
  } catch {
    return null;
  }
  // The command name (field 2) may hold spaces: fields are counted after its closing parenthesis.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  if (!Number.isFinite(utime) || !Number.isFinite(stime)) return null;
  return ((utime + stime) * 1000) / clockTicks();
}

const pidFileRow = z.object({ pidFile: z.string().nullable() });
const LOCAL_HOSTS = new Set(['127.0.0.1', 'localhost', '::1']);

/**
 * The pid of the MariaDB/MySQL server behind `pool`, from its pid file, when it runs on this
 * machine and the file is readable; null otherwise.
 */
export async function legacyServerPid(pool: Pool, host: string): Promise<number | null> {
  if (!LOCAL_HOSTS.has(host)) return null;
  const [rows] = await pool.query('SELECT @@pid_file AS pidFile');
  const pidFile = pidFileRow.parse((rows as unknown[])[0]).pidFile;
  if (pidFile === null) return null;
  try {
    const pid = Number(readFileSync(pidFile, 'utf8').trim());
    return Number.isInteger(pid) && pid > 0 && processCpuMs(pid) !== null ? pid : null;
  } catch {
    return null;
  }
}
