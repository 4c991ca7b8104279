import type { Admin } from 'kafkajs';
import type { NewDomainEvent } from '../eventstore/ports.js';
import { ConfigError } from '../lib/errors.js';
import type { DocumentProjection, TopicPartition } from './ports.js';

/**
 * Where a replay into a new read-model version starts and ends on the domain topics.
 *
 * `--from`: the beginning (default), an offset (the same in every partition of every topic the
 * read model reads, clamped to what the partition holds), or an ISO time: per partition, the
 * first record Kafka appended at or after it (its timestamp index, `offsetsForTimes`).
 * `--to`: an ISO time; only events whose source change committed at or before it
 * (metadata.sourceTsMs, snapshot rows: when they were read) are applied, so the version shows
 * the read model as the legacy database stood then. A version built `--to` a time is frozen:
 * no projector feeds it afterwards.
 */
export type ReplayStart =
  | { kind: 'beginning' }
  | { kind: 'offset'; offset: bigint }
  | { kind: 'time'; at: Date };

const ISO = /^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$/;

function isoTime(value: string, what: string): Date {
  const ms = ISO.test(value) ? Date.parse(value) : Number.NaN;
  if (Number.isNaN(ms)) {
    throw new ConfigError(
      `${what} must be an ISO time (2024-05-01T12:00:00Z)${what === '--from' ? ', an offset or "beginning"' : ''} (got ${JSON.stringify(value)})`,
    );
  }
  return new Date(ms);
}

export function parseReplayStart(value: string): ReplayStart {
  const text = value.trim();
  if (text === 'beginning' || text === 'earliest') return { kind: 'beginning' };
  if (/^\d+$/.test(text)) {
    const offset = BigInt(text);
    return offset === 0n ? { kind: 'beginning' } : { kind: 'offset', offset };
  }
  return { kind: 'time', at: isoTime(text, '--from') };
}

export function parseReplayEnd(value: string): Date {
  return isoTime(value.trim(), '--to');
}

/** How the registry records a start. */
export function describeStart(start: ReplayStart): string {
  if (start.kind === 'beginning') return 'beginning';
  if (start.kind === 'offset') return `offset ${start.offset}`;
  return start.at.toISOString();
}

export interface PartitionRange {
  partition: number;
  /** First offset the partition still holds. */
  low: string;
  /** Offset the next record will get. */
  high: string;
}

/**
 * The offset to start each partition at: an offset clamped into [low, high]; for a time, what
 * Kafka's timestamp index answered (-1, "no record that late", means the end).
 */
export function startOffsets(
  start: Exclude<ReplayStart, { kind: 'beginning' }>,
  ranges: readonly PartitionRange[],
  byTime: ReadonlyMap<number, string> = new Map(),
): { partition: number; offset: string }[] {
  return ranges.map(({ partition, low, high }) => {
    const lo = BigInt(low);
    const hi = BigInt(high);
    let at: bigint;
    if (start.kind === 'offset') at = start.offset;
    else {
      const found = byTime.get(partition);
      at = found === undefined || BigInt(found) < 0n ? hi : BigInt(found);
    }
    const clamped = at < lo ? lo : at > hi ? hi : at;
    return { partition, offset: String(clamped) };
  });
}

/** Start offsets of every partition of `topics` (nothing for a replay from the beginning). */
export async function resolveStart(
  admin: Admin,
  topics: readonly string[],
  start: ReplayStart,
): Promise<(TopicPartition & { offset: string })[]> {
  if (start.kind === 'beginning') return [];
  const out: (TopicPartition & { offset: string })[] = [];
  for (const topic of topics) {
    const ranges = await admin.fetchTopicOffsets(topic);
    const byTime =
      start.kind === 'time'
        ? new Map(
            (await admin.fetchTopicOffsetsByTimestamp(topic, start.at.getTime())).map(
              (e) => [e.partition, e.offset] as const,
            ),
          )
        : undefined;
    for (const { partition, offset } of startOffsets(start, ranges, byTime))
      out.push({ topic, partition, offset });
  }
  return out;
}

/** Whether an event belongs to a version frozen at `to`. */
export const committedBy = (event: NewDomainEvent, to: Date) => event.metadata.sourceTsMs <= to.getTime();

/** The projection applying only the events committed by `to` (its group still reads, and commits, every record). */
export function frozenAt<P extends DocumentProjection>(projection: P, to: Date): DocumentProjection {
  return {
    name: projection.name,
    streamTypes: projection.streamTypes,
    handles: projection.handles,
    migrate: () => projection.migrate(),
    apply: (events) => projection.apply(events.filter((e) => committedBy(e, to))),
    reset: () => projection.reset(),
    appliedMarks: (partitions) => projection.appliedMarks(partitions),
    markApplied: (partition, next) => projection.markApplied(partition, next),
    close: () => projection.close(),
  };
}
