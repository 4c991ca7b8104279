/** What Kafka accepts as a topic name: letters, digits, ".", "_" and "-", at most 249 of them. */
export const TOPIC_NAME = /^[A-Za-z0-9._-]{1,249}$/;

/**
 * `name` with each character Kafka refuses in a topic name as "_": how Debezium's topic naming
 * writes a table's topic, and how `init` spells a stream type that names a domain topic.
 */
export function topicSafe(name: string): string {
  return name.replace(/[^A-Za-z0-9._-]/g, '_');
}
