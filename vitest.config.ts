import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 180_000,
    // Integration tests share one MariaDB instance and the machine has two cores:
    // files run one at a time so timings and binlog streams stay predictable.
    fileParallelism: false,
    reporters: ['default'],
  },
});
