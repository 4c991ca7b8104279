import { describe, expect, it } from 'vitest';
import {
  columnFromType,
  fixFraction,
  fixScale,
  float32Value,
  normalizeRow,
  normalizeValue,
} from '../../connectors/binlog/normalize.js';

const col = (columnType: string) => columnFromType('c', columnType);

describe('column types', () => {
  it('reads precision and scale the same from information_schema and table-map spellings', () => {
    expect(columnFromType('a', 'decimal(19,4)')).toEqual({
      name: 'a',
      dataType: 'decimal',
      datetimePrecision: null,
      numericScale: 4,
    });
    expect(columnFromType('a', 'datetime(6)').datetimePrecision).toBe(6);
    expect(columnFromType('a', 'datetime').datetimePrecision).toBe(0);
    expect(columnFromType('a', 'timestamp(3)').datetimePrecision).toBe(3);
    expect(columnFromType('a', 'TIME(2)').dataType).toBe('time');
    expect(columnFromType('a', 'bigint(20) unsigned')).toMatchObject({
      dataType: 'bigint',
      numericScale: null,
    });
    expect(columnFromType('a', "enum('a','b,c')").dataType).toBe('enum');
    expect(columnFromType('a', 'decimal(10)').numericScale).toBe(0);
  });
});

describe('binlog value normalisation', () => {
  it('gives DATETIME/TIMESTAMP/TIME exactly the column precision, never through a Date', () => {
    expect(fixFraction('2024-01-02 03:04:05.1234', 6)).toBe('2024-01-02 03:04:05.123400');
    expect(fixFraction('2024-01-02 03:04:05', 6)).toBe('2024-01-02 03:04:05.000000');
    expect(fixFraction('2024-01-02 03:04:05.', 3)).toBe('2024-01-02 03:04:05.000');
    expect(fixFraction('-12:34:56.00001', 6)).toBe('-12:34:56.000010');
    expect(fixFraction('838:59:59', 0)).toBe('838:59:59');
    expect(normalizeValue('2024-01-02 03:04:05.000001', col('datetime(6)'))).toBe(
      '2024-01-02 03:04:05.000001',
    );
    expect(normalizeValue('2024-01-02 03:04:05', col('datetime(6)'))).toBe('2024-01-02 03:04:05.000000');
    expect(normalizeValue('2024-01-02 03:04:05.5', col('datetime'))).toBe('2024-01-02 03:04:05');
    expect(normalizeValue('2024-01-02 03:04:05.1', col('timestamp(3)'))).toBe('2024-01-02 03:04:05.100');
    expect(normalizeValue('0000-00-00 00:00:00', col('timestamp'))).toBe('0000-00-00 00:00:00');
    expect(normalizeValue('2024-02-29', col('date'))).toBe('2024-02-29');
  });

  it('is idempotent, so a value normalised twice is unchanged', () => {
    const dt = col('datetime(6)');
    const once = normalizeValue('2024-01-02 03:04:05.12', dt);
    expect(normalizeValue(once, dt)).toBe(once);
    const f = col('float');
    expect(normalizeValue(normalizeValue(1.100000023841858, f), f)).toBe(1.1);
  });

  it('keeps DECIMAL as an exact string with its scale', () => {
    expect(normalizeValue('12.34', col('decimal(19,4)'))).toBe('12.3400');
    expect(normalizeValue('-0.5', col('decimal(19,4)'))).toBe('-0.5000');
    expect(normalizeValue('12', col('decimal(10,0)'))).toBe('12');
    expect(normalizeValue('999999999999999.9999', col('decimal(19,4)'))).toBe('999999999999999.9999');
    expect(fixScale('not a number', 2)).toBe('not a number');
  });

  it('keeps integers exact: numbers up to 2^53, strings beyond', () => {
    expect(normalizeValue('9007199254740993', col('bigint'))).toBe('9007199254740993');
    expect(normalizeValue('18446744073709551615', col('bigint unsigned'))).toBe('18446744073709551615');
    expect(normalizeValue(9007199254740991, col('bigint'))).toBe(9007199254740991);
    expect(normalizeValue(9007199254740993n, col('bigint'))).toBe('9007199254740993');
    expect(normalizeValue(-5, col('tinyint(4)'))).toBe(-5);
    expect(normalizeValue(2024, col('year'))).toBe(2024);
  });

  it('prints a FLOAT as its shortest single-precision decimal, whichever width it arrived in', () => {
    expect(float32Value(1.100000023841858)).toBe(1.1);
    expect(float32Value(1.2345677614212036)).toBe(1.2345678);
    expect(float32Value(16777216)).toBe(16777216);
    expect(float32Value(3.3999999521443642e38)).toBe(3.4e38);
    expect(float32Value(Number.NaN)).toBeNaN();
    expect(normalizeValue(0.30000001192092896, col('float'))).toBe(0.3);
    // DOUBLE is already exact as a JS number.
    expect(normalizeValue(0.30000000000000004, col('double'))).toBe(0.30000000000000004);
  });

  it('gives binary values as base64 and keeps strings and NULL', () => {
    expect(normalizeValue(Buffer.from([0, 255]), col('blob'))).toBe('AP8=');
    expect(normalizeValue(Buffer.from('ab\0'), col('binary(3)'))).toBe('YWIA');
    expect(normalizeValue('héllo ✓ 😀', col('varchar(20)'))).toBe('héllo ✓ 😀');
    expect(normalizeValue('x,y', col("set('x','y')"))).toBe('x,y');
    expect(normalizeValue(null, col('int'))).toBeNull();
    expect(normalizeValue(undefined, col('int'))).toBeNull();
  });

  it('keeps JSON as text, serialising a parsed value if a connection parsed it', () => {
    expect(normalizeValue('{"a": 12345678901234567890}', col('json'))).toBe('{"a": 12345678901234567890}');
    expect(normalizeValue({ a: [1, 2] }, col('json'))).toBe('{"a":[1,2]}');
  });

  it('normalises a whole row by the column list, filling absent columns with null', () => {
    const columns = [columnFromType('id', 'int(11)'), columnFromType('amount', 'decimal(19,4)')];
    expect(normalizeRow({ id: 1, amount: '2.5', extra: 'ignored' }, columns)).toEqual({
      id: 1,
      amount: '2.5000',
    });
    expect(normalizeRow({ id: 2 }, columns)).toEqual({ id: 2, amount: null });
  });
});
