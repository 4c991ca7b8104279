import type { Kafka } from 'kafkajs';
import { pino } from 'pino';
import { type RunningTranslator, translatorGroupId } from '../../../cli/distributed.js';
import { ConnectClient } from '../../../connectors/debezium/connect-client.js';
import type { Config } from '../../../lib/config.js';
import type { Logger } from '../../../lib/logger.js';
import { CONNECT_URL } from './debezium-bank.js';

/** A logger that keeps warnings and errors, to show them when a test times out. */
export function capturingLogger(): { logger: Logger; lines: string[] } {
  const lines: string[] = [];
  const logger = pino({ level: 'warn' }, { write: (line: string) => lines.push(line.trimEnd()) });
  return { logger, lines };
}

/**
 * Why the translator may not have published a transaction yet: what it holds and waits for,
 * its group's committed offsets against the topics' ends, the connector's state and the last
 * warnings it logged. Best effort: a diagnosis must not hide the failure it explains.
 */
export async function translatorDiagnosis(
  running: RunningTranslator | undefined,
  config: Config,
  kafka: Kafka,
  connectorName: string | undefined,
  lines: readonly string[],
): Promise<string> {
  const parts: string[] = [`translator ${JSON.stringify(running?.source.describe() ?? null)}`];
  const admin = kafka.admin();
  try {
    await admin.connect();
    const topics = (await admin.listTopics()).filter((t) => t.startsWith(`${config.cdc.name}.`));
    const committed = await admin.fetchOffsets({ groupId: translatorGroupId(config), topics });
    const offsets: Record<string, string> = {};
    for (const topic of topics) {
      const end = (await admin.fetchTopicOffsets(topic)).map((p) => p.high).join(',');
      const done = committed
        .find((c) => c.topic === topic)
        ?.partitions.map((p) => p.offset)
        .join(',');
      offsets[topic] = `${done}/${end}`;
    }
    const [group] = (await admin.describeGroups([translatorGroupId(config)])).groups;
    parts.push(
      `committed/end ${JSON.stringify(offsets)}`,
      `group ${group?.state} members ${group?.members.length}`,
    );
  } catch (err) {
    parts.push(`kafka: ${err instanceof Error ? err.message : String(err)}`);
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
  if (connectorName !== undefined) {
    const status = await new ConnectClient({ url: CONNECT_URL })
      .status(connectorName)
      .catch((e: unknown) => e);
    parts.push(`connector ${JSON.stringify(status)}`);
  }
  parts.push(`translator log:\n${lines.slice(-20).join('\n')}`);
  return parts.join('; ');
}
