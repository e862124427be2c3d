// What the bridge asks of a Mastra server (issue 9 #3): a counting HTTP proxy in front of the demo server (its own
// LibSQL store, Mastra's traces stored) sees every request the bridge sends for a known workload. The README's
// "What the bridge asks of Mastra" table states the same budget.
import { mkdtempSync, rmSync } from 'node:fs';
import { type IncomingMessage, type Server, type ServerResponse, createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type BridgeHandle, startBridge } from '../src/bridge.js';
import { type DemoServer, startDemoServer } from '../demo/server.js';
import { DEMO_TOOL_NAMES } from '../demo/app.js';
import { toolInstruction } from '../demo/model.js';
import { scrape, total } from './support/metrics-text.js';
import { waitFor } from './support/poll.js';

const RUNS = 6;

/** Forwards everything to `target` (SSE included, streamed) and counts requests by route. */
async function countingProxy(target: string): Promise<{ url: string; counts: Map<string, number>; close(): Promise<void> }> {
  const counts = new Map<string, number>();
  const t = new URL(target);
  const route = (path: string): string => {
    const [p, q = ''] = path.split('?');
    const params = new URLSearchParams(q);
    if (p === '/api/background-tasks/stream') return 'GET stream';
    if (p === '/api/background-tasks') return `GET listTasks${params.get('status') ? ` status=${params.get('status')}` : params.get('dateFilterBy') ? ` ${params.get('dateFilterBy')} scan` : ''}`;
    if (p!.startsWith('/api/background-tasks/')) return 'GET getTask';
    if (p === '/api/observability/traces') return `GET listTraces${params.has('runId') ? ' by runId' : ''}`;
    if (p === '/api/observability/traces/light') return `GET listTraces light${params.has('startedAt') ? ' by start time' : ''}`;
    if (/^\/api\/observability\/traces\/[^/]+$/.test(p!)) return 'GET getTrace';
    return `other ${p}`;
  };
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const key = route(req.url ?? '');
    counts.set(key, (counts.get(key) ?? 0) + 1);
    const upstream = request({ host: t.hostname, port: t.port, path: req.url, method: req.method, headers: req.headers }, (up) => {
      res.writeHead(up.statusCode ?? 502, up.headers);
      res.flushHeaders(); // an SSE stream sends its headers before any event
      up.pipe(res);
    });
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    counts,
    close: () => {
      server.closeAllConnections();
      return new Promise((r) => server.close(() => r()));
    },
  };
}

describe('requests the bridge sends to a Mastra server', () => {
  let dir: string;
  let demo: DemoServer;
  let proxy: Awaited<ReturnType<typeof countingProxy>>;
  let bridge: BridgeHandle;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'budget-'));
    // Mastra's storage exporter writes spans within 100 ms (the demo's batch wait); each task runs ~1.2 s, so its
    // tool_call span is stored long before the task ends and one lookup finds it.
    demo = await startDemoServer({ host: '127.0.0.1', port: 0, rate: 0, storageUrl: `file:${join(dir, 'mastra.db')}`, logger: false });
    proxy = await countingProxy(demo.url);
    bridge = startBridge({
      logger: pino({ level: 'silent' }),
      config: {
        source: { mastraUrl: proxy.url },
        otel: { tracesExporter: 'none' },
        metrics: { defaultMetrics: false },
        // One reconciliation pass (after connect) during the test.
        reconcile: { intervalSeconds: 3600 },
      },
    });
    await bridge.whenReady(30_000);
  }, 60_000);

  afterAll(async () => {
    await bridge?.close();
    await proxy?.close();
    await demo?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it(`${RUNS} agent runs with one background task each: one getTask and one trace read a task, trace ids from shared listings`, async () => {
    for (let i = 0; i < RUNS; i++) {
      const prompt = toolInstruction(DEMO_TOOL_NAMES.complete, { topic: `t${i}`, chunks: 4, stepMs: 300 });
      const out = await demo.mastra.getAgentById('research-agent').stream(prompt, { memory: { thread: `budget-${i}`, resource: 'budget' } });
      for await (const _ of out.fullStream as AsyncIterable<unknown>) void _;
    }
    await waitFor(async () => total(await scrape(bridge.app), 'mastra_background_task_finished_total') === RUNS, {
      timeoutMs: 60_000,
      message: `${RUNS} finished tasks counted`,
    });
    await bridge.idle(); // placement lookups done
    const counts = Object.fromEntries([...proxy.counts.entries()].sort());
    // The runs' trace ids come from root listings by start time, shared by the runs whose lookups fall in one
    // 500 ms window: the runs overlap (each task runs ~1.2 s), so there are between one and RUNS of them.
    const listings = counts['GET listTraces light by start time'];
    expect(listings).toBeGreaterThanOrEqual(1);
    expect(listings).toBeLessThanOrEqual(RUNS);
    delete counts['GET listTraces light by start time'];
    expect(counts).toEqual({
      'GET stream': 1,
      // The reconciliation pass after connect: running and suspended tasks, the completed scan, pending tasks.
      'GET listTasks status=running': 1,
      'GET listTasks status=suspended': 1,
      'GET listTasks completedAt scan': 1,
      'GET listTasks status=pending': 1,
      // Per task: one record lookup (enrichment) and one read of the run's trace; no list by runId (every run was
      // in a listing).
      'GET getTask': RUNS,
      'GET getTrace': RUNS,
    });
    expect(total(await scrape(bridge.app), 'mastra_task_bridge_enrichment_failures_total')).toBe(0);
  }, 120_000);
});
