import { buildConnector, type ConnectorConfig, type ConnectorKind, type ConnectorOptions } from './config.js';
import type { ConnectClient, ConnectorState, ConnectorStatus } from './connect-client.js';

/**
 * What `cqrs-migrate connector render|deploy|status|pause|resume|delete` do; each returns the
 * data the CLI prints and leaves printing (and exit codes) to the CLI.
 */

/** The REST body `PUT /connectors/{name}/config` takes, wrapped with its name, as pretty JSON. */
export function renderConnector<K extends ConnectorKind>(kind: K, opts: ConnectorOptions<K>): string {
  return JSON.stringify(buildConnector(kind, opts), null, 2);
}

export interface ConnectorReport {
  name: string;
  state: ConnectorState;
  workerId: string;
  tasks: { id: number; state: ConnectorState; workerId: string; trace?: string }[];
  trace?: string;
}

function reportOf(status: ConnectorStatus): ConnectorReport {
  return {
    name: status.name,
    state: status.connector.state,
    workerId: status.connector.worker_id,
    tasks: status.tasks.map((t) => ({
      id: t.id,
      state: t.state,
      workerId: t.worker_id,
      ...(t.trace === undefined ? {} : { trace: t.trace }),
    })),
    ...(status.connector.trace === undefined ? {} : { trace: status.connector.trace }),
  };
}

export interface DeployReport {
  name: string;
  /** false when an existing connector's config was replaced. */
  created: boolean;
  /** Present when the deploy waited for the connector to run. */
  status?: ConnectorReport;
}

/**
 * Validates the config with the plugin (so a bad option fails with Connect's per-field
 * message before anything is created), creates or updates the connector, and by default
 * waits until it and its task run.
 */
export async function deployConnector(
  client: ConnectClient,
  cfg: ConnectorConfig,
  opts: { validate?: boolean; waitMs?: number } = {},
): Promise<DeployReport> {
  if (opts.validate ?? true) await client.assertValid(cfg);
  const info = await client.deploy(cfg);
  const waitMs = opts.waitMs ?? 60_000;
  if (waitMs <= 0) return { name: info.name, created: info.created };
  const status = await client.waitUntilRunning(info.name, { timeoutMs: waitMs });
  return { name: info.name, created: info.created, status: reportOf(status) };
}

export async function connectorStatus(client: ConnectClient, name: string): Promise<ConnectorReport> {
  return reportOf(await client.status(name));
}

export interface ActionReport {
  name: string;
  action: 'pause' | 'resume' | 'delete';
  /** Connect applies pause/resume asynchronously: the state right after the request. */
  state?: ConnectorState;
}

export async function pauseConnector(client: ConnectClient, name: string): Promise<ActionReport> {
  await client.pause(name);
  return { name, action: 'pause', state: (await client.status(name)).connector.state };
}

export async function resumeConnector(client: ConnectClient, name: string): Promise<ActionReport> {
  await client.resume(name);
  return { name, action: 'resume', state: (await client.status(name)).connector.state };
}

export async function deleteConnector(client: ConnectClient, name: string): Promise<ActionReport> {
  await client.delete(name);
  return { name, action: 'delete' };
}
