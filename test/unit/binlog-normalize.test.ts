import { describe, expect, it } from 'vitest';
import { fixFraction, normalizeValue } from '../../connectors/binlog/normalize.js';
import { binlogProblem } from '../../connectors/binlog/preflight.js';

const col = (dataType: string, extra: Partial<{ datetimePrecision: number; numericScale: number }> = {}) => ({
  name: 'c',
  dataType,
  datetimePrecision: extra.datetimePrecision ?? null,
  numericScale: extra.numericScale ?? null,
});

describe('binlog value normalisation', () => {
  it('gives DATETIME exactly the column precision, never through a Date', () => {
    expect(fixFraction('2024-01-02 03:04:05.1234', 6)).toBe('2024-01-02 03:04:05.123400');
    expect(fixFraction('2024-01-02 03:04:05', 6)).toBe('2024-01-02 03:04:05.000000');
    expect(normalizeValue('2024-01-02 03:04:05.000001', col('datetime', { datetimePrecision: 6 }))).toBe(
      '2024-01-02 03:04:05.000001',
    );
    expect(normalizeValue('2024-01-02 03:04:05.5', col('datetime', { datetimePrecision: 0 }))).toBe(
      '2024-01-02 03:04:05',
    );
  });

  it('keeps DECIMAL as an exact string with its scale', () => {
    expect(normalizeValue('12.34', col('decimal', { numericScale: 4 }))).toBe('12.3400');
    expect(normalizeValue('12345678901234.5678', col('decimal', { numericScale: 4 }))).toBe(
      '12345678901234.5678',
    );
  });

  it('keeps BIGINT exact beyond 2^53 and numbers below', () => {
    expect(normalizeValue('9007199254740993', col('bigint'))).toBe('9007199254740993');
    expect(normalizeValue(42, col('bigint'))).toBe(42);
    expect(normalizeValue(null, col('int'))).toBeNull();
    expect(normalizeValue(Buffer.from('hi'), col('blob'))).toBe('aGk=');
  });

  it('names the first binlog setting that blocks CDC, with a fix', () => {
    const ok = {
      version: '10.11',
      flavor: 'mariadb' as const,
      logBin: true,
      binlogFormat: 'ROW',
      binlogRowImage: 'FULL',
    };
    expect(binlogProblem(ok)).toBeNull();
    expect(binlogProblem({ ...ok, logBin: false })?.code).toBe('BINLOG_OFF');
    expect(binlogProblem({ ...ok, binlogFormat: 'MIXED' })?.hint).toMatch(/binlog_format='ROW'/);
    expect(binlogProblem({ ...ok, binlogRowImage: 'MINIMAL' })?.code).toBe('BINLOG_ROW_IMAGE');
  });
});
