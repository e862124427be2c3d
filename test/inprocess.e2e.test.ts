// End to end on the in-process source: a real Mastra with real agents (mock model) runs every lifecycle; a real OTLP
// receiver decodes the exported protobufs. Ground truth is Mastra itself: the stored records (listTasks) and an
// independent subscription to the same stream for the first start times (storage overwrites startedAt on resume).
import type { Mastra } from '@mastra/core';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type BridgeHandle, startBridge } from '../src/bridge.js';
import { createDemoMastra, shutdownDemoMastra } from '../demo/app.js';
import { SCENARIO_AGENT, type Scenario, runScenario, scenarioPrompt } from '../demo/workload.js';
import { findToolCallSpan } from '../src/sources/mastra-traces.js';
import { InProcessSource } from '../src/sources/in-process.js';
import { runTraceId, taskSpanId } from '../src/span-ids.js';
import { TOOL_CALL_SPANS_NEST } from './support/mastra-version.js';
import { scrape, total } from './support/metrics-text.js';
import { type OtlpReceiver, type ReceivedSpan, startOtlpReceiver } from './support/otlp-receiver.js';
import { waitFor } from './support/poll.js';

const silent = pino({ level: 'silent' });
const WORKLOAD: Scenario[] = ['complete', 'fail', 'timeout', 'cancel', 'suspend_resume', 'complete', 'fail', 'suspend_resume'];

interface StreamTruth {
  firstStart: Map<string, number>;
  stop(): void;
}

/** Our own subscriber to the stream: the first `running` startedAt of each task, independent of the bridge. */
function watchFirstStarts(mastra: Mastra): StreamTruth {
  const firstStart = new Map<string, number>();
  const abort = new AbortController();
  const reader = mastra.backgroundTaskManager!.stream({ abortSignal: abort.signal }).getReader();
  void (async () => {
    for (;;) {
      const { value, done } = await reader.read().catch(() => ({ value: undefined, done: true }));
      if (done) return;
      const chunk = value as { type: string; payload: { taskId: string; startedAt?: Date | string } };
      if (chunk.type === 'background-task-running' && !firstStart.has(chunk.payload.taskId)) {
        firstStart.set(chunk.payload.taskId, new Date(chunk.payload.startedAt!).getTime());
      }
    }
  })();
  return { firstStart, stop: () => abort.abort() };
}

const ns = (ms: number) => BigInt(ms) * 1_000_000n;

function spansByTask(spans: ReceivedSpan[], ids: Set<string>): Map<string, ReceivedSpan[]> {
  const out = new Map<string, ReceivedSpan[]>();
  for (const s of spans) {
    const id = s.attributes['mastra.background_task.id'] as string;
    if (!ids.has(id)) continue;
    out.set(id, [...(out.get(id) ?? []), s]);
  }
  return out;
}

async function runWorkload(mastra: Mastra, scenarios: Scenario[]): Promise<string[]> {
  const ids: string[] = [];
  // Two at a time: concurrent like a real app, gentle on two cores.
  for (let i = 0; i < scenarios.length; i += 2) {
    const batch = await Promise.all(scenarios.slice(i, i + 2).map((s, j) => runScenario(mastra, s, { threadId: `thread-${i + j}`, resourceId: 'user-1' })));
    ids.push(...batch.map((r) => r.taskId));
  }
  return ids;
}

describe.each([
  { name: 'an app that stores its traces (auto placement under Mastra tool_call spans)', observability: true },
  { name: 'an app without trace storage (deterministic trace per run)', observability: false },
])('in-process bridge on $name', ({ observability }) => {
  let receiver: OtlpReceiver;
  let mastra: Mastra;
  let bridge: BridgeHandle;
  let truth: StreamTruth;
  let taskIds: string[];

  beforeAll(async () => {
    receiver = await startOtlpReceiver();
    mastra = createDemoMastra({ observability });
    truth = watchFirstStarts(mastra);
    bridge = startBridge({
      mastra,
      logger: silent,
      config: { otel: { tracesEndpoint: receiver.tracesUrl, batch: { scheduledDelayMs: 50 } }, metrics: { defaultMetrics: false } },
    });
    await bridge.whenReady(10_000);
    taskIds = await runWorkload(mastra, WORKLOAD);
    await waitFor(async () => total(await scrape(bridge.app), 'mastra_background_task_finished_total') === WORKLOAD.length, {
      timeoutMs: 30_000,
      message: 'bridge counted every finished task',
    });
    await bridge.tracing.forceFlush();
    await receiver.waitForSpans(WORKLOAD.length, 20_000);
  }, 120_000);

  afterAll(async () => {
    truth?.stop();
    await bridge?.close();
    if (mastra) await shutdownDemoMastra(mastra);
    await receiver?.close();
  });

  it('exports exactly one span per task, with the task’s own start and end times', async () => {
    const { tasks } = await mastra.backgroundTaskManager!.listTasks({});
    expect(tasks).toHaveLength(WORKLOAD.length);
    const byTask = spansByTask(receiver.spans(), new Set(taskIds));
    expect(byTask.size).toBe(WORKLOAD.length);
    for (const task of tasks) {
      const spans = byTask.get(task.id) ?? [];
      expect(spans, `spans of ${task.id}`).toHaveLength(1);
      const span = spans[0]!;
      expect(span.name).toBe(`background_task ${task.toolName}`);
      expect(span.kind).toBe(1); // INTERNAL
      expect(span.spanId).toBe(taskSpanId(task.id));
      expect(span.startTimeUnixNano).toBe(ns(truth.firstStart.get(task.id)!));
      expect(span.endTimeUnixNano).toBe(ns(new Date(task.completedAt!).getTime()));
    }
  });

  it('sets status, error.type and attributes from the true final status', async () => {
    const { tasks } = await mastra.backgroundTaskManager!.listTasks({});
    const byTask = spansByTask(receiver.spans(), new Set(taskIds));
    for (const task of tasks) {
      const span = byTask.get(task.id)![0]!;
      const a = span.attributes;
      expect(a['mastra.background_task.status']).toBe(task.status);
      expect(a['gen_ai.operation.name']).toBe('execute_tool');
      expect(a['gen_ai.tool.name']).toBe(task.toolName);
      expect(a['gen_ai.tool.call.id']).toBe(task.toolCallId);
      expect(a['gen_ai.agent.id']).toBe(task.agentId);
      expect(a['gen_ai.conversation.id']).toBe(task.threadId);
      expect(a['mastra.metadata.runId']).toBe(task.runId);
      expect(a['mastra.metadata.threadId']).toBe(task.threadId);
      expect(a['mastra.metadata.resourceId']).toBe('user-1');
      expect(a['mastra.background_task.retry_count']).toBe(0);
      expect(typeof a['mastra.background_task.queue_wait_ms']).toBe('number');
      // Payloads are not recorded by default.
      expect(a['gen_ai.tool.call.arguments']).toBeUndefined();
      expect(a['gen_ai.tool.call.result']).toBeUndefined();
      if (task.status === 'failed' || task.status === 'timed_out') {
        expect(span.status.code).toBe(2);
        expect(a['error.type']).toBe(task.status === 'timed_out' ? 'timed_out' : 'Error');
        const exception = span.events.find((e) => e.name === 'exception');
        expect(exception?.attributes['exception.message']).toBe(task.error!.message);
      } else {
        expect(span.status.code).toBe(0);
        expect(a['error.type']).toBeUndefined();
      }
    }
  });

  it('records suspend, resume and output as span events', () => {
    const spans = receiver.spans().filter((s) => taskIds.includes(s.attributes['mastra.background_task.id'] as string));
    const refunds = spans.filter((s) => s.name === 'background_task approve_refund');
    expect(refunds).toHaveLength(2);
    for (const s of refunds) {
      const lifecycle = s.events.filter((e) => e.name !== 'output');
      expect(lifecycle.map((e) => e.name)).toEqual(['suspended', 'resumed']);
      expect(lifecycle[0]!.timeUnixNano).toBeLessThanOrEqual(lifecycle[1]!.timeUnixNano);
    }
    for (const s of spans.filter((x) => x.name === 'background_task research_topic')) {
      expect(s.events.filter((e) => e.name === 'output').map((e) => e.attributes['mastra.background_task.output.index'])).toEqual([0, 1, 2]);
      expect(s.attributes['mastra.background_task.output_chunks']).toBe(3);
    }
  });

  it('places each span next to its agent run', async () => {
    const { tasks } = await mastra.backgroundTaskManager!.listTasks({});
    const byTask = spansByTask(receiver.spans(), new Set(taskIds));
    for (const task of tasks) {
      const span = byTask.get(task.id)![0]!;
      if (observability && TOOL_CALL_SPANS_NEST) {
        const parent = await findToolCallSpan(mastra, task.runId, task.toolCallId);
        expect(parent, `Mastra tool_call span of ${task.id}`).not.toBeNull();
        expect(span.traceId).toBe(parent!.traceId);
        expect(span.parentSpanId).toBe(parent!.spanId);
        expect(span.attributes['mastra.background_task.placement']).toBe('mastra');
      } else {
        // No trace storage, or a Mastra before 1.57 (its tool_call span has no tool call id): the run's own trace.
        expect(span.traceId).toBe(runTraceId(task.runId));
        expect(span.parentSpanId).toBe('');
        expect(span.attributes['mastra.background_task.placement']).toBe('run');
      }
    }
  });

  it('counts exactly what Mastra stored, with exemplars pointing at exported spans', async () => {
    const { tasks } = await mastra.backgroundTaskManager!.listTasks({});
    const samples = await scrape(bridge.app);
    for (const status of ['completed', 'failed', 'timed_out', 'cancelled']) {
      const expected = tasks.filter((t) => t.status === status).length;
      expect(total(samples, 'mastra_background_task_finished_total', { status }), status).toBe(expected);
    }
    expect(total(samples, 'mastra_background_task_started_total')).toBe(tasks.length);
    expect(total(samples, 'mastra_background_task_duration_seconds_count')).toBe(tasks.length);
    expect(total(samples, 'mastra_background_task_queue_wait_seconds_count')).toBe(tasks.length);
    expect(total(samples, 'mastra_background_task_suspended_seconds_count')).toBe(2);
    expect(total(samples, 'mastra_background_task_output_chunks_total', { tool_name: 'research_topic' })).toBe(6);
    expect(total(samples, 'mastra_background_tasks')).toBe(0);
    expect(total(samples, 'mastra_task_bridge_events_total', { result: 'invalid' })).toBe(0);
    expect(total(samples, 'mastra_task_bridge_enrichment_failures_total')).toBe(0);
    expect(total(samples, 'mastra_task_bridge_source_up')).toBe(1);

    const om = await bridge.app.inject({ url: '/metrics', headers: { accept: 'application/openmetrics-text; version=1.0.0' } });
    const exemplarTraceIds = [...om.body.matchAll(/mastra_background_task_finished_total\{[^}]*\} 1 # \{trace_id="([0-9a-f]{32})",span_id="([0-9a-f]{16})"\}/g)];
    expect(exemplarTraceIds.length).toBeGreaterThan(0);
    const exported = new Set(receiver.spans().map((s) => `${s.traceId}/${s.spanId}`));
    for (const m of exemplarTraceIds) expect(exported.has(`${m[1]}/${m[2]}`)).toBe(true);
  });
});

describe('bridge started while tasks already run', () => {
  let receiver: OtlpReceiver;
  let mastra: Mastra;
  let bridge: BridgeHandle | undefined;

  beforeAll(async () => {
    receiver = await startOtlpReceiver();
    mastra = createDemoMastra();
  });
  afterAll(async () => {
    await bridge?.close();
    await shutdownDemoMastra(mastra);
    await receiver.close();
  });

  it('opens snapshot tasks at their real start and counts nothing twice', async () => {
    const manager = mastra.backgroundTaskManager!;
    const truth = watchFirstStarts(mastra);
    // One task running (tail_logs runs until cancelled) and one suspended, before the bridge exists.
    const { dispatchQuickTask } = await import('../demo/workload.js');
    const running = await dispatchQuickTask(mastra, { durationMs: 60_000, toolName: 'pre_running' });
    // A real agent run whose tool suspends; nobody resumes it until the bridge is up.
    const agentRun = await mastra.getAgentById(SCENARIO_AGENT.suspend_resume).stream(scenarioPrompt('suspend_resume'), { memory: { thread: 'pre', resource: 'user-1' } });
    void agentRun.consumeStream().catch(() => undefined);
    await waitFor(async () => (await manager.getTask(running.taskId))?.status === 'running', { message: 'pre-existing task running' });
    const suspended = await waitFor(async () => (await manager.listTasks({ status: 'suspended' })).tasks[0], { message: 'a task suspended' });

    bridge = startBridge({ mastra, logger: silent, config: { otel: { tracesEndpoint: receiver.tracesUrl, batch: { scheduledDelayMs: 50 } }, metrics: { defaultMetrics: false } } });
    await bridge.whenReady(10_000);
    let samples = await scrape(bridge.app);
    expect(total(samples, 'mastra_background_tasks', { status: 'running' })).toBe(1);
    expect(total(samples, 'mastra_background_tasks', { status: 'suspended' })).toBe(1);
    expect(total(samples, 'mastra_background_task_started_total')).toBe(2);

    await manager.cancel(running.taskId);
    await manager.resume(suspended.id, { approved: true });
    await waitFor(async () => total(await scrape(bridge!.app), 'mastra_background_task_finished_total') === 2, { message: 'both finished' });
    await bridge.tracing.forceFlush();
    const spans = await receiver.waitForSpans(2);
    samples = await scrape(bridge.app);
    expect(total(samples, 'mastra_background_task_started_total')).toBe(2);
    expect(total(samples, 'mastra_background_task_finished_total', { status: 'cancelled' })).toBe(1);
    expect(total(samples, 'mastra_background_task_finished_total', { status: 'completed' })).toBe(1);

    const byTask = spansByTask(spans, new Set([running.taskId, suspended.id]));
    expect(byTask.get(running.taskId)).toHaveLength(1);
    expect(byTask.get(suspended.id)).toHaveLength(1);
    expect(byTask.get(running.taskId)![0]!.startTimeUnixNano).toBe(ns(truth.firstStart.get(running.taskId)!));
    // The suspended task's span starts at its first start, not the resume time storage holds now.
    const stored = await manager.getTask(suspended.id);
    const refund = byTask.get(suspended.id)![0]!;
    expect(refund.startTimeUnixNano).toBe(ns(truth.firstStart.get(suspended.id)!));
    expect(refund.startTimeUnixNano).toBeLessThan(ns(new Date(stored!.startedAt!).getTime()));
    truth.stop();
  });
});

describe('in process, an app that stores no traces', () => {
  it('tasks that ask together cost one storage check, and the answer holds for the lookups right after', async () => {
    const mastra = createDemoMastra();
    try {
      const store = (await mastra.getStorage()!.getStore('observability'))!;
      let listed = 0;
      const listTraces = store.listTraces.bind(store);
      store.listTraces = (async (args: never) => {
        listed++;
        return listTraces(args);
      }) as typeof store.listTraces;
      const source = new InProcessSource(mastra as never);
      const answers = await Promise.all(Array.from({ length: 50 }, (_, i) => source.findToolCallSpan(`run-${i}`, `call-${i}`)));
      expect(answers.every((a) => a === undefined)).toBe(true);
      expect(listed).toBe(1);
      expect(await source.findToolCallSpan('run-x', 'call-x')).toBeUndefined();
      expect(listed).toBe(1);
    } finally {
      await shutdownDemoMastra(mastra);
    }
  });
});
