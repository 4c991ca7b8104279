import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command } from '@commander-js/extra-typings';
import { z } from 'zod';
import { parseMysqlUrl } from '../examples/bank/db.js';
import { AdapterError, errorMessage } from '../lib/errors.js';
import { createLogger, type Logger } from '../lib/logger.js';
import { isEntry } from './child.js';
import { invalidOptions, parseOptions } from './cli-options.js';
import { type ScenarioContext, SETTINGS } from './context.js';
import { BenchError } from './errors.js';
import { prepareFixture } from './fixture.js';
import { machineInfo, peakRssBytes, versions } from './machine.js';
import {
  type BenchResult,
  type CdcPathName,
  cdcPathNameSchema,
  resultSchema,
  SCENARIOS,
  type ScenarioName,
  serveCpuResultSchema,
} from './results-schema.js';
import { CDC_PATHS, type CdcPath, cdcScenario } from './scenarios/cdc.js';
import { type BinlogDecoder, DECODERS, decodeScenario } from './scenarios/decode.js';
import { readsScenario } from './scenarios/reads.js';
import { shadowScenario } from './scenarios/shadow.js';
import { throughputScenario } from './scenarios/throughput.js';
import { renderSummary } from './summary.js';

const argsSchema = z.object({
  scenario: z.enum([...SCENARIOS, 'all', 'summary']),
  scale: z.enum(['tiny', 'small', 'bench']).default('bench'),
  seed: z.coerce.number().int().default(42),
  database: z.string().optional(),
  legacyUrl: z.string().default('mysql://cqrs:cqrs@127.0.0.1:3307'),
  out: z.string().default('bench/results'),
  dataDir: z.string().optional(),
  profile: z.boolean().default(true),
  embeddedOnly: z.boolean().default(false),
  force: z.boolean().default(false),
  cdcPaths: z
    .string()
    .default('embedded')
    .transform((list) => list.split(','))
    .pipe(z.array(cdcPathNameSchema).min(1)),
  decoders: z
    .string()
    .default('embedded')
    .transform((list) => list.split(','))
    .pipe(z.array(z.string().min(1)).min(1)),
  cdcSec: z.coerce.number().positive().optional(),
  cdcRates: z
    .string()
    .transform((list) => list.split(',').map(Number))
    .pipe(z.array(z.number().positive()).min(1))
    .optional(),
  cdcQuietSec: z.coerce.number().nonnegative().optional(),
  cdcWarmupSec: z.coerce.number().nonnegative().optional(),
  replaySec: z.coerce.number().positive().optional(),
});
export type BenchArgs = z.infer<typeof argsSchema>;

/** Commander parses and documents the options (`--help`); zod checks their values. */
function benchCommand() {
  return new Command('npm run bench --')
    .description('Benchmarks: the legacy JOIN queries side by side with the read models, on the sample bank.')
    .argument(
      '<scenario>',
      `${SCENARIOS.join(', ')}; all runs each in its own process (throughput first, then bench/serve-cpu.ts on the same data: everything the summary's targets need); summary renders summary.md again from the results in --out`,
    )
    .option(
      '--scale <scale>',
      'sample bank size: tiny, small or bench (default bench: 100k customers, 200k accounts, 5M transactions)',
    )
    .option('--seed <n>', 'data seed (default 42)')
    .option('--database <name>', 'legacy database (default bench_bank, or bench_bank_<scale>)')
    .option('--legacy-url <url>', 'server of the legacy database (default mysql://cqrs:cqrs@127.0.0.1:3307)')
    .option('--out <dir>', 'results directory (default bench/results)')
    .option('--data-dir <dir>', 'dataset record and adapter stores (default .data/bench/<scale>)')
    .option(
      '--cdc-paths <list>',
      'CDC paths of the cdc scenario, comma-separated (default embedded; debezium-kafka needs the stack)',
    )
    .option(
      '--decoders <list>',
      'binlog readers of the decode scenario (default embedded; debezium needs the stack)',
    )
    .option('--cdc-sec <n>', 'seconds of write load per CDC level (default per scale: 2, 10, 30)')
    .option('--cdc-rates <list>', 'row changes/s of the CDC levels, comma-separated (default 500,2000,5000)')
    .option(
      '--cdc-quiet-sec <n>',
      'seconds with no write load measured before the first CDC level: what the pipeline spends idle after its start (default 0)',
    )
    .option(
      '--cdc-warmup-sec <n>',
      "seconds of write load at the first CDC level's rate before the measured levels, its lag reported apart: the pipeline's code warming up after its start (default per scale: 0, 10, 15)",
    )
    .option(
      '--replay-sec <n>',
      'longest replay per store in the throughput scenario, in seconds (default per scale: 60, 60, 1800: a whole replay at bench scale)',
    )
    .option('--no-profile', 'skip the CPU-profiled runs')
    .option('--force', 'drop and regenerate --database when this --data-dir holds no record of generating it')
    .option(
      '--embedded-only',
      'all: leave out the Debezium/Kafka path (otherwise all starts the stack with stack/stack.sh up and measures both paths)',
    )
    .exitOverride()
    .configureOutput({ writeErr: () => {} });
}

/** The parsed arguments, or null when the user asked for --help (printed to stdout). */
export function parseBenchArgs(argv: string[]): BenchArgs | null {
  const command = benchCommand();
  if (!parseOptions(command, argv)) return null;
  const values = command.opts();
  const parsed = argsSchema.safeParse({
    scenario: command.args[0],
    scale: values.scale,
    seed: values.seed,
    database: values.database,
    legacyUrl: values.legacyUrl,
    out: values.out,
    dataDir: values.dataDir,
    profile: values.profile,
    embeddedOnly: values.embeddedOnly,
    force: values.force,
    cdcPaths: values.cdcPaths,
    decoders: values.decoders,
    cdcSec: values.cdcSec,
    cdcRates: values.cdcRates,
    cdcQuietSec: values.cdcQuietSec,
    cdcWarmupSec: values.cdcWarmupSec,
    replaySec: values.replaySec,
  });
  if (!parsed.success) throw invalidOptions(parsed.error, command);
  return parsed.data;
}

function cdcPaths(names: readonly CdcPathName[]): CdcPath[] {
  return names.map((name) => {
    const path = CDC_PATHS[name];
    if (!path) throw new BenchError('BENCH_USAGE', `the ${name} CDC path is not available in this build`);
    return path;
  });
}

function decoders(names: readonly string[]): BinlogDecoder[] {
  return names.map((name) => {
    const decoder = DECODERS[name];
    if (!decoder) throw new BenchError('BENCH_USAGE', `no binlog reader named ${name} in this build`);
    return decoder;
  });
}

function scenarioRunner(
  name: ScenarioName,
  args: BenchArgs,
): (ctx: ScenarioContext) => Promise<BenchResult['results']> {
  switch (name) {
    case 'throughput':
      return (ctx) => throughputScenario(ctx);
    case 'decode': {
      const readers = decoders(args.decoders);
      return (ctx) => decodeScenario(ctx, readers);
    }
    case 'reads':
      return readsScenario;
    case 'shadow':
      return shadowScenario;
    case 'cdc': {
      const paths = cdcPaths(args.cdcPaths);
      return (ctx) => cdcScenario(ctx, paths);
    }
  }
}

function settingsOf(args: BenchArgs) {
  const scale = SETTINGS[args.scale];
  return {
    ...scale,
    profile: args.profile && scale.profile,
    cdcSec: args.cdcSec ?? scale.cdcSec,
    cdcRates: args.cdcRates ?? scale.cdcRates,
    cdcQuietSec: args.cdcQuietSec ?? scale.cdcQuietSec,
    cdcWarmupSec: args.cdcWarmupSec ?? scale.cdcWarmupSec,
    replaySec: args.replaySec ?? scale.replaySec,
  };
}

const databaseOf = (args: BenchArgs) =>
  args.database ?? (args.scale === 'bench' ? 'bench_bank' : `bench_bank_${args.scale}`);
const dataDirOf = (args: BenchArgs) => args.dataDir ?? join('.data/bench', args.scale);

/** One scenario in this process: its peak RSS is this process's. */
async function runScenario(
  args: BenchArgs & { scenario: ScenarioName },
  logger: Logger,
): Promise<BenchResult> {
  // Resolved first: a bad --cdc-paths or --decoders fails before minutes of data preparation.
  const runner = scenarioRunner(args.scenario, args);
  const startedAt = new Date().toISOString();
  const machine = machineInfo();
  const server = parseMysqlUrl(args.legacyUrl);
  const database = databaseOf(args);
  const fixture = await prepareFixture({
    server,
    database,
    scale: args.scale,
    seed: args.seed,
    dataDir: dataDirOf(args),
    force: args.force,
    logger,
  });
  try {
    const settings = settingsOf(args);
    const ctx: ScenarioContext = { scale: args.scale, seed: args.seed, server, fixture, settings, logger };
    logger.info({ scenario: args.scenario, scale: args.scale, database }, 'scenario started');
    const results = await runner(ctx);
    return resultSchema.parse({
      scenario: args.scenario,
      startedAt,
      finishedAt: new Date().toISOString(),
      machine,
      versions: await versions(fixture.pool),
      dataset: { ...fixture.dataset, reused: !fixture.generated },
      peakRssBytes: peakRssBytes(),
      params: { scale: args.scale, seed: args.seed, ...settings },
      results,
    });
  } finally {
    await fixture.pool.end();
  }
}

/** Every valid result in `dir`; files that fail the schema are reported and left out. */
export function readResults(dir: string, logger: Logger): BenchResult[] {
  const results: BenchResult[] = [];
  for (const name of SCENARIOS) {
    const parsed = readJson(dir, `${name}.json`, resultSchema, logger);
    if (parsed) results.push(parsed);
  }
  return results;
}

function readJson<T>(dir: string, file: string, schema: z.ZodType<T>, logger: Logger): T | undefined {
  let text: string;
  try {
    text = readFileSync(join(dir, file), 'utf8');
  } catch {
    return undefined;
  }
  const parsed = schema.safeParse(JSON.parse(text));
  if (parsed.success) return parsed.data;
  logger.warn({ file, issues: parsed.error.issues.slice(0, 3) }, 'result left out of the summary');
  return undefined;
}

function writeSummary(dir: string, logger: Logger): void {
  const serveCpu = readJson(dir, SERVE_CPU_FILE, serveCpuResultSchema, logger);
  writeFileSync(join(dir, 'summary.md'), renderSummary(readResults(dir, logger), serveCpu));
}

const SERVE_CPU_FILE = 'serve-cpu.json';

function runNode(args: string[]): Promise<number | null> {
  return new Promise<number | null>((done, fail) => {
    const child = spawn(process.execPath, [...process.execArgv, ...args], { stdio: 'inherit' });
    child.on('error', fail);
    child.on('close', done);
  });
}

/** `stack/stack.sh up`: a no-op when the stack already runs. */
function stackUp(): Promise<void> {
  return new Promise<void>((done, fail) => {
    const child = spawn('bash', [fileURLToPath(new URL('../stack/stack.sh', import.meta.url)), 'up'], {
      stdio: 'inherit',
    });
    child.on('error', fail);
    child.on('close', (code) =>
      code === 0
        ? done()
        : fail(
            new BenchError('BENCH_STACK', `stack/stack.sh up exited with ${code}`, {
              hint: 'see stack/stack.sh logs <service>, or run all with --embedded-only',
            }),
          ),
    );
  });
}

/**
 * `all`: each scenario in a child process of this command, so each has its own peak RSS, then
 * the serving-CPU measurement on the same data. Unless --embedded-only, the stack is started and
 * the Debezium/Kafka path measured too (where --cdc-paths / --decoders do not say otherwise).
 */
async function runAll(args: BenchArgs, argv: string[]): Promise<void> {
  const rest = argv.filter((a) => a !== 'all' && a !== '--embedded-only');
  if (!args.embeddedOnly) {
    await stackUp();
    if (!argv.includes('--cdc-paths')) rest.push('--cdc-paths', 'embedded,debezium-kafka');
    if (!argv.includes('--decoders')) rest.push('--decoders', 'embedded,debezium');
  }
  for (const scenario of SCENARIOS) {
    const code = await runNode([process.argv[1] as string, scenario, ...rest]);
    if (code !== 0) throw new BenchError('BENCH_SCENARIO_FAILED', `scenario ${scenario} exited with ${code}`);
  }
  const settings = settingsOf(args);
  const code = await runNode([
    fileURLToPath(new URL('./serve-cpu.ts', import.meta.url)),
    '--database',
    databaseOf(args),
    '--scale',
    args.scale,
    '--legacy-url',
    args.legacyUrl,
    '--data-dir',
    dataDirOf(args),
    '--seconds',
    String(settings.httpSec),
    '--repeat',
    '1',
    '--connections',
    String(Math.max(...settings.connections)),
    '--out',
    join(args.out, SERVE_CPU_FILE),
    ...(settings.profile ? ['--profiled-runs'] : []),
  ]);
  if (code !== 0) throw new BenchError('BENCH_SCENARIO_FAILED', `serve-cpu exited with ${code}`);
  writeSummary(args.out, createLogger({ name: 'bench' }));
  process.stdout.write(`results and summary in ${resolve(args.out)}\n`);
}

export async function main(argv: string[]): Promise<void> {
  const logger = createLogger({ name: 'bench' });
  const args = parseBenchArgs(argv);
  if (!args) return;
  mkdirSync(args.out, { recursive: true });
  if (args.scenario === 'all') return runAll(args, argv);
  if (args.scenario === 'summary') return writeSummary(args.out, logger);
  const result = await runScenario({ ...args, scenario: args.scenario }, logger);
  writeFileSync(join(args.out, `${result.scenario}.json`), `${JSON.stringify(result, null, 2)}\n`);
  writeSummary(args.out, logger);
  process.stdout.write(`${result.scenario}: ${join(args.out, `${result.scenario}.json`)}\n`);
}

if (isEntry(import.meta.url)) {
  try {
    await main(process.argv.slice(2));
  } catch (err) {
    const hint = err instanceof AdapterError && err.hint ? `\nfix: ${err.hint}` : '';
    process.stderr.write(`bench failed: ${errorMessage(err)}${hint}\n`);
    if (!(err instanceof AdapterError)) process.stderr.write(`${err instanceof Error ? err.stack : ''}\n`);
    process.exitCode = 1;
  }
}
