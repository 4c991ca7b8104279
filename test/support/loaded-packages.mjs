// Preloaded (--import) by the CLI start-up test: at exit, prints the npm packages the process
// loaded through the CommonJS loader, which is also where an ESM import of a CommonJS package
// (kafkajs, mongodb, the OpenSearch client, DuckDB's bindings) lands.
import { writeSync } from 'node:fs';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

process.on('exit', () => {
  const packages = new Set();
  for (const file of Object.keys(require.cache)) {
    const found = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(file);
    if (found) packages.add(found[1]);
  }
  writeSync(2, `\nLOADED_PACKAGES ${JSON.stringify([...packages].sort())}\n`);
});
