import { describe, expect, it } from 'vitest';
import { parseEnvelope } from '../../connectors/debezium/envelope-text.js';
import { DebeziumRecordError } from '../../connectors/debezium/errors.js';
import { parseJsonKeepingBigInts } from '../../connectors/debezium/json-text.js';
import { decodeRecordValue, toChangeEvent } from '../../connectors/debezium/record.js';

const SCHEMA =
  '{"type":"struct","fields":[{"type":"struct","optional":true,"field":"after","fields":[{"type":"int64","optional":false,"field":"id"},{"type":"string","optional":true,"field":"note","default":"naïve ☕"}]}],"version":9007199254740993}';

function envelope(schema: string, payload: string): string {
  return `{"schema":${schema},"payload":${payload}}`;
}

/** What the whole-text parse gives, or the error it throws. */
function whole(text: string): unknown {
  try {
    return { value: parseJsonKeepingBigInts(text) };
  } catch {
    return 'throws';
  }
}

/** The envelope split where it applies, else the whole-text parse: must equal `whole`. */
function split(text: string): unknown {
  try {
    return { value: parseEnvelope(Buffer.from(text, 'utf8')) ?? parseJsonKeepingBigInts(text) };
  } catch {
    return 'throws';
  }
}

describe('parseEnvelope', () => {
  it('gives what the whole-text parse gives, the schema parsed once per distinct text', () => {
    const texts = [
      envelope(SCHEMA, '{"after":{"id":12345678901234567890,"note":"crème ☕"},"ts_ns":1714555801234567890}'),
      envelope(SCHEMA, '{"after":{"id":1,"note":null}}'),
      envelope(SCHEMA.replace('"note"', '"memo"'), '{"after":{"id":2,"memo":"x"}}'),
      envelope(SCHEMA, '{"after":{"id":3,"note":"}"}}'),
      envelope(SCHEMA, 'null'),
      envelope('null', '{"id":4}'),
    ];
    for (const text of texts) expect(split(text)).toEqual(whole(text));
    const first = parseEnvelope(Buffer.from(texts[0] as string));
    const second = parseEnvelope(Buffer.from(texts[1] as string));
    expect(second?.schema).toBe(first?.schema);
    expect(Object.isFrozen(first?.schema)).toBe(true);
    expect(first?.schema).toMatchObject({ version: '9007199254740993' });
  });

  it('leaves texts of another shape, or that do not split into two values, to the whole-text parse', () => {
    const tricky = [
      // The member key inside the schema, in a string and as a key: the first cut is not the member boundary.
      envelope('{"doc":"a,\\"payload\\":1","k":[1]}', '{"op":"c"}'),
      envelope('{"x":{"payload":1},"y":[{"a":1},"payload"]}', '{"op":"c"}'),
      envelope('{"a":1,"payload":2}', '{"op":"c"}'),
      `${envelope(SCHEMA, '{"op":"c"}')}\n`,
      envelope(SCHEMA, '{"op":"c"}').replace('"payload":', '"payload" :'),
      `${envelope(SCHEMA, '{"op":"c"}').slice(0, -1)},"extra":1}`,
      envelope(SCHEMA, '{"op":"c"'),
      envelope(SCHEMA, '{"op":"c"}}'),
      envelope(`${SCHEMA.slice(0, -1)}`, '{"op":"c"}'),
      '{"schema":',
      '{"schema":}',
      '{"payload":{"op":"c"},"schema":null}',
      '{"op":"c","after":{"id":1}}',
    ];
    for (const text of tricky) expect(split(text)).toEqual(whole(text));
    // A known schema's prefix followed by a payload that is not a value: no envelope.
    expect(parseEnvelope(Buffer.from(envelope(SCHEMA, '{"op":"c"},"x":{}')))).toBeNull();
  });

  it('agrees with the whole-text parse on every cut of a record and on random edits', () => {
    const base = envelope(SCHEMA, '{"after":{"id":12345678901234567890,"note":"ü"},"op":"c"}');
    for (let end = 0; end <= base.length; end++) {
      const text = base.slice(0, end);
      expect(split(text)).toEqual(whole(text));
    }
    let seed = 7;
    const random = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed % n;
    };
    const pieces = ['"', ',', ':', '}', '{', ',"payload":', '1', ' ', '\\'];
    for (let i = 0; i < 2000; i++) {
      const at = random(base.length);
      const text = base.slice(0, at) + (pieces[random(pieces.length)] as string) + base.slice(at + random(3));
      expect(split(text)).toEqual(whole(text));
    }
  });

  it('is what decodeRecordValue uses for a record value', () => {
    const text = envelope(SCHEMA, '{"after":{"id":1,"note":"a"}}');
    expect(decodeRecordValue(Buffer.from(text))).toEqual(parseJsonKeepingBigInts(text));
    expect(decodeRecordValue(text)).toEqual(parseJsonKeepingBigInts(text));
    expect(decodeRecordValue(Buffer.from(' null '))).toBeNull();
  });
});

describe('toChangeEvent, values JSON cannot carry on', () => {
  const source = '{"version":"3.1.0","connector":"mariadb","name":"bank","ts_ms":1,"db":"b","table":"t"}';

  it('rejects a number beyond the double range (1e400 parses to Infinity), with or without a schema', () => {
    const schema =
      '{"type":"struct","fields":[{"type":"struct","field":"after","fields":[{"type":"double","optional":true,"field":"ratio"}]}]}';
    const payload = `{"op":"c","after":{"ratio":1e400},"source":${source}}`;
    expect(() => toChangeEvent(decodeRecordValue(envelope(schema, payload)))).toThrow(DebeziumRecordError);
    expect(() => toChangeEvent(decodeRecordValue(payload))).toThrow(DebeziumRecordError);
    const finite = toChangeEvent(decodeRecordValue(envelope(schema, payload.replace('1e400', '1e300'))));
    expect(finite.after).toEqual({ ratio: 1e300 });
  });
});
