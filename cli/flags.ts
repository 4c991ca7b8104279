import type { Config } from '../lib/config.js';
import { alignedTable } from '../lib/text-table.js';
import { type EndpointFlag, type FlagDocument, resolveFlag } from '../shadow-api/flags.js';
import { type AdminRefusal, type AdminReply, adminClient, refusedLine } from './admin-client.js';
import type { FlagsOptions } from './program.js';

/**
 * `cqrs-migrate flags list|get|set` is a client of the running API's /admin/flags, like
 * `rollout`: the serving process owns the flags, so a change is in force once answered, and
 * it is audited with the token's name and --reason.
 */
export async function flagsCommand(
  config: Config,
  options: FlagsOptions,
  print: (text: string) => void,
): Promise<number> {
  const send = adminClient(config, options.url);
  const current = await send({ method: 'GET', path: '/admin/flags' });
  if (!current.ok) return refused(current, print);
  const document = current.body as FlagDocument;
  if (options.action === 'list') {
    print(options.json ? `${JSON.stringify(document, null, 2)}\n` : renderFlags(document));
    return 0;
  }
  const before = governing(document, options.key);
  if (options.action === 'get') {
    print(
      options.json
        ? `${JSON.stringify({ key: options.key, ...before }, null, 2)}\n`
        : `${options.key}: ${describeFlag(before.flag)} (${before.from})\n`,
    );
    return 0;
  }
  const changed = await send({
    method: 'PATCH',
    path: `/admin/flags/${encodeURIComponent(options.key)}`,
    body: options.flag,
    reason: options.reason,
  });
  if (!changed.ok) return refused(changed, print);
  const after = resolveFlag(changed.body as FlagDocument, options.key);
  print(
    options.json
      ? `${JSON.stringify(changed.body, null, 2)}\n`
      : `${options.key}: ${describeFlag(before.flag)} → ${describeFlag(after)}\n`,
  );
  return 0;
}

function refused(reply: AdminReply, print: (text: string) => void): 1 {
  print(refusedLine(reply));
  const hint = (reply.body as AdminRefusal | null)?.hint;
  if (hint) print(`  fix: ${hint}\n`);
  return 1;
}

/** The entry that governs `key` and where it comes from: its own, its domain's, or the default. */
function governing(document: FlagDocument, key: string): { flag: EndpointFlag; from: string } {
  const domain = key.includes('.') ? key.slice(0, key.indexOf('.')) : undefined;
  const from =
    document.endpoints[key] !== undefined
      ? 'own entry'
      : domain !== undefined && document.endpoints[domain] !== undefined
        ? `from ${domain}`
        : 'the default';
  return { flag: resolveFlag(document, key), from };
}

/** `legacy`, `canary 10%`, `new, compares 1%`. */
function describeFlag(flag: EndpointFlag): string {
  if (flag.mode === 'canary') return `canary ${flag.percent ?? 0}%`;
  if (flag.mode === 'new' && flag.compareSample !== undefined)
    return `new, compares ${+(flag.compareSample * 100).toFixed(4)}%`;
  return flag.mode;
}

function renderFlags(document: FlagDocument): string {
  const defaultMode =
    document.defaultMode === 'canary' ? `canary ${document.defaultPercent ?? 0}%` : document.defaultMode;
  const rows = Object.entries(document.endpoints)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([key, flag]) => [
      key,
      flag.mode,
      flag.percent === undefined ? '-' : String(flag.percent),
      flag.compareSample === undefined ? '-' : String(flag.compareSample),
    ]);
  const entries =
    rows.length === 0
      ? 'no entries: every endpoint follows the default'
      : alignedTable([['key', 'mode', 'percent', 'compare-sample'], ...rows], 2);
  return `default: ${defaultMode}\n${entries}\n`;
}
