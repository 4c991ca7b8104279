import { maskColumns } from '../lib/masking.js';
import type { DeadLetter } from './ports.js';

/** Rewrites a dead letter before it is stored: the store keeps what this returns. */
export type DeadLetterMask = (letter: DeadLetter) => DeadLetter;

/**
 * Masks the sensitive columns of a dead letter's row images (before and after), by table
 * (Migration.sensitiveColumns). The reason, table, position and the other columns stay, so an
 * operator still sees why and where a row was rejected; a re-drive of such a row has to read
 * the masked columns from the source again.
 */
export function deadLetterMask(columnsByTable: ReadonlyMap<string, readonly string[]>): DeadLetterMask {
  return (letter) => {
    const columns = columnsByTable.get(letter.table);
    if (columns === undefined) return letter;
    return {
      ...letter,
      change: {
        ...letter.change,
        before: maskColumns(letter.change.before, columns),
        after: maskColumns(letter.change.after, columns),
      },
    };
  };
}
