import { describe, expect, it } from 'vitest';
import {
  parsePostgresUrl,
  pgoutputConfigFromUrl,
  pgoutputSourceConfigSchema,
} from '../../connectors/pgoutput/config.js';
import { canonicalLsn, formatLsn, parseLsn } from '../../connectors/pgoutput/lsn.js';
import {
  type DomainStep,
  numericScale,
  PgTypeResolver,
  pgTextValue,
} from '../../connectors/pgoutput/values.js';
import { ConfigError } from '../../lib/errors.js';

// pg_type OIDs and typmods as pgoutput's Relation message reports them.
const t = (typeOid: number, typeMod = -1) => ({ typeOid, typeMod });
const NUMERIC_19_4 = t(1700, ((19 << 16) | 4) + 4);
const TIMESTAMP_6 = t(1114, 6);

describe('pgTextValue: PostgreSQL text output → the contract’s values (as Debezium yields them)', () => {
  it('keeps NUMERIC exact, padded to the column scale; unconstrained NUMERIC as printed', () => {
    expect(numericScale(NUMERIC_19_4.typeMod)).toBe(4);
    expect(pgTextValue('12.34', NUMERIC_19_4)).toBe('12.3400');
    expect(pgTextValue('-0.0001', NUMERIC_19_4)).toBe('-0.0001');
    expect(pgTextValue('123456789012345.6789', NUMERIC_19_4)).toBe('123456789012345.6789');
    expect(pgTextValue('3.14159', t(1700))).toBe('3.14159');
    expect(pgTextValue('NaN', NUMERIC_19_4)).toBe('NaN');
  });

  it('MONEY as its decimal (lc_monetary=C), TIMETZ in UTC, bit strings as Debezium sends them', () => {
    expect(pgTextValue('-$1,234,567.89', t(790))).toBe('-1234567.89');
    expect(pgTextValue('$0.00', t(790))).toBe('0.00');
    // Another locale's form is kept as printed, not guessed at.
    expect(pgTextValue('1.234,50 €', t(790))).toBe('1.234,50 €');
    expect(pgTextValue('10:00:00.5+02', t(1266))).toBe('08:00:00.5Z');
    expect(pgTextValue('23:59:59.999999+14', t(1266))).toBe('09:59:59.999999Z');
    expect(pgTextValue('23:30:00-01', t(1266))).toBe('00:30:00Z');
    expect(pgTextValue('10:00:00.12+05:45', t(1266, 3))).toBe('04:15:00.12Z');
    // BIT(1) a boolean; longer bit strings their bytes, least significant first, no zero bytes on top.
    expect(pgTextValue('1', t(1560, 1))).toBe(true);
    expect(pgTextValue('0', t(1560, 1))).toBe(false);
    expect(pgTextValue('0000000100000010', t(1560, 16))).toBe(Buffer.from([2, 1]).toString('base64'));
    expect(pgTextValue('0000000000000001', t(1560, 16))).toBe(Buffer.from([1]).toString('base64'));
    expect(pgTextValue('10000000', t(1560, 8))).toBe(Buffer.from([0x80]).toString('base64'));
    expect(pgTextValue('00000000', t(1560, 8))).toBe('');
    expect(pgTextValue('10100000011', t(1562, 20))).toBe(Buffer.from([3, 5]).toString('base64'));
    expect(pgTextValue('1', t(1562, 20))).toBe(Buffer.from([1]).toString('base64'));
    // INTERVAL as Debezium's interval.handling.mode=string: every field, each with its sign.
    expect(pgTextValue('1 year 2 mons 3 days 04:05:06.789', t(1186))).toBe('P1Y2M3DT4H5M6.789S');
    expect(pgTextValue('-1 days +02:00:00', t(1186))).toBe('P0Y0M-1DT2H0M0S');
    expect(pgTextValue('-00:00:01.5', t(1186))).toBe('P0Y0M0DT0H0M-1.5S');
    expect(pgTextValue('-1 years -2 mons', t(1186))).toBe('P-1Y-2M0DT0H0M0S');
    expect(pgTextValue('100:00:00', t(1186))).toBe('P0Y0M0DT100H0M0S');
    expect(pgTextValue('00:00:00.000001', t(1186))).toBe('P0Y0M0DT0H0M0.000001S');
    expect(pgTextValue('00:00:00', t(1186))).toBe('P0Y0M0DT0H0M0S');
    // Arrays stay as printed (the Debezium side writes its JSON arrays in that form).
    expect(pgTextValue('{1,NULL,-3}', t(1007))).toBe('{1,NULL,-3}');
  });

  it('pads fractional seconds to the declared precision (6 when none is declared)', () => {
    // PostgreSQL drops trailing zeros: "…:00.5" is half a second.
    expect(pgTextValue('2024-05-01 09:30:00.5', TIMESTAMP_6)).toBe('2024-05-01 09:30:00.500000');
    expect(pgTextValue('2024-05-01 09:30:00', TIMESTAMP_6)).toBe('2024-05-01 09:30:00.000000');
    expect(pgTextValue('2024-05-01 09:30:00', t(1114, 0))).toBe('2024-05-01 09:30:00');
    expect(pgTextValue('2024-05-01 09:30:00.12', t(1114, 3))).toBe('2024-05-01 09:30:00.120');
    expect(pgTextValue('2024-05-01 09:30:00.1', t(1114))).toBe('2024-05-01 09:30:00.100000');
    expect(pgTextValue('23:59:59.9', t(1083, 6))).toBe('23:59:59.900000');
    expect(pgTextValue('infinity', TIMESTAMP_6)).toBe('infinity');
  });

  it('renders TIMESTAMPTZ as the UTC instant', () => {
    expect(pgTextValue('2024-05-01 07:30:00.654321+00', t(1184, 6))).toBe('2024-05-01 07:30:00.654321');
    expect(pgTextValue('2024-05-01 09:30:00.5+02', t(1184))).toBe('2024-05-01 07:30:00.500000');
    expect(pgTextValue('2024-05-01 09:30:00+05:30', t(1184, 0))).toBe('2024-05-01 04:00:00');
  });

  it('maps integers, booleans, floats and bytea; keeps text-like values as printed', () => {
    expect(pgTextValue('42', t(23))).toBe(42);
    expect(pgTextValue('-3', t(21))).toBe(-3);
    expect(pgTextValue('9007199254740993', t(20))).toBe('9007199254740993');
    expect(pgTextValue('9007199254740991', t(20))).toBe(9007199254740991);
    expect(pgTextValue('t', t(16))).toBe(true);
    expect(pgTextValue('f', t(16))).toBe(false);
    expect(pgTextValue('0.25', t(701))).toBe(0.25);
    expect(pgTextValue('NaN', t(701))).toBe('NaN');
    expect(pgTextValue('\\x0102ff', t(17))).toBe(Buffer.from([1, 2, 255]).toString('base64'));
    expect(pgTextValue('2024-02-29', t(1082))).toBe('2024-02-29');
    expect(pgTextValue('EUR', t(1042, 7))).toBe('EUR');
    expect(pgTextValue('{"a": [1, 2.50]}', t(3802))).toBe('{"a": [1, 2.50]}');
    expect(pgTextValue(null, NUMERIC_19_4)).toBeNull();
  });
});

describe('LSN text', () => {
  it('parses both the server’s and the padded form, and prints the server’s', () => {
    expect(parseLsn('16/B374D848')).toBe(0x16b374d848n);
    expect(canonicalLsn('00000016/0B374D84')).toBe('16/B374D84');
    expect(formatLsn(0n)).toBe('0/0');
    expect(() => parseLsn('16-B374D848')).toThrow(RangeError);
  });
});

describe('parsePostgresUrl', () => {
  it('reads the connection of a postgres:// URL and rejects other URLs with a ConfigError', () => {
    expect(parsePostgresUrl('postgres://cqrs:s%40cret@127.0.0.1:5433/legacy_bank')).toEqual({
      host: '127.0.0.1',
      port: 5433,
      user: 'cqrs',
      password: 's@cret',
      database: 'legacy_bank',
    });
    expect(parsePostgresUrl('postgresql://u@db/bank').port).toBe(5432);
    expect(() => parsePostgresUrl('mysql://cqrs:cqrs@127.0.0.1:3307/legacy_bank')).toThrow(ConfigError);
    expect(() => parsePostgresUrl('postgres://cqrs:secret@127.0.0.1:5433/')).toThrow(/database/);
    expect(() => parsePostgresUrl('postgres://cqrs:secret@127.0.0.1:5433/')).not.toThrow(/secret/);
  });
});

describe('pgoutputConfigFromUrl', () => {
  it('names the slot after the logical server name, within the server’s slot-name rule', () => {
    const config = pgoutputSourceConfigSchema.parse(
      pgoutputConfigFromUrl('postgres://cqrs:cqrs@127.0.0.1:5433/legacy_bank', {
        name: 'Legacy-Bank.eu',
        tables: ['accounts'],
      }),
    );
    expect(config).toMatchObject({
      database: 'legacy_bank',
      port: 5433,
      slotName: 'cqrs_legacy_bank_eu',
      tables: ['accounts'],
    });
    expect(pgoutputSourceConfigSchema.parse(pgoutputConfigFromUrl('postgres://u:p@h/db')).slotName).toBe(
      'cqrs_legacy',
    );
  });
});

describe('PgTypeResolver: DOMAIN columns typed by their base type', () => {
  // year AS integer (32301), later_year AS year (32302), price AS numeric(5,2) (32304), an enum (32310).
  const catalog: DomainStep[] = [
    { oid: 32301, baseOid: 23, baseTypeMod: -1 },
    { oid: 32302, baseOid: 32301, baseTypeMod: -1 },
    { oid: 32304, baseOid: 1700, baseTypeMod: ((5 << 16) | 2) + 4 },
  ];

  it('follows domain chains once per type, never for built-in types', async () => {
    const asked: number[][] = [];
    const resolver = new PgTypeResolver(async (oids) => {
      asked.push(oids);
      return catalog.filter((s) => oids.includes(s.oid) || s.oid === 32301);
    });
    const columns = [t(23), t(32302), t(32304), t(32310), t(1700, NUMERIC_19_4.typeMod)];
    expect(resolver.needs(columns)).toBe(true);
    await resolver.load(columns);
    expect(asked).toEqual([[32302, 32304, 32310]]);
    expect(resolver.needs(columns)).toBe(false);
    await resolver.load([...columns, t(32301)]);
    expect(asked).toHaveLength(1);
    expect(resolver.base(t(32302))).toEqual(t(23));
    expect(resolver.base(t(32301))).toEqual(t(23));
    expect(resolver.base(t(32304))).toEqual(t(1700, ((5 << 16) | 2) + 4));
    expect(resolver.base(t(32310))).toEqual(t(32310));
    expect(resolver.base(t(25))).toEqual(t(25));
    expect(pgTextValue('2006', resolver.base(t(32302)))).toBe(2006);
    expect(pgTextValue('2', resolver.base(t(32304)))).toBe('2.00');
  });
});
