import { AdapterError } from '../../lib/errors.js';

const START_CONNECT_HINT =
  'start it with `bash stack/stack.sh up connect` (or `docker compose up -d connect`)';

/** Kafka Connect's REST endpoint did not answer (refused, DNS, timeout). */
export class ConnectUnreachableError extends AdapterError {
  readonly url: string;

  constructor(url: string, options: { cause?: unknown }) {
    super('CONNECT_UNREACHABLE', `Kafka Connect is not reachable at ${url}`, {
      cause: options.cause,
      hint: `check the Connect URL; if Kafka Connect is not running, ${START_CONNECT_HINT}`,
    });
    this.url = url;
  }
}

/** Connect answered with a 4xx/5xx; `connectMessage` is Connect's own `message`, verbatim. */
export class ConnectRequestError extends AdapterError {
  readonly status: number;
  readonly method: string;
  readonly url: string;
  readonly connectMessage: string;

  constructor(args: { method: string; url: string; status: number; connectMessage: string; hint?: string }) {
    super(
      'CONNECT_REQUEST_FAILED',
      `Kafka Connect ${args.method} ${args.url} failed (${args.status}): ${args.connectMessage}`,
      {
        hint: args.hint,
      },
    );
    this.status = args.status;
    this.method = args.method;
    this.url = args.url;
    this.connectMessage = args.connectMessage;
  }
}

export interface FieldError {
  field: string;
  messages: string[];
}

/** Connect's validate endpoint rejected a connector config; each field carries Connect's messages. */
export class ConnectConfigInvalidError extends AdapterError {
  readonly connectorClass: string;
  readonly fieldErrors: FieldError[];

  constructor(connectorClass: string, fieldErrors: FieldError[]) {
    const lines = fieldErrors.map((f) => `  ${f.field}: ${f.messages.join('; ')}`);
    super(
      'CONNECT_CONFIG_INVALID',
      `Kafka Connect rejected the ${connectorClass} config with ${fieldErrors.length} invalid field(s):\n${lines.join('\n')}`,
      { hint: 'fix the listed connector options and deploy again' },
    );
    this.connectorClass = connectorClass;
    this.fieldErrors = fieldErrors;
  }
}

/** A Kafka record that is not a Debezium change / transaction record we can convert. */
export class DebeziumRecordError extends AdapterError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('DEBEZIUM_RECORD_INVALID', message, {
      cause: options?.cause,
      hint: 'the connector must use the JSON converter and the settings of connectors/debezium/config.ts',
    });
  }
}

/**
 * A truncate event: the table was emptied without row deletes in the log. Its record goes to
 * the dead-letter topic with this message, where an operator of the distributed path looks for
 * what was not applied.
 */
export class DebeziumTruncateError extends AdapterError {
  constructor(table: string, position: string) {
    super(
      'SOURCE_TRUNCATE',
      `TRUNCATE of ${table} at ${position}: the log has no row deletes for it, so the read models keep the rows it removed`,
      {
        hint: '`cqrs-migrate reconcile` lists them as missing (with a reconcile.readModel listing); the distributed path has no resnapshot yet and its domain topics carry no deletes for them (`rebuild --store` brings them back): delete them in the store',
      },
    );
  }
}

/** Connect answered 2xx with a body this client does not understand (version skew, proxy page). */
export class ConnectResponseError extends AdapterError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('CONNECT_BAD_RESPONSE', message, {
      cause: options?.cause,
      hint: 'check that the URL points at a Kafka Connect worker (3.x REST API)',
    });
  }
}

/** A deployed connector or one of its tasks FAILED, or did not reach RUNNING in time. */
export class ConnectorStateError extends AdapterError {
  readonly connector: string;
  /** Connect's stack trace of the failed connector/task, verbatim, when there is one. */
  readonly trace: string | undefined;

  constructor(connector: string, message: string, trace?: string) {
    super(trace === undefined ? 'CONNECTOR_NOT_RUNNING' : 'CONNECTOR_FAILED', message, {
      hint: '`bash stack/stack.sh logs connect` shows the worker log',
    });
    this.connector = connector;
    this.trace = trace;
  }
}
