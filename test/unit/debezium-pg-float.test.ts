import { describe, expect, it } from 'vitest';
import { normaliseColumnValue } from '../../connectors/debezium/column-value.js';
import { pgFloatsIn, pgFloatText } from '../../connectors/debezium/pg-float.js';

describe('pgFloatText: float8out’s text (checked against PostgreSQL 15’s SELECT output)', () => {
  it('uses plain notation for exponents -4 to 14, else a two-digit exponent', () => {
    const cases: Array<[number, string]> = [
      [1e15, '1e+15'],
      [123456789012345, '123456789012345'],
      [0.0001, '0.0001'],
      [0.00001, '1e-05'],
      [1e-7, '1e-07'],
      [1.5e16, '1.5e+16'],
      [1e300, '1e+300'],
      [10000000, '10000000'],
      [-0, '-0'],
      [0.1, '0.1'],
      [Number.NaN, 'NaN'],
    ];
    for (const [n, text] of cases) expect(pgFloatText(n), String(n)).toBe(text);
  });

  it('rewrites the Java doubles inside a geometric value', () => {
    expect(pgFloatsIn('(1.0,1.0E7),(0.0,-0.5)')).toBe('(1,10000000),(0,-0.5)');
    expect(pgFloatsIn('<(1.0,1.0),2.0>')).toBe('<(1,1),2>');
    expect(pgFloatsIn('((0.0,0.0),(1.0,1.0E-5))')).toBe('((0,0),(1,1e-05))');
  });
});

describe('PostgreSQL types Debezium does not know (include.unknown.datatypes)', () => {
  const column = (type: string, connectType = 'string') => ({
    type: connectType,
    field: 'c',
    optional: true,
    parameters: { '__debezium.source.column.type': type },
  });
  const base64 = (text: string) => Buffer.from(text).toString('base64');

  it('reads the text of a known-unknown built-in type, and leaves other strings alone', () => {
    expect(normaliseColumnValue(column('TSVECTOR'), base64("'a' 'cat'"), 'postgresql')).toBe("'a' 'cat'");
    expect(normaliseColumnValue(column('INT4MULTIRANGE'), base64('{[1,5)}'), 'postgresql')).toBe('{[1,5)}');
    expect(normaliseColumnValue(column('BOX'), base64('(1.0,1.0),(0.0,0.0)'), 'postgresql')).toBe(
      '(1,1),(0,0)',
    );
    // Text that merely looks like base64 stays text.
    expect(normaliseColumnValue(column('TEXT'), 'YWJj', 'postgresql')).toBe('YWJj');
    expect(normaliseColumnValue(column('TSVECTOR'), 'YWJj', 'binlog')).toBe('YWJj');
  });

  it('prints a point as the server does', () => {
    const point = { type: 'struct', field: 'p', optional: true, name: 'io.debezium.data.geometry.Point' };
    expect(normaliseColumnValue(point, { x: 1.5, y: 1e7, wkb: '', srid: null }, 'postgresql')).toBe(
      '(1.5,10000000)',
    );
  });
});
