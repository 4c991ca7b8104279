import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

/**
 * The product's core knows no sample database: nothing outside examples/, bench/ and test/
 * imports examples/, and the examples reach the product only through its public entry
 * (index.ts), as a user's own definition would.
 */
const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const SKIP = new Set(['node_modules', 'dist', '.data', '.git', 'stack']);

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    if (SKIP.has(entry.name)) return [];
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sources(path);
    return entry.name.endsWith('.ts') ? [path] : [];
  });
}

/** Relative import targets of a module, resolved to repository paths. */
function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const targets = [...text.matchAll(/(?:from|import)\s*\(?\s*['"](\.[^'"]+)['"]/g)].map(
    (m) => m[1] as string,
  );
  return targets.map((t) =>
    relative(root, resolve(dirname(file), t))
      .split(sep)
      .join('/'),
  );
}

const top = (path: string) => path.split('/')[0] ?? '';
const files = sources(root).map((f) => ({
  file: relative(root, f).split(sep).join('/'),
  imports: importsOf(f),
}));

describe('import boundaries', () => {
  it('finds the modules it checks', () => {
    expect(files.filter((f) => top(f.file) === 'examples').length).toBeGreaterThan(10);
    expect(files.filter((f) => top(f.file) === 'cli').length).toBeGreaterThan(5);
  });

  it('no module outside examples/, bench/ and test/ imports examples/', () => {
    const offenders = files
      .filter((f) => !['examples', 'bench', 'test'].includes(top(f.file)))
      .flatMap((f) => f.imports.filter((i) => top(i) === 'examples').map((i) => `${f.file} → ${i}`));
    expect(offenders).toEqual([]);
  });

  it('examples import nothing of the product but its public entry', () => {
    const offenders = files
      .filter((f) => top(f.file) === 'examples')
      .flatMap((f) =>
        f.imports.filter((i) => top(i) !== 'examples' && i !== 'index.js').map((i) => `${f.file} → ${i}`),
      );
    expect(offenders).toEqual([]);
  });

  it('the definition core imports no adapter, runtime or CLI module', () => {
    const allowed = [
      'definition',
      'connectors/mapping',
      'connectors/change-event.js',
      'eventstore/ports.js',
      'lib',
    ];
    const offenders = files
      .filter(
        (f) =>
          top(f.file) === 'definition' &&
          !f.file.startsWith('definition/load') &&
          !f.file.startsWith('definition/init'),
      )
      .flatMap((f) =>
        f.imports
          .filter((i) => !allowed.some((a) => i === a || i.startsWith(`${a}/`)))
          .map((i) => `${f.file} → ${i}`),
      );
    expect(offenders).toEqual([]);
  });
});
