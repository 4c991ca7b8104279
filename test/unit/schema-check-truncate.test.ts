import { describe, expect, it } from 'vitest';
import { isTruncate, truncateHint } from '../../connectors/mapping/schema-check.js';

describe('isTruncate', () => {
  it.each([
    'TRUNCATE TABLE items',
    'truncate items',
    '  /* app: cleanup */ TRUNCATE `shop`.`items`',
    'TRUNCATE public.items CASCADE',
  ])('is a truncate: %s', (ddl) => expect(isTruncate(ddl)).toBe(true));

  it.each([
    'ALTER TABLE items ADD COLUMN truncated INT',
    'DROP TABLE truncate_log',
    'relation public.items changed: (id, name) → (id, title)',
    'TRUNCATED',
  ])('is not: %s', (ddl) => expect(isTruncate(ddl)).toBe(false));
});

describe('truncateHint', () => {
  it('names the command that re-captures the table', () => {
    expect(truncateHint('order_items')).toContain('cqrs-migrate resnapshot --table order_items --force');
  });
});
