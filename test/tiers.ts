// The test tiers (vitest projects, vitest.config.ts). Unit is every test file not listed here: seconds, no system
// binaries, no Mastra (test/tiers.test.ts holds unit files to that). Integration starts real Mastra (in process, as
// HTTP servers, as child processes) and other Node processes. System runs Debian binaries (Prometheus, promtool,
// Alertmanager, Chromium, docker-compose, PostgreSQL), the Go-built peers (Jaeger) or the npm registry; a missing binary skips visibly, or fails under CI
// (test/support/system.ts).
//   npm run test:unit | test:integration | test:system      npm test = typecheck + all three

export const INTEGRATION_TESTS = [
  'test/api-config.test.ts',
  'test/api-remote.e2e.test.ts',
  'test/api-tasks.test.ts',
  'test/cli.e2e.test.ts',
  'test/config.test.ts',
  'test/demo.test.ts',
  'test/events-api.e2e.test.ts',
  'test/events-heavy.e2e.test.ts',
  'test/harness-otlp.test.ts',
  'test/inprocess.e2e.test.ts',
  'test/load.e2e.test.ts',
  'test/otlp-protocol.e2e.test.ts',
  'test/remote-restarts.e2e.test.ts',
  'test/request-budget.e2e.test.ts',
  'test/remote-stream.test.ts',
  'test/remote.e2e.test.ts',
  'test/versions.test.ts',
];

export const SYSTEM_TESTS = [
  'test/board.browser.test.ts',
  'test/fleet.e2e.test.ts',
  'test/harness-prometheus.test.ts',
  'test/jaeger.e2e.test.ts',
  'test/ops-alerts.test.ts',
  'test/ops-dashboards.test.ts',
  'test/ops-static.test.ts',
  'test/package.e2e.test.ts',
  'test/prometheus.e2e.test.ts',
];
