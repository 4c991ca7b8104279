import { Argument, Command, CommanderError, InvalidArgumentError, Option } from '@commander-js/extra-typings';
import { REPORT_FORMATS, type ReportFormat } from '../compare/report-formats.js';
import { packageVersion } from '../lib/package-version.js';
import type { ReplayPoint } from '../projectors/replay.js';
import { parseReplayStart } from '../projectors/replay-start.js';
import {
  type EndpointFlag,
  endpointFlagSchema,
  endpointKeySchema,
  flagModeSchema,
} from '../shadow-api/flags.js';
import type { ReplayRequest } from './replay.js';

/**
 * The command line as a commander program. It only parses: every number, choice and required
 * option is checked here, so a handler receives typed, valid values and a typo is refused
 * before anything connects to a database. What the commands do lives in the handlers the
 * composition layer passes to `buildProgram`.
 */

export const STORE_CHOICES = ['mongo', 'opensearch'] as const;
export type StoreChoice = (typeof STORE_CHOICES)[number];
export const CONNECTOR_KINDS = ['mariadb', 'mysql', 'postgresql'] as const;
export type ConnectorKindChoice = (typeof CONNECTOR_KINDS)[number];
export const CONNECTOR_ACTIONS = [
  'render',
  'deploy',
  'status',
  'pause',
  'resume',
  'stop',
  'offsets',
  'delete',
] as const;
export type ConnectorAction = (typeof CONNECTOR_ACTIONS)[number];

/** Options every command accepts; undefined when neither the flag nor its env variable is set. */
export interface GlobalOptions {
  /** --config / CQRS_CONFIG. Undefined: loadConfig reads ./cqrs-migrate.config.json if present. */
  config?: string | undefined;
  /** --definition / CQRS_DEFINITION. Undefined: the config's `definition` key, if any. */
  definition?: string | undefined;
}

export interface DemoOptions extends GlobalOptions {
  durationSec: number;
  /** Not checked here: the choices are the loaded definition's `sample.scales` (first = default). */
  scale?: string | undefined;
  writeRate: number;
  readRate: number;
  seed: number;
  force: boolean;
  /** A bundled example definition to run instead of --definition. */
  example?: string | undefined;
}

export interface JsonOptions extends GlobalOptions {
  json: boolean;
}

export interface ReportOptions extends GlobalOptions {
  format: ReportFormat;
  since?: string | undefined;
  until?: string | undefined;
  /** Only this domain's endpoints (needs the definition). */
  domain?: string | undefined;
  /** Write the report here instead of stdout. */
  out?: string | undefined;
}

export interface ProjectOptions extends GlobalOptions {
  store: StoreChoice;
}

export interface RebuildOptions extends GlobalOptions {
  /** Undefined: replay the embedded event store into the embedded read models. */
  store?: StoreChoice | undefined;
}

export interface AuditOptions extends JsonOptions {
  /** Undefined: from the first entry. */
  since?: Date | undefined;
  limit: number;
}

export interface DeadLettersOptions extends GlobalOptions {
  limit: number;
  /** Only this captured table's letters. */
  table?: string | undefined;
  /** ISO time: only letters recorded at or after it. */
  since?: string | undefined;
  /** Only letters whose reason contains this text. */
  reason?: string | undefined;
  json: boolean;
}

export interface RedriveOptions extends GlobalOptions {
  /** Undefined: every table's pending letters. */
  table?: string | undefined;
  /** Without it, only print what a re-drive would do. */
  force: boolean;
}

export interface ResnapshotOptions extends GlobalOptions {
  table: string;
  /** SQL condition on the table's rows; undefined: the whole table (and removals for rows gone). */
  where?: string | undefined;
  /** Without it, only print what would be re-captured. */
  force: boolean;
}

export interface ReconcileOptions extends GlobalOptions {
  /** Undefined: compare every key. */
  sample?: number | undefined;
  /** Re-project the read-model documents of every drifted key from the event store. */
  repair: boolean;
}

export interface ConnectorCommandOptions extends GlobalOptions {
  action: ConnectorAction;
  /** Undefined: the handler derives it from the legacy URL / legacy.flavor. */
  kind?: ConnectorKindChoice | undefined;
  /** Undefined: `<cdc.name>-<kind>`. */
  name?: string | undefined;
}

export interface InitOptions extends GlobalOptions {
  out: string;
  force: boolean;
  /** Undefined: every table of the database. */
  tables?: string[] | undefined;
  /** Undefined: the config's legacy.url. */
  url?: string | undefined;
}

export const ROLLOUT_ACTIONS = ['status', 'advance', 'hold', 'resume', 'rollback'] as const;
export type RolloutAction = (typeof ROLLOUT_ACTIONS)[number];

export interface RolloutOptions extends GlobalOptions {
  action: RolloutAction;
  /** A domain, or `<domain>.<endpoint>`; undefined for status of every target. */
  target?: string | undefined;
  force: boolean;
  to?: 'shadow' | 'capture' | undefined;
  reason?: string | undefined;
  /** The running API; undefined: http://<api.host>:<api.port> from the config. */
  url?: string | undefined;
  json: boolean;
}

/** Options of every `flags` action: they talk to the running API. */
export interface FlagsClientOptions extends GlobalOptions {
  /** The running API; undefined: http://<api.host>:<api.port> from the config. */
  url?: string | undefined;
  json: boolean;
}

export type FlagsOptions =
  | (FlagsClientOptions & { action: 'list' })
  | (FlagsClientOptions & { action: 'get'; key: string })
  | (FlagsClientOptions & {
      action: 'set';
      key: string;
      /** The key's new entry, checked here (a canary has a percent). */
      flag: EndpointFlag;
      reason?: string | undefined;
    });

/**
 * Options of `replay`: the embedded read models' (positions or times, through the running
 * process when `run` is live), or a server store's (`--store`: Kafka offsets or times).
 */
export type ReplayOptions = GlobalOptions &
  (
    | (ReplayRequest & { store?: undefined })
    | {
        store: StoreChoice;
        readModel: string;
        /** 'beginning', an offset or an ISO time; undefined: the beginning. */
        from?: string | undefined;
        /** ISO time: a frozen version. */
        to?: string | undefined;
        switch: boolean;
        sample?: number | undefined;
        force: boolean;
      }
  );

/** `read-model <action>`: without `store`, the embedded read models'. */
export type ReadModelOptions = { store?: StoreChoice | undefined } & (
  | (GlobalOptions & { action: 'versions'; readModel: string; json: boolean; url?: string | undefined })
  | (GlobalOptions & {
      action: 'switch';
      readModel: string;
      version: number;
      force: boolean;
      sample?: number | undefined;
      url?: string | undefined;
    })
  | (GlobalOptions & { action: 'rollback'; readModel: string; url?: string | undefined })
  | (GlobalOptions & {
      action: 'drop';
      readModel: string;
      version: number;
      force: boolean;
      url?: string | undefined;
    })
);

/** One async function per command; each returns the process exit code. */
export interface CommandHandlers {
  demo(options: DemoOptions): Promise<number>;
  run(options: GlobalOptions): Promise<number>;
  serve(options: GlobalOptions): Promise<number>;
  translate(options: GlobalOptions): Promise<number>;
  project(options: ProjectOptions): Promise<number>;
  lag(options: JsonOptions): Promise<number>;
  report(options: ReportOptions): Promise<number>;
  audit(options: AuditOptions): Promise<number>;
  rollout(options: RolloutOptions): Promise<number>;
  flags(options: FlagsOptions): Promise<number>;
  rebuild(options: RebuildOptions): Promise<number>;
  replay(options: ReplayOptions): Promise<number>;
  readModel(options: ReadModelOptions): Promise<number>;
  deadLetters(options: DeadLettersOptions): Promise<number>;
  deadLettersRedrive(options: RedriveOptions): Promise<number>;
  deadLettersDrift(options: JsonOptions): Promise<number>;
  schemaChanges(options: JsonOptions): Promise<number>;
  resnapshot(options: ResnapshotOptions): Promise<number>;
  reconcile(options: ReconcileOptions): Promise<number>;
  connector(options: ConnectorCommandOptions): Promise<number>;
  init(options: InitOptions): Promise<number>;
}

export interface ProgramIo {
  out(text: string): void;
  err(text: string): void;
}

const processIo: ProgramIo = {
  out: (text) => process.stdout.write(text),
  err: (text) => process.stderr.write(text),
};

/** Exit code of a usage error (bad flag, value or command), as the previous CLI returned. */
export const USAGE_EXIT_CODE = 2;

function numberParser(what: string, accept: (n: number) => boolean) {
  return (value: string): number => {
    const n = Number(value);
    // Number('') is 0 and Number(' 7') is 7: refuse blanks so a missing value is not read as 0.
    if (value.trim() !== value || value === '' || !accept(n))
      throw new InvalidArgumentError(`expected ${what}.`);
    return n;
  };
}

const positiveNumber = numberParser('a number greater than 0', (n) => Number.isFinite(n) && n > 0);
const positiveInt = numberParser('a whole number greater than 0', (n) => Number.isSafeInteger(n) && n > 0);
const nonNegativeInt = numberParser('a whole number ≥ 0', (n) => Number.isSafeInteger(n) && n >= 0);

/** An ISO-8601 date or date-time, returned as the UTC ISO string the stores record. */
function isoTime(value: string): string {
  const ms = /^\d{4}-\d{2}-\d{2}([T ][\d:.]+(Z|[+-]\d{2}:?\d{2})?)?$/.test(value)
    ? Date.parse(value)
    : Number.NaN;
  if (Number.isNaN(ms))
    throw new InvalidArgumentError('expected an ISO date or time (2024-05-01 or 2024-05-01T12:00:00Z).');
  return new Date(ms).toISOString();
}

/**
 * A replay bound: a whole number is an event position (≥ 1), anything else an ISO date or
 * time, compared with the events' source commit times.
 */
export function parseReplayPoint(value: string): ReplayPoint {
  if (/^\d+$/.test(value)) {
    const position = Number(value);
    if (!Number.isSafeInteger(position) || position < 1)
      throw new InvalidArgumentError('expected an event position ≥ 1 or an ISO time.');
    return { position };
  }
  try {
    return { time: isoTime(value) };
  } catch {
    throw new InvalidArgumentError(
      'expected an event position (e.g. 1200) or an ISO time (2024-05-01T12:00:00Z).',
    );
  }
}

/** A replay end: an event position or an ISO time (kept as given; the action parses it for its store). */
function replayEnd(value: string): string {
  if (/^\d+$/.test(value)) return value;
  isoTime(value);
  return value;
}

/** A replay start: 'beginning', an offset or position, or an ISO time (kept as given; the action parses it for its store). */
function replayStart(value: string): string {
  try {
    parseReplayStart(value);
  } catch {
    throw new InvalidArgumentError(
      'expected "beginning", an offset (e.g. 1200) or an ISO time (2024-05-01T12:00:00Z).',
    );
  }
  return value;
}

/** A table name as the database spells it: no quoting, no schema prefix, no spaces. */
function tableName(value: string): string {
  if (!/^[A-Za-z_][\w$]*$/.test(value))
    throw new InvalidArgumentError('expected a table name (letters, digits, _ or $).');
  return value;
}

/** A SQL condition: refused when blank or when it could end the statement it is put into. */
function sqlCondition(value: string): string {
  if (value.trim() === '')
    throw new InvalidArgumentError('expected a SQL condition, e.g. "id BETWEEN 1 AND 100".');
  if (value.includes(';')) throw new InvalidArgumentError('a condition cannot contain ";".');
  return value;
}

/** A flag key: a domain or `<domain>.<endpoint>` (whether the definition has it, the API says). */
function flagKey(value: string): string {
  const parsed = endpointKeySchema.safeParse(value);
  if (!parsed.success) throw new InvalidArgumentError(`${parsed.error.issues[0]?.message ?? 'invalid key'}.`);
  return value;
}

const percent = numberParser('a number from 0 to 100', (n) => Number.isFinite(n) && n >= 0 && n <= 100);
const share = numberParser('a share from 0 to 1', (n) => Number.isFinite(n) && n >= 0 && n <= 1);

/** Why `flags set` options do not make a flag entry, or null when they do. */
function flagEntryProblem(flag: EndpointFlag): string | null {
  if (flag.mode === 'canary' && flag.percent === undefined) return '--mode canary needs --percent (0-100)';
  if (flag.mode !== 'canary' && flag.percent !== undefined)
    return `--percent applies to --mode canary only (not ${flag.mode})`;
  if (flag.mode !== 'new' && flag.compareSample !== undefined)
    return `--compare-sample applies to --mode new only (not ${flag.mode})`;
  // The API's own schema, so what passes here is what it accepts.
  const parsed = endpointFlagSchema.safeParse(flag);
  return parsed.success ? null : (parsed.error.issues[0]?.message ?? 'invalid flag');
}

function tableList(value: string): string[] {
  const tables = value.split(',').map((t) => t.trim());
  if (tables.some((t) => t === ''))
    throw new InvalidArgumentError('expected comma-separated table names (a,b,c).');
  return tables;
}

/**
 * The program. It never exits the process: parse errors, --help and --version throw a
 * CommanderError (exitOverride) that `runProgram` turns into an exit code. Use `runProgram`
 * unless you need the Command itself (e.g. to print help).
 */
export function buildProgram(handlers: CommandHandlers, io: ProgramIo = processIo) {
  const program = new Command('cqrs-migrate')
    .description(
      'Move a legacy CRUD database to CQRS one domain at a time: CDC → domain events → read models → shadow-read API.',
    )
    .version(packageVersion(), '-V, --version', 'print the version')
    .helpOption('-h, --help', 'show help')
    // Settings below are copied into every subcommand created after them.
    .exitOverride()
    .configureOutput({
      writeOut: io.out,
      writeErr: io.err,
      // Commander puts "(Did you mean …?)" on a line of its own; keep each error on one line.
      outputError: (text, write) => write(`${text.trimEnd().replace(/\s*\n\s*/g, ' ')}\n`),
    })
    .configureHelp({ showGlobalOptions: true, sortSubcommands: false })
    .addOption(
      new Option(
        '--config <file>',
        'configuration file (JSON; default ./cqrs-migrate.config.json if it exists)',
      ).env('CQRS_CONFIG'),
    )
    .addOption(
      new Option(
        '--definition <file>',
        'migration definition module (migration.ts/.js); default: the config\'s "definition" key',
      ).env('CQRS_DEFINITION'),
    );

  const globals = (): GlobalOptions => {
    const { config, definition } = program.opts();
    return { config, definition };
  };

  program
    .command('demo')
    .description('sample database + embedded pipeline + shadow API under load, then the comparison report')
    .addOption(new Option('--duration <s>', 'seconds of load').argParser(positiveNumber).default(60))
    .addOption(
      new Option(
        '--scale <name>',
        "sample size: one of the definition's sample.scales, checked once it is loaded (default: its first scale)",
      ),
    )
    .addOption(
      new Option('--write-rate <ops/s>', 'legacy writes per second').argParser(positiveNumber).default(50),
    )
    .addOption(
      new Option('--read-rate <req/s>', 'shadow API reads per second').argParser(positiveNumber).default(40),
    )
    .addOption(
      new Option('--seed <n>', 'random seed of the sample data and load')
        .argParser(nonNegativeInt)
        .default(42),
    )
    .addOption(new Option('--force', 'drop and re-create an existing sample database').default(false))
    .addOption(new Option('--example <name>', 'run a bundled example definition instead of --definition'))
    .action(async (o) => {
      await handlers.demo({
        ...globals(),
        durationSec: o.duration,
        scale: o.scale,
        writeRate: o.writeRate,
        readRate: o.readRate,
        seed: o.seed,
        force: o.force,
        example: o.example,
      });
    });

  program
    .command('run')
    .description(
      'pipeline + shadow API until interrupted (cdc.mode embedded, or kafka: translator, projectors, API)',
    )
    .action(async () => {
      await handlers.run(globals());
    });

  program
    .command('serve')
    .description('shadow API over the server read models (no pipeline in this process)')
    .action(async () => {
      await handlers.serve(globals());
    });

  program
    .command('translate')
    .description('Debezium topics → domain-event topics (extra instances are hot standbys)')
    .action(async () => {
      await handlers.translate(globals());
    });

  program
    .command('project')
    .description('one projector process into a server store; start several per store to share the partitions')
    .addOption(
      new Option('--store <store>', 'server store to project into')
        .choices(STORE_CHOICES)
        .makeOptionMandatory(),
    )
    .action(async (o) => {
      await handlers.project({ ...globals(), store: o.store });
    });

  program
    .command('lag')
    .description('consumer-group lag of the translator and each projector')
    .addOption(new Option('--json', 'print JSON').default(false))
    .action(async (o) => {
      await handlers.lag({ ...globals(), json: o.json });
    });

  program
    .command('report')
    .description(
      'comparison match rates per endpoint, the fields that differ (first/last seen) and masked samples',
    )
    .addOption(
      new Option('--format <format>', 'output format').choices(REPORT_FORMATS).default('text' as const),
    )
    .addOption(new Option('--json', 'same as --format json').default(false))
    .addOption(new Option('--since <time>', 'only comparisons at or after this ISO time').argParser(isoTime))
    .addOption(new Option('--until <time>', 'only comparisons before this ISO time').argParser(isoTime))
    .addOption(new Option('--domain <domain>', "only this domain's endpoints (reads the definition)"))
    .addOption(new Option('--out <file>', 'write the report to this file instead of stdout'))
    .action(async (o) => {
      await handlers.report({
        ...globals(),
        format: o.json ? 'json' : o.format,
        since: o.since,
        until: o.until,
        domain: o.domain,
        out: o.out,
      });
    });

  program
    .command('audit')
    .description('who changed which flags, when, from what to what, and why (oldest first)')
    .addOption(new Option('--since <time>', 'only changes at or after this ISO-8601 time').argParser(isoTime))
    .addOption(new Option('--limit <n>', 'how many to list').argParser(positiveInt).default(1000))
    .addOption(new Option('--json', 'print JSON').default(false))
    .action(async (o) => {
      await handlers.audit({
        ...globals(),
        ...(o.since === undefined ? {} : { since: new Date(o.since) }),
        limit: o.limit,
        json: o.json,
      });
    });

  program
    .command('rollout')
    .description(
      'per-domain rollout through the running API: status, advance (gates must pass), hold, resume, rollback',
    )
    .addArgument(new Argument('<action>', 'what to do').choices(ROLLOUT_ACTIONS))
    .addArgument(new Argument('[target]', 'a domain, or <domain>.<endpoint> (status: default every target)'))
    .addOption(
      new Option('--force', 'advance even though a gate fails (recorded in the audit log)').default(false),
    )
    .addOption(
      new Option('--to <stage>', 'rollback target (default: rollout.plan.rollbackTo)').choices([
        'shadow',
        'capture',
      ] as const),
    )
    .addOption(new Option('--reason <text>', 'why, for the audit log'))
    .addOption(
      new Option(
        '--url <url>',
        "the running API's admin listener (default: http://<api.admin.host>:<api.admin.port>)",
      ),
    )
    .addOption(new Option('--json', 'print JSON').default(false))
    .action(async (action, target, o, command) => {
      if (action !== 'status' && target === undefined)
        command.error(`error: rollout ${action} needs a target (a domain or <domain>.<endpoint>)`, {
          exitCode: USAGE_EXIT_CODE,
        });
      await handlers.rollout({
        ...globals(),
        action,
        target,
        force: o.force,
        to: o.to,
        reason: o.reason,
        url: o.url,
        json: o.json,
      });
    });

  const flags = program
    .command('flags')
    .description('which side serves each domain and endpoint, through the running API: list, get, set');
  const urlOption = () =>
    new Option(
      '--url <url>',
      "the running API's admin listener (default: http://<api.admin.host>:<api.admin.port>)",
    );
  const jsonOption = () => new Option('--json', 'print JSON').default(false);
  const keyArgument = () =>
    new Argument('<endpointKey>', 'a domain, or <domain>.<endpoint>').argParser(flagKey);
  flags
    .command('list', { isDefault: true })
    .description('the default and every entry, as a table')
    .addOption(urlOption())
    .addOption(jsonOption())
    .action(async (o) => {
      await handlers.flags({ ...globals(), action: 'list', url: o.url, json: o.json });
    });
  flags
    .command('get')
    .description("the entry that governs one key (its own, its domain's or the default)")
    .addArgument(keyArgument())
    .addOption(urlOption())
    .addOption(jsonOption())
    .action(async (key, o) => {
      await handlers.flags({ ...globals(), action: 'get', key, url: o.url, json: o.json });
    });
  flags
    .command('set')
    .description(
      "change one key's entry (audited); what is not given keeps the value that governs the key now",
    )
    .addArgument(keyArgument())
    .addOption(
      new Option('--mode <mode>', 'who serves').choices(flagModeSchema.options).makeOptionMandatory(),
    )
    .addOption(
      new Option('--percent <p>', 'canary: share of subjects the read model serves').argParser(percent),
    )
    .addOption(
      new Option('--compare-sample <s>', 'new: share of requests still compared with legacy').argParser(
        share,
      ),
    )
    .addOption(new Option('--reason <text>', 'why, for the audit log'))
    .addOption(urlOption())
    .addOption(jsonOption())
    .action(async (key, o, command) => {
      const flag: EndpointFlag = {
        mode: o.mode,
        ...(o.percent === undefined ? {} : { percent: o.percent }),
        ...(o.compareSample === undefined ? {} : { compareSample: o.compareSample }),
      };
      const problem = flagEntryProblem(flag);
      if (problem !== null) command.error(`error: ${problem}`, { exitCode: USAGE_EXIT_CODE });
      await handlers.flags({
        ...globals(),
        action: 'set',
        key,
        flag,
        reason: o.reason,
        url: o.url,
        json: o.json,
      });
    });

  program
    .command('rebuild')
    .description('replay events into emptied read models (projectors stopped)')
    .addOption(
      new Option(
        '--store <store>',
        'empty this server store and rewind its consumer group (default: replay the embedded event store)',
      ).choices(STORE_CHOICES),
    )
    .action(async (o) => {
      await handlers.rebuild({ ...globals(), store: o.store });
    });

  const storeOption = () =>
    new Option(
      '--store <store>',
      'a server store (distributed path; default: the embedded read models)',
    ).choices(STORE_CHOICES);
  program
    .command('replay')
    .description(
      'build a new version of one read model beside the live one (embedded: from the event store; --store: from the domain topics), verify it against legacy, switch to it (the old one is kept for rollback)',
    )
    .addArgument(new Argument('<read-model>', 'a read model of the definition'))
    .addOption(storeOption())
    .addOption(
      new Option(
        '--from <point>',
        'start from an empty model and apply the events from here: embedded, an event position or ISO time (first commit at/after it); --store, "beginning", a Kafka offset or an ISO time. Default: every event',
      ).argParser(replayStart),
    )
    .addOption(
      new Option(
        '--to <point>',
        'stop here: a frozen version, for inspection (embedded: an event position or ISO time, the last commit at/before it; --store: an ISO time)',
      ).argParser(replayEnd),
    )
    .addOption(new Option('--no-switch', 'build only; switch later with `read-model switch`'))
    .addOption(
      new Option(
        '--sample <n>',
        'keys per endpoint the verification compares with legacy (default: embedded 200, --store every key)',
      ).argParser(positiveInt),
    )
    .addOption(
      new Option(
        '--force',
        'switch even when the verification finds differences, or to a frozen version',
      ).default(false),
    )
    .addOption(
      new Option(
        '--url <url>',
        "embedded: the running process's admin API, when `run` is live (default: the admin listener)",
      ),
    )
    .action(async (readModel, o, command) => {
      const common = { ...globals(), readModel, switch: o.switch, sample: o.sample, force: o.force };
      if (o.store !== undefined) {
        if (o.to !== undefined && /^\d+$/.test(o.to))
          command.error('error: --to with --store takes an ISO time', { exitCode: USAGE_EXIT_CODE });
        await handlers.replay({
          ...common,
          store: o.store,
          from: o.from,
          to: o.to === undefined ? undefined : isoTime(o.to),
        });
        return;
      }
      const point = (value: string | undefined) => {
        if (value === undefined || value === 'beginning' || value === 'earliest') return undefined;
        try {
          return parseReplayPoint(value);
        } catch (err) {
          return command.error(`error: ${(err as Error).message}`, { exitCode: USAGE_EXIT_CODE });
        }
      };
      const from = point(o.from);
      const to = point(o.to);
      if (
        from !== undefined &&
        to !== undefined &&
        'position' in from &&
        'position' in to &&
        to.position < from.position
      )
        command.error('error: --to is before --from', { exitCode: USAGE_EXIT_CODE });
      await handlers.replay({ ...common, from, to, url: o.url });
    });

  const readModelCommand = program
    .command('read-model')
    .description('versions of a read model: list, switch (verified), rollback, drop');
  const readModelArgument = () => new Argument('<read-model>', 'a read model of the definition');
  const versionArgument = () =>
    new Argument('<version>', 'a version number (see `read-model versions`)').argParser(positiveInt);
  readModelCommand
    .command('versions')
    .description('every version, its state and how far it was built')
    .addArgument(readModelArgument())
    .addOption(storeOption())
    .addOption(urlOption())
    .addOption(jsonOption())
    .action(async (readModel, o) => {
      await handlers.readModel({
        ...globals(),
        action: 'versions',
        readModel,
        json: o.json,
        url: o.url,
        store: o.store,
      });
    });
  readModelCommand
    .command('switch')
    .description('verify a version against legacy, then make it live atomically')
    .addArgument(readModelArgument())
    .addArgument(versionArgument())
    .addOption(storeOption())
    .addOption(
      new Option('--sample <n>', 'keys per endpoint compared with legacy (default 200)').argParser(
        positiveInt,
      ),
    )
    .addOption(
      new Option(
        '--force',
        'switch despite differences, or to a frozen version (--store: without verification)',
      ).default(false),
    )
    .addOption(urlOption())
    .action(async (readModel, version, o) => {
      await handlers.readModel({
        ...globals(),
        action: 'switch',
        readModel,
        version,
        force: o.force,
        sample: o.sample,
        url: o.url,
        store: o.store,
      });
    });
  readModelCommand
    .command('rollback')
    .description('make the previously live version live again, atomically')
    .addArgument(readModelArgument())
    .addOption(storeOption())
    .addOption(urlOption())
    .action(async (readModel, o) => {
      await handlers.readModel({ ...globals(), action: 'rollback', readModel, url: o.url, store: o.store });
    });
  readModelCommand
    .command('drop')
    .description("delete a version's data (not the live one, not version 1); needs --force")
    .addArgument(readModelArgument())
    .addArgument(versionArgument())
    .addOption(storeOption())
    .addOption(new Option('--force', 'really delete it').default(false))
    .addOption(urlOption())
    .action(async (readModel, version, o) => {
      await handlers.readModel({
        ...globals(),
        action: 'drop',
        readModel,
        version,
        force: o.force,
        url: o.url,
        store: o.store,
      });
    });

  const deadLetters = program
    .command('dead-letters')
    .description('rows the capture rules rejected: list them, re-drive them after a rule fix, report drift');
  deadLetters
    .command('list', { isDefault: true })
    .description('dead letters, oldest first, with their re-drive outcome, and their count')
    .addOption(new Option('--limit <n>', 'how many to list').argParser(positiveInt).default(20))
    .addOption(new Option('--table <table>', "only this table's letters").argParser(tableName))
    .addOption(
      new Option('--since <time>', 'only letters recorded at or after this ISO time').argParser(isoTime),
    )
    .addOption(new Option('--reason <text>', 'only letters whose reason contains this text'))
    .addOption(new Option('--json', 'print JSON').default(false))
    .action(async (o) => {
      await handlers.deadLetters({
        ...globals(),
        limit: o.limit,
        table: o.table,
        since: o.since,
        reason: o.reason,
        json: o.json,
      });
    });
  deadLetters
    .command('redrive')
    .description(
      "re-map pending letters through the definition's current rules and append their events (run stopped); a letter a later change of its aggregate superseded is skipped",
    )
    .addOption(
      new Option('--table <table>', "only this table's letters (default: every table)").argParser(tableName),
    )
    .addOption(
      new Option('--force', 'append the events (without it: only print what would happen)').default(false),
    )
    .action(async (o) => {
      await handlers.deadLettersRedrive({ ...globals(), table: o.table, force: o.force });
    });
  deadLetters
    .command('drift')
    .description(
      'per table: letters still pending, since when, and the aggregates whose read model they hold back',
    )
    .addOption(new Option('--json', 'print JSON').default(false))
    .action(async (o) => {
      await handlers.deadLettersDrift({ ...globals(), json: o.json });
    });

  program
    .command('schema-changes')
    .description(
      'DDL seen on captured tables; a change that breaks a capture rule pauses the table until fixed',
    )
    .addOption(new Option('--json', 'print JSON').default(false))
    .action(async (o) => {
      await handlers.schemaChanges({ ...globals(), json: o.json });
    });

  program
    .command('resnapshot')
    .description(
      'capture one table (or the rows of --where) again as snapshot events; a whole table also removes aggregates gone from the source (run stopped)',
    )
    .addOption(
      new Option('--table <table>', 'captured table to read again')
        .argParser(tableName)
        .makeOptionMandatory(),
    )
    .addOption(
      new Option(
        '--where <sql>',
        'SQL condition on its rows, e.g. "id BETWEEN 1 AND 100" (default: every row)',
      ).argParser(sqlCondition),
    )
    .addOption(new Option('--force', 'append the events (without it: only count the rows)').default(false))
    .action(async (o) => {
      await handlers.resnapshot({ ...globals(), table: o.table, where: o.where, force: o.force });
    });

  program
    .command('reconcile')
    .description("compare every endpoint's read-model answer with the legacy answer")
    .addOption(
      new Option('--sample <n>', 'compare only n sampled keys (default: every key)').argParser(positiveInt),
    )
    .addOption(
      new Option(
        '--repair',
        're-project the documents of every drifted key from the event store, then compare them again (run stopped)',
      ).default(false),
    )
    .action(async (o) => {
      await handlers.reconcile({ ...globals(), sample: o.sample, repair: o.repair });
    });

  program
    .command('connector')
    .description('Debezium connector on Kafka Connect (connect.url)')
    .addArgument(new Argument('<action>', 'what to do with the connector').choices(CONNECTOR_ACTIONS))
    .addOption(
      new Option(
        '--kind <kind>',
        'source database kind (default: postgresql for a postgres:// legacy.url, else legacy.flavor or mariadb)',
      ).choices(CONNECTOR_KINDS),
    )
    .addOption(new Option('--name <name>', 'connector name (default: <cdc.name>-<kind>)'))
    .action(async (action, o) => {
      await handlers.connector({ ...globals(), action, kind: o.kind, name: o.name });
    });

  program
    .command('init')
    .description("write a starter migration definition from a live database's catalog")
    .addOption(new Option('--out <file>', 'file to write').default('./migration.ts'))
    .addOption(new Option('--force', 'overwrite an existing file').default(false))
    .addOption(
      new Option('--tables <a,b,…>', 'comma-separated tables to capture (default: every table)').argParser(
        tableList,
      ),
    )
    .addOption(new Option('--url <legacy url>', "legacy database URL (default: the config's legacy.url)"))
    .action(async (o) => {
      await handlers.init({ ...globals(), out: o.out, force: o.force, tables: o.tables, url: o.url });
    });

  // After the commands exist, so each error names the help of the command that refused it.
  const named = (command: typeof program, prefix: string): Array<[typeof program, string]> => [
    [command, prefix],
    ...command.commands.flatMap((c) => named(c as unknown as typeof program, `${prefix} ${c.name()}`)),
  ];
  for (const [command, name] of named(program, 'cqrs-migrate'))
    command.showHelpAfterError(`(see ${name} --help)`);
  return program;
}

/**
 * Parses `argv` (the arguments after the script, i.e. process.argv.slice(2)), runs the chosen
 * handler and resolves to the exit code: the handler's, 0 for --help/--version, 2 for a usage
 * error (already printed as one `error: …` line). A handler's own error is rethrown for the
 * caller to print (AdapterError code and hint).
 */
export async function runProgram(
  argv: readonly string[],
  handlers: CommandHandlers,
  io?: ProgramIo,
): Promise<number> {
  let exitCode = 0;
  // Each handler's exit code is captured here, since commander ignores what actions return.
  // A Proxy rather than a copy keeps class-based handler sets (prototype methods, `this`) working.
  const recording = new Proxy(handlers, {
    get(target, property, receiver) {
      const value: unknown = Reflect.get(target, property, receiver);
      if (typeof value !== 'function') return value;
      return async (options: unknown) => {
        exitCode = await (value as (o: unknown) => Promise<number>).call(target, options);
        return exitCode;
      };
    },
  });
  const program = buildProgram(recording, io);
  try {
    await program.parseAsync([...argv], { from: 'user' });
  } catch (err) {
    if (!(err instanceof CommanderError)) throw err;
    if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version') return 0;
    return USAGE_EXIT_CODE;
  }
  return exitCode;
}
