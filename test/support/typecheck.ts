import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

/** The repo's public entry, as a generated definition under test imports it. */
export const REPO_INDEX = fileURLToPath(new URL('../../index.js', import.meta.url));
const REPO_TYPES = fileURLToPath(new URL('../../node_modules/@types', import.meta.url));

/**
 * Writes each text as migration.ts into a fresh ESM directory and type-checks them in one
 * program (the library they import is checked once) with the compiler settings a careful user
 * project has: the repo's strict set plus unused-code and exact-optional checks. Only the
 * files' own diagnostics are returned: the library is checked by the repo's own typecheck.
 */
const created: string[] = [];

/** A fresh temp directory, removed by removeTempDirs (call it from afterAll). */
export function tempDir(prefix = 'cqrs-init-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  created.push(dir);
  return dir;
}

export function removeTempDirs(): void {
  for (const dir of created.splice(0)) rmSync(dir, { recursive: true, force: true });
}

export function typecheckDefinitions(texts: readonly string[]): { files: string[]; errors: string[][] } {
  const files = texts.map((text) => {
    const dir = tempDir();
    writeFileSync(join(dir, 'package.json'), '{ "type": "module" }\n');
    const file = join(dir, 'migration.ts');
    writeFileSync(file, text);
    return file;
  });
  const program = ts.createProgram(files, {
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    lib: ['lib.es2023.d.ts'],
    types: ['node'],
    typeRoots: [REPO_TYPES],
    strict: true,
    noUncheckedIndexedAccess: true,
    exactOptionalPropertyTypes: true,
    noUnusedLocals: true,
    noUnusedParameters: true,
    noImplicitReturns: true,
    verbatimModuleSyntax: true,
    isolatedModules: true,
    skipLibCheck: true,
    noEmit: true,
  });
  const diagnostics = ts.getPreEmitDiagnostics(program);
  const errors = files.map((file, i) =>
    diagnostics
      .filter((d) => d.file?.fileName === file)
      .map((d) => {
        const message = ts.flattenDiagnosticMessageText(d.messageText, '\n');
        if (d.file === undefined || d.start === undefined) return message;
        const { line, character } = d.file.getLineAndCharacterOfPosition(d.start);
        return `${line + 1}:${character + 1} ${message}\n  ${texts[i]?.split('\n')[line] ?? ''}`;
      }),
  );
  // Options or lib problems belong to no file and would otherwise hide every error.
  const global = diagnostics
    .filter((d) => d.file === undefined)
    .map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n'));
  if (global.length > 0) errors[0]?.push(...global);
  return { files, errors };
}

/** One text: typecheckDefinitions for a single file. */
export function typecheckDefinition(text: string): { file: string; errors: string[] } {
  const { files, errors } = typecheckDefinitions([text]);
  return { file: files[0] ?? '', errors: errors[0] ?? [] };
}

/**
 * The text with the commented-out starter views (and their readModels lines) switched on, to
 * check that what the user uncomments compiles too.
 */
export function uncommentStarters(text: string): string {
  const lines = text.split('\n');
  const out: string[] = [];
  let inside = false;
  for (const line of lines) {
    if (/^\/\/ const \w+JoinedView = defineView\(\{$/.test(line)) inside = true;
    if (inside) {
      out.push(line.replace(/^\/\/ ?/, ''));
      if (line === '// });') inside = false;
    } else out.push(line.replace(/^ {4}\/\/ (\w+JoinedView,)$/, '    $1'));
  }
  return out.join('\n');
}
