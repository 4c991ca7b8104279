/**
 * A process that catches up a bank read-model database with deferred composition, a batch every
 * 30 ms and no time bound (args: events.db, read-models.db, batch size): what a test kills -9
 * in the middle of a deferral. JavaScript, run with `node --import tsx -e`.
 */
const at = (path: string) => JSON.stringify(new URL(path, import.meta.url).href);

export const DEFERRED_RUNNER_SCRIPT = `
const { SqliteEventStore } = await import(${at('../../../eventstore/sqlite.ts')});
const { ProjectionRunner } = await import(${at('../../../projectors/runner.ts')});
const { openReadModelDb } = await import(${at('../../../projectors/stores/sqlite.ts')});
const { SqliteReadModels } = await import(${at('../../../projectors/stores/sqlite-read-models.ts')});
const bank = (await import(${at('../../../examples/bank/migration.ts')})).default;
const [eventsPath, readModelsPath, batch] = process.argv.slice(1);
const runner = new ProjectionRunner({
  eventStore: new SqliteEventStore(eventsPath),
  db: openReadModelDb(readModelsPath),
  projections: [new SqliteReadModels(bank)],
  batchSize: Number(batch),
  deferMaxMs: 600000,
});
while ((await runner.step()) > 0) await new Promise((r) => setTimeout(r, 30));
`;
