import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type CpuProfile, profileWindow, summarizeProfile } from './profile.js';

/**
 * Self time per frame of every thread's profile in a `node --cpu-prof --cpu-prof-dir=<dir>` run
 * (one file per thread: main, the event store writer, the projection worker, …), optionally
 * within one cdc level's window (its log line's monotonicUs):
 *
 *   node --import tsx bench/profile-threads.ts <dir> [fromUs toUs] [top]
 *
 * Samples are wall-clock: on a loaded machine a thread waiting for a core still counts as busy
 * in the frame it was preempted in. The cdc level log's threadCpuPerRowChangeUs says what each
 * thread really used.
 */
const [dir, from, to, top] = process.argv.slice(2);
if (dir === undefined) {
  process.stderr.write('usage: bench/profile-threads.ts <dir> [fromUs toUs] [top]\n');
  process.exit(2);
}
for (const file of readdirSync(dir)
  .filter((f) => f.endsWith('.cpuprofile'))
  .sort()) {
  const whole = JSON.parse(readFileSync(join(dir, file), 'utf8')) as CpuProfile;
  const profile =
    from === undefined || to === undefined ? whole : profileWindow(whole, Number(from), Number(to));
  // A process that ran outside the window (another level's write load) has no samples in it.
  if (!profile.nodes.some((node) => (node.hitCount ?? 0) > 0)) continue;
  const summary = summarizeProfile(profile, Number(top ?? 20));
  if ((summary.idlePct ?? 0) >= 99.5 || summary.topFrames.length === 0) continue;
  process.stdout.write(`\n${file}: ${summary.durationMs} ms, idle ${summary.idlePct}%\n`);
  for (const { frame, selfPct } of summary.topFrames)
    process.stdout.write(`${selfPct.toFixed(1).padStart(6)}  ${frame}\n`);
}
