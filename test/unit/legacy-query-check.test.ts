import { describe, expect, it } from 'vitest';
import { namedParamsOf } from '../../connectors/legacy/named-params.js';
import {
  invalidQueriesError,
  legacyQueriesOf,
  statementToPrepare,
} from '../../connectors/legacy/query-check.js';
import { DefinitionError } from '../../lib/errors.js';
import { notesMigration } from '../integration/support/notes.js';

const migration = notesMigration('body', { functions: true });

describe('legacy query check (the pure parts)', () => {
  it('lists the SQL texts to check and the functions it cannot check', () => {
    const { sql, functions } = legacyQueriesOf(migration);
    expect(sql.map((q) => q.what)).toEqual(['notes.get', 'notes.get (reconcile)']);
    expect(functions).toEqual(['notes.computed', 'notes.computed (reconcile)']);
  });

  it('finds named parameters once each, skipping literals, comments and casts', () => {
    expect(
      namedParamsOf("SELECT ':no', x::text FROM t WHERE a = :a AND b = :b OR a = :a -- :c", 'postgres'),
    ).toEqual(['a', 'b']);
    expect(namedParamsOf('SELECT `:no` FROM t WHERE a = :a # :c', 'mysql')).toEqual(['a']);
  });

  it('turns the named parameters into the placeholders the server prepares', () => {
    expect(statementToPrepare('SELECT * FROM t WHERE a = :a AND b = :b OR a = :a', 'mysql')).toBe(
      'SELECT * FROM t WHERE a = ? AND b = ? OR a = ?',
    );
    expect(statementToPrepare('SELECT * FROM t WHERE a = :a AND b = :b OR a = :a', 'postgres')).toBe(
      'SELECT * FROM t WHERE a = $1 AND b = $2 OR a = $1',
    );
    expect(statementToPrepare({ postgres: 'SELECT now()', mysql: 'SELECT NOW()' }, 'mysql')).toBe(
      'SELECT NOW()',
    );
    expect(() => statementToPrepare({ postgres: 'SELECT now()' }, 'mysql')).toThrow(DefinitionError);
  });

  it('names every rejected endpoint, the server message and the fix', () => {
    const err = invalidQueriesError(
      [
        { what: 'notes.get', message: "Unknown column 'title' in 'field list'" },
        { what: 'notes.list', message: 'syntax error' },
      ],
      './migration.ts',
    );
    expect(err.code).toBe('LEGACY_QUERY_INVALID');
    expect(err.message).toBe(
      "2 legacy queries do not match the legacy database's schema: notes.get: Unknown column 'title' in 'field list'; notes.list: syntax error",
    );
    expect(err.hint).toMatch(/in \.\/migration\.ts .*legacy\.checkQueries to false/);
  });
});
