import { describe, expect, it } from 'vitest';
import { columnFromType } from '../../connectors/binlog/normalize.js';
import { keysetAfter, quoteIdent, selectList } from '../../connectors/binlog/snapshot.js';

describe('snapshot SQL', () => {
  it('pages a single-column key with a plain range', () => {
    expect(keysetAfter(['id'])).toEqual({ sql: '`id` > ?', valueIndexes: [0] });
  });

  it('spells out the keyset condition of a composite key, with the values in placeholder order', () => {
    expect(keysetAfter(['a', 'b', 'c'])).toEqual({
      sql: '`a` > ? OR (`a` = ? AND (`b` > ? OR (`b` = ? AND (`c` > ?))))',
      valueIndexes: [0, 0, 1, 1, 2],
    });
  });

  it('quotes identifiers, backticks included', () => {
    expect(quoteIdent('we`ird')).toBe('`we``ird`');
  });

  it('reads FLOAT widened to DOUBLE so the exact single-precision value arrives', () => {
    const table = {
      name: 't',
      columns: [columnFromType('id', 'int(11)'), columnFromType('f', 'float')],
      primaryKey: ['id'],
      estimatedRows: 0,
    };
    expect(selectList(table)).toBe('`id`, (`f` + 0e0) AS `f`');
  });
});
