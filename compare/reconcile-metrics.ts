import { Counter, type Registry } from 'prom-client';

/** Reconciliation's Prometheus metrics: drift found, and what repair made of it. */
export interface ReconcileMetrics {
  /** outcome=mismatch|missing is drift: a read model that differs from legacy with no lag to explain it. */
  comparisons: Counter<'endpoint' | 'outcome'>;
  /** result: repaired (equal when compared again) or still_different. */
  repairs: Counter<'endpoint' | 'result'>;
}

export function createReconcileMetrics(registry: Registry): ReconcileMetrics {
  const registers = [registry];
  return {
    comparisons: new Counter({
      name: 'cqrs_reconcile_comparisons_total',
      help: 'Reconciliation comparisons, by endpoint and outcome (mismatch and missing are drift)',
      labelNames: ['endpoint', 'outcome'],
      registers,
    }),
    repairs: new Counter({
      name: 'cqrs_reconcile_repairs_total',
      help: 'Drifted keys re-projected from the event store, by endpoint and whether they then matched',
      labelNames: ['endpoint', 'result'],
      registers,
    }),
  };
}
