import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type CommandHandlers, runProgram } from '../../cli/program.js';
import { packageVersion } from '../../lib/package-version.js';

/** A handler set that records each call (command name and options) and returns `exitCode`. */
function recordingHandlers(exitCode = 0) {
  const calls: { command: keyof CommandHandlers; options: unknown }[] = [];
  const record =
    (command: keyof CommandHandlers) =>
    async (options: unknown): Promise<number> => {
      calls.push({ command, options });
      return exitCode;
    };
  const handlers: CommandHandlers = {
    demo: record('demo'),
    run: record('run'),
    serve: record('serve'),
    translate: record('translate'),
    project: record('project'),
    lag: record('lag'),
    report: record('report'),
    audit: record('audit'),
    rollout: record('rollout'),
    flags: record('flags'),
    rebuild: record('rebuild'),
    replay: record('replay'),
    readModelVersions: record('readModelVersions'),
    deadLetters: record('deadLetters'),
    deadLettersRedrive: record('deadLettersRedrive'),
    deadLettersDrift: record('deadLettersDrift'),
    schemaChanges: record('schemaChanges'),
    resnapshot: record('resnapshot'),
    reconcile: record('reconcile'),
    connector: record('connector'),
    init: record('init'),
  };
  return { handlers, calls };
}

async function cli(argv: string[], exitCode = 0) {
  const { handlers, calls } = recordingHandlers(exitCode);
  let out = '';
  let err = '';
  const code = await runProgram(argv, handlers, {
    out: (s) => {
      out += s;
    },
    err: (s) => {
      err += s;
    },
  });
  return { code, out, err, calls };
}

// The env fallbacks of --config/--definition would leak the developer's shell into the assertions.
const saved = { config: process.env.CQRS_CONFIG, definition: process.env.CQRS_DEFINITION };
beforeEach(() => {
  delete process.env.CQRS_CONFIG;
  delete process.env.CQRS_DEFINITION;
});
afterEach(() => {
  for (const [name, value] of [
    ['CQRS_CONFIG', saved.config],
    ['CQRS_DEFINITION', saved.definition],
  ] as const) {
    if (value === undefined) delete process.env[name];
    else process.env[name] = value;
  }
});

describe('help and version', () => {
  it('lists every command and the global options with their env variables', async () => {
    const { code, out, calls } = await cli(['--help']);
    expect(code).toBe(0);
    expect(calls).toEqual([]);
    for (const command of [
      'demo',
      'run',
      'serve',
      'translate',
      'project',
      'lag',
      'report',
      'audit',
      'flags',
      'rebuild',
      'dead-letters',
      'schema-changes',
      'resnapshot',
      'reconcile',
      'connector',
      'init',
    ]) {
      expect(out).toMatch(new RegExp(`^  ${command}\\b`, 'm'));
    }
    expect(out).toMatch(/--config <file>[\s\S]*env:\s+CQRS_CONFIG/);
    expect(out).toMatch(/--definition <file>[\s\S]*env:\s+CQRS_DEFINITION/);
  });

  it("shows a command's options with their defaults and the global options", async () => {
    const { code, out } = await cli(['demo', '--help']);
    expect(code).toBe(0);
    const flat = out.replace(/\s+/g, ' ');
    expect(flat).toContain('--duration <s> seconds of load (default: 60)');
    expect(flat).toContain('--write-rate <ops/s> legacy writes per second (default: 50)');
    expect(flat).toContain('(default: 40)');
    expect(flat).toContain('(default: 42)');
    expect(flat).toContain("one of the definition's sample.scales");
    expect(flat).toContain('--force');
    expect(flat).toContain('--example <name>');
    expect(flat).toContain('Global Options');
    expect(flat).toContain('env: CQRS_DEFINITION');

    const conn = (await cli(['connector', '--help'])).out.replace(/\s+/g, ' ');
    expect(conn).toContain('choices: "mariadb", "mysql", "postgresql"');
    expect((await cli(['dead-letters', 'list', '--help'])).out).toContain('(default: 20)');
    const dl = (await cli(['dead-letters', '--help'])).out;
    for (const sub of ['list', 'redrive', 'drift']) expect(dl).toMatch(new RegExp(`^  ${sub}\\b`, 'm'));
    const redrive = (await cli(['dead-letters', 'redrive', '--help'])).out.replace(/\s+/g, ' ');
    expect(redrive).toContain('--force append the events (without it: only print what would happen)');
    const resnap = (await cli(['resnapshot', '--help'])).out.replace(/\s+/g, ' ');
    expect(resnap).toContain('--table <table>');
    expect(resnap).toContain('--where <sql>');
    expect((await cli(['init', '--help'])).out).toContain('(default: "./migration.ts")');
  });

  it("prints package.json's version", async () => {
    for (const flag of ['--version', '-V']) {
      const { code, out } = await cli([flag]);
      expect(code).toBe(0);
      expect(out.trim()).toBe(packageVersion());
    }
    expect(packageVersion()).toMatch(/^\d+\.\d+\.\d+/);
  });
});

describe('refused before any handler runs', () => {
  it.each([
    [['demo', '--duration', 'abc'], /^error: option '--duration <s>' argument 'abc' is invalid/],
    [['report', '--format', 'pdf'], /argument 'pdf' is invalid/],
    [['rollout', 'advance'], /rollout advance needs a target/],
    [['rollout', 'promote', 'accounts'], /value 'promote' is invalid for argument 'action'/],
    [['demo', '--duration', '0'], /argument '0' is invalid/],
    [['demo', '--seed', '1.5'], /argument '1.5' is invalid/],
    [['demo', '--write-rate', ''], /argument '' is invalid/],
    [['dead-letters', '--limit', '-3'], /^error: option '--limit <n>' argument '-3' is invalid/],
    [
      ['dead-letters', 'list', '--since', 'yesterday'],
      /argument 'yesterday' is invalid\. expected an ISO date/,
    ],
    [['dead-letters', 'list', '--table', 'a b'], /argument 'a b' is invalid\. expected a table name/],
    [['dead-letters', 'redrive', '--table', 'x;y'], /argument 'x;y' is invalid/],
    [['dead-letters', 'purge'], /^error: unknown command 'purge'|too many arguments/],
    [['resnapshot'], /^error: required option '--table <table>' not specified/],
    [['resnapshot', '--table', 'items', '--where', ''], /expected a SQL condition/],
    [['resnapshot', '--table', 'items', '--where', 'id = 1; DROP TABLE items'], /cannot contain ";"/],
    [['reconcile', '--sample', 'many'], /argument 'many' is invalid/],
    [['audit', '--since', 'yesterday'], /argument 'yesterday' is invalid\. expected an ISO date or time/],
    [['audit', '--since', '2024-13-45'], /argument '2024-13-45' is invalid/],
    [
      ['connector', 'status', '--kind', 'oracle'],
      /^error: .*'oracle' is invalid\. Allowed choices are mariadb, mysql, postgresql/,
    ],
    [['connector', 'restart'], /^error: .*'restart' is invalid for argument 'action'/],
    [['connector'], /^error: missing required argument 'action'/],
    [['project'], /^error: required option '--store <store>' not specified/],
    [['project', '--store', 'redis'], /'redis' is invalid\. Allowed choices are mongo, opensearch/],
    [['rebuild', '--store', 'sqlite'], /'sqlite' is invalid/],
    [['init', '--tables', 'a,,b'], /argument 'a,,b' is invalid/],
    [['demo', '--durration', '5'], /^error: unknown option '--durration' \(Did you mean --duration\?\)$/],
    [['lag', 'extra'], /^error: too many arguments for 'lag'/],
    [['flags', 'set', 'accounts.summary'], /^error: required option '--mode <mode>' not specified/],
    [
      ['flags', 'set', 'accounts', '--mode', 'sometimes'],
      /'sometimes' is invalid\. Allowed choices are legacy, shadow, canary, new/,
    ],
    [['flags', 'set', 'accounts', '--mode', 'canary'], /^error: --mode canary needs --percent \(0-100\)$/],
    [
      ['flags', 'set', 'accounts', '--mode', 'canary', '--percent', '101'],
      /argument '101' is invalid\. expected a number from 0 to 100/,
    ],
    [['flags', 'set', 'accounts', '--mode', 'canary', '--percent', ''], /argument '' is invalid/],
    [
      ['flags', 'set', 'accounts', '--mode', 'new', '--percent', '5'],
      /^error: --percent applies to --mode canary only \(not new\)$/,
    ],
    [
      ['flags', 'set', 'accounts', '--mode', 'shadow', '--compare-sample', '0.1'],
      /^error: --compare-sample applies to --mode new only \(not shadow\)$/,
    ],
    [
      ['flags', 'set', 'accounts', '--mode', 'new', '--compare-sample', '5'],
      /argument '5' is invalid\. expected a share from 0 to 1/,
    ],
    [
      ['flags', 'get', '../etc'],
      /value '\.\.\/etc' is invalid for argument 'endpointKey'\. expected "<domain>" or "<domain>\.<endpoint>"/,
    ],
    [['flags', 'set', 'a.b.c', '--mode', 'new'], /value 'a\.b\.c' is invalid for argument 'endpointKey'/],
    [['flags', 'get'], /^error: missing required argument 'endpointKey'/],
    [['flags', 'toggle', 'accounts'], /^error: unknown command 'toggle'|too many arguments/],
    [['frobnicate'], /^error: unknown command 'frobnicate'/],
  ])('%j', async (argv, message) => {
    const { code, err, calls } = await cli(argv);
    expect(code).toBe(2);
    expect(calls).toEqual([]);
    const lines = err.trim().split('\n');
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(message);
    expect(lines[1]).toMatch(/^\(see cqrs-migrate( [a-z-]+)* --help\)$/);
    expect(err).not.toMatch(/\bat .*\(.*:\d+:\d+\)/); // no stack trace
  });

  it('prints help to stderr and exits 2 without a command', async () => {
    const { code, out, err, calls } = await cli([]);
    expect(code).toBe(2);
    expect(calls).toEqual([]);
    expect(out).toBe('');
    expect(err).toContain('Usage: cqrs-migrate');
  });
});

describe('valid arguments reach the right handler with typed values', () => {
  it('demo: defaults', async () => {
    const { code, calls } = await cli(['demo']);
    expect(code).toBe(0);
    expect(calls).toEqual([
      {
        command: 'demo',
        options: {
          config: undefined,
          definition: undefined,
          durationSec: 60,
          scale: undefined,
          writeRate: 50,
          readRate: 40,
          seed: 42,
          force: false,
          example: undefined,
        },
      },
    ]);
  });

  it('demo: every option, global options before or after the command', async () => {
    const { calls } = await cli([
      '--config',
      'c.json',
      'demo',
      '--duration',
      '2.5',
      '--scale',
      'huge',
      '--write-rate',
      '10',
      '--read-rate',
      '5',
      '--seed',
      '0',
      '--force',
      '--example',
      'bank',
      '--definition',
      './migration.ts',
    ]);
    expect(calls[0]).toEqual({
      command: 'demo',
      options: {
        config: 'c.json',
        definition: './migration.ts',
        durationSec: 2.5,
        scale: 'huge',
        writeRate: 10,
        readRate: 5,
        seed: 0,
        force: true,
        example: 'bank',
      },
    });
  });

  it('takes --config and --definition from their env variables', async () => {
    process.env.CQRS_CONFIG = 'from-env.json';
    process.env.CQRS_DEFINITION = 'env-migration.ts';
    const { calls } = await cli(['run']);
    expect(calls).toEqual([
      { command: 'run', options: { config: 'from-env.json', definition: 'env-migration.ts' } },
    ]);
    // The flag wins over the env variable.
    expect((await cli(['serve', '--definition', 'flag.ts'])).calls[0]?.options).toMatchObject({
      definition: 'flag.ts',
    });
  });

  it.each([
    [['run'], 'run', {}],
    [['serve'], 'serve', {}],
    [['translate'], 'translate', {}],
    [['project', '--store', 'opensearch'], 'project', { store: 'opensearch' }],
    [['lag'], 'lag', { json: false }],
    [['lag', '--json'], 'lag', { json: true }],
    [['report', '--json'], 'report', { format: 'json' }],
    [
      ['report', '--format', 'junit', '--domain', 'accounts', '--until', '2024-05-02'],
      'report',
      { format: 'junit', domain: 'accounts', until: '2024-05-02T00:00:00.000Z' },
    ],
    [['rollout', 'status'], 'rollout', { action: 'status', target: undefined, force: false, json: false }],
    [
      ['rollout', 'advance', 'accounts', '--force', '--reason', 'CHG-1'],
      'rollout',
      { action: 'advance', target: 'accounts', force: true, reason: 'CHG-1', json: false },
    ],
    [['flags'], 'flags', { action: 'list', url: undefined, json: false }],
    [
      ['flags', 'list', '--json', '--url', 'http://127.0.0.1:9/'],
      'flags',
      { action: 'list', url: 'http://127.0.0.1:9/', json: true },
    ],
    [
      ['flags', 'get', 'accounts.summary'],
      'flags',
      { action: 'get', key: 'accounts.summary', url: undefined, json: false },
    ],
    [
      ['flags', 'set', 'accounts', '--mode', 'canary', '--percent', '12.5', '--reason', 'CHG-2'],
      'flags',
      {
        action: 'set',
        key: 'accounts',
        flag: { mode: 'canary', percent: 12.5 },
        reason: 'CHG-2',
        url: undefined,
        json: false,
      },
    ],
    [
      ['flags', 'set', 'accounts.summary', '--mode', 'new', '--compare-sample', '0.01'],
      'flags',
      {
        action: 'set',
        key: 'accounts.summary',
        flag: { mode: 'new', compareSample: 0.01 },
        reason: undefined,
        url: undefined,
        json: false,
      },
    ],
    [['audit'], 'audit', { since: undefined, limit: 1000, json: false }],
    [
      ['audit', '--since', '2024-05-01T09:30:00Z', '--json', '--limit', '5'],
      'audit',
      { since: new Date('2024-05-01T09:30:00Z'), limit: 5, json: true },
    ],
    [['rebuild'], 'rebuild', { store: undefined }],
    [['rebuild', '--store', 'mongo'], 'rebuild', { store: 'mongo' }],
    [
      ['dead-letters'],
      'deadLetters',
      { limit: 20, table: undefined, since: undefined, reason: undefined, json: false },
    ],
    [
      ['dead-letters', '--limit', '5'],
      'deadLetters',
      { limit: 5, table: undefined, since: undefined, reason: undefined, json: false },
    ],
    [
      ['dead-letters', 'list', '--table', 'items', '--since', '2024-05-01', '--reason', 'qty', '--json'],
      'deadLetters',
      { limit: 20, table: 'items', since: '2024-05-01T00:00:00.000Z', reason: 'qty', json: true },
    ],
    [['dead-letters', 'redrive'], 'deadLettersRedrive', { table: undefined, force: false }],
    [
      ['dead-letters', 'redrive', '--table', 'items', '--force'],
      'deadLettersRedrive',
      { table: 'items', force: true },
    ],
    [['dead-letters', 'drift', '--json'], 'deadLettersDrift', { json: true }],
    [['schema-changes'], 'schemaChanges', { json: false }],
    [['resnapshot', '--table', 'items'], 'resnapshot', { table: 'items', where: undefined, force: false }],
    [
      ['resnapshot', '--table', 'items', '--where', 'id BETWEEN 1 AND 9', '--force'],
      'resnapshot',
      { table: 'items', where: 'id BETWEEN 1 AND 9', force: true },
    ],
    [['reconcile'], 'reconcile', { sample: undefined, repair: false }],
    [['reconcile', '--sample', '100', '--repair'], 'reconcile', { sample: 100, repair: true }],
    [['connector', 'render'], 'connector', { action: 'render', kind: undefined, name: undefined }],
    [
      ['connector', 'deploy', '--kind', 'postgresql', '--name', 'pg-1'],
      'connector',
      { action: 'deploy', kind: 'postgresql', name: 'pg-1' },
    ],
    [['init'], 'init', { out: './migration.ts', force: false, tables: undefined, url: undefined }],
    [
      ['init', '--out', 'm.ts', '--force', '--tables', 'orders, customers', '--url', 'postgres://u@h/db'],
      'init',
      { out: 'm.ts', force: true, tables: ['orders', 'customers'], url: 'postgres://u@h/db' },
    ],
  ])('%j', async (argv, command, options) => {
    const { code, calls } = await cli(argv);
    expect(code).toBe(0);
    expect(calls).toEqual([{ command, options: { config: undefined, definition: undefined, ...options } }]);
  });

  it("returns the handler's exit code", async () => {
    expect((await cli(['report'], 3)).code).toBe(3);
  });

  it("rethrows a handler's own error for the caller to print", async () => {
    const { handlers } = recordingHandlers();
    handlers.lag = async () => {
      throw new Error('kafka down');
    };
    await expect(runProgram(['lag'], handlers, { out: () => {}, err: () => {} })).rejects.toThrow(
      'kafka down',
    );
  });
});
