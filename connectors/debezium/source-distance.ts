import mysql from 'mysql2/promise';
import pg from 'pg';
import { detectFlavor } from '../binlog/preflight.js';
import { binlogEnd, positionAtLeast } from '../binlog/server-position.js';
import { parseLegacyUrl } from '../legacy/url.js';
import { parseLsn } from '../pgoutput/lsn.js';
import type { LegacyEnd } from '../source-factory.js';

/**
 * How far the Debezium connector is from the legacy database's change log: the source offset
 * Kafka Connect committed for it (the position after the last record it published, flushed
 * every `offset.flush.interval.ms`) against the binlog end / WAL insert position now. Consumer
 * groups at the end of their topics say nothing about changes the connector has not published
 * yet (a Connect restart, a slow task): this is the part of freshness before Kafka.
 */

/** The legacy change log's end, read on a connection of its own. */
export interface LegacyEndProbe {
  read(): Promise<LegacyEnd>;
  close(): Promise<void>;
}

export function legacyEndProbe(url: string): LegacyEndProbe {
  const legacy = parseLegacyUrl(url);
  const connection = { host: legacy.host, port: legacy.port, user: legacy.user, password: legacy.password };
  if (legacy.dialect === 'mysql') {
    const pool = mysql.createPool({ ...connection, connectionLimit: 1 });
    let flavor: 'mariadb' | 'mysql' | undefined;
    return {
      async read() {
        if (flavor === undefined) {
          const [rows] = await pool.query('SELECT VERSION() AS version');
          flavor = detectFlavor(String((rows as Array<{ version?: unknown }>)[0]?.version ?? ''));
        }
        const end = await binlogEnd(pool, flavor);
        return { dialect: 'mysql', file: end.file, pos: end.pos };
      },
      close: () => pool.end(),
    };
  }
  const pool = new pg.Pool({ ...connection, database: legacy.database ?? 'postgres', max: 1 });
  // An idle connection that drops emits 'error' on the pool; unheard, it ends the process.
  pool.on('error', () => undefined);
  return {
    async read() {
      // Debezium's offsets name commit LSNs (record ends), so the flushed position compares with them.
      const result = await pool.query<{ lsn: string }>('SELECT pg_current_wal_lsn()::text AS lsn');
      const lsn = result.rows[0]?.lsn;
      if (lsn === undefined) throw new Error('pg_current_wal_lsn() returned no row');
      return { dialect: 'postgres', lsn };
    },
    close: () => pool.end(),
  };
}

/**
 * Has the connector published everything before `end`? Its committed source offset: MySQL and
 * MariaDB connectors store the binlog `file` and `pos` they resume from; the PostgreSQL
 * connector the `lsn` it processed last (a number). No offset yet: not reached.
 */
export function connectorReached(offset: Readonly<Record<string, unknown>> | null, end: LegacyEnd): boolean {
  if (offset === null) return false;
  if (end.dialect === 'mysql') {
    const { file, pos } = offset;
    if (typeof file !== 'string' || typeof pos !== 'number') return false;
    return positionAtLeast({ file, pos }, end);
  }
  const lsn = offset.lsn;
  if (typeof lsn !== 'number' && typeof lsn !== 'string') return false;
  return BigInt(lsn) >= parseLsn(end.lsn);
}

/**
 * The topic Debezium writes heartbeats to (`heartbeat.topics.prefix`, default
 * `__debezium-heartbeat`, then the connector's `topic.prefix`). A heartbeat is emitted when the
 * connector's streaming loop found nothing more to read: everything the legacy database had
 * committed by then was published. The PostgreSQL connector's offset never passes the end of
 * its last commit record nor moves on changes it does not capture, so without heartbeats an
 * idle connector could not be told from a stuck one.
 */
export function heartbeatTopic(config: Readonly<Record<string, string>>): string {
  return `${config['heartbeat.topics.prefix'] ?? '__debezium-heartbeat'}.${config['topic.prefix'] ?? ''}`;
}

/**
 * Commit time (epoch ms) of the last event the connector published, from its offset
 * (`ts_sec` on MySQL/MariaDB, `ts_usec` on PostgreSQL); null when the offset has none.
 */
export function connectorOffsetTimeMs(offset: Readonly<Record<string, unknown>> | null): number | null {
  if (offset === null) return null;
  if (typeof offset.ts_sec === 'number') return offset.ts_sec * 1000;
  if (typeof offset.ts_usec === 'number') return Math.floor(offset.ts_usec / 1000);
  return null;
}
