import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);

/** The npm packages `cqrs-migrate <args>` loaded before it exited. */
async function loadedPackages(args: string[]): Promise<string[]> {
  const { stderr } = await run(
    process.execPath,
    ['--import', 'tsx', '--import', './test/support/loaded-packages.mjs', 'cli/main.ts', ...args],
    { env: { ...process.env, LOG_LEVEL: 'error' } },
  );
  const line = /^LOADED_PACKAGES (.*)$/m.exec(stderr);
  if (line === null) throw new Error(`no package list in the CLI's output:\n${stderr}`);
  return JSON.parse(line[1] as string) as string[];
}

/**
 * Every command starts without the distributed path's clients and DuckDB: the commands that use
 * them import them. Loaded by all, they were over half of the files a start opened, paid by every
 * short command, every `run` restart and every API worker.
 */
describe('CLI start-up', () => {
  it('loads neither the Kafka, MongoDB and OpenSearch clients nor DuckDB for a command that does not use them', async () => {
    for (const args of [['--help'], ['report', '--help']]) {
      const loaded = await loadedPackages(args);
      // The list is real: the argument parser is in it.
      expect(loaded).toContain('commander');
      expect(
        loaded.filter((p) =>
          [
            'kafkajs',
            'mongodb',
            '@opensearch-project/opensearch',
            '@duckdb/node-api',
            '@duckdb/node-bindings',
          ].includes(p),
        ),
      ).toEqual([]);
    }
  }, 60_000);
});
