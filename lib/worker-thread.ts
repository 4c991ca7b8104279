import { existsSync, readFileSync, readlinkSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { type TransferListItem, Worker } from 'node:worker_threads';
import { AdapterError } from './errors.js';

/**
 * Starts the worker module `name` that sits beside `base` (a module's import.meta.url): its
 * compiled .js in dist/; else (running from source under tsx or vitest) a bootstrap that
 * registers tsx in the new thread and imports the TypeScript module, since a worker's entry
 * module is not compiled by an inherited `--import tsx`.
 */
export function startWorker(
  base: string,
  name: string,
  workerData: unknown,
  transferList: readonly TransferListItem[] = [],
): Worker {
  const options = {
    workerData,
    transferList: [...transferList],
    execArgv: withoutTsx(),
    resourceLimits: WORKER_RESOURCE_LIMITS,
  };
  const compiled = new URL(`./${name}.js`, base);
  if (existsSync(fileURLToPath(compiled))) return new Worker(compiled, options);
  const source = new URL(`./${name}.ts`, base).href;
  const bootstrap = `import(${JSON.stringify(tsxEsmApi())}).then((tsx) => { tsx.register(); return import(${JSON.stringify(source)}); });`;
  return new Worker(bootstrap, { ...options, eval: true });
}

/**
 * Each busy isolate grows its young generation to V8's 64-bit maximum (two 16 MiB semi-spaces),
 * and at Node's default heap limit (over 2 GB) lets its old generation grow up to 4× its live
 * size before a full collection. The append writer, the projector and analytics each live in
 * ~30–60 MB, and all three work through an initial snapshot at once. On the bench bank's
 * snapshot, 8 MiB semi-spaces (a young generation of 3 × 8) lowered the process's RSS by ~75 MB
 * at equal progress. A 2,000 MB old generation, under the 2 GB mark where V8 caps that growing
 * factor near 2, lowered it by ~80 MB more. Neither cost snapshot rate. A worker whose live data
 * outgrows the limit ends with ERR_WORKER_OUT_OF_MEMORY, handled as any failure of that worker.
 */
const WORKER_RESOURCE_LIMITS = { maxYoungGenerationSizeMb: 24, maxOldGenerationSizeMb: 2000 };

/**
 * tsx's ESM API module, found from this file (a bootstrap's own imports resolve from the working
 * directory). The ESM one: the CommonJS twin does not register from an evaluated worker.
 */
function tsxEsmApi(): string {
  const require = createRequire(import.meta.url);
  const manifest = require.resolve('tsx/package.json');
  const pkg = JSON.parse(readFileSync(manifest, 'utf8')) as {
    exports: Record<string, { import?: { default?: string } }>;
  };
  const file = pkg.exports['./esm/api']?.import?.default;
  if (file === undefined) throw new AdapterError('TSX_API_MISSING', `tsx at ${manifest} has no ESM API`);
  return pathToFileURL(join(dirname(manifest), file)).href;
}

/** This process's flags minus `--import tsx`: the bootstrap registers tsx once. */
function withoutTsx(): string[] {
  const out: string[] = [];
  const argv = process.execArgv;
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--import' && argv[i + 1] === 'tsx') i++;
    else out.push(argv[i] as string);
  }
  return out;
}

/**
 * The operating system's id of the calling thread (Linux: /proc/thread-self), or null where it
 * is not shown. A worker reports it with its first message, so a profile of the process can
 * tell which thread used how much CPU (/proc/<pid>/task/<tid>/stat).
 */
export function osThreadId(): number | null {
  try {
    const tid = Number(readlinkSync('/proc/thread-self').split('/').pop());
    return Number.isInteger(tid) && tid > 0 ? tid : null;
  } catch {
    return null;
  }
}

const namedThreads = new Map<number, string>();

/** Records what the thread `tid` (osThreadId, reported by a worker) does, for threadNames. */
export function nameThread(tid: number | null | undefined, name: string): void {
  if (typeof tid === 'number') namedThreads.set(tid, name);
}

/** The worker threads of this process by operating-system thread id, e.g. 'event-store-writer'. */
export function threadNames(): ReadonlyMap<number, string> {
  return namedThreads;
}

/**
 * An error as plain data: structured clone keeps only an Error's message and stack, while a
 * supervisor decides on `code`, `retriable` and the codes down the cause chain (SQLITE_BUSY).
 */
export interface TransferredError {
  name: string;
  message: string;
  stack?: string;
  code?: string;
  hint?: string;
  retriable?: boolean;
  cause?: TransferredError;
}

export function transferError(err: unknown, depth = 0): TransferredError {
  if (!(err instanceof Error)) return { name: 'Error', message: String(err) };
  const like = err as Error & { code?: unknown; hint?: unknown; retriable?: unknown };
  return {
    name: err.name,
    message: err.message,
    ...(err.stack === undefined ? {} : { stack: err.stack }),
    ...(typeof like.code === 'string' ? { code: like.code } : {}),
    ...(typeof like.hint === 'string' ? { hint: like.hint } : {}),
    ...(typeof like.retriable === 'boolean' ? { retriable: like.retriable } : {}),
    ...(err.cause === undefined || depth >= 8 ? {} : { cause: transferError(err.cause, depth + 1) }),
  };
}

/** A worker's error, rebuilt with its code, hint, retriable and cause chain. */
export class WorkerError extends AdapterError {
  readonly retriable: boolean | undefined;

  constructor(data: TransferredError, fallbackCode = 'WORKER_FAILED') {
    super(data.code ?? fallbackCode, data.message, {
      ...(data.cause === undefined ? {} : { cause: new WorkerError(data.cause, fallbackCode) }),
      ...(data.hint === undefined ? {} : { hint: data.hint }),
    });
    this.name = data.name;
    this.retriable = data.retriable;
    if (data.stack !== undefined) this.stack = data.stack;
  }
}

/**
 * The one running worker of a long-running thread (a projector's, analytics'), and those it was
 * asked to stop or gave up on: their exit is then no failure.
 */
export class WorkerSlot {
  private worker: Worker | null = null;
  private readonly stopping = new WeakSet<Worker>();

  get current(): Worker | null {
    return this.worker;
  }

  /** Sends `message` to the running worker, if any. */
  post(message: unknown): void {
    this.worker?.postMessage(message);
  }

  /** Asks the running worker to stop with `message` (after its batch in progress) and waits for its thread to end. */
  async stop(message: unknown): Promise<void> {
    const worker = this.worker;
    if (worker === null) return;
    this.worker = null;
    this.stopping.add(worker);
    const ended = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
    worker.postMessage(message);
    await ended;
  }

  /**
   * Makes `worker` the running one and watches its life: the returned promise resolves at its
   * ready message and rejects when it fails, ends or is stopped before; a failure afterwards
   * (its failure message, an error, an exit nobody asked for) terminates it and is reported
   * once to `onFailure`.
   */
  watch<M>(worker: Worker, watch: WorkerWatch<M>): Promise<void> {
    this.worker = worker;
    return new Promise<void>((resolve, reject) => {
      let starting = true;
      let failed = false;
      const fail = (err: Error) => {
        if (failed) return;
        failed = true;
        if (this.worker === worker) this.worker = null;
        this.stopping.add(worker);
        void worker.terminate();
        if (starting) {
          starting = false;
          reject(err);
        } else watch.onFailure(err);
      };
      worker.on('message', (message: M) => {
        const failure = watch.failureOf(message);
        if (failure !== null) {
          fail(failure);
          return;
        }
        watch.onMessage(message);
        if (starting && watch.isReady(message)) {
          starting = false;
          resolve();
        }
      });
      worker.on('error', (err) => fail(err));
      worker.on('exit', (code) => {
        watch.onExit(code);
        if (this.stopping.has(worker)) {
          if (starting) reject(watch.stoppedError());
          starting = false;
          return;
        }
        fail(watch.exitedError(code));
      });
    });
  }
}

/** What WorkerSlot.watch needs to know of a long-running worker and tells about it. */
export interface WorkerWatch<M> {
  /** The message that ends its start: the promise watch returns resolves. */
  isReady(message: M): boolean;
  /** Its own report of a failure, as an error; null for any other message. */
  failureOf(message: M): Error | null;
  onMessage(message: M): void;
  /** A failure once it had started (it is terminated already); during its start, the start rejects. */
  onFailure(err: Error): void;
  /** Its thread ended, for whatever reason: what it was still asked goes unanswered. */
  onExit(code: number): void;
  stoppedError(): Error;
  exitedError(code: number): Error;
}
