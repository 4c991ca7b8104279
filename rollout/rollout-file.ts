import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { z } from 'zod';
import { ConfigError, errorMessage } from '../lib/errors.js';

/**
 * What the rollout keeps beside the flags (which stay the one truth about routing): per target,
 * whether it is held or retired and since when its current step runs. Written atomically
 * (temp file + rename) so a crash never leaves half a document.
 */
export const targetMetaSchema = z.strictObject({
  held: z.boolean().default(false),
  retired: z.boolean().default(false),
  /** ISO time the target's current step began. */
  since: z.iso.datetime(),
  /** The step (stage and canary share) `since` belongs to, e.g. "canary 10". */
  step: z.string(),
});
export type TargetMeta = z.infer<typeof targetMetaSchema>;

export const rolloutFileSchema = z.strictObject({
  targets: z.record(z.string(), targetMetaSchema).default({}),
});
export type RolloutFile = z.infer<typeof rolloutFileSchema>;

export function readRolloutFile(path: string): RolloutFile {
  if (!existsSync(path)) return { targets: {} };
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (cause) {
    throw new ConfigError(`rollout state ${path} is not JSON: ${errorMessage(cause)}`, {
      cause,
      hint: 'restore it from a backup, or delete it: every target then restarts its step clock, unheld',
    });
  }
  const parsed = rolloutFileSchema.safeParse(raw);
  if (!parsed.success) {
    throw new ConfigError(`rollout state ${path} is invalid: ${z.prettifyError(parsed.error)}`, {
      hint: 'restore it from a backup, or delete it: every target then restarts its step clock, unheld',
    });
  }
  return parsed.data;
}

export function writeRolloutFile(path: string, file: RolloutFile): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(file, null, 2)}\n`);
  renameSync(tmp, path);
}
