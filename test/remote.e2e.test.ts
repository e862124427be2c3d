// End to end on the remote source: a real Mastra HTTP server (the demo app under @mastra/hono, LibSQL file storage) in
// its own process, the bridge subscribed over SSE + REST, a real OTLP receiver decoding the official protobufs.
// Ground truth is Mastra's own storage read over its REST API, never through the bridge.
import { mkdtempSync, rmSync } from 'node:fs';
import { type Server, Socket, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type BridgeHandle, startBridge } from '../src/bridge.js';
import { runTraceId, taskSpanId } from '../src/span-ids.js';
import { MASTRA_CORE_VERSION, TOOL_CALL_SPANS_NEST } from './support/mastra-version.js';
import { type DemoProcess, dispatchTask, startDemoProcess } from './support/demo-process.js';

type Tool = Parameters<typeof dispatchTask>[1];
import { type StoredTask, TERMINAL, finishedByStatus, listAllTasks, ms, ns, spansByTask, terminalCounts } from './support/ground-truth.js';
import { scrape, total } from './support/metrics-text.js';
import { type OtlpReceiver, startOtlpReceiver } from './support/otlp-receiver.js';
import { freePort, waitFor } from './support/poll.js';

const silent = pino({ level: 'silent' });
const ALL_LIFECYCLES = 'complete=1,fail=1,timeout=1,cancel=1,suspend_resume=1';

function remoteBridge(mastraUrl: string, receiver: OtlpReceiver, extra: Record<string, unknown> = {}): BridgeHandle {
  return startBridge({
    logger: silent,
    config: {
      source: { mastraUrl, reconnect: { initialMs: 50, maxMs: 500 }, requestTimeoutMs: 5_000 },
      otel: { tracesEndpoint: receiver.tracesUrl, batch: { scheduledDelayMs: 50 } },
      metrics: { defaultMetrics: false },
      reconcile: { intervalSeconds: 1, overlapSeconds: 5 },
      ...extra,
    },
  });
}

/** Waits until Mastra has stored `n` tasks, all terminal, and returns them. */
async function settled(url: string, n: number, timeoutMs = 60_000): Promise<StoredTask[]> {
  return waitFor(
    async () => {
      const tasks = await listAllTasks(url);
      return tasks.length >= n && tasks.every((t) => TERMINAL.has(t.status)) ? tasks : undefined;
    },
    { timeoutMs, intervalMs: 250, message: `${n} stored tasks, all terminal` },
  );
}

/** Bridge counters equal the stored truth, and every task has its span. */
async function converged(bridge: BridgeHandle, receiver: OtlpReceiver, tasks: StoredTask[]): Promise<void> {
  const want = terminalCounts(tasks);
  await waitFor(async () => JSON.stringify(sorted(finishedByStatus(await scrape(bridge.app)))) === JSON.stringify(sorted(want)), {
    timeoutMs: 30_000,
    message: `finished_total == ${JSON.stringify(want)}`,
  });
  await bridge.tracing.forceFlush();
  await waitFor(() => tasks.every((t) => spansByTask(receiver.spans()).has(t.id)), { timeoutMs: 20_000, message: 'a span for every task' });
}

const sorted = (o: Record<string, number>) => Object.fromEntries(Object.entries(o).sort(([a], [b]) => a.localeCompare(b)));

describe('remote source against a real Mastra server: a workload with every lifecycle', () => {
  const TASKS = 15;
  let dir: string;
  let demo: DemoProcess;
  let receiver: OtlpReceiver;
  let bridge: BridgeHandle;
  let tasks: StoredTask[];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'bridge-remote-'));
    receiver = await startOtlpReceiver();
    // The bridge starts first, against a server that is not there yet (connection refused, retried with backoff):
    // whatever finishes before it connects is found by the reconciliation scan, the rest by the stream.
    const port = await freePort();
    bridge = remoteBridge(`http://127.0.0.1:${port}`, receiver);
    await waitFor(async () => total(await scrape(bridge.app), 'mastra_task_bridge_source_reconnects_total', { reason: 'refused' }) >= 1, {
      message: 'refused connection counted',
    });
    demo = await startDemoProcess({
      port,
      storageUrl: `file:${join(dir, 'mastra.db')}`,
      // Mastra's own agent traces go to the same collector (@mastra/otel-exporter), as they would to Jaeger.
      // Interleaved: each of the 3 agents is dealt each of the 5 lifecycles once, whatever the draw would have been.
      env: { DEMO_RATE: '5', DEMO_MAX_TASKS: String(TASKS), DEMO_MIX: ALL_LIFECYCLES, DEMO_ORDER: 'interleaved', OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url },
    });
    await bridge.whenReady(20_000);
    tasks = await settled(demo.url, TASKS);
    await converged(bridge, receiver, tasks);
  }, 180_000);

  afterAll(async () => {
    await bridge?.close();
    await demo?.kill();
    await receiver?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('stored every lifecycle (the workload is what it claims)', () => {
    expect(tasks).toHaveLength(TASKS);
    expect(new Set(tasks.map((t) => t.status))).toEqual(new Set(['completed', 'failed', 'timed_out', 'cancelled']));
  });

  it('exports exactly one span per task with the task’s own times and true status', () => {
    const byTask = spansByTask(receiver.spans());
    expect(byTask.size).toBe(TASKS);
    for (const task of tasks) {
      const spans = byTask.get(task.id) ?? [];
      expect(spans, `spans of ${task.id}`).toHaveLength(1);
      const span = spans[0]!;
      expect(span.spanId).toBe(taskSpanId(task.id));
      expect(span.name).toBe(`background_task ${task.toolName}`);
      expect(span.endTimeUnixNano).toBe(ns(ms(task.completedAt)));
      // Storage overwrites startedAt on resume: the span keeps the first start, which is never later.
      if (span.events.some((e) => e.name === 'resumed')) expect(span.startTimeUnixNano < ns(ms(task.startedAt))).toBe(true);
      else expect(span.startTimeUnixNano).toBe(ns(ms(task.startedAt)));
      expect(span.attributes['mastra.background_task.status']).toBe(task.status);
      expect(span.attributes['gen_ai.tool.call.id']).toBe(task.toolCallId);
      expect(span.attributes['mastra.metadata.runId']).toBe(task.runId);
      // thread comes from the one getTask lookup; a lookup that fails (e.g. times out on a starved machine) degrades
      // the span and is counted — checked below
      if (span.attributes['mastra.metadata.threadId'] !== undefined) expect(span.attributes['mastra.metadata.threadId']).toBe(task.threadId);
      const isError = task.status === 'failed' || task.status === 'timed_out';
      expect(span.status.code, task.status).toBe(isError ? 2 : 0);
      if (task.status === 'timed_out') expect(span.attributes['error.type']).toBe('timed_out');
      if (isError) expect(span.events.some((e) => e.name === 'exception')).toBe(true);
    }
  });

  it('spans lack the thread only where a lookup failure was counted', async () => {
    const missing = [...spansByTask(receiver.spans()).values()].filter(([s]) => s!.attributes['mastra.metadata.threadId'] === undefined).length;
    expect(missing).toBeLessThanOrEqual(total(await scrape(bridge.app), 'mastra_task_bridge_enrichment_failures_total'));
  });

  it('counts equal the stored truth (finished by status, started)', async () => {
    const samples = await scrape(bridge.app);
    expect(sorted(finishedByStatus(samples))).toEqual(sorted(terminalCounts(tasks)));
    expect(total(samples, 'mastra_background_task_started_total')).toBe(TASKS);
    expect(total(samples, 'mastra_background_task_duration_seconds_count')).toBe(TASKS);
    expect(total(samples, 'mastra_task_bridge_source_up')).toBe(1);
  });

  it.runIf(TOOL_CALL_SPANS_NEST)('places each task span under Mastra’s tool_call span of the agent run (read over HTTP)', async () => {
    for (const task of tasks) {
      const span = spansByTask(receiver.spans()).get(task.id)![0]!;
      const list = (await (await fetch(`${demo.url}/api/observability/traces?runId=${task.runId}`)).json()) as { spans: { traceId: string }[] };
      const traceId = list.spans[0]!.traceId;
      const trace = (await (await fetch(`${demo.url}/api/observability/traces/${traceId}`)).json()) as {
        spans: { spanId: string; spanType: string; attributes?: { toolCallId?: string } }[];
      };
      const toolCall = trace.spans.find((s) => s.spanType === 'tool_call' && s.attributes?.toolCallId === task.toolCallId);
      expect(toolCall, `tool_call span of ${task.id}`).toBeDefined();
      expect(span.traceId).toBe(traceId);
      expect(span.parentSpanId).toBe(toolCall!.spanId);
    }
  });
  it.runIf(!TOOL_CALL_SPANS_NEST)(`on Mastra ${MASTRA_CORE_VERSION} (tool_call spans without a tool call id) each task span falls back to its run’s trace`, () => {
    for (const task of tasks) {
      const span = spansByTask(receiver.spans()).get(task.id)![0]!;
      expect(span.traceId).toBe(runTraceId(task.runId));
      expect(span.parentSpanId).toBe('');
      expect(span.attributes['mastra.background_task.placement']).toBe('run');
    }
  });

  it.runIf(TOOL_CALL_SPANS_NEST)('in the collector, each task span’s parent is Mastra’s own exported execute_tool span: one trace per agent run', async () => {
    await demo.kill(); // Mastra flushes its exporter on shutdown
    const all = receiver.spans();
    const byId = new Map(all.map((s) => [s.spanId, s]));
    for (const task of tasks) {
      const span = spansByTask(all).get(task.id)![0]!;
      const parent = byId.get(span.parentSpanId);
      expect(parent, `Mastra's span ${span.parentSpanId} exported`).toBeDefined();
      expect(parent!.traceId).toBe(span.traceId);
      expect(parent!.name).toBe(`execute_tool ${task.toolName}`);
      expect(parent!.attributes['gen_ai.tool.call.id']).toBe(task.toolCallId);
      expect(parent!.resource['service.name']).toBe('mastra-demo');
    }
  });
});

/** A TCP proxy the test can cut (existing connections reset, new ones refused) and restore on the same port. */
class CuttableProxy {
  private server: Server | undefined;
  private sockets = new Set<Socket>();
  constructor(
    readonly port: number,
    private readonly target: number,
  ) {}
  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }
  async open(): Promise<void> {
    const server = createServer((client) => {
      const up = new Socket();
      this.sockets.add(client).add(up);
      const drop = () => {
        client.destroy();
        up.destroy();
        this.sockets.delete(client);
        this.sockets.delete(up);
      };
      client.on('error', drop).on('close', drop);
      up.on('error', drop).on('close', drop);
      up.connect(this.target, '127.0.0.1', () => client.pipe(up).pipe(client));
    });
    await new Promise<void>((resolve, reject) => server.once('error', reject).listen(this.port, '127.0.0.1', resolve));
    this.server = server;
  }
  async cut(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    for (const s of this.sockets) s.resetAndDestroy();
    this.sockets.clear();
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

describe('remote source: the connection is cut while tasks finish (Mastra stays up)', () => {
  // The test dispatches every task itself (Mastra's agent route), so what happens inside the gap does not depend on
  // how fast this machine is.
  const BEFORE: Tool[] = ['research_topic', 'charge_card', 'provision_cluster'];
  const DURING: Tool[] = ['research_topic', 'research_topic', 'charge_card', 'provision_cluster', 'research_topic'];
  const AFTER: Tool[] = ['research_topic', 'charge_card'];
  const TASKS = BEFORE.length + DURING.length + AFTER.length;
  let dir: string;
  let demo: DemoProcess;
  let proxy: CuttableProxy;
  let receiver: OtlpReceiver;
  let bridge: BridgeHandle;
  let tasks: StoredTask[];
  let gapOnly: StoredTask[];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'bridge-cut-'));
    receiver = await startOtlpReceiver();
    demo = await startDemoProcess({ port: await freePort(), storageUrl: `file:${join(dir, 'mastra.db')}`, env: { DEMO_RATE: '0' } });
    proxy = new CuttableProxy(await freePort(), Number(new URL(demo.url).port));
    await proxy.open();
    bridge = remoteBridge(proxy.url, receiver);
    await bridge.whenReady(20_000);
    for (const tool of BEFORE) await dispatchTask(demo.url, tool);
    await waitFor(async () => total(await scrape(bridge.app), 'mastra_background_task_finished_total') === BEFORE.length, {
      timeoutMs: 30_000,
      message: 'first tasks counted live',
    });

    const cutAt = Date.now();
    await proxy.cut();
    await waitFor(() => !bridge.status().connected, { message: 'the bridge sees the cut' });
    for (const tool of DURING) await dispatchTask(demo.url, tool);
    await waitFor(
      async () => {
        const all = await listAllTasks(demo.url);
        return all.filter((t) => ms(t.createdAt) > cutAt && TERMINAL.has(t.status)).length === DURING.length;
      },
      { timeoutMs: 30_000, intervalMs: 200, message: 'tasks begun and ended while the bridge was cut off' },
    );
    expect(bridge.status().connected).toBe(false);
    gapOnly = (await listAllTasks(demo.url)).filter((t) => ms(t.createdAt) > cutAt);
    await proxy.open();
    await bridge.whenReady(20_000);
    for (const tool of AFTER) await dispatchTask(demo.url, tool);
    tasks = await settled(demo.url, TASKS);
    await converged(bridge, receiver, tasks);
  }, 180_000);

  afterAll(async () => {
    await bridge?.close();
    await proxy?.cut();
    await demo?.kill();
    await receiver?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('reconnects by itself and counts the reconnect', async () => {
    const samples = await scrape(bridge.app);
    expect(total(samples, 'mastra_task_bridge_source_reconnects_total')).toBeGreaterThanOrEqual(1);
    expect(total(samples, 'mastra_task_bridge_source_up')).toBe(1);
  });

  it('tasks that began and ended inside the gap are counted and traced once, found by reconciliation', async () => {
    expect(gapOnly).toHaveLength(DURING.length);
    const byTask = spansByTask(receiver.spans());
    for (const t of gapOnly) {
      expect(byTask.get(t.id), `span of gap task ${t.id}`).toHaveLength(1);
      const span = byTask.get(t.id)![0]!;
      expect(span.endTimeUnixNano).toBe(ns(ms(t.completedAt)));
      expect(span.attributes['mastra.background_task.status']).toBe(t.status);
    }
    expect(total(await scrape(bridge.app), 'mastra_task_bridge_reconciled_total')).toBeGreaterThanOrEqual(gapOnly.length);
  });

  it('final counters equal the stored truth and every task has exactly one span', async () => {
    expect(sorted(finishedByStatus(await scrape(bridge.app)))).toEqual(sorted(terminalCounts(tasks)));
    const byTask = spansByTask(receiver.spans());
    expect(byTask.size).toBe(TASKS);
    for (const t of tasks) expect(byTask.get(t.id), t.id).toHaveLength(1);
  });
});
