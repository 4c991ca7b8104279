import pg from 'pg';
import type { ReplicationClientConfig } from 'pg-logical-replication';
import { z } from 'zod';
import { errorMessage, SourceError } from '../../lib/errors.js';
import { connectionConfig, type PgoutputSourceConfig, publicationOf } from './config.js';
import { canonicalLsn } from './lsn.js';

/**
 * The server-side objects of the reader: its publication (which tables pgoutput sends) and its
 * logical replication slot (where the server keeps WAL for it and remembers the acknowledged
 * position). Creating the slot can export a snapshot: a read view that holds exactly the
 * transactions committed before the slot's first streamed change.
 */

const quote = (name: string) => `"${name.replace(/"/g, '""')}"`;
/** An identifier as a person would type it: bare when it needs no quotes. */
const ident = (name: string) => (/^[a-z_][a-z0-9_]*$/.test(name) ? name : quote(name));

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

const nameRow = z.object({ name: z.string() });

/**
 * The tables the source captures, unqualified, in `config.schema`: the configured ones, else
 * those of the publication when it exists, else every table of the schema that is not a
 * partition (a partitioned table is captured as a whole, through its root).
 */
export async function capturedTables(client: pg.Client, config: PgoutputSourceConfig): Promise<string[]> {
  if (config.tables.length > 0) return [...config.tables];
  const exists = await client.query('SELECT 1 FROM pg_publication WHERE pubname = $1', [
    publicationOf(config),
  ]);
  if (exists.rows.length > 0) return publishedTables(client, config);
  return schemaTables(client, config.schema);
}

async function schemaTables(client: pg.Client, schema: string): Promise<string[]> {
  const found = await client.query(
    `SELECT c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') AND NOT c.relispartition ORDER BY c.relname`,
    [schema],
  );
  return found.rows.map((r) => nameRow.parse(r).name);
}

/**
 * Every relation among `tables` of `schema` and their partitions (at any depth: ALTER TABLE …
 * REPLICA IDENTITY on a partitioned table does not reach its partitions) whose replica
 * identity is not FULL, qualified and quoted, parents first. Without FULL, an update's or a
 * delete's before image carries only the key columns.
 */
export async function tablesWithoutFullIdentity(
  client: pg.Client,
  schema: string,
  tables: readonly string[],
): Promise<string[]> {
  const result = await client.query(
    `SELECT DISTINCT quote_ident(n.nspname) || '.' || quote_ident(c.relname) AS name, t.ord, tree.level
       FROM unnest($2::text[]) WITH ORDINALITY AS t(name, ord)
       JOIN pg_namespace tn ON tn.nspname = $1
       JOIN pg_class r ON r.relnamespace = tn.oid AND r.relname = t.name AND r.relkind IN ('r', 'p')
       CROSS JOIN LATERAL (
         SELECT r.oid AS relid, 0 AS level
         UNION SELECT relid, level FROM pg_partition_tree(r.oid)
       ) tree
       JOIN pg_class c ON c.oid = tree.relid
       JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relreplident <> 'f'
      ORDER BY t.ord, tree.level, name`,
    [schema, [...tables]],
  );
  return result.rows.map((r) => nameRow.parse(r).name);
}

const publicationRow = z.object({ pubviaroot: z.boolean() });

/**
 * Creates the publication for the configured tables (all of the schema's when none are listed)
 * if missing. publish_via_partition_root (PostgreSQL 13+): a partitioned table's changes are
 * published as the root table's, not under the name of the partition that holds the row.
 */
export async function ensurePublication(client: pg.Client, config: PgoutputSourceConfig): Promise<void> {
  const name = publicationOf(config);
  const exists = await client.query('SELECT pubviaroot FROM pg_publication WHERE pubname = $1', [name]);
  if (exists.rows.length > 0) {
    if (!publicationRow.parse(exists.rows[0]).pubviaroot) await publishViaRoot(client, config, name);
    return;
  }
  const tables = config.tables.length > 0 ? [...config.tables] : await schemaTables(client, config.schema);
  if (tables.length === 0) {
    throw new SourceError(
      'NO_TABLES',
      `schema ${config.schema} of ${config.database} has no tables to capture`,
    );
  }
  const list = tables.map((t) => `${quote(config.schema)}.${quote(t)}`).join(', ');
  try {
    await client.query(
      `CREATE PUBLICATION ${quote(name)} FOR TABLE ${list} WITH (publish_via_partition_root = true)`,
    );
  } catch (cause) {
    throw new SourceError('PUBLICATION_FAILED', `cannot create publication ${name}: ${errorMessage(cause)}`, {
      cause,
      hint: publicationHint(config, name, list),
    });
  }
}

function publicationHint(config: PgoutputSourceConfig, name: string, list: string): string {
  const role = ident(config.user);
  return (
    `role ${config.user} must own every captured table and each of its partitions ` +
    `(ALTER TABLE … OWNER TO ${role};) and may create in the database ` +
    `(GRANT CREATE ON DATABASE ${ident(config.database)} TO ${role};); or have a superuser create the ` +
    `publication beforehand: CREATE PUBLICATION ${quote(name)} FOR TABLE ${list} WITH (publish_via_partition_root = true);`
  );
}

/**
 * An existing publication that publishes a captured partitioned table partition by partition
 * (created without publish_via_partition_root) is switched to publish it as its root.
 */
async function publishViaRoot(client: pg.Client, config: PgoutputSourceConfig, name: string): Promise<void> {
  const partitioned = await client.query(
    `SELECT 1 FROM pg_publication_tables pt
       JOIN pg_namespace n ON n.nspname = pt.schemaname
       JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = pt.tablename
      WHERE pt.pubname = $1 AND c.relispartition LIMIT 1`,
    [name],
  );
  if (partitioned.rows.length === 0) return;
  try {
    await client.query(`ALTER PUBLICATION ${quote(name)} SET (publish_via_partition_root = true)`);
  } catch (cause) {
    throw new SourceError(
      'PUBLICATION_FAILED',
      `publication ${name} publishes partitions under their own names and cannot be changed: ${errorMessage(cause)}`,
      {
        cause,
        hint: `as its owner or a superuser: ALTER PUBLICATION ${quote(name)} SET (publish_via_partition_root = true); (user ${config.user})`,
      },
    );
  }
}

/** Tables the publication sends, in the configured schema, in name order (a partitioned table's root, not its partitions). */
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
