import { defineConfig } from 'vitest/config';
import { INTEGRATION_TESTS, SYSTEM_TESTS } from './test/tiers.js';

export default defineConfig({
  test: {
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Integration tests start real servers (Mastra, Prometheus, OTLP receiver); two cores, so keep files few at a time.
    maxWorkers: 2,
    reporters: process.env.CI ? ['default', ['json', { outputFile: 'test-results/vitest.json' }]] : ['default'],
    // Tiers (test/tiers.ts): `vitest run --project unit` is the fast loop; `vitest run` runs all three.
    projects: [
      { extends: true, test: { name: 'unit', include: ['test/**/*.test.ts'], exclude: [...INTEGRATION_TESTS, ...SYSTEM_TESTS] } },
      { extends: true, test: { name: 'integration', include: INTEGRATION_TESTS } },
      { extends: true, test: { name: 'system', include: SYSTEM_TESTS } },
    ],
  },
});
