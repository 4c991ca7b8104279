import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadDefinition, typecheckDefinition } from '../../definition/load.js';
import { DefinitionError } from '../../lib/errors.js';

/**
 * Definitions written the way a user writes one, in a folder outside the repository, importing
 * the public entry by absolute path (in a user's project it is `from 'cqrs-migrate'`).
 */
const entry = fileURLToPath(new URL('../../index.ts', import.meta.url));

/** A tiny but complete definition: one captured table, one view over it, one endpoint. */
function definition(
  options: { name?: string; exportAs?: 'default' | 'migration'; extra?: string } = {},
): string {
  const exportLine = options.exportAs === 'migration' ? 'export const migration =' : 'export default';
  return `import { captureTable, defineEndpoint, defineMigration, defineView, z } from ${JSON.stringify(entry)};

const customers = captureTable({
  table: 'customers',
  row: z.object({ id: z.number().int(), name: z.string() }),
  key: 'id',
  stream: { type: 'customer', id: (c) => String(c.id) },
  onCreate: 'CustomerCreated',
  otherwise: 'CustomerChanged',
  onDelete: 'CustomerDeleted',
});

const customerDoc = z.object({ id: z.number(), name: z.string() });

const customer = defineView({
  name: 'customer',
  from: 'customers',
  select: (root) => ({ id: Number(root.row.id), name: String(root.row.name) }),
  schema: customerDoc,
});
${options.extra ?? ''}
${exportLine} defineMigration({
  name: ${JSON.stringify(options.name ?? 'tiny-shop')},
  capture: { tables: [customers] },
  readModels: [customer],
  domains: {
    customers: {
      endpoints: {
        byId: defineEndpoint({
          route: '/customers/:id',
          params: z.object({ id: z.coerce.number().int() }),
          legacy: { sql: 'SELECT id, name FROM customers WHERE id = :id' },
          readModel: async ({ params, readModels }) => (await readModels.customer?.get(String(params.id))) ?? null,
        }),
      },
    },
  },
});
`;
}

let dir: string;
/** Writes `source` as `name` in a fresh folder (an ESM package unless `esm` is false). */
function write(name: string, source: string, esm = true): string {
  const folder = mkdtempSync(join(dir, 'def-'));
  if (esm) writeFileSync(join(folder, 'package.json'), '{ "type": "module" }\n');
  const file = join(folder, name);
  writeFileSync(file, source);
  return file;
}

async function refusal(run: Promise<unknown>): Promise<DefinitionError> {
  const err = await run.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(DefinitionError);
  const definitionError = err as DefinitionError;
  expect(definitionError.code).toBe('DEFINITION_INVALID');
  expect(definitionError.hint).toBeTruthy();
  return definitionError;
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'cqrs-definition-'));
  mkdirSync(dir, { recursive: true });
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('loadDefinition', () => {
  it('type-checks and loads a TypeScript definition (default export)', async () => {
    const file = write('migration.ts', definition());
    const started = performance.now();
    const checkMs = await typecheckDefinition(file);
    const migration = await loadDefinition(file);
    // Printed so the cost of the check is visible in the test output.
    console.info(
      `type-check ${Math.round(checkMs)} ms; loadDefinition (check + import) ${Math.round(performance.now() - started - checkMs)} ms`,
    );
    expect(migration.kind).toBe('migration');
    expect(migration.name).toBe('tiny-shop');
    expect(migration.tables).toEqual(['customers']);
    expect(migration.readModels.map((m) => m.name)).toEqual(['customer']);
    expect(migration.endpoints.map((e) => e.key)).toEqual(['customers.byId']);
    expect(migration.viewPlans.has('customer')).toBe(true);
  });

  it('loads a named `migration` export from a CommonJS-mode folder (no "type": "module")', async () => {
    const file = write('migration.ts', definition({ exportAs: 'migration' }), false);
    const migration = await loadDefinition(file);
    expect(migration.name).toBe('tiny-shop');
  });

  it('refuses a definition with type errors, listing file:line:col for each', async () => {
    const extra = `const retries: number = 'three';\nexport const other = captureTable({ table: 't', row: z.object({ id: z.number() }), key: 'idd', stream: { type: 't', id: (r) => String(r.id) }, onCreate: 'A', otherwise: 'B', onDelete: 'C' });\n`;
    const file = write('broken.ts', definition({ extra }));
    const err = await refusal(loadDefinition(file));
    expect(err.message).toContain('does not type-check (2 errors)');
    // The extra lines are lines 21 and 22 of the file.
    expect(err.message).toMatch(/broken\.ts:21:7: Type 'string' is not assignable to type 'number'/);
    expect(err.message).toMatch(/broken\.ts:22:\d+: Type '"idd"' is not assignable/);
    expect(err.hint).toMatch(/type errors/);
  });

  it('remembers a passed check until the definition or a file it imports changes', async () => {
    const file = write('migration.ts', definition({ extra: "import { retries } from './limits.js';\n" }));
    const limits = join(file, '..', 'limits.ts');
    writeFileSync(limits, 'export const retries: number = 3;\n');
    const first = await typecheckDefinition(file);
    const again = await typecheckDefinition(file);
    console.info(`type-check ${Math.round(first)} ms, remembered ${Math.round(again)} ms`);
    expect(again).toBeLessThan(first);
    // An imported file changes: the check runs again and finds the error.
    writeFileSync(limits, "export const retries: number = 'three';\n");
    const err = await refusal(typecheckDefinition(file));
    expect(err.message).toMatch(/limits\.ts:1:14: Type 'string' is not assignable/);
    // Still refused on the next start: only passes are remembered.
    await refusal(typecheckDefinition(file));
    writeFileSync(limits, 'export const retries: number = 4;\n');
    await expect(typecheckDefinition(file)).resolves.toBeGreaterThan(0);
  });

  it('skips the check with typecheck: false (the definition still has to be valid at run time)', async () => {
    const file = write('unchecked.ts', definition({ extra: "const retries: number = 'three' as never;\n" }));
    await expect(loadDefinition(file, { typecheck: false })).resolves.toMatchObject({ name: 'tiny-shop' });
  });

  it("propagates defineMigration's DefinitionError (naming the field) as this package's class", async () => {
    const file = write('invalid.ts', definition({ name: 'Tiny Shop' }));
    const err = await refusal(loadDefinition(file));
    expect(err.message).toContain('invalid migration definition');
    expect(err.message).toContain('name: "Tiny Shop" is not a valid name');
  });

  it('refuses a module that exports no migration, saying what it found and how to export one', async () => {
    const file = write(
      'wrong.ts',
      "export const answer = 42;\nexport default { kind: 'not-a-migration' };\n",
    );
    const err = await refusal(loadDefinition(file));
    expect(err.message).toContain('exports no migration');
    expect(err.message).toContain('answer (number)');
    expect(err.message).toContain('default (an object)');
    expect(err.hint).toContain('export default defineMigration(');
  });

  it('imports a JavaScript definition natively (and refuses one exporting nothing)', async () => {
    const file = write('migration.mjs', 'export const nothingHere = null;\n');
    const err = await refusal(loadDefinition(file));
    expect(err.message).toContain('nothingHere (null)');
  });

  it('wraps an error thrown while the module is imported, with the file', async () => {
    const file = write('throws.ts', "throw new Error('boom at import');\nexport {};\n");
    const err = await refusal(loadDefinition(file));
    expect(err.message).toMatch(/throws\.ts failed: boom at import/);
  });

  it('refuses a missing file with its resolved path', async () => {
    const err = await refusal(loadDefinition(join(dir, 'nowhere', 'migration.ts')));
    expect(err.message).toContain(join(dir, 'nowhere', 'migration.ts'));
    expect(err.message).toContain('does not exist');
  });

  it('refuses a file that is not a module', async () => {
    const err = await refusal(loadDefinition(write('migration.json', '{}')));
    expect(err.message).toContain('is not a module');
  });
});
