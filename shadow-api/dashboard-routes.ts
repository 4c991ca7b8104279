import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';
import type { z } from 'zod';
import { ConfigError } from '../lib/errors.js';
import { buildOverview, type OverviewSources, overviewQuerySchema } from './overview.js';

/**
 * The operator's dashboard at /admin/: a static page (HTML, one script, one style sheet; no
 * build step, nothing fetched from elsewhere) that asks for the admin token once and reads
 * GET /admin/overview with it every few seconds. Its buttons call /admin/rollout, so a step
 * taken from the page is judged by the same gates and lands in the same audit log.
 *
 * The page's files hold no data, so they are served without a token (a browser cannot send one
 * when it navigates); every answer with data needs it.
 */

const ASSETS = {
  'index.html': 'text/html; charset=utf-8',
  'dashboard.js': 'text/javascript; charset=utf-8',
  'dashboard.css': 'text/css; charset=utf-8',
} as const;
type Asset = keyof typeof ASSETS;

// The page may load only its own script and style and talk only to this API.
const SECURITY_HEADERS = {
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-cache',
};

/** The folder of the page's files; compiled code (dist/) falls back to the source tree's, as the migrations do. */
function dashboardDir(): string {
  for (const candidate of [
    new URL('./dashboard/', import.meta.url),
    new URL('../../shadow-api/dashboard/', import.meta.url),
  ]) {
    const dir = fileURLToPath(candidate);
    if (existsSync(join(dir, 'index.html'))) return dir;
  }
  throw new ConfigError('dashboard files (shadow-api/dashboard/) not found', {
    hint: 'run from a checkout or package that includes the shadow-api/dashboard/ folder',
  });
}

export function registerDashboardRoutes(
  app: FastifyInstance,
  sources: OverviewSources,
  parse: <S extends z.ZodType>(schema: S, input: unknown, what: string) => z.infer<S>,
): void {
  const dir = dashboardDir();
  const files = new Map(
    (Object.keys(ASSETS) as Asset[]).map((name) => [name, readFileSync(join(dir, name), 'utf8')]),
  );
  // The page's own files carry no data and are not API: left out of /docs.
  const shell = { config: { adminShell: true }, schema: { hide: true } };
  const serve = (url: string, name: Asset) =>
    app.get(url, shell, async (_request, reply) =>
      reply.headers(SECURITY_HEADERS).type(ASSETS[name]).send(files.get(name)),
    );

  // Relative links of the page resolve under /admin/ only with the trailing slash.
  app.get('/admin', shell, async (_request, reply) => reply.redirect('/admin/', 308));
  serve('/admin/', 'index.html');
  serve('/admin/dashboard.js', 'dashboard.js');
  serve('/admin/dashboard.css', 'dashboard.css');

  const docs = {
    summary:
      'What the dashboard shows: per endpoint mode, match rates, differing paths, samples; rollout, lag, audit',
    tag: 'dashboard',
    input: overviewQuerySchema,
  };
  app.get('/admin/overview', { config: { docs } }, async (request) =>
    buildOverview(sources, parse(overviewQuerySchema, request.query, 'overview query')),
  );
}
