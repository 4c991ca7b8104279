import type { TableMapEntry } from '@vlasky/zongji';
import { describe, expect, it } from 'vitest';
import { repairCharsets } from '../../connectors/binlog/geometry-charsets.js';

/** What zongji 0.9.0 builds for (id INT, g POINT, vb VARBINARY(4), note VARCHAR(10), tail VARBINARY(4)). */
function misaligned(): TableMapEntry {
  const schema = (name: string, type: string, charset: string | null) => ({
    COLUMN_NAME: name,
    COLUMN_TYPE: type,
    CHARACTER_SET_NAME: charset,
    COLLATION_NAME: null,
    COLUMN_COMMENT: '',
  });
  const columnSchemas = [
    schema('id', 'int', null),
    schema('g', 'point', null),
    // Each character column after the POINT took its predecessor's charset.
    schema('vb', 'varbinary(4)', null),
    schema('note', 'varbinary(10)', null),
    schema('tail', 'varchar(4)', 'latin1'),
  ];
  return {
    parentSchema: 'db',
    tableName: 't',
    columnSchemas,
    columns: columnSchemas.map((s) => ({
      name: s.COLUMN_NAME,
      charset: s.CHARACTER_SET_NAME,
      type: 0,
      metadata: {},
    })),
  };
}

describe('repairCharsets: the charsets of character columns after a GEOMETRY one', () => {
  it('gives text columns their charset and binary ones none, as information_schema has them', () => {
    const entry = misaligned();
    repairCharsets(entry, [
      { name: 'id', columnType: 'int(11)', charset: null },
      { name: 'g', columnType: 'point', charset: null },
      { name: 'vb', columnType: 'varbinary(4)', charset: null },
      { name: 'note', columnType: 'varchar(10)', charset: 'latin1' },
      { name: 'tail', columnType: 'varbinary(4)', charset: null },
    ]);
    expect(entry.columnSchemas.map((s) => [s.COLUMN_NAME, s.COLUMN_TYPE, s.CHARACTER_SET_NAME])).toEqual([
      ['id', 'int', null],
      ['g', 'point', null],
      ['vb', 'varbinary(4)', null],
      ['note', 'varchar(10)', 'latin1'],
      ['tail', 'varbinary(4)', null],
    ]);
    expect(entry.columns?.map((c) => c.charset)).toEqual([null, null, null, 'latin1', null]);
  });

  it('leaves a column information_schema does not list (dropped since) as zongji read it', () => {
    const entry = misaligned();
    repairCharsets(entry, [{ name: 'note', columnType: 'varchar(10)', charset: 'utf8mb4' }]);
    expect(entry.columns?.map((c) => c.charset)).toEqual([null, null, null, 'utf8mb4', 'latin1']);
  });
});
