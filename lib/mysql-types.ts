/**
 * Type options shared by every mysql2 connection of the adapter: the legacy query path,
 * the snapshot reader and the binlog reader (zongji reads the same options), so a value
 * looks the same whichever path it came through.
 * - DECIMAL stays an exact string ("12.3400"), never a float.
 * - DATETIME/DATE/TIMESTAMP stay strings with their full fractional digits
 *   ("2024-05-01 09:30:00.123456"): a JS Date would cut microseconds.
 * - BIGINT is a number while it is a safe integer, a string beyond 2^53.
 * - JSON stays the text the server stored: parsing it would round big numbers.
 */
export const MYSQL_TYPE_OPTIONS = {
  dateStrings: true,
  decimalNumbers: false,
  supportBigNumbers: true,
  bigNumberStrings: false,
  jsonStrings: true,
  timezone: 'Z',
} as const;
