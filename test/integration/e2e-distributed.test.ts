import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from '@opensearch-project/opensearch';
import { MongoClient } from 'mongodb';
import type { Pool } from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  distributedLag,
  openServerReadModels,
  openStore,
  type RunningTranslator,
  rebuildStore,
  startTranslator,
} from '../../cli/distributed.js';
import { diffJson } from '../../compare/diff.js';
import { type OpenedLegacyDb, openLegacyDb } from '../../connectors/legacy/index.js';
import type { ReadModels } from '../../definition/read-models.js';
import type { AccountQueries, HistoryPage } from '../../examples/bank/contract.js';
import { createBankDatabase, dropDatabase, openPool } from '../../examples/bank/db.js';
import { generateBank } from '../../examples/bank/generate.js';
import { LegacyQueries, legacyAccountIds } from '../../examples/bank/legacy-queries.js';
import bank from '../../examples/bank/migration.js';
import { runWorkload } from '../../examples/bank/workload.js';
import { type Config, loadConfig } from '../../lib/config.js';
import { StoreError } from '../../lib/errors.js';
import { silentLogger } from '../../lib/logger.js';
import { OpenSearchReadModel } from '../../projectors/stores/opensearch-read-models.js';
import { bankEndpointQueries } from './support/bank-endpoints.js';
import {
  connectReachable,
  type DeployedBankConnector,
  deployBankConnector,
  dropKafkaState,
  LEGACY,
  markerTransaction,
  testKafka,
  uniqueSuffix,
  waitFor,
} from './support/debezium-bank.js';
import { exited, ProjectorProcesses } from './support/projector-processes.js';
import { capturingLogger, translatorDiagnosis } from './support/translator-diagnosis.js';

const connectUp = await connectReachable();
if (!connectUp)
  console.warn('e2e-distributed: Kafka Connect is not reachable; start it with `bash stack/stack.sh up`');

async function allHistory(q: AccountQueries, accountId: number): Promise<HistoryPage['items']> {
  const items: HistoryPage['items'] = [];
  let cursor: string | undefined;
  for (;;) {
    const page = await q.transactionHistory({ accountId, limit: 40, ...(cursor ? { cursor } : {}) });
    items.push(...page.items);
    if (!page.nextCursor) return items;
    cursor = page.nextCursor;
  }
}

const projectors = new ProjectorProcesses();
const stderr = projectors.stderr;
const spawnProjector = (configFile: string, store: string) => projectors.spawn(configFile, store);

describe.skipIf(!connectUp)(
  'distributed path end to end: Debezium → Kafka → projectors → MongoDB and OpenSearch',
  () => {
    const suffix = uniqueSuffix();
    const database = `t_dist_${suffix}`;
    const dir = mkdtempSync(join(tmpdir(), 'cqrs-dist-'));
    const configFile = join(dir, 'config.json');
    const kafka = testKafka(`t-dist-${suffix}`);
    const children: ChildProcess[] = [];
    let pool: Pool;
    let legacyDb: OpenedLegacyDb;
    let connector: DeployedBankConnector | undefined;
    let translator: RunningTranslator | undefined;
    let config: Config;

    beforeAll(async () => {
      await createBankDatabase(LEGACY, database, { dropExisting: true });
      pool = openPool(LEGACY, database);
      await generateBank(pool, { seed: 33, scale: 'tiny' });
      connector = await deployBankConnector(pool, database, suffix);
      const url = `mysql://cqrs:cqrs@127.0.0.1:3307/${database}`;
      legacyDb = openLegacyDb(url);
      const file = {
        legacy: { url },
        definition: 'examples/bank/migration.ts',
        cdc: { name: connector.topicPrefix, snapshotChunkRows: 500 },
        kafka: { topicPrefix: `t_dist_${suffix}`, partitions: 4, sessionTimeoutMs: 8000 },
        stores: {
          // As the bank is usually placed: summaries in MongoDB, history pages in OpenSearch.
          placement: { 'account-summary': 'mongo', 'transaction-history': 'opensearch' },
          mongoDatabase: `t_dist_${suffix}`,
          opensearchIndexPrefix: `t-dist-${suffix}`,
        },
      };
      writeFileSync(configFile, JSON.stringify(file));
      config = loadConfig({ file: configFile, env: {} });
    });

    afterAll(async () => {
      for (const child of children) child.kill('SIGKILL');
      await Promise.all(children.map(exited));
      await translator?.stop();
      await connector?.remove();
      await dropKafkaState(
        kafka,
        [connector?.topicPrefix ?? '', config.kafka.topicPrefix],
        [
          `${config.kafka.topicPrefix}.translator`,
          ...bank.readModels.map((m) => `${config.kafka.topicPrefix}.projector.${m.name}`),
        ],
      );
      const mongo = new MongoClient(config.stores.mongoUrl);
      await mongo
        .db(config.stores.mongoDatabase)
        .dropDatabase()
        .catch(() => undefined);
      await mongo.close();
      const os = new Client({ node: config.stores.opensearchUrl });
      await os.indices.delete({ index: `${config.stores.opensearchIndexPrefix}-*` }).catch(() => undefined);
      await os.close();
      await legacyDb?.close();
      await pool?.end();
      await dropDatabase(LEGACY, database);
      rmSync(dir, { recursive: true, force: true });
    });

    it('read models equal the legacy JOIN answers for every account, with a projector killed and restarted mid-run', async () => {
      const translatorLog = capturingLogger();
      translator = await startTranslator(config, bank, translatorLog.logger);
      const mongoA = spawnProjector(configFile, 'mongo');
      const mongoB = spawnProjector(configFile, 'mongo');
      const searchProjector = spawnProjector(configFile, 'opensearch');
      children.push(mongoA, mongoB, searchProjector);
      const lag = () => distributedLag(config, bank, kafka);

      // The snapshot flows through first; the write load starts while it is still being projected.
      await waitFor(
        'the snapshot to reach the domain topics',
        () => (translator?.source.deliveredCount() ?? 0) > 0,
        120_000,
      );
      const load = runWorkload(pool, { seed: 9, ratePerSec: 120, maxOps: 420, concurrency: 3 });
      await new Promise((r) => setTimeout(r, 1500));
      mongoA.kill('SIGKILL');
      await exited(mongoA);
      await new Promise((r) => setTimeout(r, 1000));
      children.push(spawnProjector(configFile, 'mongo'));
      const stats = await load;
      expect(stats.errors).toBe(0);
      expect(stats.ops).toBeGreaterThanOrEqual(400);

      const marker = await markerTransaction(pool);
      await waitFor(
        'the translator to publish the last transaction',
        () => translator?.source.lastTransaction()?.id === marker,
        120_000,
      ).catch(async (err: unknown) => {
        throw new Error(
          `${err instanceof Error ? err.message : String(err)} (marker ${marker}); ${await translatorDiagnosis(translator, config, kafka, connector?.name, translatorLog.lines)}`,
        );
      });
      await waitFor(
        'every consumer group to reach the end of its topics',
        async () => (await lag()).total === 0,
        180_000,
      );
      expect(mongoA.signalCode).toBe('SIGKILL');
      const search = openStore(config, bank, 'opensearch', silentLogger);
      for (const model of search.readModels) if (model instanceof OpenSearchReadModel) await model.refresh();
      await search.close();

      // Both sides through the bank definition's endpoints: legacy SQL, and the read models.
      const opened = openServerReadModels(config, bank);
      const readModels: AccountQueries = bankEndpointQueries(bank, opened.readModels as ReadModels);
      const legacy = new LegacyQueries(legacyDb);
      const differences: Array<{ accountId: number; what: string; diff: unknown }> = [];
      const accountIds = await legacyAccountIds(legacyDb);
      expect(accountIds.length).toBeGreaterThan(50);
      let items = 0;
      for (const accountId of accountIds) {
        const s = diffJson(
          await legacy.accountSummary(accountId),
          await readModels.accountSummary(accountId),
        );
        if (s.length > 0) differences.push({ accountId, what: 'summary', diff: s.slice(0, 3) });
        const legacyItems = await allHistory(legacy, accountId);
        items += legacyItems.length;
        const h = diffJson(legacyItems, await allHistory(readModels, accountId));
        if (h.length > 0) differences.push({ accountId, what: 'history', diff: h.slice(0, 3) });
      }
      expect(differences.slice(0, 5)).toEqual([]);
      expect(items).toBeGreaterThan(accountIds.length * 20);

      // Rebuild: refused while its projectors run; afterwards the summaries come back from the log alone.
      const refused = await rebuildStore(config, bank, 'mongo', silentLogger).catch((e: unknown) => e);
      expect(refused).toBeInstanceOf(StoreError);
      expect((refused as StoreError).code).toBe('PROJECTOR_RUNNING');
      const mongoProcesses = children.filter(
        (c) => c !== searchProjector && c.exitCode === null && c.signalCode === null,
      );
      expect(mongoProcesses).toHaveLength(2);
      for (const c of mongoProcesses) c.kill('SIGTERM');
      await Promise.all(mongoProcesses.map(exited));
      const summaryGroup = `${config.kafka.topicPrefix}.projector.account-summary`;
      await waitFor(
        'the summary group to have no members',
        async () => {
          const admin = kafka.admin();
          await admin.connect();
          const { groups } = await admin.describeGroups([summaryGroup]);
          await admin.disconnect();
          return (groups[0]?.members.length ?? 0) === 0;
        },
        60_000,
      );
      expect(await rebuildStore(config, bank, 'mongo', silentLogger)).toContain('account-summary');
      expect(await readModels.accountSummary(accountIds[0] ?? 0)).toBeNull();
      children.push(spawnProjector(configFile, 'mongo'));
      await waitFor('the rebuilt summaries to catch up', async () => (await lag()).total === 0, 180_000);
      const rebuilt: number[] = [];
      for (const accountId of accountIds) {
        const s = diffJson(
          await legacy.accountSummary(accountId),
          await readModels.accountSummary(accountId),
        );
        if (s.length > 0) rebuilt.push(accountId);
      }
      expect(rebuilt).toEqual([]);
      await opened.close();
      expect(stderr.filter((line) => /error/i.test(line))).toEqual([]);
    }, 360_000);
  },
);
