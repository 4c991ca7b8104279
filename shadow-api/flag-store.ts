import { EventEmitter } from 'node:events';
import { existsSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { AdapterError, errorMessage } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';
import { silentLogger } from '../lib/logger.js';
import {
  type EndpointFlagPatch,
  endpointFlagPatchSchema,
  endpointKeySchema,
  type FlagDocument,
  type FlagDocumentInput,
  flagDocumentSchema,
  patchFlags,
} from './flags.js';
import { describeIssues, type IssueSummary, summarizeIssues } from './issues.js';

/** A flag document or patch that does not validate; `issues` lists every problem. */
export class FlagsInvalidError extends AdapterError {
  readonly issues: IssueSummary[];

  constructor(what: string, issues: IssueSummary[], options?: { cause?: unknown }) {
    super('FLAGS_INVALID', `invalid ${what}: ${describeIssues(issues)}`, options);
    this.issues = issues;
  }
}

export interface FlagChange {
  previous: FlagDocument;
  current: FlagDocument;
  source: 'set' | 'patch' | 'reload';
}

export interface FlagStoreOptions {
  /** Used when there is no file, or the file does not exist yet. Default: everything legacy. */
  initial?: FlagDocumentInput;
  /**
   * JSON file the flags persist to. When it exists at open it wins over `initial`, so flags
   * changed at run time survive a restart.
   */
  file?: string;
  /**
   * Write `initial` to a file that does not exist yet (default true, so operators find the
   * file to edit). False: the file appears with the first change, and until then `initial`
   * (the configuration) keeps ruling across restarts.
   */
  writeInitial?: boolean;
  logger?: Logger;
}

/**
 * The flags port: the current flags, replaceable at run time, as every adapter keeps them
 * (FileFlagStore, RedisFlagStore). What an implementer must do:
 * - `get()` answers at once, without I/O, with the last whole document this process knows: the
 *   read path calls it on every request. Documents are frozen.
 * - `set`/`patch` validate before anything becomes visible (FlagsInvalidError), persist, then
 *   resolve with the document in force; a patch applies to the newest stored document, not to
 *   this process's copy, wherever replicas can write concurrently.
 * - Every change, made here or heard from another process, is announced once with `change`.
 * - `watch()` starts following changes other processes make; its result stops that.
 * - `close()` releases connections (after the last write).
 */
export interface FlagStore {
  get(): FlagDocument;
  /** Replaces the whole document. */
  set(input: unknown): Promise<FlagDocument>;
  /** Changes one key, e.g. patch('accounts.summary', { mode: 'canary', percent: 25 }). */
  patch(endpointKey: string, patch: unknown): Promise<FlagDocument>;
  /** Replaces the document with what `change` makes of the newest stored one (validated). */
  update(change: (stored: FlagDocument) => unknown): Promise<FlagDocument>;
  watch(intervalMs: number): () => void;
  on(event: 'change', listener: (change: FlagChange) => void): unknown;
  close(): Promise<void>;
}

/** The validated key and patch of a patch call, or FlagsInvalidError. */
export function parsePatch(endpointKey: string, patch: unknown): { key: string; patch: EndpointFlagPatch } {
  const key = endpointKeySchema.safeParse(endpointKey);
  if (!key.success) throw new FlagsInvalidError('endpoint key', summarizeIssues(key.error));
  const body = endpointFlagPatchSchema.safeParse(patch);
  if (!body.success) throw new FlagsInvalidError('flag patch', summarizeIssues(body.error));
  return { key: key.data, patch: body.data };
}

/**
 * Flags in a JSON file (or in memory without one). Every change is validated before it becomes
 * visible, written to the file (when there is one) and announced with a `change` event. Replicas
 * sharing the file on a volume follow each other with watch(); two of them patching within the
 * same second can lose one change (each writes its own whole document): share RedisFlagStore then.
 */
export class FileFlagStore extends EventEmitter<{ change: [FlagChange] }> implements FlagStore {
  private current: FlagDocument;
  private readonly file: string | undefined;
  private readonly logger: Logger;

  private constructor(initial: FlagDocument, file: string | undefined, logger: Logger) {
    super();
    this.current = initial;
    this.file = file;
    this.logger = logger;
  }

  static open(options: FlagStoreOptions = {}): FileFlagStore {
    const logger = (options.logger ?? silentLogger).child({ component: 'flag-store' });
    const file = options.file;
    if (file !== undefined && existsSync(file)) {
      const store = new FileFlagStore(readFlagFile(file), file, logger);
      logger.info({ file }, 'flags loaded from file');
      return store;
    }
    const store = new FileFlagStore(parseFlags(options.initial ?? {}, 'flag document'), file, logger);
    if (options.writeInitial !== false) store.persist();
    return store;
  }

  get(): FlagDocument {
    return this.current;
  }

  async set(input: unknown): Promise<FlagDocument> {
    return this.replace(parseFlags(input, 'flag document'), 'set');
  }

  async patch(endpointKey: string, patch: unknown): Promise<FlagDocument> {
    const parsed = parsePatch(endpointKey, patch);
    return this.replace(patchedDocument(this.current, parsed), 'patch');
  }

  async update(change: (stored: FlagDocument) => unknown): Promise<FlagDocument> {
    return this.replace(parseFlags(change(this.current), 'flag document after update'), 'set');
  }

  async close(): Promise<void> {}

  /** Re-reads the file, e.g. after an operator edited it. */
  reload(): FlagDocument {
    if (this.file === undefined) {
      throw new AdapterError('FLAGS_NO_FILE', 'the flag store has no file to reload from');
    }
    return this.replace(readFlagFile(this.file), 'reload');
  }

  /**
   * Follows what other processes write to the file: API replicas sharing one flags file (a
   * shared volume) converge on every change within `intervalMs`. Returns the stop function.
   */
  watch(intervalMs: number): () => void {
    const file = this.file;
    if (file === undefined) return () => undefined;
    // Own polling rather than fs.watchFile: watchFile takes its baseline from a stat on the
    // thread pool, so a write landing before that stat completes is never reported. Here the
    // first poll that finds the file compares its content, and later ones compare the file's
    // identity (a rename gives a new inode) as well as its mtime and size.
    let seen: string | undefined;
    const poll = () => {
      let signature: string;
      try {
        const stats = statSync(file, { throwIfNoEntry: false });
        if (stats === undefined) return;
        signature = `${stats.ino}:${stats.mtimeMs}:${stats.size}`;
      } catch (err) {
        this.logger.warn({ err, file }, 'flag file cannot be checked; the current flags stay');
        return;
      }
      if (signature === seen) return;
      seen = signature;
      try {
        const next = readFlagFile(file);
        if (JSON.stringify(next) !== JSON.stringify(this.current)) this.replace(next, 'reload');
      } catch (err) {
        this.logger.warn({ err, file }, 'flag file changed but cannot be read; the current flags stay');
      }
    };
    const timer = setInterval(poll, intervalMs);
    timer.unref();
    return () => clearInterval(timer);
  }

  private replace(next: FlagDocument, source: FlagChange['source']): FlagDocument {
    const previous = this.current;
    this.current = next;
    if (source !== 'reload') this.persist();
    this.logger.info({ source, flags: next }, 'flags changed');
    this.emit('change', { previous, current: next, source });
    return next;
  }

  private persist(): void {
    if (this.file === undefined) return;
    // Write-then-rename so a crash never leaves a half-written file that fails to load.
    const tmp = `${this.file}.${process.pid}.tmp`;
    try {
      mkdirSync(dirname(this.file), { recursive: true });
      writeFileSync(tmp, `${JSON.stringify(this.current, null, 2)}\n`);
      renameSync(tmp, this.file);
    } catch (cause) {
      throw new AdapterError(
        'FLAGS_PERSIST_FAILED',
        `cannot write flags to ${this.file}: ${errorMessage(cause)}`,
        {
          cause,
        },
      );
    }
  }
}

/** `current` with a parsed patch applied, validated as a whole. */
export function patchedDocument(
  current: FlagDocument,
  { key, patch }: { key: string; patch: EndpointFlagPatch },
): FlagDocument {
  return parseFlags(patchFlags(current, key, patch), 'flag document after patch');
}

/** A validated, frozen flag document, or FlagsInvalidError naming `what`. */
export function parseFlags(input: unknown, what: string): FlagDocument {
  const parsed = flagDocumentSchema.safeParse(input);
  if (!parsed.success)
    throw new FlagsInvalidError(what, summarizeIssues(parsed.error), { cause: parsed.error });
  return deepFreeze(parsed.data);
}

function readFlagFile(file: string): FlagDocument {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (cause) {
    throw new AdapterError(
      'FLAGS_INVALID',
      `flag file ${file} is not readable JSON: ${errorMessage(cause)}`,
      {
        cause,
      },
    );
  }
  return parseFlags(raw, `flag file ${file}`);
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null) {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}
