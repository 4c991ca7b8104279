import { workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { loadDefinition } from '../definition/load.js';
import { transferError } from '../lib/worker-thread.js';
import {
  type ComposeReply,
  type ComposeRequest,
  composeWorkerSettingsSchema,
  PAGES_AHEAD,
  POSTED,
  rootsSlot,
  takenSlot,
} from './compose-thread.js';
import { SqliteReadModels } from './stores/sqlite-read-models.js';

/**
 * A compose thread (see compose-thread.ts): composes its stripe of a view's documents from the
 * rows the writer's transactions committed, on a read-only connection of its own, and posts
 * them a page at a time, never more than PAGES_AHEAD pages ahead of the writer.
 */
const settings = composeWorkerSettingsSchema.parse(workerData);
const { port, stripe, stripes } = settings;
const signal = new Int32Array(settings.signal);
const TAKEN = takenSlot(stripe);
const ROOTS = rootsSlot(stripe);
/**
 * An eighth of the writer's page cache: root pages are read in order. 32 MiB per thread composed
 * the bench bank's views ~8% faster at ~30 MB more RSS per thread.
 */
const CACHE_KIB = 8 * 1024;

let posted = 0;
function post(reply: ComposeReply): void {
  // Room first: the writer takes pages only as fast as it inserts them.
  for (
    let taken = Atomics.load(signal, TAKEN);
    posted - taken >= PAGES_AHEAD;
    taken = Atomics.load(signal, TAKEN)
  )
    Atomics.wait(signal, TAKEN, taken, 1000);
  port.postMessage(reply);
  posted++;
  Atomics.add(signal, POSTED, 1);
  Atomics.notify(signal, POSTED);
}

const ready = (async () => {
  // Type-checked by the process that loaded it first.
  const migration = await loadDefinition(settings.definition, { typecheck: false });
  const db = new Database(settings.readModelsPath, { readonly: true, fileMustExist: true });
  db.pragma(`cache_size = -${CACHE_KIB}`);
  return { db, models: new SqliteReadModels(migration, settings.target ?? undefined) };
})();
// Handled when the request comes; until then a failed start must not end the thread unheard.
ready.catch(() => undefined);
// The writer waits on this thread's replies: whatever ends it posts one, or the writer waits for the stall bound.
process.on('uncaughtException', (err) => post({ type: 'failed', error: transferError(err) }));

port.on('message', (request: ComposeRequest) => {
  ready.then(
    ({ db, models }) => {
      try {
        // One read transaction: every page from the same committed state.
        db.exec('BEGIN');
        try {
          models.composeView(db, request.view, (documents) => post({ type: 'page', documents }), {
            stripe,
            stripes,
            onRoot: () => Atomics.add(signal, ROOTS, 1),
          });
        } finally {
          db.exec('COMMIT');
        }
        post({ type: 'done' });
      } catch (err) {
        post({ type: 'failed', error: transferError(err) });
      }
    },
    (err: unknown) => post({ type: 'failed', error: transferError(err) }),
  );
});
