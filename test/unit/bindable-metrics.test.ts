import { AggregatorRegistry, Counter, Histogram, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { AdapterError } from '../../lib/errors.js';
import { BindableCounter, BindableHistogram } from '../../shadow-api/metrics.js';

const buckets = [0.001, 0.01, 0.1];
const labelNames = ['endpoint', 'side'] as const;
const observations = [0.0005, 0.001, 0.004, 0.05, 0.2, 3];

/** The same histogram twice: one observed through prom-client's labels(), one through bind(). */
function pair() {
  const plain = new Registry();
  const bound = new Registry();
  const config = { name: 'h', help: 'h', labelNames, buckets };
  return {
    plain,
    bound,
    plainHistogram: new Histogram({ ...config, registers: [plain] }),
    boundHistogram: new BindableHistogram({ ...config, registers: [bound] }),
  };
}

describe('BindableHistogram', () => {
  it('exposes a bound series exactly as prom-client exposes the same observations', async () => {
    const { plain, bound, plainHistogram, boundHistogram } = pair();
    const a = { endpoint: 'accounts.summary', side: 'read_model' };
    const b = { endpoint: 'accounts.history', side: 'legacy' };
    for (const value of observations) {
      plainHistogram.labels(a).observe(value);
      boundHistogram.bind(a).observe(value);
    }
    plainHistogram.labels(b).observe(0.02);
    boundHistogram.bind(b).observe(0.02);
    expect(await bound.metrics()).toBe(await plain.metrics());
    expect(await bound.getMetricsAsJSON()).toEqual(await plain.getMetricsAsJSON());
  });

  it('adds a bound series to the same series observed through prom-client, in its place', async () => {
    const { plain, bound, plainHistogram, boundHistogram } = pair();
    const a = { endpoint: 'e', side: 'legacy' };
    const c = { endpoint: 'f', side: 'legacy' };
    plainHistogram.observe(a, 0.5);
    plainHistogram.observe(c, 0.005);
    boundHistogram.observe(a, 0.5);
    boundHistogram.observe(c, 0.005);
    for (const value of observations) {
      plainHistogram.observe(a, value);
      boundHistogram.bind({ side: 'legacy', endpoint: 'e' }).observe(value);
    }
    expect(await bound.metrics()).toBe(await plain.metrics());
  });

  it('forgets bound counts on reset and lists a series again once observed', async () => {
    const { bound, boundHistogram } = pair();
    const series = boundHistogram.bind({ endpoint: 'e', side: 'legacy' });
    series.observe(0.002);
    bound.resetMetrics();
    expect(await bound.metrics()).not.toContain('endpoint="e"');
    series.observe(0.002);
    expect(await bound.metrics()).toContain('h_count{endpoint="e",side="legacy"} 1');
  });

  it('sums across registries as prom-client does (api.workers)', async () => {
    const { plain, bound, plainHistogram, boundHistogram } = pair();
    plainHistogram.labels({ endpoint: 'e', side: 'legacy' }).observe(0.002);
    boundHistogram.bind({ endpoint: 'e', side: 'legacy' }).observe(0.002);
    const summed = AggregatorRegistry.aggregate([
      await plain.getMetricsAsJSON(),
      await bound.getMetricsAsJSON(),
    ]);
    expect(await summed.metrics()).toContain('h_count{endpoint="e",side="legacy"} 2');
  });

  it('refuses an undeclared label and a value that is not a number', () => {
    const { boundHistogram } = pair();
    expect(() => boundHistogram.bind({ endpoint: 'e', role: 'x' } as never)).toThrow(AdapterError);
    expect(() => boundHistogram.bind({ endpoint: 'e' }).observe(Number.NaN)).toThrow(AdapterError);
  });
});

describe('BindableCounter', () => {
  it('exposes bound counts as prom-client exposes the same increments, summed with its own', async () => {
    const plain = new Registry();
    const bound = new Registry();
    const config = { name: 'c_total', help: 'c', labelNames: ['endpoint', 'mode'] as const };
    const plainCounter = new Counter({ ...config, registers: [plain] });
    const boundCounter = new BindableCounter({ ...config, registers: [bound] });
    plainCounter.inc({ endpoint: 'e', mode: 'new' }, 2);
    boundCounter.inc({ endpoint: 'e', mode: 'new' }, 2);
    for (let i = 0; i < 3; i++) {
      plainCounter.labels({ endpoint: 'e', mode: 'new' }).inc();
      plainCounter.labels({ endpoint: 'f', mode: 'shadow' }).inc();
      boundCounter.bind({ endpoint: 'e', mode: 'new' }).inc();
      boundCounter.bind({ endpoint: 'f', mode: 'shadow' }).inc();
    }
    expect(await bound.metrics()).toBe(await plain.metrics());
    // Reading twice does not add the bound counts twice.
    expect(await bound.metrics()).toBe(await plain.metrics());
    bound.resetMetrics();
    plain.resetMetrics();
    expect(await bound.metrics()).toBe(await plain.metrics());
  });
});
