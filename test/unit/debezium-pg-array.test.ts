import { describe, expect, it } from 'vitest';
import { pgArrayText } from '../../connectors/debezium/pg-array.js';

// Element schemas as the JsonConverter writes them in an array column's `items`.
const plain = (type: string) => ({ type, optional: true });
const named = (type: string, name: string) => ({ type, optional: true, name, version: 1 });

describe("pgArrayText: Debezium's JSON arrays → the text PostgreSQL prints for them", () => {
  it('quotes elements as array_out does: empty, NULL, braces, commas, quotes, backslashes, spaces', () => {
    expect(
      pgArrayText(plain('string'), ['a b', 'c,d', null, 'e"f', 'null', '', 'x', 'back\\slash', '{x}']),
    ).toBe('{"a b","c,d",NULL,"e\\"f","null","",x,"back\\\\slash","{x}"}');
    expect(pgArrayText(plain('string'), [])).toBe('{}');
  });

  it('prints numbers, booleans, big integers and floats the way the server does', () => {
    expect(pgArrayText(plain('int32'), [1, null, -3])).toBe('{1,NULL,-3}');
    // json-text.ts keeps an integer beyond 2^53 as its digit string.
    expect(pgArrayText(plain('int64'), ['9007199254740993', -1])).toBe('{9007199254740993,-1}');
    expect(pgArrayText(plain('boolean'), [true, false])).toBe('{t,f}');
    expect(pgArrayText(plain('double'), [0.1, 1e300, 1e-7, 100, -2.5])).toBe('{0.1,1e+300,1e-07,100,-2.5}');
  });

  it('prints temporal elements as the server prints them in UTC sessions, fractions trimmed', () => {
    const micros = Date.UTC(2024, 0, 1, 9, 0, 0, 500) * 1000;
    expect(pgArrayText(named('int64', 'io.debezium.time.MicroTimestamp'), [micros, null])).toBe(
      '{"2024-01-01 09:00:00.5",NULL}',
    );
    expect(pgArrayText(named('int64', 'io.debezium.time.MicroTimestamp'), [micros - 500_000])).toBe(
      '{"2024-01-01 09:00:00"}',
    );
    expect(
      pgArrayText(named('string', 'io.debezium.time.ZonedTimestamp'), ['2024-01-01T07:00:00.250000Z']),
    ).toBe('{"2024-01-01 07:00:00.25+00"}');
    expect(pgArrayText(named('int32', 'io.debezium.time.Date'), [19782])).toBe('{2024-02-29}');
    expect(pgArrayText(named('int64', 'io.debezium.time.MicroTime'), [36_000_500_000, 0])).toBe(
      '{10:00:00.5,00:00:00}',
    );
  });

  it('bytea elements (base64 in a string schema, told by the source type) in hex; enums, uuids, json as text', () => {
    expect(pgArrayText(plain('string'), ['AQI='], '_bytea')).toBe('{"\\\\x0102"}');
    expect(pgArrayText(plain('string'), ['AQI='], '_text')).toBe('{AQI=}');
    expect(pgArrayText(named('string', 'io.debezium.data.Enum'), ['sad', 'ok'], '_mood')).toBe('{sad,ok}');
    expect(pgArrayText(named('string', 'io.debezium.data.Json'), ['{"a": 1}'])).toBe('{"{\\"a\\": 1}"}');
  });

  it('leaves to the caller an element it has no text for', () => {
    expect(pgArrayText(named('string', 'io.debezium.time.ZonedTime'), ['08:00:00Z'])).toBeUndefined();
    expect(pgArrayText(plain('struct'), [{ x: 1 }])).toBeUndefined();
    expect(pgArrayText(undefined, [1])).toBeUndefined();
  });
});
