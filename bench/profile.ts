import { Session } from 'node:inspector/promises';
import { relative } from 'node:path';
import type { ProfileSummary } from './results-schema.js';

export interface CpuProfileNode {
  id: number;
  callFrame: { functionName: string; url: string };
  hitCount?: number;
}

export interface CpuProfile {
  nodes: CpuProfileNode[];
  startTime: number;
  endTime: number;
  /** Leaf node id of each sample, and the µs since the previous one (`node --cpu-prof` files). */
  samples?: number[];
  timeDeltas?: number[];
}

/**
 * The part of a profile sampled within [fromUs, toUs] (monotonic µs, the clock of its
 * timestamps; the cdc scenario logs each level's window): hit counts from those samples only.
 */
export function profileWindow(profile: CpuProfile, fromUs: number, toUs: number): CpuProfile {
  const hits = new Map<number, number>();
  const samples = profile.samples ?? [];
  const deltas = profile.timeDeltas ?? [];
  let at = profile.startTime;
  for (let i = 0; i < samples.length; i++) {
    at += deltas[i] ?? 0;
    if (at < fromUs || at > toUs) continue;
    const id = samples[i] as number;
    hits.set(id, (hits.get(id) ?? 0) + 1);
  }
  return {
    nodes: profile.nodes.map((node) => ({ ...node, hitCount: hits.get(node.id) ?? 0 })),
    startTime: Math.max(profile.startTime, fromUs),
    endTime: Math.min(profile.endTime, toUs),
  };
}

function frameName(node: CpuProfileNode): string {
  const { functionName, url } = node.callFrame;
  const name = functionName === '' ? '(anonymous)' : functionName;
  if (url === '') return name;
  const file = url.startsWith('file://') ? relative(process.cwd(), new URL(url).pathname) : url;
  return `${name} ${file}`;
}

/** Self time per frame, hottest first: samples that landed in that function itself. */
export function summarizeProfile(profile: CpuProfile, top = 25): ProfileSummary {
  const byFrame = new Map<string, number>();
  let total = 0;
  for (const node of profile.nodes) {
    const hits = node.hitCount ?? 0;
    total += hits;
    const name = frameName(node);
    byFrame.set(name, (byFrame.get(name) ?? 0) + hits);
  }
  const pct = (hits: number) => (total === 0 ? 0 : Math.round((hits / total) * 1000) / 10);
  const topFrames = [...byFrame.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([frame, hits]) => ({ frame, selfPct: pct(hits) }));
  return {
    durationMs: Math.round((profile.endTime - profile.startTime) / 1000),
    idlePct: pct(byFrame.get('(idle)') ?? 0),
    topFrames,
  };
}

/**
 * Samples this process's CPU (the adapter runs in it) while `work` runs, through the built-in
 * inspector: the same data as `node --cpu-prof`, scoped to one measurement.
 */
export async function profiled<T>(
  work: () => Promise<T>,
  intervalUs = 5000,
): Promise<{ value: T; profile: ProfileSummary }> {
  const session = new Session();
  session.connect();
  try {
    await session.post('Profiler.enable');
    // A coarser interval than the default 1 ms keeps a long profile (a snapshot) small.
    await session.post('Profiler.setSamplingInterval', { interval: intervalUs });
    await session.post('Profiler.start');
    const value = await work();
    const { profile } = await session.post('Profiler.stop');
    return { value, profile: summarizeProfile(profile as CpuProfile) };
  } finally {
    session.disconnect();
  }
}
