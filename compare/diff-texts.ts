import { errorMessage } from '../lib/errors.js';
import { type Difference, diffJson } from './diff.js';

/** Two answers as JSON text, to be diffed (off the serving thread). */
export interface DiffRequest {
  id: number;
  legacy: string;
  readModel: string;
}

export type DiffResult = { id: number; differences: Difference[] } | { id: number; error: string };

/** Identical texts are equal JSON: the common case is settled without a parse. */
export function diffTexts(request: DiffRequest): DiffResult {
  if (request.legacy === request.readModel) return { id: request.id, differences: [] };
  try {
    return {
      id: request.id,
      differences: diffJson(JSON.parse(request.legacy), JSON.parse(request.readModel)),
    };
  } catch (err) {
    return { id: request.id, error: `cannot compare the answers: ${errorMessage(err)}` };
  }
}
