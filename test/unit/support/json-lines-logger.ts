import { Writable } from 'node:stream';
import { createLogger } from '../../../lib/logger.js';

/** A real pino logger (the product's own settings) writing its JSON lines, parsed, into an array. */
export function jsonLinesLogger() {
  const lines: Record<string, unknown>[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(line));
      done();
    },
  });
  return { logger: createLogger({ level: 'info', destination }), lines };
}
