import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/**
 * package.json's version. Found by walking up from this module, since it is one level up in
 * the source tree (lib/) and two in the build (dist/lib/), and resolveJsonModule would copy
 * package.json into dist/.
 */
export function packageVersion(): string {
  for (const rel of ['../package.json', '../../package.json']) {
    const path = fileURLToPath(new URL(rel, import.meta.url));
    if (!existsSync(path)) continue;
    const pkg = JSON.parse(readFileSync(path, 'utf8')) as { name?: unknown; version?: unknown };
    if (pkg.name === 'cqrs-migrate' && typeof pkg.version === 'string') return pkg.version;
  }
  return '0.0.0-unknown';
}
