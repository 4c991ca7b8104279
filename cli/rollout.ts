import type { Config } from '../lib/config.js';
import { AdapterError, errorMessage } from '../lib/errors.js';
import type { StepResult, TargetStatus } from '../rollout/controller.js';
import { type GateResult, renderGateResults } from '../rollout/gates.js';
import { loadAdminAuth } from '../shadow-api/admin-auth.js';
import type { RolloutOptions } from './program.js';

/**
 * `cqrs-migrate rollout …` is a client of the running API's /admin/rollout: the process that
 * serves the reads owns the flags, so a step taken here is in force the moment it is answered,
 * and it goes through the same gates and audit log as the admin API and the dashboard.
 */
export async function rolloutCommand(
  config: Config,
  options: RolloutOptions,
  print: (text: string) => void,
): Promise<number> {
  const base = (options.url ?? `http://${hostOf(config.api.host)}:${config.api.port}`).replace(/\/$/, '');
  const token = loadAdminAuth(config.api).tokens[0]?.token;
  const target = options.target === undefined ? '' : `/${encodeURIComponent(options.target)}`;
  const request =
    options.action === 'status'
      ? { method: 'GET', path: `/admin/rollout${target}`, body: undefined }
      : {
          method: 'POST',
          path: `/admin/rollout${target}/${options.action}`,
          body:
            options.action === 'advance'
              ? { force: options.force }
              : options.action === 'rollback' && options.to !== undefined
                ? { to: options.to }
                : {},
        };
  let response: Response;
  try {
    response = await fetch(`${base}${request.path}`, {
      method: request.method,
      headers: {
        ...(token === undefined ? {} : { authorization: `Bearer ${token}` }),
        ...(request.body === undefined ? {} : { 'content-type': 'application/json' }),
        ...(options.reason === undefined ? {} : { 'x-cqrs-reason': options.reason }),
      },
      ...(request.body === undefined ? {} : { body: JSON.stringify(request.body) }),
    });
  } catch (cause) {
    throw new AdapterError('ROLLOUT_API_UNREACHABLE', `no API answers at ${base}: ${errorMessage(cause)}`, {
      cause,
      hint: 'start `cqrs-migrate run` (or serve), or pass --url of the running API',
    });
  }
  const body: unknown = await response.json().catch(() => null);
  if (options.json) print(`${JSON.stringify(body, null, 2)}\n`);
  if (!response.ok) {
    const refused = body as { message?: string; hint?: string; gates?: GateResult[] } | null;
    if (!options.json) {
      print(`refused (${response.status}): ${refused?.message ?? response.statusText}\n`);
      if (refused?.gates) print(`${renderGateResults(refused.gates, '  ')}\n`);
      if (refused?.hint) print(`  fix: ${refused.hint}\n`);
    }
    return 1;
  }
  if (options.json) return 0;
  if (options.action === 'status') {
    const statuses = Array.isArray(body) ? (body as TargetStatus[]) : [body as TargetStatus];
    print(renderStatus(statuses));
  } else if (options.action === 'advance' || options.action === 'rollback') {
    const step = body as StepResult;
    print(`${step.target}: ${step.from} → ${step.to}${step.forced ? ' (forced)' : ''}\n`);
    if (step.verdict) print(`${renderGateResults(step.verdict.results, '  ')}\n`);
  } else {
    const status = body as TargetStatus;
    print(`${status.target}: ${status.state.held ? 'held' : 'not held'}\n`);
  }
  return 0;
}

function hostOf(host: string): string {
  if (host === '0.0.0.0') return '127.0.0.1';
  if (host === '::') return '[::1]';
  return host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
}

function renderStatus(statuses: readonly TargetStatus[]): string {
  return `${statuses
    .map((s) => {
      const stage = s.state.percent === undefined ? s.state.stage : `${s.state.stage} ${s.state.percent}%`;
      const next =
        s.next === null
          ? 'none'
          : s.next.percent === undefined
            ? s.next.stage
            : `${s.next.stage} ${s.next.percent}%`;
      const head = `${s.target}: ${stage}${s.state.held ? ' (held)' : ''} since ${s.state.since}; next ${next}${
        s.verdict === null ? '' : s.verdict.pass ? ' (gates pass)' : ' (gates fail)'
      }  [${s.endpoints.join(', ')}]`;
      return s.verdict === null ? head : `${head}\n${renderGateResults(s.verdict.results, '  ')}`;
    })
    .join('\n')}\n`;
}
