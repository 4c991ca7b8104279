import type { CdcStages } from '../results-schema.js';
import { latencyOf } from '../stats.js';

/** A marker transaction's way through the Debezium/Kafka path (epoch ms, one machine's clock). */
export interface MarkerTimes {
  /** The COMMIT acknowledgement, as the harness got it. */
  committed?: number;
  /** Debezium's envelope ts_ms of its first change: when the connector processed it. */
  captured?: number;
  /** Kafka timestamp (CreateTime) of its END record: when Connect's producer took it. */
  produced?: number;
  /** When the translator's source handed over the whole transaction. */
  received?: number;
  /** When Kafka acknowledged the translator's domain events. */
  published?: number;
  /** The harness's poll that found the projector's committed offset past those events. */
  visible?: number;
}

/**
 * p50/p99 of each hop, over the markers that became visible. A marker whose END record was not
 * read back still counts in the other hops: its capture → receipt is not split, so those two
 * hops have fewer samples.
 */
export function stageLatencies(markers: Iterable<MarkerTimes>): CdcStages {
  const samples: Record<keyof CdcStages, number[]> = {
    commitToCaptured: [],
    capturedToProduced: [],
    producedToReceived: [],
    receivedToPublished: [],
    publishedToVisible: [],
  };
  for (const { committed, captured, produced, received, published, visible } of markers) {
    if (
      committed === undefined ||
      captured === undefined ||
      received === undefined ||
      published === undefined ||
      visible === undefined
    )
      continue;
    samples.commitToCaptured.push(captured - committed);
    if (produced !== undefined) {
      samples.capturedToProduced.push(produced - captured);
      samples.producedToReceived.push(received - produced);
    }
    samples.receivedToPublished.push(published - received);
    samples.publishedToVisible.push(visible - published);
  }
  const stage = (values: number[]) => {
    const { p50Ms, p99Ms } = latencyOf(values);
    return { p50Ms, p99Ms, samples: values.length };
  };
  return {
    commitToCaptured: stage(samples.commitToCaptured),
    capturedToProduced: stage(samples.capturedToProduced),
    producedToReceived: stage(samples.producedToReceived),
    receivedToPublished: stage(samples.receivedToPublished),
    publishedToVisible: stage(samples.publishedToVisible),
  };
}
