import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadDefinition } from '../../definition/load.js';

/**
 * What `npm publish` would ship, and that the shipped package works where npm installs it:
 * dist/ and migrations/ side by side at the package root, imported through the exports map.
 * No services needed; the build runs first (about 15-40 s).
 */
const run = promisify(execFile);
const root = fileURLToPath(new URL('../../', import.meta.url));

interface PackResult {
  filename: string;
  files: { path: string }[];
}

let build: { code: number; output: string };
let files: string[];
let dir: string;
let installed: string;

beforeAll(async () => {
  build = await run('npm', ['run', '-s', 'build'], { cwd: root, maxBuffer: 64 * 1024 * 1024 }).then(
    ({ stdout, stderr }) => ({ code: 0, output: stdout + stderr }),
    (err: { code?: number; stdout?: string; stderr?: string }) => ({
      code: err.code ?? 1,
      output: `${err.stdout ?? ''}${err.stderr ?? ''}`,
    }),
  );
  dir = mkdtempSync(join(tmpdir(), 'cqrs-pack-'));
  // --ignore-scripts: the build above already ran (prepack would run it again).
  const { stdout } = await run('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', dir], {
    cwd: root,
    maxBuffer: 64 * 1024 * 1024,
  });
  const [pack] = JSON.parse(stdout) as PackResult[];
  if (pack === undefined) throw new Error(`npm pack printed no result: ${stdout}`);
  files = pack.files.map((f) => f.path);

  // An installed layout: <dir>/node_modules/cqrs-migrate is the unpacked tarball, and its
  // dependencies are this checkout's (symlinked, so nothing is downloaded).
  const modules = join(dir, 'node_modules');
  mkdirSync(modules);
  await run('tar', ['-xzf', join(dir, pack.filename), '-C', dir]);
  installed = join(modules, 'cqrs-migrate');
  await run('mv', [join(dir, 'package'), installed]);
  for (const name of readdirSync(join(root, 'node_modules'))) {
    if (name.startsWith('.') || name === 'cqrs-migrate') continue;
    symlinkSync(join(root, 'node_modules', name), join(modules, name));
  }
}, 240_000);

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('the published package', () => {
  it('builds without type errors', () => {
    expect(build.output.split('\n').filter((line) => /error TS\d+/.test(line))).toEqual([]);
    expect(build.code).toBe(0);
  });

  it('ships the compiled entry, its types, the migrations, README and LICENSE', () => {
    expect(files).toEqual(
      expect.arrayContaining([
        'package.json',
        'README.md',
        'LICENSE',
        'dist/index.js',
        'dist/index.d.ts',
        'dist/cli/main.js',
        'dist/definition/load.js',
        'migrations/sqlite/001_event_store.sql',
      ]),
    );
    expect(files.filter((f) => f.startsWith('migrations/') && f.endsWith('.sql')).length).toBeGreaterThan(1);
  });

  it('ships no benchmark, example or test sources and no TypeScript sources', () => {
    expect(files.filter((f) => /^(dist\/)?(bench|test)\//.test(f) || /^examples\//.test(f))).toEqual([]);
    expect(files.filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'))).toEqual([]);
  });

  it('finds its migrations from dist/ once installed, and imports through the exports map', async () => {
    const script = `
      const pkg = await import('cqrs-migrate/package.json', { with: { type: 'json' } });
      const { sqliteMigrationsDir } = await import(${JSON.stringify(join(installed, 'dist/migrations/sqlite.js'))});
      const api = await import('cqrs-migrate');
      const { CqrsMigrateProvider } = await import('cqrs-migrate/openfeature');
      console.log(JSON.stringify({
        name: pkg.default.name,
        provider: typeof CqrsMigrateProvider,
        sqlite: sqliteMigrationsDir(),
        api: ['defineMigration', 'captureTable', 'defineView', 'defineEndpoint', 'z'].filter((n) => typeof api[n] !== 'function' && typeof api[n] !== 'object'),
      }));`;
    const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script], { cwd: dir });
    const result = JSON.parse(stdout) as {
      name: string;
      provider: string;
      sqlite: string;
      api: string[];
    };
    expect(result.name).toBe('cqrs-migrate');
    expect(result.provider).toBe('function');
    expect(result.sqlite).toBe(join(installed, 'migrations', 'sqlite/'));
    expect(result.api).toEqual([]); // every name is exported
  });

  it("type-checks and loads a definition importing 'cqrs-migrate' from the installed package", async () => {
    const file = join(dir, 'migration.ts');
    writeFileSync(join(dir, 'package.json'), '{ "type": "module" }\n');
    writeFileSync(
      file,
      `import { captureTable, defineEndpoint, defineMigration, z } from 'cqrs-migrate';
const items = captureTable({
  table: 'items',
  row: z.object({ id: z.number() }),
  key: 'id',
  stream: { type: 'item', id: (r) => String(r.id) },
  onCreate: 'ItemAdded',
  otherwise: 'ItemChanged',
  onDelete: 'ItemRemoved',
});
export default defineMigration({
  name: 'installed',
  capture: { tables: [items] },
  readModels: [],
  domains: {
    items: {
      endpoints: {
        one: defineEndpoint({
          route: '/items/:id',
          params: z.object({ id: z.coerce.number() }),
          legacy: { sql: 'SELECT id FROM items WHERE id = :id' },
          readModel: async () => null,
        }),
      },
    },
  },
});
`,
    );
    const started = performance.now();
    const migration = await loadDefinition(file);
    console.info(`loadDefinition against the installed .d.ts: ${Math.round(performance.now() - started)} ms`);
    expect(migration.name).toBe('installed');
    expect(migration.endpoints.map((e) => e.key)).toEqual(['items.one']);
  });
});
