import { MessageChannel, type MessagePort, receiveMessageOnPort, type Worker } from 'node:worker_threads';
import { z } from 'zod';
import { AdapterError } from '../lib/errors.js';
import { startWorker, type TransferredError, WorkerError } from '../lib/worker-thread.js';

/**
 * A bulk build's view composition on threads of their own (compose-worker.ts), driven from inside
 * the SQLite transaction that writes the documents: better-sqlite3 transactions cannot await, so
 * the writer takes the threads' pages synchronously (receiveMessageOnPort, and Atomics.wait while
 * none is ready). Each thread reads the committed rows on its own connection and composes,
 * validates and serialises every `stripes`-th page of roots; the writer only inserts them. On a
 * 2-core machine a full replay spent ~40% of its time in this one serial step, most of it composing.
 */

/** One composed root: its key, the document's JSON text (null: the root composes to nothing), the row's text. */
export type ComposedDocument = [key: string, doc: string | null, row: string];

export const composeWorkerSettingsSchema = z.strictObject({
  /** The migration definition module: the thread loads it again (its views' selects are code). */
  definition: z.string().min(1),
  readModelsPath: z.string().min(1),
  /** The replayed version being built (null: version 1). */
  target: z.object({ readModel: z.string().min(1), version: z.number().int().min(1) }).nullable(),
  /** This thread composes the pages of roots whose number modulo `stripes` is `stripe`. */
  stripe: z.number().int().min(0),
  stripes: z.number().int().min(1),
  signal: z.instanceof(SharedArrayBuffer),
  port: z.custom<MessagePort>((v) => typeof v === 'object' && v !== null && 'postMessage' in v),
});
export type ComposeWorkerSettings = z.infer<typeof composeWorkerSettingsSchema>;

/** Writer → thread. */
export interface ComposeRequest {
  view: string;
}

/** Thread → writer, each counted in the POSTED slot after it is posted. */
export type ComposeReply =
  | { type: 'page'; documents: ComposedDocument[] }
  | { type: 'done' }
  | { type: 'failed'; error: TransferredError };

/** Slots of the shared Int32Array: POSTED for all threads, then TAKEN and ROOTS per thread. */
export const POSTED = 0;
/** Replies the writer took from thread `stripe`. */
export const takenSlot = (stripe: number) => 1 + 2 * stripe;
/** Roots thread `stripe` composed: they move while a page is under way, so a slow page is no stall. */
export const rootsSlot = (stripe: number) => 2 + 2 * stripe;

/** Pages each thread composes ahead of the writer: what memory holds is bounded by them. */
export const PAGES_AHEAD = 4;
/** How long one wait lasts before the writer looks at the threads' progress again. */
const WAIT_MS = 1000;
/** Threads that composed no root for this long are given up on (a thread killed by its heap limit posts nothing). */
const STALL_MS = 120_000;

export class ComposeStalledError extends AdapterError {
  constructor(view: string) {
    super(
      'COMPOSE_THREAD_STALLED',
      `no compose thread composed a document of view ${view} for ${STALL_MS / 1000} s`,
      { hint: 'set projector.composeThreads to 0 to compose on the projector thread, and report it' },
    );
  }
}

interface Thread {
  worker: Worker;
  port: MessagePort;
  taken: number;
}

/** The writer's end of a set of compose threads, started for one flush that composes large views whole. */
export class ComposeThreads {
  private readonly signal: Int32Array;
  private readonly threads: Thread[] = [];

  constructor(
    settings: Pick<ComposeWorkerSettings, 'definition' | 'readModelsPath' | 'target'>,
    count: number,
  ) {
    this.signal = new Int32Array(new SharedArrayBuffer((1 + 2 * count) * Int32Array.BYTES_PER_ELEMENT));
    for (let stripe = 0; stripe < count; stripe++) {
      const { port1, port2 } = new MessageChannel();
      const data: ComposeWorkerSettings = {
        ...settings,
        stripe,
        stripes: count,
        signal: this.signal.buffer as SharedArrayBuffer,
        port: port2,
      };
      const worker = startWorker(import.meta.url, 'compose-worker', data, [port2]);
      // Its failures arrive as replies; an exit between jobs matters to nobody.
      worker.on('error', () => undefined);
      worker.unref();
      this.threads.push({ worker, port: port1, taken: 0 });
    }
  }

  /**
   * Every document of `view`, handed to `write` a page at a time (each thread's pages in root
   * key order, the threads' interleaved); throws what a thread threw.
   */
  compose(view: string, write: (documents: ComposedDocument[]) => void): void {
    const request: ComposeRequest = { view };
    const going = new Set(this.threads);
    for (const thread of going) thread.port.postMessage(request);
    let quietMs = 0;
    let roots = this.roots();
    while (going.size > 0) {
      const posted = Atomics.load(this.signal, POSTED);
      let took = false;
      for (const [stripe, thread] of this.threads.entries()) {
        if (!going.has(thread)) continue;
        const received = receiveMessageOnPort(thread.port);
        if (received === undefined) continue;
        took = true;
        thread.taken++;
        Atomics.store(this.signal, takenSlot(stripe), thread.taken);
        Atomics.notify(this.signal, takenSlot(stripe));
        const reply = received.message as ComposeReply;
        if (reply.type === 'page') write(reply.documents);
        else if (reply.type === 'done') going.delete(thread);
        else throw new WorkerError(reply.error, 'COMPOSE_THREAD_FAILED');
      }
      if (took) {
        quietMs = 0;
        continue;
      }
      // Counted but not deliverable yet: the message is on its way.
      if (posted !== this.taken()) {
        Atomics.wait(this.signal, POSTED, posted, 1);
        continue;
      }
      if (Atomics.wait(this.signal, POSTED, posted, WAIT_MS) !== 'timed-out') continue;
      const now = this.roots();
      quietMs = now === roots ? quietMs + WAIT_MS : 0;
      roots = now;
      if (quietMs >= STALL_MS) throw new ComposeStalledError(view);
    }
  }

  /** Ends the threads (a job in progress too: it is only ever waited for inside `compose`). */
  close(): void {
    for (const { worker, port } of this.threads) {
      port.close();
      void worker.terminate().catch(() => undefined);
    }
  }

  private taken(): number {
    let n = 0;
    for (const thread of this.threads) n += thread.taken;
    return n;
  }

  private roots(): number {
    let n = 0;
    for (let stripe = 0; stripe < this.threads.length; stripe++)
      n += Atomics.load(this.signal, rootsSlot(stripe));
    return n;
  }
}
