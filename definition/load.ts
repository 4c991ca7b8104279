import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { dirname, extname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { pathToFileURL } from 'node:url';
import type ts from 'typescript';
import { AdapterError, DefinitionError, errorMessage } from '../lib/errors.js';
import { isMigration, type Migration } from './migration.js';

/**
 * Loads a user's migration definition module: a TypeScript file runs without a build step
 * (tsx), after the TypeScript compiler has checked it, so a definition with a type error is
 * refused at start with `file:line:col` instead of failing at run time on a wrong field.
 */

export interface LoadDefinitionOptions {
  /** Type-check a TypeScript definition before importing it (default true). */
  typecheck?: boolean;
}

const TS_EXTENSIONS = new Set(['.ts', '.mts', '.cts']);
const JS_EXTENSIONS = new Set(['.js', '.mjs', '.cjs']);

const EXPORT_HINT =
  'default-export the definition: `export default defineMigration({ ... })` ' +
  "(import { defineMigration } from 'cqrs-migrate'), or export it as `export const migration = defineMigration({ ... })`";

/** `path` as the operator wrote it when it is under the working directory, else absolute. */
function shown(path: string): string {
  const rel = relative(process.cwd(), path);
  return rel !== '' && !rel.startsWith('..') && !isAbsolute(rel) ? rel : path;
}

/**
 * Compiler options of the check: the strict core of this project's tsconfig, with NodeNext
 * resolution so `'cqrs-migrate'` (package exports) and relative `./x.js` / `./x.ts` imports
 * resolve as tsx resolves them at run time. isolatedModules matches tsx, which compiles
 * each file alone.
 */
function checkOptions(typescript: typeof ts, file: string): ts.CompilerOptions {
  const options: ts.CompilerOptions = {
    target: typescript.ScriptTarget.ES2022,
    module: typescript.ModuleKind.NodeNext,
    moduleResolution: typescript.ModuleResolutionKind.NodeNext,
    lib: ['lib.es2023.d.ts'],
    strict: true,
    noImplicitOverride: true,
    esModuleInterop: true,
    resolveJsonModule: true,
    isolatedModules: true,
    allowImportingTsExtensions: true,
    forceConsistentCasingInFileNames: true,
    skipLibCheck: true,
    noEmit: true,
  };
  // Node's types when the user's project has them (a sample hook may use node:crypto or
  // process), and no other @types: including every package under node_modules/@types, as
  // tsc does by default, doubles the time of the check for nothing the definition uses.
  const node = typescript.resolveTypeReferenceDirective('node', file, options, typescript.sys);
  const resolved = node.resolvedTypeReferenceDirective?.resolvedFileName;
  options.types = resolved === undefined ? [] : ['node'];
  // Found from the definition's folder, so looked up there too: the default type roots are the
  // working directory's, which need not see the definition's node_modules.
  if (resolved !== undefined) options.typeRoots = [dirname(dirname(resolved))];
  return options;
}

/** `file:line:col: message` of one diagnostic (continuation lines indented). */
function formatDiagnostic(typescript: typeof ts, d: ts.Diagnostic): string {
  const message = typescript.flattenDiagnosticMessageText(d.messageText, '\n    ');
  if (d.file === undefined || d.start === undefined) return `${message} (TS${d.code})`;
  const { line, character } = d.file.getLineAndCharacterOfPosition(d.start);
  return `${shown(d.file.fileName)}:${line + 1}:${character + 1}: ${message} (TS${d.code})`;
}

/**
 * Type-checks the definition and every file of the user's it imports from its own folder
 * (not node_modules, not the cqrs-migrate package when imported from elsewhere): only those
 * files are checked, so the cost is the user's code plus reading the declarations it uses.
 * Throws a DefinitionError listing each error; resolves to the time it took (ms).
 */
export async function typecheckDefinition(file: string): Promise<number> {
  const started = performance.now();
  // Loaded on demand: the compiler is large, and only TypeScript definitions need it.
  const typescript = (await import('typescript')).default;
  const cache = checkCacheFile(file);
  if (passedBefore(cache, typescript.version)) return performance.now() - started;
  const program = typescript.createProgram({ rootNames: [file], options: checkOptions(typescript, file) });
  const folder = dirname(file) + sep;
  const own = (sourceFile: ts.SourceFile) => {
    const name = resolve(sourceFile.fileName);
    return (
      name.startsWith(folder) &&
      !name.includes(`${sep}node_modules${sep}`) &&
      !sourceFile.isDeclarationFile &&
      !program.isSourceFileFromExternalLibrary(sourceFile)
    );
  };
  const diagnostics: ts.Diagnostic[] = [
    ...program.getOptionsDiagnostics(),
    ...program.getGlobalDiagnostics(),
  ];
  for (const sourceFile of program.getSourceFiles().filter(own)) {
    diagnostics.push(
      ...program.getSyntacticDiagnostics(sourceFile),
      ...program.getSemanticDiagnostics(sourceFile),
    );
  }
  const errors = diagnostics.filter((d) => d.category === typescript.DiagnosticCategory.Error);
  if (errors.length > 0) {
    const lines = errors.map((d) => `  ${formatDiagnostic(typescript, d)}`);
    throw new DefinitionError(
      `migration definition ${shown(file)} does not type-check (${errors.length} error${errors.length === 1 ? '' : 's'}):\n${lines.join('\n')}`,
      {
        hint:
          'fix the type errors above (an editor with TypeScript shows them as you type); the definition is checked ' +
          "with strict TypeScript, NodeNext resolution (import 'cqrs-migrate', relative imports with .js or .ts)",
      },
    );
  }
  rememberPass(
    cache,
    typescript.version,
    program
      .getSourceFiles()
      .filter((f) => !program.isSourceFileDefaultLibrary(f))
      .map((f) => resolve(f.fileName)),
  );
  return performance.now() - started;
}

/**
 * A passed check is remembered with the content hash of every file the program read (the
 * definition, its imports, the declarations of the packages it uses), so a restart — a
 * supervisor restarting a crashed `run`, a crash loop — skips the seconds the compiler takes
 * unless one of those files changed. Only passes are remembered: a failing definition is
 * checked again every time and its errors shown.
 */
interface CheckStamp {
  typescript: string;
  files: Record<string, string>;
}

function checkCacheFile(file: string): string {
  const root = process.env.CQRS_CACHE_DIR ?? join(tmpdir(), `cqrs-migrate-${userInfo().uid}`);
  return join(root, 'typecheck', `${createHash('sha256').update(file).digest('hex').slice(0, 32)}.json`);
}

function contentHash(path: string): string | null {
  try {
    return createHash('sha256').update(readFileSync(path)).digest('hex');
  } catch {
    return null;
  }
}

function passedBefore(cacheFile: string, typescriptVersion: string): boolean {
  let stamp: CheckStamp;
  try {
    stamp = JSON.parse(readFileSync(cacheFile, 'utf8')) as CheckStamp;
  } catch {
    return false;
  }
  if (stamp.typescript !== typescriptVersion || typeof stamp.files !== 'object' || stamp.files === null)
    return false;
  return Object.entries(stamp.files).every(([path, hash]) => contentHash(path) === hash);
}

function rememberPass(cacheFile: string, typescriptVersion: string, paths: string[]): void {
  const files: Record<string, string> = {};
  for (const path of paths) {
    const hash = contentHash(path);
    if (hash === null) return;
    files[path] = hash;
  }
  const stamp: CheckStamp = { typescript: typescriptVersion, files };
  // A cache that cannot be written only costs the next start the check again.
  try {
    mkdirSync(dirname(cacheFile), { recursive: true });
    const partial = `${cacheFile}.${process.pid}.tmp`;
    writeFileSync(partial, JSON.stringify(stamp));
    renameSync(partial, cacheFile);
  } catch {
    // best effort, see above
  }
}

/**
 * The migration of a definition module namespace: its default export or its `migration`
 * export. A TypeScript file outside an ESM package ("type": "module") is compiled to
 * CommonJS, whose exports then sit one level down, under `default`.
 */
function migrationOf(namespace: Record<string, unknown>): Migration | undefined {
  const candidates: unknown[] = [namespace.default, namespace.migration];
  const cjs = namespace.default;
  if (typeof cjs === 'object' && cjs !== null) {
    const exports = cjs as Record<string, unknown>;
    candidates.push(exports.default, exports.migration);
  }
  return candidates.find(isMigration);
}

function describeExports(namespace: Record<string, unknown>): string {
  const describe = (value: unknown) =>
    value === null
      ? 'null'
      : Array.isArray(value)
        ? 'an array'
        : typeof value === 'object'
          ? 'an object'
          : typeof value;
  const names = Object.keys(namespace).filter((k) => k !== '__esModule' && k !== 'module.exports');
  if (names.length === 0) return 'it exports nothing';
  return `it exports ${names.map((n) => `${n} (${describe(namespace[n])})`).join(', ')}, none of them a defineMigration({...}) result`;
}

/**
 * A DefinitionError thrown while the module loads. tsx loads the definition's imports in a
 * namespace of their own, so the user's copy of cqrs-migrate throws a DefinitionError of
 * another class instance: rebuilt here so callers' `instanceof` checks (and the CLI's
 * "fix:" line) work. Other errors are wrapped with the file that raised them.
 */
function loadFailure(file: string, err: unknown): AdapterError {
  if (err instanceof AdapterError) return err;
  const like = err as { name?: unknown; code?: unknown; hint?: unknown; message?: unknown };
  if (err instanceof Error && like.name === 'DefinitionError' && like.code === 'DEFINITION_INVALID') {
    return new DefinitionError(err.message, {
      cause: err,
      ...(typeof like.hint === 'string' ? { hint: like.hint } : {}),
    });
  }
  const notFound = like.code === 'ERR_MODULE_NOT_FOUND' || like.code === 'MODULE_NOT_FOUND';
  return new DefinitionError(`loading migration definition ${shown(file)} failed: ${errorMessage(err)}`, {
    cause: err,
    hint: notFound
      ? "install what it imports beside it (npm install cqrs-migrate zod) and import the API from 'cqrs-migrate'"
      : 'the module threw while it was imported; fix the code at the top of the stack (cause)',
  });
}

/** The file each loaded migration came from, for a worker thread that must load it again. */
const loadedFrom = new WeakMap<Migration, string>();

/** The absolute path of the module `migration` was loaded from by loadDefinition, if it was. */
export function definitionFileOf(migration: Migration): string | undefined {
  return loadedFrom.get(migration);
}

/**
 * Imports a migration definition (.ts/.mts/.cts through tsx, .js/.mjs/.cjs natively) and
 * returns its migration. Throws DefinitionError for a missing file, a type error, an invalid
 * definition (defineMigration's own error, naming the field) or a module exporting no migration.
 */
export async function loadDefinition(path: string, options: LoadDefinitionOptions = {}): Promise<Migration> {
  const file = resolve(path);
  if (!existsSync(file) || !statSync(file).isFile()) {
    throw new DefinitionError(`migration definition ${file} does not exist`, {
      hint: 'pass --definition <file> (or set "definition" in the config) to your migration.ts; `cqrs-migrate init` writes a starter one',
    });
  }
  const extension = extname(file);
  const isTs = TS_EXTENSIONS.has(extension);
  if (!isTs && !JS_EXTENSIONS.has(extension)) {
    throw new DefinitionError(
      `migration definition ${shown(file)} is not a module (${extension || 'no extension'})`,
      {
        hint: 'name it migration.ts (or .mts, .js, .mjs)',
      },
    );
  }
  if (isTs && options.typecheck !== false) await typecheckDefinition(file);

  let namespace: Record<string, unknown>;
  try {
    const url = pathToFileURL(file).href;
    if (isTs) {
      const { tsImport } = await import('tsx/esm/api');
      namespace = (await tsImport(url, { parentURL: import.meta.url })) as Record<string, unknown>;
    } else {
      namespace = (await import(url)) as Record<string, unknown>;
    }
  } catch (err) {
    throw loadFailure(file, err);
  }
  const migration = migrationOf(namespace);
  if (migration === undefined) {
    // A module compiled to CommonJS (see migrationOf) shows its real exports under `default`.
    const cjs = namespace.default as { __esModule?: unknown } | undefined;
    const exported =
      typeof cjs === 'object' && cjs !== null && cjs.__esModule === true
        ? (cjs as Record<string, unknown>)
        : namespace;
    throw new DefinitionError(
      `migration definition ${shown(file)} exports no migration: ${describeExports(exported)}`,
      {
        hint: EXPORT_HINT,
      },
    );
  }
  loadedFrom.set(migration, file);
  return migration;
}
