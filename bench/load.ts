// A short, bounded load run of the task API and /metrics on a listening bridge while the demo workload runs.
//
//   npm run load                   (LOAD_SECONDS=10 LOAD_CONNECTIONS=10 by default)
//
// A real Mastra in process (demo agents, mock model) starts tasks at LOAD_TASK_RATE per second; the bridge listens on
// 127.0.0.1 with an API token and its default cache (1 s TTL), rate limiter on but set high enough not to refuse one
// client (its cost is measured, not its 429s). autocannon hits `/api/tasks` (cycling through a few filters) for the
// duration, then `/metrics`. Prints a table per endpoint and, last, one JSON line. Exit code 1 on any error or non-2xx.

import { randomBytes } from 'node:crypto';
import { realpathSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import pino from 'pino';
import { startBridge } from '../src/bridge.js';
import { createDemoMastra, shutdownDemoMastra } from '../demo/app.js';
import { startWorkload } from '../demo/workload.js';

export interface EndpointReport {
  endpoint: string;
  requests: number;
  reqPerSec: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  errors: number;
  timeouts: number;
  non2xx: number;
}

export interface LoadReport {
  seconds: number;
  connections: number;
  tasksStarted: number;
  endpoints: EndpointReport[];
  /** Lookups the API sent to Mastra vs answered from its cache, during the run. */
  cache: { hit: number; miss: number };
}

export interface LoadOptions {
  seconds?: number;
  connections?: number;
  taskRate?: number;
  log?: (line: string) => void;
}

const API_PATHS = ['/api/tasks', '/api/tasks?status=completed', '/api/tasks?perPage=100', '/api/tasks?agentId=ops-agent&status=failed,timed_out'];

export async function runLoad(opts: LoadOptions = {}): Promise<LoadReport> {
  const seconds = opts.seconds ?? 10;
  const connections = opts.connections ?? 10;
  const log = opts.log ?? (() => undefined);
  const token = randomBytes(24).toString('hex');
  const mastra = createDemoMastra({ observability: false });
  const bridge = startBridge({
    mastra,
    mode: 'demo',
    logger: pino({ level: 'warn' }),
    config: { api: { tokens: [token], rateLimit: { max: 1_000_000_000 } } },
  });
  const workload = startWorkload(mastra, { ratePerSecond: opts.taskRate ?? 5, onError: () => undefined });
  try {
    const address = await bridge.app.listen({ host: '127.0.0.1', port: 0 });
    await bridge.whenReady();
    // Something to list before the clock starts.
    const deadline = Date.now() + 10_000;
    while ((await mastra.backgroundTaskManager!.listTasks({ perPage: 1 })).total < 5 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    const cacheBefore = await cacheCounts(bridge.app);

    const endpoints: EndpointReport[] = [];
    for (const [endpoint, requests] of [
      ['/api/tasks', API_PATHS.map((path) => ({ path }))],
      ['/metrics', [{ path: '/metrics' }]],
    ] as const) {
      log(`load: ${endpoint} for ${seconds} s, ${connections} connections…`);
      const r = await autocannon({
        url: address,
        connections,
        duration: seconds,
        timeout: 10,
        // The load generator gets its own thread (event loop): it must not compete with the bridge it measures.
        workers: 1,
        headers: { authorization: `Bearer ${token}`, accept: 'application/openmetrics-text; version=1.0.0, text/plain;q=0.5' },
        requests: [...requests],
      });
      endpoints.push({
        endpoint,
        requests: r.requests.total,
        reqPerSec: Math.round(r.requests.average),
        p50Ms: r.latency.p50,
        p99Ms: r.latency.p99,
        maxMs: r.latency.max,
        errors: r.errors,
        timeouts: r.timeouts,
        non2xx: r.non2xx,
      });
    }
    const cacheAfter = await cacheCounts(bridge.app);
    return {
      seconds,
      connections,
      tasksStarted: workload.started(),
      endpoints,
      cache: { hit: cacheAfter.hit - cacheBefore.hit, miss: cacheAfter.miss - cacheBefore.miss },
    };
  } finally {
    await workload.stop();
    await bridge.close();
    await shutdownDemoMastra(mastra);
  }
}

async function cacheCounts(app: ReturnType<typeof startBridge>['app']): Promise<{ hit: number; miss: number }> {
  const text = (await app.inject({ url: '/metrics', headers: { accept: 'text/plain' } })).body;
  const read = (result: string) => Number(new RegExp(`^mastra_task_bridge_api_cache_total\\{result="${result}"\\} (\\S+)$`, 'm').exec(text)?.[1] ?? 0);
  return { hit: read('hit'), miss: read('miss') };
}

function isMain(): boolean {
  try {
    return realpathSync(resolve(process.argv[1] ?? '')) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isMain()) {
  const env = (name: string, def: number) => (process.env[name] ? Number(process.env[name]) : def);
  runLoad({ seconds: env('LOAD_SECONDS', 10), connections: env('LOAD_CONNECTIONS', 10), taskRate: env('LOAD_TASK_RATE', 5), log: (l) => console.error(l) }).then(
    (report) => {
      console.log('endpoint       requests  req/s   p50 ms  p99 ms  max ms  errors  timeouts  non-2xx');
      for (const e of report.endpoints) {
        console.log(
          `${e.endpoint.padEnd(14)} ${String(e.requests).padStart(8)} ${String(e.reqPerSec).padStart(6)} ${String(e.p50Ms).padStart(8)} ${String(e.p99Ms).padStart(7)} ${String(e.maxMs).padStart(7)} ${String(e.errors).padStart(7)} ${String(e.timeouts).padStart(9)} ${String(e.non2xx).padStart(8)}`,
        );
      }
      console.log(`cache during the run: ${report.cache.hit} hits, ${report.cache.miss} lookups sent to Mastra; demo tasks started: ${report.tasksStarted}`);
      console.log(JSON.stringify(report));
      const bad = report.endpoints.some((e) => e.errors + e.timeouts + e.non2xx > 0);
      setImmediate(() => process.exit(bad ? 1 : 0));
    },
    (error: unknown) => {
      console.error(error);
      process.exit(1);
    },
  );
}
