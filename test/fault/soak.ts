import { Command, InvalidArgumentError } from '@commander-js/extra-typings';
import { describeResult, runKillLoop } from './kill-loop.js';

/**
 * `npm run soak -- --minutes N`: the fault suite's kill -9 loop for N minutes on a larger bank,
 * printing the same figures. Exits 1 when any account drifted, a dead letter appeared or the
 * event store holds more than 1.05× the source rows of snapshot events.
 */

const positive = (what: string) => (value: string) => {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError(`${what} must be a positive number`);
  return n;
};

const options = new Command('soak')
  .description('kill -9 a live `run` at random points under legacy write load, then check every account')
  .option('--minutes <n>', 'how long to keep killing', positive('--minutes'), 10)
  .option('--customers <n>', 'bank customers (about 1.5 accounts each)', positive('--customers'), 3000)
  .option('--write-rate <ops>', 'legacy write operations per second', positive('--write-rate'), 150)
  .option(
    '--seed <n>',
    'seed of the data, the writes and the kill times',
    positive('--seed'),
    Date.now() % 1e9,
  )
  .parse()
  .opts();

console.info(`soak: ${options.minutes} min, ${options.customers} customers, seed ${options.seed}`);
const result = await runKillLoop({
  kills: Number.MAX_SAFE_INTEGER,
  untilMs: options.minutes * 60_000,
  minLifeMs: 1500,
  maxLifeMs: 20_000,
  writeRate: options.writeRate,
  customers: options.customers,
  bigTransaction: { rows: 50_000, every: 10 },
  seed: Math.floor(options.seed),
  log: (line) => console.info(line),
});
console.info(describeResult(result));
const ratio = result.snapshotEvents / Math.max(1, result.sourceRows);
const failed =
  result.drift.length > 0 ||
  result.deadLetters > 0 ||
  ratio > 1.05 ||
  result.duplicateSnapshotEvents > result.snapshotEvents * 0.05;
if (result.drift.length > 0) console.info(JSON.stringify(result.drift.slice(0, 5), null, 2));
process.exitCode = failed ? 1 : 0;
