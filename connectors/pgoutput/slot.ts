import pg from 'pg';
import type { ReplicationClientConfig } from 'pg-logical-replication';
import { z } from 'zod';
import { SourceError } from '../../lib/errors.js';
import { connectionConfig, type PgoutputSourceConfig, publicationOf } from './config.js';
import { canonicalLsn } from './lsn.js';

/**
 * The server-side objects of the reader: its publication (which tables pgoutput sends) and its
 * logical replication slot (where the server keeps WAL for it and remembers the acknowledged
 * position). Creating the slot can export a snapshot: a read view that holds exactly the
 * transactions committed before the slot's first streamed change.
 */

const quote = (name: string) => `"${name.replace(/"/g, '""')}"`;

const slotRow = z.object({
  plugin: z.string().nullable(),
  database: z.string().nullable(),
  confirmed_flush_lsn: z.string().nullable(),
  active: z.boolean(),
});
export type SlotState = { confirmedFlushLsn: string | null; active: boolean };

export async function readSlot(client: pg.Client, config: PgoutputSourceConfig): Promise<SlotState | null> {
  const result = await client.query(
    'SELECT plugin, database, confirmed_flush_lsn::text, active FROM pg_replication_slots WHERE slot_name = $1',
    [config.slotName],
  );
  if (result.rows.length === 0) return null;
  const slot = slotRow.parse(result.rows[0]);
  if (slot.plugin !== 'pgoutput' || slot.database !== config.database) {
    throw new SourceError(
      'SLOT_MISMATCH',
      `replication slot ${config.slotName} belongs to database ${slot.database ?? '?'} with plugin ${slot.plugin ?? '?'}`,
      { hint: 'give this source its own slotName' },
    );
  }
  return {
    confirmedFlushLsn: slot.confirmed_flush_lsn === null ? null : canonicalLsn(slot.confirmed_flush_lsn),
    active: slot.active,
  };
}

export async function dropSlot(client: pg.Client, slotName: string): Promise<void> {
  await client.query(
    'SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1',
    [slotName],
  );
}

/** Creates the publication for the configured tables (all of the schema's when none are listed) if missing. */
export async function ensurePublication(client: pg.Client, config: PgoutputSourceConfig): Promise<void> {
  const name = publicationOf(config);
  const exists = await client.query('SELECT 1 FROM pg_publication WHERE pubname = $1', [name]);
  if (exists.rows.length > 0) return;
  let tables = config.tables;
  if (tables.length === 0) {
    const found = await client.query(
      "SELECT table_name FROM information_schema.tables WHERE table_schema = $1 AND table_type = 'BASE TABLE' ORDER BY table_name",
      [config.schema],
    );
    tables = found.rows.map((r) => z.object({ table_name: z.string() }).parse(r).table_name);
  }
  if (tables.length === 0) {
    throw new SourceError(
      'NO_TABLES',
      `schema ${config.schema} of ${config.database} has no tables to capture`,
    );
  }
  const list = tables.map((t) => `${quote(config.schema)}.${quote(t)}`).join(', ');
  try {
    await client.query(`CREATE PUBLICATION ${quote(name)} FOR TABLE ${list}`);
  } catch (cause) {
    throw new SourceError('PUBLICATION_FAILED', `cannot create publication ${name}`, {
      cause,
      hint: 'the user must own the captured tables (or create the publication beforehand)',
    });
  }
}

/** Tables the publication sends, in the configured schema, in name order. */
export async function publishedTables(client: pg.Client, config: PgoutputSourceConfig): Promise<string[]> {
  const result = await client.query(
    'SELECT tablename FROM pg_publication_tables WHERE pubname = $1 AND schemaname = $2 ORDER BY tablename',
    [publicationOf(config), config.schema],
  );
  return result.rows.map((r) => z.object({ tablename: z.string() }).parse(r).tablename);
}

export interface CreatedSlot {
  /** Where streaming starts: the first transaction not in the exported snapshot. */
  consistentPoint: string;
  /** Name to import with SET TRANSACTION SNAPSHOT, valid until `release`. */
  snapshotName: string | null;
  release: () => Promise<void>;
}

const createdRow = z.object({ consistent_point: z.string(), snapshot_name: z.string().nullable() });

/**
 * Creates the slot on a replication connection. With `exportSnapshot`, that connection must
 * stay open and idle until the snapshot has been imported elsewhere, hence `release`.
 */
export async function createSlot(
  config: PgoutputSourceConfig,
  exportSnapshot: boolean,
): Promise<CreatedSlot> {
  const replication: ReplicationClientConfig = { ...connectionConfig(config), replication: 'database' };
  const client = new pg.Client(replication);
  // This connection only runs CREATE_REPLICATION_SLOT (whose failure reaches the caller) and
  // then idles until release: a drop meanwhile only ends the export, which the import reports.
  client.on('error', () => undefined);
  try {
    await client.connect();
    const result = await client.query(
      `CREATE_REPLICATION_SLOT ${quote(config.slotName)} LOGICAL pgoutput ${exportSnapshot ? 'EXPORT_SNAPSHOT' : 'NOEXPORT_SNAPSHOT'}`,
    );
    const row = createdRow.parse(result.rows[0]);
    return {
      consistentPoint: canonicalLsn(row.consistent_point),
      snapshotName: row.snapshot_name,
      release: () => client.end(),
    };
  } catch (cause) {
    await client.end().catch(() => undefined);
    throw new SourceError('SLOT_CREATE_FAILED', `cannot create replication slot ${config.slotName}`, {
      cause,
      hint: 'the user needs the REPLICATION attribute, the server wal_level=logical and a free max_replication_slots entry',
    });
  }
}
