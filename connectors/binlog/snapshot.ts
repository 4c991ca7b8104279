import type mysql from 'mysql2/promise';
import type { Logger } from '../../lib/logger.js';
import { ProgressMeter } from '../../lib/progress.js';
import type { ChangeEvent, Row, SourceInfo } from '../change-event.js';
import type { BinlogSourceConfig } from './config.js';
import { normalizeRow } from './normalize.js';
import type { TableInfo } from './schema-info.js';

export interface BinlogPosition {
  file: string;
  pos: number;
}

export interface SnapshotChunk {
  id: string;
  events: ChangeEvent[];
  /** True for the chunk carrying the snapshot's last row (or the only, empty, chunk). */
  last: boolean;
}

function quote(name: string): string {
  return `\`${name.replace(/`/g, '``')}\``;
}

/**
 * Opens a consistent read view and returns the binlog position it corresponds to. MariaDB
 * reports that position for the snapshot itself (binlog_snapshot_file/position), so no global
 * lock is taken; MySQL needs a brief FLUSH TABLES WITH READ LOCK around it.
 */
export async function openConsistentView(
  conn: mysql.Connection,
  flavor: 'mariadb' | 'mysql',
): Promise<BinlogPosition> {
  await conn.query('SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ');
  if (flavor === 'mariadb') {
    await conn.query('START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY');
    const [rows] = await conn.query("SHOW STATUS LIKE 'binlog_snapshot_%'");
    const vars = new Map(
      (rows as Array<{ Variable_name: string; Value: string }>).map((r) => [r.Variable_name, r.Value]),
    );
    return {
      file: String(vars.get('Binlog_snapshot_file')),
      pos: Number(vars.get('Binlog_snapshot_position')),
    };
  }
  await conn.query('FLUSH TABLES WITH READ LOCK');
  try {
    await conn.query('START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY');
    const [rows] = await conn.query('SHOW MASTER STATUS');
    const r = (rows as Array<{ File: string; Position: number }>)[0];
    if (!r) throw new Error('SHOW MASTER STATUS returned nothing: is the binlog on?');
    return { file: r.File, pos: Number(r.Position) };
  } finally {
    await conn.query('UNLOCK TABLES');
  }
}

/**
 * Reads every captured table in primary-key order, in keyset chunks inside one consistent
 * view, yielding each chunk as one unit; the chunk holding the very last row is marked so the
 * caller can record "snapshot complete" with it.
 */
export async function* readSnapshot(
  config: BinlogSourceConfig,
  conn: mysql.Connection,
  tables: Map<string, TableInfo>,
  source: Omit<SourceInfo, 'table' | 'snapshot' | 'ts_ms'>,
  logger: Logger,
): AsyncGenerator<SnapshotChunk> {
  const total = [...tables.values()].reduce((n, t) => n + t.estimatedRows, 0);
  const meter = new ProgressMeter(total);
  let pending: SnapshotChunk | null = null;
  let first = true;
  let lastLog = 0;
  const tsMs = Date.now();
  for (const table of tables.values()) {
    const pk = table.primaryKey.length > 0 ? table.primaryKey : table.columns.map((c) => c.name);
    const orderBy = pk.map(quote).join(', ');
    let after: unknown[] | null = null;
    for (let chunkNo = 0; ; chunkNo++) {
      const where = after ? `WHERE (${orderBy}) > (${pk.map(() => '?').join(', ')})` : '';
      const [rows] = await conn.query({
        sql: `SELECT * FROM ${quote(config.database)}.${quote(table.name)} ${where} ORDER BY ${orderBy} LIMIT ${config.snapshotChunkRows}`,
        values: after ?? [],
      });
      const list = rows as Array<Record<string, unknown>>;
      if (list.length === 0) break;
      const events: ChangeEvent[] = list.map((raw) => {
        const after: Row = normalizeRow(raw, table.columns);
        const event: ChangeEvent = {
          before: null,
          after,
          op: 'r',
          ts_ms: Date.now(),
          source: { ...source, table: table.name, ts_ms: tsMs, snapshot: first ? 'first' : 'true' },
          transaction: null,
        };
        first = false;
        return event;
      });
      if (pending) yield pending;
      pending = { id: `snapshot:${table.name}:${chunkNo}`, events, last: false };
      const lastRow = list[list.length - 1] as Record<string, unknown>;
      after = pk.map((k) => lastRow[k]);
      const p = meter.add(list.length);
      if (Date.now() - lastLog > 2000) {
        lastLog = Date.now();
        logger.info(
          { table: table.name, rows: p.done, total, rowsPerSec: p.rowsPerSec, etaSec: p.etaSec },
          'snapshot progress',
        );
      }
      if (list.length < config.snapshotChunkRows) break;
    }
  }
  const done = pending ?? { id: 'snapshot:_:0', events: [], last: true };
  done.last = true;
  const lastEvent = done.events[done.events.length - 1];
  if (lastEvent) lastEvent.source.snapshot = 'last';
  const p = meter.snapshot();
  logger.info({ rows: p.done, rowsPerSec: p.rowsPerSec, elapsedSec: p.elapsedSec }, 'snapshot complete');
  yield done;
}
