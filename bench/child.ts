import { spawn } from 'node:child_process';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { z } from 'zod';
import { errorMessage } from '../lib/errors.js';
import { BenchError } from './errors.js';

/**
 * Load generators run in their own processes so their CPU is not the adapter's event loop:
 * the module gets its input as JSON on stdin (a list of thousands of request paths exceeds what
 * one argument may hold) and prints its result as JSON on the last line of stdout. Children start with this process's exec arguments, so under tsx they run from
 * source too.
 */
export async function runChild<S extends z.ZodType>(
  moduleUrl: string,
  input: unknown,
  outputSchema: S,
  options: { signal?: AbortSignal } = {},
): Promise<z.output<S>> {
  const file = fileURLToPath(moduleUrl);
  const child = spawn(process.execPath, [...process.execArgv, file], {
    stdio: ['pipe', 'pipe', 'pipe'],
    ...(options.signal ? { signal: options.signal } : {}),
  });
  child.stdin.end(JSON.stringify(input));
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => {
    stdout += d;
  });
  child.stderr.setEncoding('utf8').on('data', (d: string) => {
    stderr += d;
  });
  const code = await new Promise<number | null>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', resolve);
  });
  const name = file.split('/').pop();
  if (code !== 0)
    throw new BenchError('BENCH_CHILD_FAILED', `${name} exited with ${code}: ${stderr.trim().slice(-2000)}`);
  const last = stdout.trim().split('\n').pop() ?? '';
  try {
    return outputSchema.parse(JSON.parse(last));
  } catch (cause) {
    throw new BenchError('BENCH_CHILD_OUTPUT', `${name} printed no valid result: ${errorMessage(cause)}`, {
      cause,
    });
  }
}

/** A module of bench/children/ in the form this code runs in (source under tsx, or built). */
export function childModule(name: string): string {
  const extension = import.meta.url.endsWith('.ts') ? '.ts' : '.js';
  return new URL(`./children/${name}${extension}`, import.meta.url).href;
}

/** True when the module at `moduleUrl` is the process's entry point. */
export function isEntry(moduleUrl: string): boolean {
  const entry = process.argv[1];
  return entry !== undefined && pathToFileURL(entry).href === moduleUrl;
}

/** A child's side: parses its stdin with `schema`, runs `main`, prints its result. */
export async function childMain<S extends z.ZodType>(
  schema: S,
  main: (input: z.output<S>) => Promise<unknown>,
): Promise<void> {
  try {
    let text = '';
    for await (const chunk of process.stdin.setEncoding('utf8')) text += chunk;
    const input = schema.parse(JSON.parse(text || 'null'));
    const output = await main(input);
    process.stdout.write(`${JSON.stringify(output)}\n`);
  } catch (err) {
    process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = 1;
  }
}
