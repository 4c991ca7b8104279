import type { ReadModels } from './read-models.js';

/**
 * An answer already serialised as JSON, e.g. a stored document's text. The shadow API sends it
 * as it is: parsing a stored document only to serialise it again was a third of a read-model
 * request's CPU. Comparisons, reconciliation and `readModelAnswer` see the parsed value.
 */
const BRAND = Symbol.for('cqrs-migrate.JsonText');

export class JsonText {
  readonly [BRAND] = true;

  constructor(readonly json: string) {}

  /**
   * A definition file is loaded in its own module namespace (tsx), so the JsonText it builds
   * comes from another copy of this module than the one the API and reconciliation check
   * against: any copy is recognised by its process-wide brand.
   */
  static [Symbol.hasInstance](value: unknown): value is JsonText {
    return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[BRAND] === true;
  }
}

/** Wraps JSON text as an endpoint answer (it must be valid JSON: it is sent unchecked). */
export function jsonText(json: string): JsonText {
  return new JsonText(json);
}

/** The answer as a value: JSON text parsed, anything else as it is. */
export function answerValue(answer: unknown): unknown {
  return answer instanceof JsonText ? JSON.parse(answer.json) : answer;
}

/**
 * The endpoint answer that is one stored document: its stored text when the store keeps
 * documents as JSON (`getJson`, the embedded SQLite read models), else the document. Null
 * when there is none (a 404).
 */
export async function storedDocument(readModels: ReadModels, name: string, key: string): Promise<unknown> {
  const handle = readModels[name];
  if (handle === undefined) throw new Error(`read model ${name} is not served here`);
  if (handle.getJson === undefined) return handle.get(key);
  const text = await handle.getJson(key);
  return text === null ? null : new JsonText(text);
}
