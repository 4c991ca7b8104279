import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Partitioners } from 'kafkajs';
import { afterAll, describe, expect, it } from 'vitest';
import { countDeadLetterTopic, readDeadLetterTopic } from '../../connectors/kafka/dead-letter-reader.js';
import { deadLetterTopic } from '../../connectors/kafka/domain-topics.js';
import { connectReachable, dropKafkaState, testKafka, uniqueSuffix } from './support/debezium-bank.js';

/** `dead-letters` in distributed mode reads the dead-letter topic (the embedded store knows none of them). */

const up = await connectReachable();

describe.skipIf(!up)('dead letters of the distributed mode', () => {
  const prefix = `t_dl_${uniqueSuffix()}`;
  const kafka = testKafka(prefix);
  const dir = mkdtempSync(join(tmpdir(), 'cqrs-dl-'));

  afterAll(async () => {
    await dropKafkaState(kafka, [prefix], []);
    rmSync(dir, { recursive: true, force: true });
  });

  it('lists the newest records of <prefix>.dead-letters and counts them all, also through the CLI', async () => {
    const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
    await producer.connect();
    const topic = deadLetterTopic(prefix);
    for (const [i, value] of [
      {
        table: 'accounts',
        op: 'u',
        sourcePosition: 'b:1',
        sourceTxId: '0-1-1',
        reason: 'no rule for status X',
      },
      {
        reason: 'unparseable Debezium record',
        source: { topic: 't', partition: 0, offset: '7', value: '{' },
      },
      {
        table: 'accounts',
        op: 'c',
        sourcePosition: 'b:2',
        sourceTxId: '0-1-2',
        reason: 'balance is not a decimal',
      },
    ].entries()) {
      await producer.send({ topic, acks: -1, messages: [{ key: `k${i}`, value: JSON.stringify(value) }] });
    }
    await producer.disconnect();

    const { total, letters } = await readDeadLetterTopic(kafka, prefix, 2);
    expect(total).toBe(3);
    expect(letters.map((l) => l.reason)).toEqual(['unparseable Debezium record', 'balance is not a decimal']);
    expect(letters[1]).toMatchObject({ table: 'accounts', op: 'c', sourceTxId: '0-1-2' });
    // What the dashboard's dead-letter figure reads in distributed mode (DistributedMonitor).
    expect(await countDeadLetterTopic(kafka, prefix)).toBe(3);
    expect(await countDeadLetterTopic(kafka, `${prefix}_none`)).toBe(0);

    const configFile = join(dir, 'config.json');
    writeFileSync(configFile, JSON.stringify({ cdc: { mode: 'kafka' }, kafka: { topicPrefix: prefix } }));
    const { stdout } = await promisify(execFile)(
      process.execPath,
      ['--import', 'tsx', 'cli/main.ts', 'dead-letters', '--config', configFile],
      { env: { ...process.env, LOG_LEVEL: 'warn' }, timeout: 60_000 },
    );
    expect(stdout).toContain('no rule for status X');
    expect(stdout).toContain('3 dead letters in total');
  }, 90_000);
});
