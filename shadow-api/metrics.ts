import {
  Counter,
  type CounterConfiguration,
  Gauge,
  Histogram,
  type HistogramConfiguration,
  type MetricObjectWithValues,
  type MetricValue,
  type Registry,
} from 'prom-client';
import type { ShadowQueue } from '../compare/shadow-queue.js';
import { AdapterError } from '../lib/errors.js';
import type { FlagMode, ServeSide } from './flags.js';

export type MetricSide = 'legacy' | 'read_model';

export function metricSideOf(side: ServeSide): MetricSide {
  return side === 'legacy' ? 'legacy' : 'read_model';
}

/** The shadow API's Prometheus metrics, registered on the registry /metrics serves. */
export interface ShadowMetrics {
  requests: BindableCounter<'endpoint' | 'mode' | 'served_by'>;
  /** role: serve = on the request path; shadow = the other side, queried for a comparison. */
  queryDuration: BindableHistogram<'endpoint' | 'side' | 'role'>;
  comparisons: Counter<'endpoint' | 'outcome'>;
  fallbacks: Counter<'endpoint'>;
  queueDropped: Counter;
}

export function createShadowMetrics(registry: Registry, queue: ShadowQueue): ShadowMetrics {
  const registers = [registry];
  const metrics: ShadowMetrics = {
    requests: new BindableCounter({
      name: 'cqrs_shadow_requests_total',
      help: 'Read requests answered, by endpoint, flag mode and the side that answered',
      labelNames: ['endpoint', 'mode', 'served_by'],
      registers,
    }),
    queryDuration: new BindableHistogram({
      name: 'cqrs_shadow_query_duration_seconds',
      help: 'Query latency of each side, on the request path (serve) or for a comparison (shadow)',
      labelNames: ['endpoint', 'side', 'role'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers,
    }),
    comparisons: new Counter({
      name: 'cqrs_shadow_comparisons_total',
      help: 'Shadow comparisons recorded, by endpoint and outcome',
      labelNames: ['endpoint', 'outcome'],
      registers,
    }),
    fallbacks: new Counter({
      name: 'cqrs_shadow_fallbacks_total',
      help: 'Requests the read model failed to answer and legacy answered instead',
      labelNames: ['endpoint'],
      registers,
    }),
    queueDropped: new Counter({
      name: 'cqrs_shadow_queue_dropped_total',
      help: 'Comparisons dropped because the shadow queue was full',
      registers,
    }),
  };
  new Gauge({
    name: 'cqrs_shadow_queue_depth',
    help: 'Comparisons waiting in the shadow queue',
    registers,
    collect() {
      this.set(queue.depth);
    },
  });
  queue.on('drop', () => metrics.queueDropped.inc());
  return metrics;
}

/** What one request records, with label children bound once per endpoint. */
export interface EndpointMetrics {
  serveDuration(side: ServeSide): BoundObserver;
  request(mode: FlagMode, servedBy: ServeSide): BoundCounter;
}

/**
 * The metrics of one endpoint's requests, as series bound once per endpoint, side and mode
 * (BindableCounter, BindableHistogram).
 */
export function endpointMetrics(metrics: ShadowMetrics, endpoint: string): EndpointMetrics {
  const durations = new Map<ServeSide, BoundObserver>();
  // By mode, then side: no key string built per request.
  const requests = new Map<FlagMode, Map<ServeSide, BoundCounter>>();
  return {
    serveDuration(side) {
      let child = durations.get(side);
      if (child === undefined) {
        child = metrics.queryDuration.bind({ endpoint, side: metricSideOf(side), role: 'serve' });
        durations.set(side, child);
      }
      return child;
    },
    request(mode, servedBy) {
      let bySide = requests.get(mode);
      if (bySide === undefined) {
        bySide = new Map();
        requests.set(mode, bySide);
      }
      let child = bySide.get(servedBy);
      if (child === undefined) {
        child = metrics.requests.bind({ endpoint, mode, served_by: metricSideOf(servedBy) });
        bySide.set(servedBy, child);
      }
      return child;
    },
  };
}

export interface BoundObserver {
  observe(value: number): void;
}

export interface BoundCounter {
  inc(): void;
}

type Labels = Record<string, string | number>;

/** A series' identity as prom-client keys it: `name:value,` for each label set, in sorted label order. */
function seriesKey(sortedNames: readonly string[], labels: Readonly<Labels>): string {
  let key = '';
  for (const name of sortedNames) {
    const value = labels[name];
    if (value !== undefined) key += `${name}:${value},`;
  }
  return key;
}

/** Refuses, as prom-client's labels() does, a label the metric was not declared with. */
function checkLabels(labelNames: readonly string[], labels: Readonly<Labels>, metric: string): void {
  for (const name of Object.keys(labels))
    if (!labelNames.includes(name))
      throw new AdapterError(
        'METRIC_LABEL_UNKNOWN',
        `label "${name}" is not one of ${metric}'s: ${labelNames.join(', ')}`,
      );
}

interface HistogramEntry {
  labels: Labels;
  sharedLabels: Labels;
  value: number;
  metricName: string;
  exemplar: null | undefined;
}

interface HistogramExport {
  values: HistogramEntry[];
}

class HistogramSeries implements BoundObserver {
  /** Observations per bucket (not cumulative), the last one above every bound. */
  readonly counts: Float64Array;
  sum = 0;
  count = 0;

  constructor(
    readonly labels: Readonly<Labels>,
    private readonly bounds: readonly number[],
  ) {
    this.counts = new Float64Array(bounds.length + 1);
  }

  observe(value: number): void {
    if (!Number.isFinite(value))
      throw new AdapterError('METRIC_VALUE_INVALID', `not a finite number of seconds: ${value}`);
    const { bounds } = this;
    let i = 0;
    while (i < bounds.length && value > (bounds[i] as number)) i++;
    (this.counts[i] as number)++;
    this.sum += value;
    this.count++;
  }

  clear(): void {
    this.counts.fill(0);
    this.sum = 0;
    this.count = 0;
  }
}

/**
 * A prom-client Histogram with `bind`: a series whose counts are kept in place and joined to
 * the histogram's own series when the registry reads it. prom-client's label children build a
 * key string and look it up on every observation (~2 µs of a 57 µs read-model request in the
 * request profile); a bound series does a bucket scan and three additions. The exposition is
 * the same, a bound series' lines after the others'.
 */
export class BindableHistogram<T extends string> extends Histogram<T> {
  private readonly bounds: readonly number[];
  private readonly sortedNames: readonly string[];
  private readonly declared: readonly string[];
  private readonly bound = new Map<string, HistogramSeries>();
  private readonly metricName: string;

  constructor(config: HistogramConfiguration<T> & { buckets: number[] }) {
    super(config);
    this.metricName = config.name;
    this.bounds = [...config.buckets];
    this.declared = [...(config.labelNames ?? [])];
    this.sortedNames = [...this.declared].sort();
  }

  bind(labels: Partial<Record<T, string | number>>): BoundObserver {
    checkLabels(this.declared, labels as Labels, this.metricName);
    const key = seriesKey(this.sortedNames, labels as Labels);
    let series = this.bound.get(key);
    if (series === undefined) {
      series = new HistogramSeries({ ...(labels as Labels) }, this.bounds);
      this.bound.set(key, series);
    }
    return series;
  }

  /** What the registry reads (prom-client's Registry prefers it to get(); get() reads it too). */
  async getForPromString(): Promise<HistogramExport> {
    const data = await (histogramExport as (this: Histogram<T>) => Promise<HistogramExport>).call(this);
    const values = data.values;
    for (const [key, series] of this.bound) {
      if (series.count === 0) continue;
      const at = values.findIndex(
        (v) =>
          v.metricName === `${this.metricName}_count` && seriesKey(this.sortedNames, v.sharedLabels) === key,
      );
      const n = this.bounds.length;
      const added: number[] = [];
      let cumulative = 0;
      for (let i = 0; i < n; i++) {
        cumulative += series.counts[i] as number;
        added.push(cumulative);
      }
      added.push(series.count, series.sum, series.count);
      if (at !== -1) {
        // Also observed through prom-client's own API: its lines (its label order), counts added.
        const start = at - n - 2;
        for (let i = 0; i < added.length; i++) {
          const line = values[start + i] as HistogramEntry;
          values[start + i] = { ...line, value: line.value + (added[i] as number) };
        }
        continue;
      }
      this.bounds.forEach((le, i) => {
        values.push(this.entry({ le }, series.labels, added[i] as number, '_bucket', null));
      });
      values.push(this.entry({ le: '+Inf' }, series.labels, series.count, '_bucket', null));
      values.push(this.entry({}, series.labels, series.sum, '_sum', undefined));
      values.push(this.entry({}, series.labels, series.count, '_count', undefined));
    }
    return data;
  }

  private entry(
    labels: Labels,
    sharedLabels: Readonly<Labels>,
    value: number,
    suffix: string,
    exemplar: null | undefined,
  ): HistogramEntry {
    return {
      labels,
      sharedLabels: { ...sharedLabels },
      value,
      metricName: `${this.metricName}${suffix}`,
      exemplar,
    };
  }

  override reset(): void {
    super.reset();
    // prom-client's constructor calls reset() before this class's fields exist.
    for (const series of this.bound?.values() ?? []) series.clear();
  }
}

/** prom-client's own export of a histogram's series (not in its type declarations). */
const histogramExport = (Histogram.prototype as unknown as { getForPromString: unknown }).getForPromString;

class CounterSeries implements BoundCounter {
  value = 0;

  constructor(readonly labels: Readonly<Labels>) {}

  inc(): void {
    this.value++;
  }
}

/** A prom-client Counter with `bind`, as BindableHistogram: counted in place, joined when read. */
export class BindableCounter<T extends string> extends Counter<T> {
  private readonly sortedNames: readonly string[];
  private readonly declared: readonly string[];
  private readonly bound = new Map<string, CounterSeries>();
  private readonly metricName: string;

  constructor(config: CounterConfiguration<T>) {
    super(config);
    this.metricName = config.name;
    this.declared = [...(config.labelNames ?? [])];
    this.sortedNames = [...this.declared].sort();
  }

  bind(labels: Partial<Record<T, string | number>>): BoundCounter {
    checkLabels(this.declared, labels as Labels, this.metricName);
    const key = seriesKey(this.sortedNames, labels as Labels);
    let series = this.bound.get(key);
    if (series === undefined) {
      series = new CounterSeries({ ...(labels as Labels) });
      this.bound.set(key, series);
    }
    return series;
  }

  override async get(): Promise<MetricObjectWithValues<MetricValue<T>>> {
    const data = await super.get();
    // prom-client hands out its stored objects: the sums go into copies.
    const values = data.values.map((v) => ({ ...v }));
    for (const [key, series] of this.bound) {
      if (series.value === 0) continue;
      const same = values.find((v) => seriesKey(this.sortedNames, v.labels as Labels) === key);
      if (same !== undefined) same.value += series.value;
      else values.push({ value: series.value, labels: { ...series.labels } as MetricValue<T>['labels'] });
    }
    return { ...data, values };
  }

  override reset(): void {
    super.reset();
    // prom-client's constructor calls reset() before this class's fields exist.
    for (const series of this.bound?.values() ?? []) series.value = 0;
  }
}
