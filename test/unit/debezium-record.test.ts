import { describe, expect, it } from 'vitest';
import { changeEventSchema } from '../../connectors/change-event.js';
import { DebeziumRecordError } from '../../connectors/debezium/errors.js';
import {
  formatLsn,
  parseChangeRecord,
  parseMarkedChangeRecord,
  parseTransactionRecord,
  toChangeEvent,
  toTransactionMarker,
  transactionIdOf,
} from '../../connectors/debezium/record.js';

/*
 * Fixtures written by hand after the record layout in Debezium 3.1's MariaDB/MySQL connector
 * docs ("Data change events": value = {schema, payload}, JSON converter with schemas), with
 * the column parameters column.propagate.source.type adds and the encodings of
 * decimal.handling.mode=string / time.precision.mode=adaptive_time_microseconds, checked
 * against records of the real MariaDB connector 3.1.0 (JSON type names "float"/"double";
 * no length parameter on TIME/DATETIME/TIMESTAMP without fractional seconds).
 * 1714555800123456 µs = 2024-05-01T09:30:00.123456Z; 19844 days = 2024-05-01.
 */

const ROW_FIELDS = `[
  {"type":"int64","optional":false,"field":"id","parameters":{"__debezium.source.column.type":"BIGINT UNSIGNED","__debezium.source.column.length":"20","__debezium.source.column.name":"id"}},
  {"type":"string","optional":false,"field":"amount","parameters":{"__debezium.source.column.type":"DECIMAL","__debezium.source.column.length":"19","__debezium.source.column.scale":"4","__debezium.source.column.name":"amount"}},
  {"type":"string","optional":true,"field":"fee","parameters":{"__debezium.source.column.type":"DECIMAL","__debezium.source.column.length":"19","__debezium.source.column.scale":"4","__debezium.source.column.name":"fee"}},
  {"type":"string","optional":false,"name":"io.debezium.data.Enum","version":1,"field":"status","parameters":{"allowed":"pending,completed,failed","__debezium.source.column.type":"ENUM","__debezium.source.column.length":"1","__debezium.source.column.name":"status"}},
  {"type":"int64","optional":false,"name":"io.debezium.time.MicroTimestamp","version":1,"field":"created_at","parameters":{"__debezium.source.column.type":"DATETIME","__debezium.source.column.length":"6","__debezium.source.column.name":"created_at"}},
  {"type":"int64","optional":true,"name":"io.debezium.time.MicroTimestamp","version":1,"field":"completed_at","parameters":{"__debezium.source.column.type":"DATETIME","__debezium.source.column.length":"6","__debezium.source.column.name":"completed_at"}},
  {"type":"int32","optional":false,"name":"io.debezium.time.Date","version":1,"field":"value_date","parameters":{"__debezium.source.column.type":"DATE","__debezium.source.column.name":"value_date"}},
  {"type":"int64","optional":false,"name":"io.debezium.time.Timestamp","version":1,"field":"booked_at","parameters":{"__debezium.source.column.type":"DATETIME","__debezium.source.column.name":"booked_at"}},
  {"type":"int64","optional":false,"name":"io.debezium.time.Timestamp","version":1,"field":"booked_ms","parameters":{"__debezium.source.column.type":"DATETIME","__debezium.source.column.length":"3","__debezium.source.column.name":"booked_ms"}},
  {"type":"int64","optional":false,"name":"io.debezium.time.MicroTime","version":1,"field":"cut_off","parameters":{"__debezium.source.column.type":"TIME","__debezium.source.column.length":"6","__debezium.source.column.name":"cut_off"}},
  {"type":"string","optional":false,"name":"io.debezium.time.ZonedTimestamp","version":1,"field":"stamped_at","parameters":{"__debezium.source.column.type":"TIMESTAMP","__debezium.source.column.length":"6","__debezium.source.column.name":"stamped_at"}},
  {"type":"int64","optional":false,"field":"big","parameters":{"__debezium.source.column.type":"BIGINT","__debezium.source.column.length":"20","__debezium.source.column.name":"big"}},
  {"type":"int64","optional":false,"field":"ubig","parameters":{"__debezium.source.column.type":"BIGINT UNSIGNED","__debezium.source.column.length":"20","__debezium.source.column.name":"ubig"}},
  {"type":"int16","optional":false,"field":"tiny","parameters":{"__debezium.source.column.type":"TINYINT","__debezium.source.column.length":"1","__debezium.source.column.name":"tiny"}},
  {"type":"string","optional":true,"field":"note","parameters":{"__debezium.source.column.type":"VARCHAR","__debezium.source.column.length":"64","__debezium.source.column.name":"note"}},
  {"type":"string","optional":true,"field":"raw","parameters":{"__debezium.source.column.type":"VARBINARY","__debezium.source.column.length":"8","__debezium.source.column.name":"raw"}},
  {"type":"int64","optional":true,"name":"io.debezium.time.MicroTime","version":1,"field":"wait","parameters":{"__debezium.source.column.type":"TIME","__debezium.source.column.name":"wait"}},
  {"type":"string","optional":true,"name":"io.debezium.time.ZonedTimestamp","version":1,"field":"seen_at","parameters":{"__debezium.source.column.type":"TIMESTAMP","__debezium.source.column.name":"seen_at"}},
  {"type":"double","optional":true,"field":"ratio","parameters":{"__debezium.source.column.type":"DOUBLE","__debezium.source.column.name":"ratio"}},
  {"type":"float","optional":true,"field":"score","parameters":{"__debezium.source.column.type":"FLOAT","__debezium.source.column.name":"score"}},
  {"type":"boolean","optional":true,"field":"flag","parameters":{"__debezium.source.column.type":"BIT","__debezium.source.column.length":"1","__debezium.source.column.name":"flag"}}
]`;

const SOURCE_FIELDS = `[
  {"type":"string","optional":false,"field":"version"},
  {"type":"string","optional":false,"field":"connector"},
  {"type":"string","optional":false,"field":"name"},
  {"type":"int64","optional":false,"field":"ts_ms"},
  {"type":"string","optional":true,"name":"io.debezium.data.Enum","version":1,"parameters":{"allowed":"true,first,first_in_data_collection,last_in_data_collection,last,false,incremental"},"default":"false","field":"snapshot"},
  {"type":"string","optional":false,"field":"db"},
  {"type":"string","optional":true,"field":"sequence"},
  {"type":"int64","optional":true,"field":"ts_us"},
  {"type":"int64","optional":true,"field":"ts_ns"},
  {"type":"string","optional":true,"field":"table"},
  {"type":"int64","optional":false,"field":"server_id"},
  {"type":"string","optional":true,"field":"gtid"},
  {"type":"string","optional":false,"field":"file"},
  {"type":"int64","optional":false,"field":"pos"},
  {"type":"int32","optional":false,"field":"row"},
  {"type":"int64","optional":true,"field":"thread"},
  {"type":"string","optional":true,"field":"query"}
]`;

const SCHEMA = `{
  "type":"struct","optional":false,"name":"bank.t_bank.transfers.Envelope","version":2,
  "fields":[
    {"type":"struct","optional":true,"name":"bank.t_bank.transfers.Value","field":"before","fields":${ROW_FIELDS}},
    {"type":"struct","optional":true,"name":"bank.t_bank.transfers.Value","field":"after","fields":${ROW_FIELDS}},
    {"type":"struct","optional":false,"name":"io.debezium.connector.mariadb.Source","version":1,"field":"source","fields":${SOURCE_FIELDS}},
    {"type":"struct","optional":true,"name":"event.block","version":1,"field":"transaction","fields":[
      {"type":"string","optional":false,"field":"id"},
      {"type":"int64","optional":false,"field":"total_order"},
      {"type":"int64","optional":false,"field":"data_collection_order"}]},
    {"type":"string","optional":false,"field":"op"},
    {"type":"int64","optional":true,"field":"ts_ms"},
    {"type":"int64","optional":true,"field":"ts_us"},
    {"type":"int64","optional":true,"field":"ts_ns"}
  ]
}`;

const AFTER_ROW = `{
  "id":9007199254740993,
  "amount":"12.3400",
  "fee":"0.5",
  "status":"pending",
  "created_at":1714555800123456,
  "completed_at":null,
  "value_date":19844,
  "booked_at":1714555800000,
  "booked_ms":1714555800120,
  "cut_off":34200123456,
  "stamped_at":"2024-05-01T09:30:00.123456Z",
  "big":-9007199254740993,
  "ubig":-1,
  "tiny":1,
  "note":null,
  "raw":"AAEC/w==",
  "wait":-43201000000,
  "seen_at":"2024-05-01T09:30:00Z",
  "ratio":3.5,
  "score":1.25,
  "flag":true
}`;

function record(payload: {
  op: string;
  before: string;
  after: string;
  snapshot: string;
  transaction: string;
}): string {
  return `{"schema":${SCHEMA},"payload":{
    "before":${payload.before},
    "after":${payload.after},
    "source":{"version":"3.1.0.Final","connector":"mariadb","name":"bank","ts_ms":1714555800000,"snapshot":${payload.snapshot},
      "db":"t_bank","sequence":null,"ts_us":1714555800000000,"ts_ns":1714555800000000000,"table":"transfers","server_id":1,
      "gtid":"0-1-42","file":"binlog.000003","pos":1234,"row":0,"thread":7,"query":null},
    "transaction":${payload.transaction},
    "op":"${payload.op}","ts_ms":1714555801234,"ts_us":1714555801234567,"ts_ns":1714555801234567890}}`;
}

const INSERT = record({
  op: 'c',
  before: 'null',
  after: AFTER_ROW,
  snapshot: 'null',
  transaction: '{"id":"0-1-42","total_order":1,"data_collection_order":1}',
});

const EXPECTED_AFTER = {
  id: '9007199254740993',
  amount: '12.3400',
  fee: '0.5000',
  status: 'pending',
  created_at: '2024-05-01 09:30:00.123456',
  completed_at: null,
  value_date: '2024-05-01',
  booked_at: '2024-05-01 09:30:00',
  booked_ms: '2024-05-01 09:30:00.120',
  cut_off: '09:30:00.123456',
  stamped_at: '2024-05-01 09:30:00.123456',
  big: '-9007199254740993',
  ubig: '18446744073709551615',
  tiny: 1,
  note: null,
  raw: 'AAEC/w==',
  wait: '-12:00:01',
  seen_at: '2024-05-01 09:30:00',
  ratio: 3.5,
  score: 1.25,
  flag: true,
};

describe('parseChangeRecord (JSON converter with schemas)', () => {
  it('converts an insert to the embedded reader’s values, exactly', () => {
    const event = parseChangeRecord(Buffer.from(INSERT, 'utf8'));
    expect(event).not.toBeNull();
    expect(event?.after).toEqual(EXPECTED_AFTER);
    expect(event?.before).toBeNull();
    expect(event?.op).toBe('c');
    expect(event?.ts_ms).toBe(1714555801234);
    expect(event?.transaction).toEqual({ id: '0-1-42', total_order: 1, data_collection_order: 1 });
    expect(event?.source).toEqual({
      version: '3.1.0.Final',
      connector: 'mariadb',
      name: 'bank',
      ts_ms: 1714555800000,
      snapshot: 'false',
      db: 't_bank',
      table: 'transfers',
      server_id: 1,
      gtid: '0-1-42',
      file: 'binlog.000003',
      pos: 1234,
      row: 0,
    });
    expect(changeEventSchema.safeParse(event).success).toBe(true);
  });

  it('keeps safe BIGINTs as numbers and DECIMAL strings as they are', () => {
    const after = AFTER_ROW.replace('"id":9007199254740993', '"id":42').replace(
      '"fee":"0.5"',
      '"fee":"-7.0001"',
    );
    const event = parseChangeRecord(
      record({ op: 'c', before: 'null', after, snapshot: 'null', transaction: 'null' }),
    );
    expect(event?.after?.id).toBe(42);
    expect(event?.after?.fee).toBe('-7.0001');
    expect(event?.after?.amount).toBe('12.3400');
    expect(event?.transaction).toBeNull();
  });

  it('converts an update with both row images', () => {
    const before = AFTER_ROW.replace('"status":"pending"', '"status":"pending"');
    const after = AFTER_ROW.replace('"status":"pending"', '"status":"completed"').replace(
      '"completed_at":null',
      '"completed_at":1714644000000001',
    );
    const event = parseChangeRecord(
      record({
        op: 'u',
        before,
        after,
        snapshot: '"false"',
        transaction: '{"id":"0-1-43","total_order":2,"data_collection_order":1}',
      }),
    );
    expect(event?.op).toBe('u');
    expect(event?.before).toEqual(EXPECTED_AFTER);
    expect(event?.after).toEqual({
      ...EXPECTED_AFTER,
      status: 'completed',
      completed_at: '2024-05-02 10:00:00.000001',
    });
    expect(event?.transaction).toEqual({ id: '0-1-43', total_order: 2, data_collection_order: 1 });
  });

  it('converts a delete (before only)', () => {
    const event = parseChangeRecord(
      record({ op: 'd', before: AFTER_ROW, after: 'null', snapshot: 'null', transaction: 'null' }),
    );
    expect(event?.op).toBe('d');
    expect(event?.after).toBeNull();
    expect(event?.before).toEqual(EXPECTED_AFTER);
  });

  it.each([
    ['"first"', 'first', false],
    ['"true"', 'true', false],
    ['"first_in_data_collection"', 'true', false],
    ['"last_in_data_collection"', 'true', true],
    ['"last"', 'last', false],
    ['"incremental"', 'incremental', false],
    ['true', 'true', false],
    ['false', 'false', false],
  ])('maps snapshot %s of a read event to "%s" (last of its table: %s)', (raw, expected, lastOfTable) => {
    const change = parseMarkedChangeRecord(
      record({ op: 'r', before: 'null', after: AFTER_ROW, snapshot: raw, transaction: 'null' }),
    );
    expect(change?.event.op).toBe('r');
    expect(change?.event.source.snapshot).toBe(expected);
    expect(change?.lastOfTable).toBe(lastOfTable);
    expect(change?.event.after).toEqual(EXPECTED_AFTER);
  });

  it('returns null for tombstones and empty values', () => {
    expect(parseChangeRecord(null)).toBeNull();
    expect(parseChangeRecord(undefined)).toBeNull();
    expect(parseChangeRecord(Buffer.alloc(0))).toBeNull();
  });

  it('rejects unknown ops, missing row images and wrongly typed values with DebeziumRecordError', () => {
    expect(() =>
      parseChangeRecord(
        record({ op: 'm', before: 'null', after: 'null', snapshot: 'null', transaction: 'null' }),
      ),
    ).toThrow(/unsupported Debezium op "m"/);
    // A truncate event says which table lost its rows, and what to do.
    expect(() =>
      parseChangeRecord(
        record({ op: 't', before: 'null', after: 'null', snapshot: 'null', transaction: 'null' }),
      ),
    ).toThrow(
      expect.objectContaining({
        code: 'SOURCE_TRUNCATE',
        message: expect.stringMatching(/^TRUNCATE of t_bank\.transfers at binlog\.000003:1234:0: /),
      }),
    );
    expect(() =>
      parseChangeRecord(
        record({ op: 'c', before: 'null', after: 'null', snapshot: 'null', transaction: 'null' }),
      ),
    ).toThrow(DebeziumRecordError);
    const badDate = AFTER_ROW.replace('"value_date":19844', '"value_date":"2024-05-01"');
    expect(() =>
      parseChangeRecord(
        record({ op: 'c', before: 'null', after: badDate, snapshot: 'null', transaction: 'null' }),
      ),
    ).toThrow(/column value_date .*expected an integer/);
    const extraColumn = AFTER_ROW.replace('"tiny":1', '"tiny":1,"ghost":3');
    expect(() =>
      parseChangeRecord(
        record({ op: 'c', before: 'null', after: extraColumn, snapshot: 'null', transaction: 'null' }),
      ),
    ).toThrow(/column ghost is not in the record's schema/);
    expect(() => parseChangeRecord('{not json')).toThrow(/not JSON/);
    expect(() => parseChangeRecord('{"schema":null,"payload":{"op":"c"}}')).toThrow(
      /not a Debezium change event/,
    );
  });
});

describe('toChangeEvent (schemaless payload)', () => {
  it('passes scalar values through and keeps big integers exact via the text parser', () => {
    const text = `{"before":null,"after":{"id":12345678901234567890,"amount":"12.3400","n":7,"ok":true,"missing":null},
      "source":{"version":"3.1.0.Final","connector":"mysql","name":"bank","ts_ms":1,"snapshot":"last","db":"d","table":"t",
        "server_id":1,"gtid":null,"file":"f.000001","pos":4,"row":2},"op":"r","ts_ms":2,"transaction":null}`;
    const event = parseChangeRecord(text);
    expect(event?.after).toEqual({
      id: '12345678901234567890',
      amount: '12.3400',
      n: 7,
      ok: true,
      missing: null,
    });
    expect(event?.source.snapshot).toBe('last');
    expect(event?.source.gtid).toBeNull();
    expect(event?.source.row).toBe(2);
  });

  it('maps a PostgreSQL source block, LSN in PostgreSQL’s text form', () => {
    const event = toChangeEvent({
      before: null,
      after: { id: 1 },
      source: {
        version: '3.1.0.Final',
        connector: 'postgresql',
        name: 'pg',
        ts_ms: 10,
        snapshot: 'false',
        db: 'legacy',
        sequence: '["1","2"]',
        schema: 'public',
        table: 'accounts',
        txId: 571,
        lsn: 0x16b374d848,
        xmin: null,
      },
      op: 'c',
      ts_ms: 11,
      transaction: { id: '571', total_order: 1, data_collection_order: 1 },
    });
    expect(event.source).toEqual({
      version: '3.1.0.Final',
      connector: 'postgresql',
      name: 'pg',
      ts_ms: 10,
      snapshot: 'false',
      db: 'legacy',
      table: 'accounts',
      schema: 'public',
      lsn: '16/B374D848',
      txId: 571,
    });
    expect(event.transaction?.id).toBe('571');
  });

  it('names a PostgreSQL transaction by its txId: Debezium appends each record’s own LSN', () => {
    const change = (lsn: number, order: number) =>
      toChangeEvent({
        before: null,
        after: { id: order },
        source: {
          version: '3.1.0.Final',
          connector: 'postgresql',
          name: 'pg',
          ts_ms: 10,
          db: 'legacy',
          schema: 'public',
          table: 't',
          txId: 1019,
          lsn,
        },
        op: 'c',
        transaction: { id: `1019:${lsn}`, total_order: order, data_collection_order: order },
      });
    const end = toTransactionMarker({
      status: 'END',
      id: '1019:98256592',
      ts_ms: 1,
      event_count: 2,
      data_collections: [],
    });
    expect([change(98255616, 1).transaction?.id, change(98255888, 2).transaction?.id, end.id]).toEqual([
      '1019',
      '1019',
      '1019',
    ]);
    // Binlog transaction ids are left alone.
    expect(transactionIdOf('0-1-42')).toBe('0-1-42');
    expect(transactionIdOf('3E11FA47-71CA-11E1-9E33-C80AA9429562:23')).toBe(
      '3E11FA47-71CA-11E1-9E33-C80AA9429562:23',
    );
  });
});

describe('formatLsn', () => {
  it('renders both 32-bit halves in upper-case hex', () => {
    expect(formatLsn(0x16b3748)).toBe('0/16B3748');
    expect(formatLsn('18446744073709551615')).toBe('FFFFFFFF/FFFFFFFF');
  });
});

describe('transaction metadata records', () => {
  const TX_SCHEMA = `{"type":"struct","optional":false,"name":"io.debezium.connector.common.TransactionMetadataValue","version":1,"fields":[
    {"type":"string","optional":false,"field":"status"},{"type":"string","optional":false,"field":"id"},
    {"type":"int64","optional":false,"field":"ts_ms"},{"type":"int64","optional":true,"field":"event_count"},
    {"type":"array","items":{"type":"struct","optional":false,"fields":[{"type":"string","optional":false,"field":"data_collection"},
      {"type":"int64","optional":false,"field":"event_count"}]},"optional":true,"field":"data_collections"}]}`;

  it('parses BEGIN and END markers (END carries the event counts)', () => {
    const begin = parseTransactionRecord(
      `{"schema":${TX_SCHEMA},"payload":{"status":"BEGIN","id":"0-1-42","ts_ms":1714555800000,"event_count":null,"data_collections":null}}`,
    );
    expect(begin).toEqual({
      status: 'BEGIN',
      id: '0-1-42',
      ts_ms: 1714555800000,
      event_count: null,
      data_collections: null,
    });
    const end = parseTransactionRecord(
      Buffer.from(
        `{"schema":${TX_SCHEMA},"payload":{"status":"END","id":"0-1-42","ts_ms":1714555800001,"event_count":3,
        "data_collections":[{"data_collection":"t_bank.transfers","event_count":1},{"data_collection":"t_bank.balances","event_count":2}]}}`,
      ),
    );
    expect(end?.event_count).toBe(3);
    expect(end?.data_collections).toEqual([
      { data_collection: 't_bank.transfers', event_count: 1 },
      { data_collection: 't_bank.balances', event_count: 2 },
    ]);
  });

  it('accepts schemaless markers and rejects other statuses', () => {
    expect(
      toTransactionMarker({ status: 'END', id: '7', ts_ms: 1, event_count: '2', data_collections: [] }),
    ).toEqual({
      status: 'END',
      id: '7',
      ts_ms: 1,
      event_count: 2,
      data_collections: [],
    });
    expect(() => toTransactionMarker({ status: 'COMMIT', id: '7', ts_ms: 1 })).toThrow(DebeziumRecordError);
    expect(parseTransactionRecord(null)).toBeNull();
  });
});

describe('toChangeEvent checks', () => {
  const change = (source: Record<string, unknown>, rest: Record<string, unknown> = {}) => ({
    before: null,
    after: { id: 1 },
    source: {
      version: '3.1.0.Final',
      connector: 'mariadb',
      name: 'bank',
      ts_ms: 10,
      db: 'bank',
      table: 'accounts',
      gtid: '0-1-42',
      ...source,
    },
    op: 'c',
    transaction: { id: '0-1-42', total_order: 1, data_collection_order: 1 },
    ...rest,
  });

  it('takes integers written as digit strings where Debezium may write them so', () => {
    const event = toChangeEvent(
      change(
        { ts_ms: '10', pos: '1234', server_id: '1' },
        { ts_ms: '11', transaction: { id: 't', total_order: '2', data_collection_order: 1 } },
      ),
    );
    expect(event.source).toMatchObject({ ts_ms: 10, pos: 1234, server_id: 1 });
    expect(event.ts_ms).toBe(11);
    expect(event.transaction).toEqual({ id: 't', total_order: 2, data_collection_order: 1 });
  });

  it.each([
    ['an unknown connector', change({ connector: 'oracle' })],
    ['a fractional commit time', change({ ts_ms: 1.5 })],
    ['a position that is no integer', change({ pos: '12a' })],
    ['a row image that is a list', { ...change({}), after: [1] }],
    ['a transaction without its order', { ...change({}), transaction: { id: 't', total_order: 1 } }],
  ])('refuses %s as the schema does', (_, value) => {
    expect(() => toChangeEvent(value)).toThrow(/not a Debezium change event/);
  });
});
