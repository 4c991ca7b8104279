import { z } from 'zod';

/**
 * PostgreSQL log sequence numbers. The server's text form is two hex halves without padding,
 * "16/B374D848"; pg-logical-replication pads them ("00000016/B374D848"). Both parse here and
 * every LSN this reader reports or stores is in the server's form.
 */

const LSN_TEXT = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/;

export const lsnSchema = z.string().regex(LSN_TEXT, 'expected an LSN like "16/B374D848"');

export function parseLsn(text: string): bigint {
  const m = LSN_TEXT.exec(text);
  if (m === null) throw new RangeError(`not an LSN: "${text}"`);
  return (BigInt(`0x${m[1]}`) << 32n) | BigInt(`0x${m[2]}`);
}

export function formatLsn(lsn: bigint): string {
  return `${(lsn >> 32n).toString(16).toUpperCase()}/${(lsn & 0xffffffffn).toString(16).toUpperCase()}`;
}

/** The server's text form of an LSN given in any accepted form. */
export function canonicalLsn(text: string): string {
  return formatLsn(parseLsn(text));
}
