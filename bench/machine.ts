import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { cpus, loadavg, platform, release, totalmem } from 'node:os';
import type { Pool } from 'mysql2/promise';
import { z } from 'zod';
import type { BenchResult } from './results-schema.js';

const packageJson = z.object({ version: z.string() });

function packageVersion(spec: string): string {
  return packageJson.parse(JSON.parse(readFileSync(spec, 'utf8'))).version;
}

const require = createRequire(import.meta.url);

export function machineInfo(): BenchResult['machine'] {
  const cores = cpus();
  return {
    cpus: cores.length,
    cpuModel: cores[0]?.model.trim() ?? 'unknown',
    memoryBytes: totalmem(),
    platform: `${platform()} ${release()}`,
    loadAverage: loadavg(),
  };
}

/** HEAD of the checkout the bench runs from, and whether its tree differs from it. */
export function gitInfo(): { commit: string; dirty: boolean } | null {
  const cwd = new URL('..', import.meta.url).pathname;
  const git = (...args: string[]) =>
    execFileSync('git', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  try {
    return { commit: git('rev-parse', 'HEAD'), dirty: git('status', '--porcelain').length > 0 };
  } catch {
    // Not a git work tree (an unpacked tarball) or no git binary: say so rather than guess.
    return null;
  }
}

export async function versions(pool: Pool): Promise<BenchResult['versions']> {
  const [rows] = await pool.query('SELECT VERSION() AS v');
  const server = z.array(z.object({ v: z.string() })).parse(rows)[0]?.v ?? 'unknown';
  return {
    git: gitInfo(),
    node: process.version,
    package: packageVersion(new URL('../package.json', import.meta.url).pathname),
    legacyServer: server,
    autocannon: packageVersion(require.resolve('autocannon/package.json')),
  };
}

/** Peak resident set of this process so far (the kernel's high-water mark). */
export function peakRssBytes(): number {
  return process.resourceUsage().maxRSS * 1024;
}
