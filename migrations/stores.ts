import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { ConfigError } from '../lib/errors.js';

/**
 * Declarative schemas of the server read models: MongoDB indexes (migrations/mongo/indexes.json)
 * and OpenSearch index bodies (migrations/opensearch/<name>.json). The projections apply them on
 * every start; both stores make that a no-op when they are already in place.
 */

/** The build does not copy .json files into dist/, so compiled code falls back to the source tree. */
function migrationsDir(store: 'mongo' | 'opensearch'): string {
  for (const candidate of [
    new URL(`./${store}/`, import.meta.url),
    new URL(`../../migrations/${store}/`, import.meta.url),
  ]) {
    const dir = fileURLToPath(candidate);
    if (existsSync(dir)) return dir;
  }
  throw new ConfigError(`migrations folder migrations/${store} not found`, {
    hint: 'run from a checkout or package that includes the migrations/ folder',
  });
}

function readJson<S extends z.ZodType>(path: string, schema: S): z.output<S> {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new ConfigError(`migration file ${path} is not readable JSON`, { cause: err });
  }
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    throw new ConfigError(`migration file ${path} is invalid: ${z.prettifyError(parsed.error)}`, {
      cause: parsed.error,
    });
  }
  return parsed.data;
}

const mongoIndexSchema = z.object({
  name: z.string().min(1),
  key: z.record(z.string(), z.union([z.literal(1), z.literal(-1)])),
  unique: z.boolean().optional(),
});
export type MongoIndexSpec = z.infer<typeof mongoIndexSchema>;

/** Collection name → the secondary indexes it needs. */
export function mongoIndexes(): Record<string, MongoIndexSpec[]> {
  return readJson(
    join(migrationsDir('mongo'), 'indexes.json'),
    z.record(z.string(), z.array(mongoIndexSchema)),
  );
}

const openSearchIndexSchema = z.object({
  settings: z.record(z.string(), z.unknown()),
  mappings: z.object({ properties: z.record(z.string(), z.unknown()) }).catchall(z.unknown()),
});
export type OpenSearchIndexBody = z.infer<typeof openSearchIndexSchema>;

/** Index name without the configured prefix (the file's name) → its settings and mappings. */
export function openSearchIndexes(): Record<string, OpenSearchIndexBody> {
  const dir = migrationsDir('opensearch');
  return Object.fromEntries(
    readdirSync(dir)
      .filter((name) => name.endsWith('.json'))
      .map((name) => [basename(name, '.json'), readJson(join(dir, name), openSearchIndexSchema)]),
  );
}
