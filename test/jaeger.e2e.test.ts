// End to end in a real Jaeger v2 (built from its Go module, test/peers/build.sh; started on config/jaeger.yaml): the
// demo Mastra server exports its own agent traces to Jaeger over OTLP (@mastra/otel-exporter), the bridge exports its
// task spans to the same Jaeger, and only Jaeger's own query API is asked what a user would see. Ground truth is
// Mastra's storage read over its REST API. The byte-level OTLP checks stay in the OTLP receiver tests.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type BridgeHandle, startBridge } from '../src/bridge.js';
import { taskSpanId } from '../src/span-ids.js';
import { type DemoProcess, dispatchTask, startDemoProcess } from './support/demo-process.js';
import { type StoredTask, TERMINAL, allTasksDone, finishedByStatus, listAllTasks, ms, terminalCounts } from './support/ground-truth.js';
import { type JaegerHandle, type JaegerSpan, type JaegerTrace, parentOf, serviceOf, startJaeger, tag } from './support/jaeger.js';
import { scrape, total } from './support/metrics-text.js';
import { freePort, waitFor } from './support/poll.js';
import { type BridgeCli, bridgeCli } from './support/bridge-cli.js';
import { JAEGER, describeWith } from './support/system.js';

type Tool = Parameters<typeof dispatchTask>[1];
const silent = pino({ level: 'silent' });
const BRIDGE_SERVICE = 'mastra-task-bridge';
const MASTRA_SERVICE = 'mastra-demo';
const sorted = (o: Record<string, number>) => Object.fromEntries(Object.entries(o).sort(([a], [b]) => a.localeCompare(b)));

/** The task spans (any trace) Jaeger holds for a task, found by tag search on the bridge's service. */
async function taskSpansInJaeger(jaeger: JaegerHandle, taskId: string): Promise<JaegerSpan[]> {
  const traces = await jaeger.search(BRIDGE_SERVICE, { 'mastra.background_task.id': taskId });
  return traces.flatMap((t) => t.spans.filter((s) => tag(s, 'mastra.background_task.id') === taskId));
}

/** Every task span Jaeger holds for the bridge's service, by task id (a span stored twice shows twice). */
async function allTaskSpans(jaeger: JaegerHandle): Promise<Map<string, JaegerSpan[]>> {
  const out = new Map<string, JaegerSpan[]>();
  const seen = new Set<string>(); // a trace is listed once per search; count its spans once too
  for (const trace of await jaeger.search(BRIDGE_SERVICE, {}, 10_000)) {
    if (seen.has(trace.traceID)) continue;
    seen.add(trace.traceID);
    for (const s of trace.spans) {
      const id = tag(s, 'mastra.background_task.id');
      if (typeof id === 'string') out.set(id, [...(out.get(id) ?? []), s]);
    }
  }
  return out;
}

describeWith([JAEGER], 'a real Jaeger shows each task span inside its agent run, under Mastra’s tool_call span', () => {
  const TASKS = 15; // interleaved over the demo's 3 agents: each agent is dealt each of the 5 lifecycles once
  let dir: string;
  let jaeger: JaegerHandle;
  let demo: DemoProcess;
  let bridge: BridgeHandle;
  let tasks: StoredTask[];
  /** The run's trace in Jaeger, by run id, once Mastra's and the bridge's spans are both in. */
  const traces = new Map<string, JaegerTrace>();

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'bridge-jaeger-'));
    jaeger = await startJaeger();
    demo = await startDemoProcess({
      port: await freePort(),
      storageUrl: `file:${join(dir, 'mastra.db')}`,
      env: {
        DEMO_RATE: '5',
        DEMO_MAX_TASKS: String(TASKS),
        DEMO_MIX: 'complete=1,fail=1,timeout=1,cancel=1,suspend_resume=1',
        DEMO_ORDER: 'interleaved',
        DEMO_SERVICE_NAME: MASTRA_SERVICE,
        OTEL_EXPORTER_OTLP_ENDPOINT: jaeger.otlpUrl,
      },
    });
    bridge = startBridge({
      logger: silent,
      config: {
        source: { mastraUrl: demo.url, reconnect: { initialMs: 50, maxMs: 500 }, requestTimeoutMs: 5_000 },
        otel: { tracesEndpoint: `${jaeger.otlpUrl}/v1/traces`, serviceName: BRIDGE_SERVICE, batch: { scheduledDelayMs: 50 } },
        metrics: { defaultMetrics: false },
        reconcile: { intervalSeconds: 1, overlapSeconds: 5 },
      },
    });
    await bridge.whenReady(20_000);
    tasks = await waitFor(
      async () => {
        const all = await listAllTasks(demo.url);
        return all.length >= TASKS && all.every((t) => TERMINAL.has(t.status)) ? all : undefined;
      },
      { timeoutMs: 90_000, intervalMs: 250, message: `${TASKS} stored tasks, all terminal` },
    );
    const want = terminalCounts(tasks);
    await waitFor(async () => JSON.stringify(sorted(finishedByStatus(await scrape(bridge.app)))) === JSON.stringify(sorted(want)), {
      timeoutMs: 30_000,
      message: `finished_total == ${JSON.stringify(want)}`,
    });
    // A task's count can come before its span (the span waits for Mastra's stored trace to place it): Mastra stays up
    // until the bridge has exported every task span, or the lookups would fail and the spans fall back to `run`.
    await waitFor(async () => total(await scrape(bridge.app), 'mastra_task_bridge_spans_total', { result: 'exported' }) >= TASKS, {
      timeoutMs: 60_000,
      message: 'every task span exported',
    });
    await bridge.tracing.forceFlush();
    await demo.kill(); // Mastra flushes its OTLP exporter on shutdown
    // Jaeger has a run when its trace holds Mastra's execute_tool span and the bridge's span of every task of the run.
    const runs = [...new Set(tasks.map((t) => t.runId))];
    const missing: string[] = [];
    try {
      await waitFor(
        async () => {
          missing.length = 0;
          for (const runId of runs) {
            if (traces.has(runId)) continue;
            const [found] = await jaeger.search(MASTRA_SERVICE, { 'mastra.metadata.runId': runId });
            if (!found) {
              missing.push(`run ${runId}: no Mastra trace`);
              continue;
            }
            const trace = await jaeger.trace(found.traceID);
            const ids = new Set(trace?.spans.map((s) => tag(s, 'mastra.background_task.id')));
            const absent = tasks.filter((t) => t.runId === runId && !ids.has(t.id));
            if (trace && absent.length === 0) traces.set(runId, trace);
            for (const t of absent) {
              const elsewhere = (await taskSpansInJaeger(jaeger, t.id)).map((s) => `${s.traceID} placement=${String(tag(s, 'mastra.background_task.placement'))}`);
              missing.push(`task ${t.id} (${t.status}) not in Mastra's trace ${found.traceID}; its spans: ${elsewhere.join(', ') || 'none'}`);
            }
          }
          return traces.size === runs.length;
        },
        { timeoutMs: 30_000, intervalMs: 250 },
      );
    } catch (err) {
      throw new Error(`${(err as Error).message}\nnot found:\n${missing.join('\n')}\n--- jaeger log ---\n${jaeger.logs().slice(-3000)}`);
    }
  }, 240_000);

  afterAll(async () => {
    await bridge?.close();
    await demo?.kill();
    await jaeger?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('ran every lifecycle: completed, failed, timed out, cancelled, suspended then resumed', () => {
    expect(tasks).toHaveLength(TASKS);
    expect(new Set(tasks.map((t) => t.status))).toEqual(new Set(['completed', 'failed', 'timed_out', 'cancelled']));
    const resumed = [...traces.values()].flatMap((t) => t.spans).filter((s) => s.logs.some((l) => l.fields.some((f) => f.value === 'resumed')));
    expect(resumed.length, 'suspended-then-resumed task spans').toBeGreaterThanOrEqual(1);
  });

  it('for every task, Jaeger’s trace of the run holds the task span as a child of Mastra’s execute_tool span', () => {
    const byStatus = new Map<string, number>();
    for (const task of tasks) {
      const trace = traces.get(task.runId)!;
      const span = trace.spans.find((s) => tag(s, 'mastra.background_task.id') === task.id)!;
      expect(span.spanID).toBe(taskSpanId(task.id));
      expect(serviceOf(trace, span)).toBe(BRIDGE_SERVICE);
      expect(span.operationName).toBe(`background_task ${task.toolName}`);
      expect(tag(span, 'mastra.background_task.status')).toBe(task.status);
      const parentId = parentOf(span);
      const parent = trace.spans.find((s) => s.spanID === parentId);
      expect(parent, `${task.status} task ${task.id}: parent ${parentId} in the run's trace`).toBeDefined();
      expect(serviceOf(trace, parent!)).toBe(MASTRA_SERVICE);
      expect(parent!.operationName).toBe(`execute_tool ${task.toolName}`);
      expect(tag(parent!, 'gen_ai.tool.call.id')).toBe(task.toolCallId);
      // The task span's times are the task's own: it ends when the task completed (microseconds in Jaeger).
      expect(span.startTime + span.duration).toBe(ms(task.completedAt) * 1000);
      const isError = task.status === 'failed' || task.status === 'timed_out';
      expect(tag(span, 'error'), task.status).toBe(isError ? true : undefined);
      byStatus.set(task.status, (byStatus.get(task.status) ?? 0) + 1);
    }
    expect([...byStatus.keys()].sort()).toEqual(['cancelled', 'completed', 'failed', 'timed_out']);
  });

  it('the suspended-then-resumed task’s span carries its suspend and resume as span events (Jaeger logs)', () => {
    const spans = [...traces.values()].flatMap((t) => t.spans);
    const resumed = spans.filter((s) => s.logs.some((l) => l.fields.some((f) => f.key === 'event' && f.value === 'resumed')));
    expect(resumed.length).toBeGreaterThanOrEqual(1);
    for (const s of resumed) {
      const events = s.logs.map((l) => l.fields.find((f) => f.key === 'event')?.value);
      expect(events.indexOf('suspended')).toBeGreaterThanOrEqual(0);
      expect(events.indexOf('suspended')).toBeLessThan(events.indexOf('resumed'));
      expect(parentOf(s)).toBeDefined();
    }
  });

  it('a tag search on mastra.metadata.runId finds the run and exactly its tasks, from either service', async () => {
    for (const runId of new Set(tasks.map((t) => t.runId))) {
      const own = tasks.filter((t) => t.runId === runId).map((t) => t.id).sort();
      const fromBridge = await jaeger.search(BRIDGE_SERVICE, { 'mastra.metadata.runId': runId });
      expect(fromBridge.map((t) => t.traceID)).toEqual([traces.get(runId)!.traceID]);
      const found = fromBridge[0]!.spans.filter((s) => tag(s, 'mastra.metadata.runId') === runId && serviceOf(fromBridge[0]!, s) === BRIDGE_SERVICE);
      expect(found.map((s) => tag(s, 'mastra.background_task.id')).sort()).toEqual(own);
      const fromMastra = await jaeger.search(MASTRA_SERVICE, { 'mastra.metadata.runId': runId });
      expect(fromMastra.map((t) => t.traceID)).toEqual([traces.get(runId)!.traceID]);
    }
  });

  it('Jaeger holds exactly one span per task', async () => {
    const byTask = await allTaskSpans(jaeger);
    expect(byTask.size).toBe(TASKS);
    for (const t of tasks) expect(byTask.get(t.id), t.id).toHaveLength(1);
  });
});

describeWith([JAEGER], 'the bridge is SIGKILLed and restarts with its checkpoint: Jaeger still holds one span per task', () => {
  const FIRST: Tool[] = ['research_topic', 'charge_card', 'provision_cluster'];
  const ACROSS_KILL = 2; // tail_logs tasks running at the kill, finishing while the bridge is down
  const LONG_RUN_MS = 8_000;
  const AFTER: Tool[] = ['research_topic', 'charge_card'];
  const TASKS = FIRST.length + ACROSS_KILL + AFTER.length;
  let dir: string;
  let jaeger: JaegerHandle;
  let demo: DemoProcess;
  let cli: BridgeCli;
  let tasks: StoredTask[];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'bridge-jaeger-restart-'));
    jaeger = await startJaeger();
    demo = await startDemoProcess({ port: await freePort(), storageUrl: `file:${join(dir, 'mastra.db')}`, env: { DEMO_RATE: '0' } });
    cli = await bridgeCli({ dir, mastraUrl: demo.url, env: { OTEL_EXPORTER_OTLP_ENDPOINT: jaeger.otlpUrl, OTEL_SERVICE_NAME: BRIDGE_SERVICE } });
    await cli.start();
    for (const tool of FIRST) await dispatchTask(demo.url, tool);
    for (let i = 0; i < ACROSS_KILL; i++) await dispatchTask(demo.url, 'tail_logs', { args: { service: `svc-${i}`, tickMs: 50, maxRunMs: LONG_RUN_MS }, thread: `tail-${i}` });
    // The first tasks are exported (acknowledged by Jaeger, hence in the checkpoint) and the long ones still run: no
    // span is in flight when the bridge dies.
    await waitFor(
      async () => {
        const m = await cli.metrics();
        return total(m, 'mastra_task_bridge_spans_total', { result: 'exported' }) === FIRST.length && total(m, 'mastra_background_tasks', { status: 'running' }) === ACROSS_KILL;
      },
      { timeoutMs: 30_000, message: `first spans exported, long tasks running; log:\n${cli.log()}` },
    );
    await cli.kill();
    const killedAt = Date.now();
    await waitFor(
      async () => (await listAllTasks(demo.url)).filter((t) => t.toolName === 'tail_logs' && ms(t.completedAt) > killedAt).length === ACROSS_KILL,
      { timeoutMs: LONG_RUN_MS + 30_000, intervalMs: 200, message: 'the long tasks finished while the bridge was down' },
    );
    await cli.start();
    for (const tool of AFTER) await dispatchTask(demo.url, tool);
    tasks = await allTasksDone(demo.url, TASKS);
    await waitFor(async () => (await allTaskSpans(jaeger)).size === TASKS, { timeoutMs: 30_000, intervalMs: 250, message: `every task in Jaeger; log:\n${cli.log()}` });
  }, 240_000);

  afterAll(async () => {
    await cli?.close();
    await demo?.kill();
    await jaeger?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('every stored task has exactly one span in Jaeger across both bridge runs', async () => {
    // Poll a little past the last arrival: a duplicate export would land shortly after the first copy.
    await bridgeQuiet();
    const byTask = await allTaskSpans(jaeger);
    expect([...byTask.keys()].sort()).toEqual(tasks.map((t) => t.id).sort());
    for (const t of tasks) expect(byTask.get(t.id), t.id).toHaveLength(1);
    expect(cli.log()).toContain('checkpoint loaded');
  });

  /** Resolves once the second bridge has counted every task it exported and has nothing left to export. */
  async function bridgeQuiet(): Promise<void> {
    await waitFor(
      async () => {
        const m = await cli.metrics();
        return total(m, 'mastra_background_task_finished_total') === ACROSS_KILL + AFTER.length && total(m, 'mastra_task_bridge_spans_total', { result: 'exported' }) === ACROSS_KILL + AFTER.length;
      },
      { timeoutMs: 20_000, message: `second bridge exported what it counted; log:\n${cli.log()}` },
    );
  }
});
