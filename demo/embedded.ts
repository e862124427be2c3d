// The embedded demo as the CLI runs it when no MASTRA_URL is set (src/embedded-demo.ts loads this file by path, only
// in a source checkout: demo/ is not part of the published package). It must match EmbeddedDemoModule there; the
// typecheck holds it to that (test/demo.test.ts).
import { createDemoMastra, shutdownDemoMastra } from './app.js';
import { startWorkload } from './workload.js';

export function createEmbeddedDemo() {
  const mastra = createDemoMastra();
  return {
    mastra,
    startWorkload: (opts: { ratePerSecond: number; onError: (err: unknown) => void }) => startWorkload(mastra, opts),
    shutdown: () => shutdownDemoMastra(mastra),
  };
}
