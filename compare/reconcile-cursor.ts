import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { z } from 'zod';
import { ConfigError } from '../lib/errors.js';

/**
 * `size` items from `start` on, wrapping round to the beginning, and where the next slice
 * starts. Successive slices cover every item once per `ceil(n / size)` runs; an item inserted
 * or removed meanwhile shifts the window by one, so none is skipped for long. size 0 = all.
 */
export function sliceOf<T>(items: readonly T[], start: number, size: number): { slice: T[]; next: number } {
  const n = items.length;
  if (size === 0 || size >= n) return { slice: [...items], next: 0 };
  const from = start % n;
  const end = from + size;
  const slice = end <= n ? items.slice(from, end) : [...items.slice(from), ...items.slice(0, end - n)];
  return { slice, next: end % n };
}

const cursorFile = z.strictObject({ endpoints: z.record(z.string(), z.number().int().min(0)) });

/**
 * Where each endpoint's next slice starts, kept in a JSON file of the data directory. Positions
 * move only when `commit` is called after a run finished: a run that failed half-way checks the
 * same slice again rather than leaving part of it unchecked.
 */
export class RotatingSlices {
  private readonly positions: Record<string, number>;
  private readonly pending: Record<string, number> = {};

  constructor(
    private readonly path: string,
    private readonly size: number,
  ) {
    this.positions = existsSync(path) ? RotatingSlices.read(path) : {};
  }

  private static read(path: string): Record<string, number> {
    try {
      return cursorFile.parse(JSON.parse(readFileSync(path, 'utf8'))).endpoints;
    } catch (cause) {
      throw new ConfigError(`reconciliation cursor ${path} is not readable`, {
        cause,
        hint: 'delete the file: the next scheduled run starts again from the first key',
      });
    }
  }

  /** This run's slice of an endpoint's parameter sets (in the order its `reconcile` lists them). */
  take<T>(endpoint: string, items: readonly T[]): T[] {
    const { slice, next } = sliceOf(items, this.positions[endpoint] ?? 0, this.size);
    this.pending[endpoint] = next;
    return slice;
  }

  /** Records the slices taken as checked; written to a temporary file and renamed, so a crash keeps the old cursor. */
  commit(): void {
    Object.assign(this.positions, this.pending);
    const temporary = `${this.path}.tmp`;
    writeFileSync(temporary, JSON.stringify({ endpoints: this.positions }));
    renameSync(temporary, this.path);
  }
}
