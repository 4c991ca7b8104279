/**
 * Typed errors: every failure the adapter reports has a stable `code` so callers (CLI, API,
 * tests) can branch on it, a message a human can act on, and the underlying `cause`.
 */
export class AdapterError extends Error {
  readonly code: string;
  /** What the operator should do about it, printed by the CLI under the message. */
  readonly hint: string | undefined;

  constructor(code: string, message: string, options?: { cause?: unknown; hint?: string }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.hint = options?.hint;
  }
}

export class ConfigError extends AdapterError {
  constructor(message: string, options?: { cause?: unknown; hint?: string }) {
    super('CONFIG_INVALID', message, options);
  }
}

/** The legacy database cannot serve CDC (unreachable, no binlog, wrong format, missing grants). */
export class SourceError extends AdapterError {}

export class StoreError extends AdapterError {}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** A migration definition (capture rules, read models, endpoints) that cannot run as written. */
export class DefinitionError extends AdapterError {
  constructor(message: string, options?: { cause?: unknown; hint?: string }) {
    super('DEFINITION_INVALID', message, options);
  }
}
