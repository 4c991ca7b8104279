import { type Logger, pino } from 'pino';

export type { Logger };

/** One root logger per process; modules take a child with their own `component` binding. */
export function createLogger(options: { level?: string; name?: string } = {}): Logger {
  return pino({
    name: options.name ?? 'cqrs-migrate',
    level: options.level ?? process.env.LOG_LEVEL ?? 'info',
    base: { pid: process.pid },
  });
}

/** For tests and library use where nothing should be printed. */
export const silentLogger: Logger = pino({ level: 'silent' });
