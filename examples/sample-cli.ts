import { Command, InvalidArgumentError, Option } from 'commander';
import { isMigration, type Migration } from '../index.js';

/**
 * The examples' own data commands (not the product's): create a sample database and drive
 * write load on it, through the sample hooks each example's definition carries.
 *
 *   npm run sample -- create [--example bank] [--scale small] [--seed 42] [--force] [--url URL]
 *   npm run sample -- load   [--example bank] [--rate 50] [--duration 60] [--seed 43] [--url URL]
 */

const EXAMPLES = ['bank', 'shop'] as const;

async function exampleMigration(name: string): Promise<Migration> {
  const module: { default?: unknown } = await import(`./${name}/migration.js`);
  if (!isMigration(module.default)) throw new Error(`examples/${name}/migration.ts exports no migration`);
  return module.default;
}

function positive(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0 || value.trim() !== value)
    throw new InvalidArgumentError('expected a number > 0.');
  return n;
}

function sampleOf(migration: Migration) {
  if (migration.sample === undefined) throw new Error(`the ${migration.name} example has no sample hooks`);
  return migration.sample;
}

const example = () =>
  new Option('--example <name>', 'which example')
    .choices(EXAMPLES)
    .default('bank' as (typeof EXAMPLES)[number]);
const url = () =>
  new Option('--url <url>', "legacy database URL (default: the example's own)").env('CQRS_LEGACY_URL');

const program = new Command('sample')
  .description("the examples' sample data and write load")
  .showHelpAfterError();

program
  .command('create')
  .description('create the sample database (refuses an existing one without --force)')
  .addOption(example())
  .addOption(url())
  .option('--scale <name>', "one of the example's scales (default: its first)")
  .option('--seed <n>', 'generator seed', positive, 42)
  .option('--force', 'drop an existing database of that name first', false)
  .action(async (o) => {
    const sample = sampleOf(await exampleMigration(o.example));
    const scale = o.scale ?? sample.scales[0];
    if (!sample.scales.includes(scale))
      throw new InvalidArgumentError(`--scale must be one of ${sample.scales.join(', ')}`);
    const target = o.url ?? sample.url;
    if (target === undefined) throw new Error('pass --url');
    const { rows } = await sample.create({
      url: target,
      scale,
      seed: o.seed,
      force: o.force,
      progress: (line) => process.stdout.write(`  ${line}\n`),
    });
    process.stdout.write(`${rows} rows\n`);
  });

program
  .command('load')
  .description('write load on the sample database')
  .addOption(example())
  .addOption(url())
  .option('--rate <ops/s>', 'operations per second', positive, 50)
  .option('--duration <s>', 'seconds', positive, 60)
  .option('--seed <n>', 'workload seed', positive, 43)
  .action(async (o) => {
    const sample = sampleOf(await exampleMigration(o.example));
    const target = o.url ?? sample.url;
    if (target === undefined) throw new Error('pass --url');
    const stats = await sample.load({
      url: target,
      ratePerSec: o.rate,
      durationMs: o.duration * 1000,
      seed: o.seed,
    });
    process.stdout.write(`${JSON.stringify(stats, null, 2)}\n`);
  });

program.parseAsync().catch((err: unknown) => {
  process.stderr.write(`error: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
