import { describe, expect, it } from 'vitest';
import {
  type ColumnSchema,
  decodeDecimalBytes,
  normaliseColumnValue,
  padToScale,
} from '../../connectors/debezium/column-value.js';
import { parseJsonKeepingBigInts } from '../../connectors/debezium/json-text.js';
import {
  epochDayOf,
  formatEpochDateTime,
  formatEpochDay,
  formatTimeOfDay,
  formatZonedTimestamp,
} from '../../connectors/debezium/temporal.js';

function col(type: string, name?: string, params: Record<string, string> = {}): ColumnSchema {
  return { type, field: 'c', ...(name === undefined ? {} : { name }), parameters: params };
}

describe('parseJsonKeepingBigInts', () => {
  it('keeps integers beyond 2^53 as exact digit strings and leaves everything else to JSON.parse', () => {
    const text =
      '{"a":9007199254740993,"b":9007199254740991,"c":-12345678901234567890,"d":"1234567890123456789","e":1.5e300,"f":[18446744073709551615]}';
    expect(parseJsonKeepingBigInts(text)).toEqual({
      a: '9007199254740993',
      b: 9007199254740991,
      c: '-12345678901234567890',
      d: '1234567890123456789',
      e: 1.5e300,
      f: ['18446744073709551615'],
    });
  });

  it('does not touch digits inside strings that look like values', () => {
    const text =
      '{"s":"a:12345678901234567890,b","t":"[ -98765432109876543210]","n":[1, 12345678901234567890 ]}';
    expect(parseJsonKeepingBigInts(text)).toEqual({
      s: 'a:12345678901234567890,b',
      t: '[ -98765432109876543210]',
      n: [1, '12345678901234567890'],
    });
  });

  it('does not touch digits inside strings, including escaped quotes', () => {
    const text = '{"q":"say \\"12345678901234567890\\" twice","n":12345678901234567890}';
    expect(parseJsonKeepingBigInts(text)).toEqual({
      q: 'say "12345678901234567890" twice',
      n: '12345678901234567890',
    });
  });
});

describe('temporal formatting', () => {
  it('renders epoch days, including before 1970 and the ends of MySQL’s range', () => {
    expect(formatEpochDay(0)).toBe('1970-01-01');
    expect(formatEpochDay(19844)).toBe('2024-05-01');
    expect(formatEpochDay(-1)).toBe('1969-12-31');
    expect(formatEpochDay(-354285)).toBe('1000-01-01');
    expect(formatEpochDay(2932896)).toBe('9999-12-31');
    expect(formatEpochDay(epochDayOf(2024, 2, 29))).toBe('2024-02-29');
    expect(epochDayOf(2024, 5, 1)).toBe(19844n);
  });

  it('renders DATETIME with exactly the column’s fractional digits', () => {
    expect(formatEpochDateTime(1714555800123456, 'us', 6)).toBe('2024-05-01 09:30:00.123456');
    expect(formatEpochDateTime(1714555800123456, 'us', 4)).toBe('2024-05-01 09:30:00.1234');
    expect(formatEpochDateTime(1714555800123456, 'us', 0)).toBe('2024-05-01 09:30:00');
    expect(formatEpochDateTime(1714555800120, 'ms', 3)).toBe('2024-05-01 09:30:00.120');
    expect(formatEpochDateTime(1714555800000, 'ms', 6)).toBe('2024-05-01 09:30:00.000000');
    expect(formatEpochDateTime(-500000, 'us', 6)).toBe('1969-12-31 23:59:59.500000');
    // beyond 2^53 µs: exact only because the value stays a BigInt
    expect(formatEpochDateTime(253402300799999999n, 'us', 6)).toBe('9999-12-31 23:59:59.999999');
  });

  it('renders TIME durations, negative and beyond 24 h as MySQL does', () => {
    expect(formatTimeOfDay(34200123456, 'us', 6)).toBe('09:30:00.123456');
    expect(formatTimeOfDay(34200123456, 'us', 0)).toBe('09:30:00');
    expect(formatTimeOfDay(-3_020_399_000_000, 'us', 0)).toBe('-838:59:59');
  });

  it('converts ISO offset date-times to UTC', () => {
    expect(formatZonedTimestamp('2024-05-01T09:30:00.123456Z')).toBe('2024-05-01 09:30:00.123456');
    expect(formatZonedTimestamp('2024-05-01T09:30:00Z')).toBe('2024-05-01 09:30:00');
    expect(formatZonedTimestamp('2024-05-01T09:30:00.5Z', 6)).toBe('2024-05-01 09:30:00.500000');
    expect(formatZonedTimestamp('2024-05-01T01:30:00.25+02:00', 2)).toBe('2024-04-30 23:30:00.25');
    expect(formatZonedTimestamp('2024-05-01 09:30:00')).toBeUndefined();
  });
});

describe('decimals', () => {
  it('pads string decimals to the column scale and leaves other text alone', () => {
    expect(padToScale('12.34', 4)).toBe('12.3400');
    expect(padToScale('12', 4)).toBe('12.0000');
    expect(padToScale('-0.5', 2)).toBe('-0.50');
    expect(padToScale('12.3400', 4)).toBe('12.3400');
    expect(padToScale('12', 0)).toBe('12');
    expect(padToScale('NaN', 4)).toBe('NaN');
  });

  it('decodes Connect Decimal bytes (big-endian two’s complement)', () => {
    // 123400 = 0x01E208 → 12.3400 at scale 4; -1 = 0xFF
    expect(decodeDecimalBytes(Buffer.from([0x01, 0xe2, 0x08]).toString('base64'), 4)).toBe('12.3400');
    expect(decodeDecimalBytes(Buffer.from([0xff]).toString('base64'), 2)).toBe('-0.01');
    expect(decodeDecimalBytes(Buffer.from([0x00, 0x80]).toString('base64'), 0)).toBe('128');
  });
});

describe('normaliseColumnValue', () => {
  it('uses the source column length as DATETIME precision on MySQL/MariaDB and the scale on PostgreSQL', () => {
    const mysql = col('int64', 'io.debezium.time.MicroTimestamp', { '__debezium.source.column.length': '5' });
    expect(normaliseColumnValue(mysql, 1714555800123450, 'binlog')).toBe('2024-05-01 09:30:00.12345');
    const pg = col('int64', 'io.debezium.time.MicroTimestamp', {
      '__debezium.source.column.length': '29',
      '__debezium.source.column.scale': '3',
    });
    expect(normaliseColumnValue(pg, 1714555800123000, 'postgresql')).toBe('2024-05-01 09:30:00.123');
  });

  it('reads a missing length on an annotated MySQL temporal column as 0 fractional digits', () => {
    const time = col('int64', 'io.debezium.time.MicroTime', { '__debezium.source.column.type': 'TIME' });
    expect(normaliseColumnValue(time, 34200000000, 'binlog')).toBe('09:30:00');
    const ts = col('string', 'io.debezium.time.ZonedTimestamp', {
      '__debezium.source.column.type': 'TIMESTAMP',
    });
    expect(normaliseColumnValue(ts, '2024-05-01T09:30:00Z', 'binlog')).toBe('2024-05-01 09:30:00');
    const ts6 = col('string', 'io.debezium.time.ZonedTimestamp', {
      '__debezium.source.column.type': 'TIMESTAMP',
      '__debezium.source.column.length': '6',
    });
    expect(normaliseColumnValue(ts6, '2024-05-01T09:30:00.1Z', 'binlog')).toBe('2024-05-01 09:30:00.100000');
  });

  it('falls back to the encoding’s resolution without propagated column metadata', () => {
    expect(
      normaliseColumnValue(col('int64', 'io.debezium.time.MicroTimestamp'), 1714555800000000, 'binlog'),
    ).toBe('2024-05-01 09:30:00.000000');
    expect(normaliseColumnValue(col('int64', 'io.debezium.time.Timestamp'), 1714555800000, 'binlog')).toBe(
      '2024-05-01 09:30:00',
    );
    expect(normaliseColumnValue(col('int64', 'io.debezium.time.Timestamp'), 1714555800007, 'binlog')).toBe(
      '2024-05-01 09:30:00.007',
    );
  });

  it('decodes precise-mode decimals and pads them to the column scale', () => {
    const precise = col('bytes', 'org.apache.kafka.connect.data.Decimal', {
      scale: '2',
      '__debezium.source.column.type': 'DECIMAL',
      '__debezium.source.column.scale': '4',
    });
    expect(normaliseColumnValue(precise, Buffer.from([0x04, 0xd2]).toString('base64'), 'binlog')).toBe(
      '12.3400',
    );
    const variable = col('struct', 'io.debezium.data.VariableScaleDecimal');
    expect(
      normaliseColumnValue(
        variable,
        { scale: 3, value: Buffer.from([0x30, 0x39]).toString('base64') },
        'postgresql',
      ),
    ).toBe('12.345');
  });

  it('only pads strings whose source type is a DECIMAL', () => {
    const text = col('string', undefined, {
      '__debezium.source.column.type': 'VARCHAR',
      '__debezium.source.column.scale': '4',
    });
    expect(normaliseColumnValue(text, '12.3', 'binlog')).toBe('12.3');
    const unsignedDecimal = col('string', undefined, {
      '__debezium.source.column.type': 'DECIMAL UNSIGNED',
      '__debezium.source.column.scale': '2',
    });
    expect(normaliseColumnValue(unsignedDecimal, '5', 'binlog')).toBe('5.00');
  });

  it('keeps booleans, floats, enums and base64 bytes, and SQL NULL as null', () => {
    expect(normaliseColumnValue(col('boolean'), true, 'binlog')).toBe(true);
    expect(normaliseColumnValue(col('float64'), 1.25, 'binlog')).toBe(1.25);
    expect(normaliseColumnValue(col('double'), 3.5, 'binlog')).toBe(3.5);
    expect(normaliseColumnValue(col('float'), 0.5, 'binlog')).toBe(0.5);
    expect(normaliseColumnValue(col('string', 'io.debezium.data.Enum'), 'verified', 'binlog')).toBe(
      'verified',
    );
    expect(normaliseColumnValue(col('bytes'), 'AAE=', 'binlog')).toBe('AAE=');
    expect(normaliseColumnValue(col('int64', 'io.debezium.time.MicroTimestamp'), null, 'binlog')).toBeNull();
    expect(normaliseColumnValue(col('int32'), 2147483647, 'binlog')).toBe(2147483647);
  });

  it('throws when a value does not match its schema type', () => {
    expect(() => normaliseColumnValue(col('boolean'), 1, 'binlog')).toThrow(/expected a boolean/);
    expect(() => normaliseColumnValue(col('int32'), 1.5, 'binlog')).toThrow(/expected an integer/);
    expect(() =>
      normaliseColumnValue(col('string', 'io.debezium.time.ZonedTimestamp'), 'yesterday', 'binlog'),
    ).toThrow(/not an ISO-8601/);
  });
});
