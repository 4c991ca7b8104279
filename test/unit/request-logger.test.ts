import Fastify, { LogController } from 'fastify';
import { describe, expect, it } from 'vitest';
import { lazyRequestLogger } from '../../shadow-api/request-logger.js';
import { jsonLinesLogger } from './support/json-lines-logger.js';

const withoutTime = (line: Record<string, unknown>) => {
  const { time: _time, ...rest } = line;
  return rest;
};

describe('lazyRequestLogger', () => {
  it('logs the lines pino child() would, bindings and redaction included', async () => {
    const lazy = jsonLinesLogger();
    const eager = jsonLinesLogger();
    const bindings = { reqId: 'req-7' };
    const fields = { headers: { authorization: 'Bearer secret' }, n: 1 };
    lazyRequestLogger(lazy.logger, bindings, {}).warn(fields, 'slow %s', 'read');
    eager.logger.child(bindings).warn(fields, 'slow %s', 'read');
    lazyRequestLogger(lazy.logger, bindings, {}).debug('below the level');
    await new Promise((resolve) => setImmediate(resolve));
    expect(lazy.lines.map(withoutTime)).toEqual(eager.lines.map(withoutTime));
    expect(lazy.lines[0]).toMatchObject({ reqId: 'req-7', headers: { authorization: '[redacted]' } });
  });

  it("answers the parent's level until it is set, and makes children of the bound child", async () => {
    const { logger, lines } = jsonLinesLogger();
    const log = lazyRequestLogger(logger, { reqId: 'req-1' }, {});
    expect(log.level).toBe('info');
    log.level = 'error';
    expect(log.level).toBe('error');
    expect(logger.level).toBe('info');
    log.child({ part: 'x' }).error('failed');
    await new Promise((resolve) => setImmediate(resolve));
    expect(lines[0]).toMatchObject({ reqId: 'req-1', part: 'x', msg: 'failed' });
  });

  it('serves as the childLoggerFactory of an app: request.log carries the reqId', async () => {
    const { logger, lines } = jsonLinesLogger();
    const app = Fastify({
      loggerInstance: logger,
      logController: new LogController({ disableRequestLogging: true }),
      childLoggerFactory: lazyRequestLogger,
    });
    app.get('/x', async (request) => {
      request.log.info({ route: 'x' }, 'handled');
      return { ok: true };
    });
    const response = await app.inject({ method: 'GET', url: '/x' });
    await app.close();
    expect(response.statusCode).toBe(200);
    expect(lines.find((l) => l.msg === 'handled')).toMatchObject({ reqId: 'req-1', route: 'x' });
  });
});
