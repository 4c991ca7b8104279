import type { IHeaders, KafkaMessage } from 'kafkajs';
import { Partitioners } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { transactionIdOf } from '../../connectors/debezium/record.js';
import { runShopWorkload } from '../../examples/shop/workload.js';
import { connectReachable, waitFor } from './support/debezium-bank.js';
import { pgReachable } from './support/postgres.js';
import { RENAME_HEAVY_MIX } from './support/shop-checks.js';
import { ShopDistributed } from './support/shop-distributed.js';

/**
 * Debezium's at-least-once replay, made deterministic: after a translator restart (nothing
 * remembered), the last transactions the connector had written come again as a restart of its
 * task writes them — an END marker alone, a transaction in full, a transaction in part (a row
 * and its END), rows without their END. The translator must publish every later transaction
 * (the issue saw it wedge for good on the first case), its group must reach the end of the
 * topics, and every read-model answer must equal legacy's.
 */

const ready = (await connectReachable()) && (await pgReachable());

interface Raw {
  topic: string;
  key: Buffer | null;
  value: Buffer | null;
  headers: IHeaders | undefined;
  txId: string | null;
  status: string | null;
}

function payloadOf(value: Buffer | null): Record<string, unknown> | null {
  if (value === null) return null;
  const json = JSON.parse(value.toString('utf8')) as { payload?: Record<string, unknown> } | null;
  return json?.payload ?? null;
}

describe.skipIf(!ready)('fault: Debezium re-sends transactions after a restart (distributed shop)', () => {
  const shop = new ShopDistributed('fdup');

  beforeAll(async () => {
    await shop.setup();
  });

  afterAll(async () => {
    await shop.close();
  });

  /** Every record of the connector's topics, in offset order per topic. */
  async function readAll(): Promise<Raw[]> {
    const admin = shop.kafka.admin();
    await admin.connect();
    const topics = (await admin.listTopics()).filter((t) => t.startsWith(`${shop.config.cdc.name}.`));
    const ends = new Map<string, number>();
    for (const t of topics) ends.set(t, Number((await admin.fetchTopicOffsets(t))[0]?.high ?? 0));
    await admin.disconnect();
    const out: Raw[] = [];
    const consumer = shop.kafka.consumer({ groupId: `t_fdup_reader_${shop.suffix}` });
    await consumer.connect();
    await consumer.subscribe({ topics, fromBeginning: true });
    const seen = new Map<string, number>();
    await consumer.run({
      eachMessage: async ({ topic, message }: { topic: string; message: KafkaMessage }) => {
        seen.set(topic, Number(message.offset) + 1);
        const p = payloadOf(message.value);
        const isTx = topic.endsWith('.transaction');
        const tx = p?.transaction as { id?: string } | null | undefined;
        const id = isTx ? (p?.id as string | undefined) : tx?.id;
        out.push({
          topic,
          key: message.key,
          value: message.value,
          headers: message.headers,
          txId: id === undefined ? null : transactionIdOf(id),
          status: isTx ? ((p?.status as string | undefined) ?? null) : null,
        });
      },
    });
    await waitFor(
      'the connector topics to be read',
      () => [...ends].every(([t, end]) => (seen.get(t) ?? 0) >= end),
      60_000,
    );
    await consumer.disconnect();
    return out;
  }

  it('drops what was delivered before, never waits for it, and ends with zero drift', async () => {
    const first = await shop.startTranslator();
    await shop.startProjectors();
    await waitFor('the snapshot to reach the domain topics', () => first.source.deliveredCount() > 0, 60_000);
    const burst = { durationMs: 0, mix: RENAME_HEAVY_MIX, ratePerSec: 60 };
    expect((await runShopWorkload(shop.pool, { ...burst, seed: 31, maxOps: 120 })).errors).toBe(0);
    await shop.waitCaughtUp(await shop.marker(), 120_000);
    // The translator restarts: it remembers nothing it delivered.
    await shop.stopTranslator();

    const records = await readAll();
    const ends = records.filter((r) => r.status === 'END').slice(-12);
    const rowsOf = (txId: string | null) =>
      records.filter((r) => !r.topic.endsWith('.transaction') && r.txId === txId && r.value !== null);
    const [endOnly, full] = ends;
    const partial = ends.slice(2).find((e) => rowsOf(e.txId).length >= 2);
    const rowsOnly = ends.slice(2).find((e) => e !== partial && rowsOf(e.txId).length >= 1);
    if (!endOnly || !full || !partial || !rowsOnly) throw new Error('not enough transactions to replay');
    const replay: Raw[] = [
      endOnly,
      ...rowsOf(full.txId),
      full,
      ...rowsOf(partial.txId).slice(0, 1),
      partial,
      ...rowsOf(rowsOnly.txId),
    ];
    const producer = shop.kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
    await producer.connect();
    for (const r of replay) {
      await producer.send({
        topic: r.topic,
        acks: -1,
        messages: [
          { key: r.key, value: r.value, partition: 0, ...(r.headers ? { headers: r.headers } : {}) },
        ],
      });
    }
    await producer.disconnect();

    await shop.startTranslator();
    expect((await runShopWorkload(shop.pool, { ...burst, seed: 32, maxOps: 80 })).errors).toBe(0);
    await shop.waitCaughtUp(await shop.marker(), 120_000);
    const dropped = {
      ends:
        (await shop.metric('cqrs_source_duplicates_dropped_total', { reason: 'stale-end' })) +
        (await shop.metric('cqrs_source_duplicates_dropped_total', { reason: 'exhausted-end' })),
      orphans:
        (await shop.metric('cqrs_source_duplicates_dropped_total', { reason: 'orphan-rows' })) +
        (await shop.metric('cqrs_source_duplicates_dropped_total', { reason: 'orphan-rows-exhausted' })),
    };
    console.info(`replayed ${replay.length} records; dropped ${JSON.stringify(dropped)}`);
    expect(dropped.ends).toBeGreaterThanOrEqual(2);
    expect(dropped.orphans).toBeGreaterThanOrEqual(1);
    const { checks, differences } = await shop.compare();
    expect(differences).toEqual([]);
    expect(checks).toBeGreaterThan(300);
  }, 300_000);
});
