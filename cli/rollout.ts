import type { Config } from '../lib/config.js';
import type { StepResult, TargetStatus } from '../rollout/controller.js';
import { type GateResult, renderGateResults } from '../rollout/gates.js';
import { type AdminRefusal, adminClient, refusedLine } from './admin-client.js';
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
  const send = adminClient(config, options.url);
  const target = options.target === undefined ? '' : `/${encodeURIComponent(options.target)}`;
  const reply = await send(
    options.action === 'status'
      ? { method: 'GET', path: `/admin/rollout${target}` }
      : {
          method: 'POST',
          path: `/admin/rollout${target}/${options.action}`,
          body:
            options.action === 'advance'
              ? { force: options.force }
              : options.action === 'rollback' && options.to !== undefined
                ? { to: options.to }
                : {},
          reason: options.reason,
        },
  );
  const body = reply.body;
  if (options.json) print(`${JSON.stringify(body, null, 2)}\n`);
  if (!reply.ok) {
    const refused = body as (AdminRefusal & { gates?: GateResult[] }) | null;
    if (!options.json) {
      print(refusedLine(reply));
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
