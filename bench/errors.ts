import { AdapterError } from '../lib/errors.js';

/** A benchmark could not run or measure what it was asked to (codes BENCH_*). */
export class BenchError extends AdapterError {}
