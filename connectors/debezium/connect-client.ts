import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';
import type { Logger } from '../../lib/logger.js';
import { silentLogger } from '../../lib/logger.js';
import type { ConnectorConfig } from './config.js';
import {
  ConnectConfigInvalidError,
  ConnectorStateError,
  ConnectRequestError,
  ConnectResponseError,
  ConnectUnreachableError,
  type FieldError,
} from './errors.js';

/**
 * A small client for the Kafka Connect REST API
 * (https://kafka.apache.org/documentation/#connect_rest). Every response is checked with zod;
 * Connect's own error text is kept verbatim in the thrown ConnectRequestError.
 */

export const DEFAULT_CONNECT_URL = 'http://127.0.0.1:8083';

const pluginSchema = z.object({ class: z.string(), type: z.string(), version: z.string().optional() });
export type ConnectorPlugin = z.infer<typeof pluginSchema>;

const connectorInfoSchema = z.object({
  name: z.string(),
  config: z.record(z.string(), z.string()),
  tasks: z.array(z.object({ connector: z.string(), task: z.number() })),
  type: z.string().optional(),
});
export type ConnectorInfo = z.infer<typeof connectorInfoSchema>;

const offsetsSchema = z.object({
  offsets: z.array(
    z.object({ partition: z.record(z.string(), z.unknown()), offset: z.record(z.string(), z.unknown()) }),
  ),
});
export type SourceOffsetEntry = z.infer<typeof offsetsSchema>['offsets'][number];

const stateSchema = z.enum(['UNASSIGNED', 'RUNNING', 'PAUSED', 'FAILED', 'RESTARTING', 'STOPPED']);
export type ConnectorState = z.infer<typeof stateSchema>;

const statusSchema = z.object({
  name: z.string(),
  connector: z.object({ state: stateSchema, worker_id: z.string(), trace: z.string().optional() }),
  tasks: z.array(
    z.object({ id: z.number(), state: stateSchema, worker_id: z.string(), trace: z.string().optional() }),
  ),
  type: z.string().optional(),
});
export type ConnectorStatus = z.infer<typeof statusSchema>;

const validationSchema = z.object({
  name: z.string(),
  error_count: z.number(),
  configs: z.array(
    z.object({
      definition: z.object({ name: z.string() }).loose(),
      value: z.object({ name: z.string(), errors: z.array(z.string()) }).loose(),
    }),
  ),
});

export interface ValidationResult {
  connectorClass: string;
  errorCount: number;
  fieldErrors: FieldError[];
}

export interface DeployResult extends ConnectorInfo {
  /** true when the connector did not exist before (201), false when its config was updated (200). */
  created: boolean;
}

const connectErrorBody = z.object({ error_code: z.number().optional(), message: z.string() });

export interface ConnectClientOptions {
  url?: string;
  /** Per-request limit; validation connects to the database, so keep it generous. */
  timeoutMs?: number;
  /** Retries of 409 answers, which Connect gives while its workers rebalance. */
  conflictRetries?: number;
  logger?: Logger;
}

type Method = 'GET' | 'PUT' | 'POST' | 'PATCH' | 'DELETE';

export class ConnectClient {
  readonly url: string;
  private readonly timeoutMs: number;
  private readonly conflictRetries: number;
  private readonly log: Logger;

  constructor(options: ConnectClientOptions = {}) {
    this.url = (options.url ?? DEFAULT_CONNECT_URL).replace(/\/+$/, '');
    this.timeoutMs = options.timeoutMs ?? 60_000;
    this.conflictRetries = options.conflictRetries ?? 5;
    this.log = (options.logger ?? silentLogger).child({ component: 'connect-client' });
  }

  async listPlugins(): Promise<ConnectorPlugin[]> {
    const res = await this.request('GET', '/connector-plugins');
    return parseBody(z.array(pluginSchema), res.body, 'GET /connector-plugins');
  }

  async list(): Promise<string[]> {
    const res = await this.request('GET', '/connectors');
    return parseBody(z.array(z.string()), res.body, 'GET /connectors');
  }

  /** Creates the connector or replaces its config (PUT /connectors/{name}/config is idempotent). */
  async deploy(cfg: ConnectorConfig): Promise<DeployResult> {
    const res = await this.request('PUT', `/connectors/${enc(cfg.name)}/config`, cfg.config);
    const info = parseBody(connectorInfoSchema, res.body, 'PUT /connectors/{name}/config');
    return { ...info, created: res.status === 201 };
  }

  /** The connector's configuration as Connect stores it. */
  async config(name: string): Promise<Record<string, string>> {
    const res = await this.request('GET', `/connectors/${enc(name)}/config`);
    return parseBody(z.record(z.string(), z.string()), res.body, 'GET /connectors/{name}/config');
  }

  async status(name: string): Promise<ConnectorStatus> {
    const res = await this.request('GET', `/connectors/${enc(name)}/status`);
    return parseBody(statusSchema, res.body, 'GET /connectors/{name}/status');
  }

  async pause(name: string): Promise<void> {
    await this.request('PUT', `/connectors/${enc(name)}/pause`);
  }

  async resume(name: string): Promise<void> {
    await this.request('PUT', `/connectors/${enc(name)}/resume`);
  }

  /** Stops the connector and its tasks, keeping their offsets (Connect 3.5+); `resume` starts them again. */
  async stop(name: string): Promise<void> {
    await this.request('PUT', `/connectors/${enc(name)}/stop`);
  }

  /** The connector's source offsets as Connect keeps them (Connect 3.6+). */
  async offsets(name: string): Promise<SourceOffsetEntry[]> {
    const res = await this.request('GET', `/connectors/${enc(name)}/offsets`);
    return parseBody(offsetsSchema, res.body, 'GET /connectors/{name}/offsets').offsets;
  }

  /** Moves a STOPPED connector's source offsets, e.g. to re-read a binlog range (Connect 3.6+). */
  async alterOffsets(name: string, offsets: SourceOffsetEntry[]): Promise<void> {
    await this.request('PATCH', `/connectors/${enc(name)}/offsets`, { offsets });
  }

  async restart(name: string, opts: { includeTasks?: boolean; onlyFailed?: boolean } = {}): Promise<void> {
    const q = `includeTasks=${opts.includeTasks ?? true}&onlyFailed=${opts.onlyFailed ?? false}`;
    await this.request('POST', `/connectors/${enc(name)}/restart?${q}`);
  }

  async delete(name: string): Promise<void> {
    await this.request('DELETE', `/connectors/${enc(name)}`);
  }

  /** Asks the plugin to check a config without deploying it; field errors come back as data. */
  async validate(cfg: ConnectorConfig): Promise<ValidationResult> {
    const connectorClass = cfg.config['connector.class'];
    if (connectorClass === undefined) {
      return {
        connectorClass: '(none)',
        errorCount: 1,
        fieldErrors: [{ field: 'connector.class', messages: ['connector.class is required'] }],
      };
    }
    const path = `/connector-plugins/${enc(connectorClass)}/config/validate`;
    // Connect validates `name` like any other field; the REST body carries it in the config.
    const res = await this.request('PUT', path, { ...cfg.config, name: cfg.name });
    const body = parseBody(validationSchema, res.body, 'PUT /connector-plugins/{class}/config/validate');
    const fieldErrors = body.configs
      .filter((c) => c.value.errors.length > 0)
      .map((c) => ({ field: c.value.name, messages: c.value.errors }));
    return { connectorClass, errorCount: body.error_count, fieldErrors };
  }

  /** Validates, then throws ConnectConfigInvalidError carrying Connect's per-field messages. */
  async assertValid(cfg: ConnectorConfig): Promise<void> {
    const result = await this.validate(cfg);
    if (result.errorCount > 0) throw new ConnectConfigInvalidError(result.connectorClass, result.fieldErrors);
  }

  /**
   * Polls the status until the connector and all its tasks run. A FAILED connector or task
   * ends the wait at once with ConnectorStateError carrying Connect's stack trace.
   */
  async waitUntilRunning(
    name: string,
    opts: { timeoutMs?: number; pollMs?: number } = {},
  ): Promise<ConnectorStatus> {
    const deadline = Date.now() + (opts.timeoutMs ?? 60_000);
    let last: ConnectorStatus | undefined;
    while (Date.now() < deadline) {
      try {
        last = await this.status(name);
      } catch (err) {
        // Right after a deploy the status can be missing for a moment.
        if (!(err instanceof ConnectRequestError && err.status === 404)) throw err;
      }
      if (last !== undefined) {
        const failed = [last.connector, ...last.tasks].find((s) => s.state === 'FAILED');
        if (failed !== undefined) {
          const trace = failed.trace ?? '(Connect gave no trace)';
          throw new ConnectorStateError(name, `connector ${name} FAILED: ${trace.split('\n')[0]}`, trace);
        }
        if (
          last.connector.state === 'RUNNING' &&
          last.tasks.length > 0 &&
          last.tasks.every((t) => t.state === 'RUNNING')
        ) {
          return last;
        }
      }
      await sleep(opts.pollMs ?? 500);
    }
    throw new ConnectorStateError(
      name,
      `connector ${name} not RUNNING after ${opts.timeoutMs ?? 60_000} ms (last status: ${JSON.stringify(last ?? null)})`,
    );
  }

  private async request(
    method: Method,
    path: string,
    body?: unknown,
  ): Promise<{ status: number; body: unknown }> {
    const url = `${this.url}${path}`;
    for (let attempt = 0; ; attempt++) {
      let res: Response;
      try {
        res = await fetch(url, {
          method,
          headers: {
            accept: 'application/json',
            ...(body === undefined ? {} : { 'content-type': 'application/json' }),
          },
          body: body === undefined ? undefined : JSON.stringify(body),
          signal: AbortSignal.timeout(this.timeoutMs),
        });
      } catch (err) {
        throw new ConnectUnreachableError(this.url, { cause: err });
      }
      const text = await res.text();
      if (res.ok) {
        this.log.debug({ method, path, status: res.status }, 'connect request');
        return { status: res.status, body: text === '' ? undefined : parseJson(text, `${method} ${path}`) };
      }
      if (res.status === 409 && attempt < this.conflictRetries) {
        this.log.info({ method, path, attempt }, 'Kafka Connect is rebalancing; retrying');
        await sleep(500 * (attempt + 1));
        continue;
      }
      throw new ConnectRequestError({
        method,
        url,
        status: res.status,
        connectMessage: connectMessageOf(text),
      });
    }
  }
}

/** Connect's error bodies are `{error_code, message}`; anything else is passed on as text. */
function connectMessageOf(text: string): string {
  try {
    const parsed = connectErrorBody.safeParse(JSON.parse(text));
    if (parsed.success) return parsed.data.message;
  } catch {
    // not JSON: fall through to the raw text
  }
  return text.trim() === '' ? '(empty response body)' : text;
}

function parseJson(text: string, what: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new ConnectResponseError(
      `Kafka Connect ${what} answered with invalid JSON: ${text.slice(0, 200)}`,
      {
        cause: err,
      },
    );
  }
}

function parseBody<S extends z.ZodType>(schema: S, body: unknown, what: string): z.output<S> {
  const parsed = schema.safeParse(body);
  if (!parsed.success) {
    throw new ConnectResponseError(
      `unexpected Kafka Connect answer to ${what}: ${z.prettifyError(parsed.error)}`,
      {
        cause: parsed.error,
      },
    );
  }
  return parsed.data;
}

function enc(segment: string): string {
  return encodeURIComponent(segment);
}
