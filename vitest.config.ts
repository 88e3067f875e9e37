import { defineConfig } from 'vitest/config';

/**
 * The smoke subset (`npm run test:smoke`, and CI on Node 24): the unit tests, one run, one
 * refresh, and each store kind.
 */
const smoke = [
  'tests/unit/**/*.test.ts',
  'tests/integration/services.smoke.test.ts',
  'tests/integration/incremental-load.test.ts',
  'tests/integration/swap-refresh.test.ts',
  'tests/integration/stores-*.test.ts',
];

export default defineConfig({
  test: {
    include: process.env.AUTOLOADER_TEST_SET === 'smoke' ? smoke : ['tests/**/*.test.ts'],
    // One Temporal dev server, Postgres and MinIO shared by every test file.
    globalSetup: ['./tests/global-setup.ts'],
    // Each test process: the Temporal SDK's own logging from ERROR up.
    setupFiles: ['./tests/setup-runtime.ts'],
    // Integration tests run real workflows against real services.
    testTimeout: 120_000,
    hookTimeout: 180_000,
    teardownTimeout: 60_000,
    // Forks, not threads: the Temporal worker's native core and postgres.js
    // sockets are happier in a process of their own.
    pool: 'forks',
    // Files still run in parallel, but only two at a time on the 2-core CI
    // machine that also hosts the three services.
    fileParallelism: true,
    maxWorkers: 2,
    minWorkers: 1,
  },
});
