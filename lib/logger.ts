import { type Logger, pino } from 'pino';

export type { Logger };

/**
 * Credentials a log line must never carry, wherever a request, its headers or the config
 * end up in a logged object (an error's request, a debug dump).
 */
export const REDACTED_PATHS = [
  'req.headers.authorization',
  'request.headers.authorization',
  'headers.authorization',
  '*.headers.authorization',
  'adminToken',
  '*.adminToken',
  'api.adminToken',
  '*.api.adminToken',
];

/** One root logger per process; modules take a child with their own `component` binding. */
export function createLogger(
  options: { level?: string; name?: string; destination?: pino.DestinationStream } = {},
): Logger {
  const settings = {
    name: options.name ?? 'cqrs-migrate',
    level: options.level ?? process.env.LOG_LEVEL ?? 'info',
    base: { pid: process.pid },
    redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
  };
  // Written as each line is logged: pino's default buffers behind an asynchronous write, which
  // only completes when the event loop turns, and a long synchronous step (composing a bulk
  // build's documents, one SQLite transaction of minutes) held its progress lines until its end.
  return pino(settings, options.destination ?? pino.destination({ dest: 1, sync: true }));
}

/** For tests and library use where nothing should be printed. */
export const silentLogger: Logger = pino({ level: 'silent' });
