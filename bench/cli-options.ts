import { CommanderError } from '@commander-js/extra-typings';
import { z } from 'zod';
import { errorMessage } from '../lib/errors.js';
import { BenchError } from './errors.js';

interface ParsableCommand {
  parse(argv: readonly string[], options: { from: 'user' }): unknown;
  helpInformation(): string;
}

/**
 * Parses `argv` into a commander command built with exitOverride(): false when it printed
 * --help, a BENCH_USAGE error with the usage when the arguments are wrong.
 */
export function parseOptions(command: ParsableCommand, argv: string[]): boolean {
  try {
    command.parse(argv, { from: 'user' });
    return true;
  } catch (cause) {
    if (cause instanceof CommanderError && cause.code === 'commander.helpDisplayed') return false;
    throw new BenchError('BENCH_USAGE', `${errorMessage(cause)}\n${command.helpInformation()}`, { cause });
  }
}

/** The values commander accepted but the schema did not, with the usage. */
export function invalidOptions(error: z.ZodError, command: ParsableCommand): BenchError {
  return new BenchError('BENCH_USAGE', `${z.prettifyError(error)}\n${command.helpInformation()}`, {
    cause: error,
  });
}
