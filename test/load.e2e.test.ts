// The load run (bench/load.ts, `npm run load`) for 2 s per endpoint: the task API and /metrics under concurrent
// requests while the demo workload runs answer every request with a 2xx. No timing assertions (two shared cores);
// the numbers are printed for the record.
import { describe, expect, it } from 'vitest';
import { runLoad } from '../bench/load.js';

describe('load run', () => {
  it('serves /api/tasks and /metrics under load during the workload with no errors and no non-2xx', async () => {
    const report = await runLoad({ seconds: 2, connections: 4, taskRate: 3 });
    console.log(JSON.stringify(report));
    for (const e of report.endpoints) {
      expect(e.requests, e.endpoint).toBeGreaterThan(0);
      expect({ errors: e.errors, timeouts: e.timeouts, non2xx: e.non2xx }, e.endpoint).toEqual({ errors: 0, timeouts: 0, non2xx: 0 });
    }
    // The cache kept Mastra's share of the lookups small.
    expect(report.cache.miss).toBeLessThan(report.cache.hit);
  });
});
