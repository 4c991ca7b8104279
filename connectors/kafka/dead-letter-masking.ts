import { type DeadLetterMask, deadLetterMask } from '../../eventstore/dead-letter-mask.js';
import { isObject } from '../../lib/guards.js';
import { maskColumns, maskValue } from '../../lib/masking.js';
import type { InvalidRecord } from './debezium-source.js';

/**
 * The dead-letter topic keeps no more personal data than the embedded dead letters: the
 * sensitive columns (capture.sensitive) of a rejected row's before and after images are masked
 * before it is produced, and so are those of a Debezium record no parser accepted (its envelope,
 * with or without the JSON converter's schema wrapper). A record that is not JSON at all, from
 * a table with sensitive columns, keeps only the hash of its value.
 */
export interface DeadLetterMasking {
  row: DeadLetterMask;
  record(record: InvalidRecord): InvalidRecord;
}

export function deadLetterMasking(columnsByTable: ReadonlyMap<string, readonly string[]>): DeadLetterMasking {
  return {
    row: deadLetterMask(columnsByTable),
    record(record) {
      // Debezium names table topics <topic.prefix>.<database|schema>.<table>.
      const columns = columnsByTable.get(record.topic.slice(record.topic.lastIndexOf('.') + 1));
      if (columns === undefined || record.value === null) return record;
      let parsed: unknown;
      try {
        parsed = JSON.parse(record.value);
      } catch {
        return { ...record, value: String(maskValue(record.value)) };
      }
      return { ...record, value: JSON.stringify(maskEnvelope(parsed, columns)) };
    },
  };
}

function maskEnvelope(value: unknown, columns: readonly string[]): unknown {
  if (!isObject(value)) return value;
  if (isObject(value.payload)) return { ...value, payload: maskEnvelope(value.payload, columns) };
  const image = (v: unknown) => (isObject(v) ? maskColumns(v, columns) : v);
  return { ...value, before: image(value.before), after: image(value.after) };
}
