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
import { BATCH_MAX_SPAN_MS } from '../src/enrichment.js';
import { type DemoServer, startDemoServer } from '../demo/server.js';
import { DEMO_TOOL_NAMES } from '../demo/app.js';
import { toolInstruction } from '../demo/model.js';
import { scrape, total } from './support/metrics-text.js';
import { waitFor } from './support/poll.js';

const RUNS = 6;

interface CountingProxy {
  url: string;
  counts: Map<string, number>;
  /** Hold the SSE stream's bytes until release(): the bridge then sees everything held at once. */
  hold(): void;
  release(): void;
  close(): Promise<void>;
}

/** Forwards everything to `target` (SSE included, streamed) and counts requests by route. */
async function countingProxy(target: string): Promise<CountingProxy> {
  const counts = new Map<string, number>();
  let held: Buffer[] | undefined;
  const streams = new Set<ServerResponse>();
  const t = new URL(target);
  const route = (path: string): string => {
    const [p, q = ''] = path.split('?');
    const params = new URLSearchParams(q);
    if (p === '/api/background-tasks/stream') return 'GET stream';
    // Enrichment's batches ask for a closed date window (toDate); reconciliation's scan is open-ended.
    if (p === '/api/background-tasks') return `GET listTasks${params.get('status') ? ` status=${params.get('status')}` : params.get('dateFilterBy') ? ` ${params.get('dateFilterBy')} ${params.has('toDate') ? 'window' : 'scan'}` : ''}`;
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
      if (key !== 'GET stream') {
        up.pipe(res);
        return;
      }
      streams.add(res);
      res.once('close', () => streams.delete(res));
      up.on('data', (c: Buffer) => (held ? held.push(c) : res.write(c)));
      up.on('end', () => res.end());
    });
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    counts,
    hold: () => void (held ??= []),
    release: () => {
      const bytes = Buffer.concat(held ?? []);
      held = undefined;
      for (const res of streams) res.write(bytes);
    },
    close: () => {
      server.closeAllConnections();
      return new Promise((r) => server.close(() => r()));
    },
  };
}

describe('requests the bridge sends to a Mastra server', () => {
  let dir: string;
  let demo: DemoServer;
  let proxy: CountingProxy;
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
        // Batched lookups are opt-in (a date window scans Mastra's task table): on here so both kinds are counted.
        enrichment: { batchWindowMs: 200 },
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

  const finished = async (): Promise<number> => total(await scrape(bridge.app), 'mastra_background_task_finished_total');
  const run = async (i: number, resource: string): Promise<void> => {
    const prompt = toolInstruction(DEMO_TOOL_NAMES.complete, { topic: `t${i}`, chunks: 4, stepMs: 300 });
    const out = await demo.mastra.getAgentById('research-agent').stream(prompt, { memory: { thread: `${resource}-${i}`, resource } });
    for await (const _ of out.fullStream as AsyncIterable<unknown>) void _;
  };

  it(`${RUNS} agent runs one after another: one getTask and one trace read a task, trace ids from shared listings`, async () => {
    // An agent run's stream ends once its task is dispatched: each run waits for the previous task's count, so every
    // first-sight lookup is alone in its batch window (enrichment.batchWindowMs, 200 ms; a task runs ~1.2 s) and is
    // sent as a getTask.
    for (let i = 0; i < RUNS; i++) {
      await run(i, 'budget');
      await waitFor(async () => (await finished()) === i + 1, { timeoutMs: 60_000, message: `task ${i + 1} counted` });
    }
    await bridge.idle(); // placement lookups done
    const counts = Object.fromEntries([...proxy.counts.entries()].sort());
    // The runs' trace ids come from root listings by start time, shared by the runs whose lookups fall in one
    // 500 ms window: between one and RUNS of them.
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

  it(`${RUNS} tasks first seen together: their lookups are one listTasks window (clusters of one: a getTask)`, async () => {
    const before = new Map(proxy.counts);
    const delta = (key: string): number => (proxy.counts.get(key) ?? 0) - (before.get(key) ?? 0);
    // The stream is held while the runs start, so the bridge sees their `running` frames at once (as it would a burst
    // of tasks): one batch window gathers them all, whatever the machine's speed.
    proxy.hold();
    await Promise.all(Array.from({ length: RUNS }, (_, i) => run(i, 'budget-burst')));
    const manager = demo.mastra.backgroundTaskManager!;
    const started = async (): Promise<number[]> =>
      ((await manager.listTasks({ resourceId: 'budget-burst' })).tasks as { startedAt?: Date }[]).flatMap((t) => (t.startedAt ? [t.startedAt.getTime()] : []));
    await waitFor(async () => (await started()).length === RUNS, { timeoutMs: 60_000, message: `${RUNS} burst tasks started` });
    // The windows follow from the stored starts (the bridge's rule: a window spans at most 2 s): usually one.
    const starts = (await started()).sort((a, b) => a - b);
    const clusters: number[][] = [];
    for (const at of starts) {
      const last = clusters.at(-1);
      if (last && at - last[0]! <= BATCH_MAX_SPAN_MS) last.push(at);
      else clusters.push([at]);
    }
    proxy.release();
    await waitFor(async () => (await finished()) === 2 * RUNS, { timeoutMs: 60_000, message: `${RUNS} burst tasks counted` });
    await bridge.idle();
    expect({ windows: delta('GET listTasks startedAt window'), getTask: delta('GET getTask'), completedAtWindows: delta('GET listTasks completedAt window') }).toEqual({
      windows: clusters.filter((c) => c.length > 1).length,
      getTask: clusters.filter((c) => c.length === 1).length,
      // Each record was read while its task ran and is not stale (no retries): no lookup at the end.
      completedAtWindows: 0,
    });
    expect(clusters.length).toBeLessThan(RUNS); // at least one window really answered several tasks
    expect(total(await scrape(bridge.app), 'mastra_task_bridge_enrichment_failures_total')).toBe(0);
  }, 120_000);
});
