// A terminal count never waits on placement (issue 9 #4): while the stored-trace lookup of a finished task is held open
// by the test, /metrics already counts the task; once the lookup answers, the span is written under Mastra's tool_call
// span and the count's exemplar follows it. No timing: the lookup is a promise the test resolves.
import { InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { type BridgeHandle, startBridge } from '../src/bridge.js';
import type { TaskRecord } from '../src/events.js';
import type { SourceSink, SpanRef, TaskPage, TaskSource } from '../src/sources/types.js';
import { runTraceId } from '../src/span-ids.js';
import { PresetIdGenerator, type Tracing } from '../src/telemetry.js';
import { scrape, total } from './support/metrics-text.js';
import { waitFor } from './support/poll.js';

const silent = pino({ level: 'silent' });
const RUN = '33333333-3333-4333-8333-333333333333';
const MASTRA_TRACE = 'a'.repeat(32);
const TOOL_CALL_SPAN = 'b'.repeat(16);

/** Emits one task's running and completed frames; its stored-trace lookups wait until the test answers them. */
class HeldLookupSource implements TaskSource {
  readonly kind = 'remote' as const;
  readonly description = 'held lookups';
  sink: SourceSink | undefined;
  readonly lookups: { runId: string; answer: (r: SpanRef | null) => void }[] = [];
  async run(sink: SourceSink, signal: AbortSignal): Promise<void> {
    this.sink = sink;
    sink.connected();
    await new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }));
  }
  async getTask(): Promise<TaskRecord | null> {
    return null;
  }
  async listTasks(): Promise<TaskPage> {
    return { tasks: [], total: 0, invalid: 0 };
  }
  findToolCallSpan(runId: string): Promise<SpanRef | null | undefined> {
    return new Promise((answer) => this.lookups.push({ runId, answer }));
  }
}

function memoryTracing(exporter: InMemorySpanExporter): Tracing {
  const ids = new PresetIdGenerator();
  const provider = new NodeTracerProvider({ idGenerator: ids, spanProcessors: [new SimpleSpanProcessor(exporter)] });
  return { tracer: provider.getTracer('test'), ids, exporting: true, forceFlush: () => provider.forceFlush(), shutdown: () => provider.shutdown() };
}

async function openMetrics(bridge: BridgeHandle): Promise<string> {
  const res = await bridge.app.inject({ method: 'GET', url: '/metrics', headers: { accept: 'application/openmetrics-text; version=1.0.0' } });
  return res.body;
}

describe('terminal count and placement', () => {
  let bridge: BridgeHandle | undefined;
  afterEach(async () => {
    await bridge?.close();
    bridge = undefined;
  });

  it('counts a finished task while its placement lookup is still open; the exemplar follows the span', async () => {
    const source = new HeldLookupSource();
    const exporter = new InMemorySpanExporter();
    bridge = startBridge({
      source,
      logger: silent,
      tracing: memoryTracing(exporter),
      config: { metrics: { defaultMetrics: false }, enrichment: { enabled: false }, traces: { parent: 'auto' } },
    });
    await bridge.whenReady(5_000);
    // Started 10 s ago: its first placement lookup is not put off (see PlacementResolver), so the test does not wait.
    const at = Date.now();
    const payload = { taskId: 'task-1', toolName: 'research_topic', toolCallId: 'call-1', agentId: 'research-agent', runId: RUN };
    source.sink!.frame(JSON.stringify({ type: 'background-task-running', payload: { ...payload, startedAt: new Date(at - 10_000).toISOString(), args: {} } }));
    source.sink!.frame(JSON.stringify({ type: 'background-task-completed', payload: { ...payload, completedAt: new Date(at).toISOString(), result: {} } }));

    await waitFor(() => source.lookups.length === 1, { timeoutMs: 10_000, message: 'the placement lookup' });
    // The lookup is open, and the task is counted already, with its duration; no span yet, so no exemplar.
    const s = await scrape(bridge.app);
    expect(total(s, 'mastra_background_task_finished_total', { status: 'completed' })).toBe(1);
    expect(total(s, 'mastra_background_task_duration_seconds_count', { status: 'completed' })).toBe(1);
    expect(exporter.getFinishedSpans()).toHaveLength(0);
    expect(await openMetrics(bridge)).not.toMatch(/mastra_background_task_finished_total\{[^}]*status="completed"[^}]*\} 1 # \{/);

    source.lookups[0]!.answer({ traceId: MASTRA_TRACE, spanId: TOOL_CALL_SPAN });
    await waitFor(() => exporter.getFinishedSpans().length === 1, { timeoutMs: 10_000, message: 'the span' });
    const span = exporter.getFinishedSpans()[0]!;
    expect(span.spanContext().traceId).toBe(MASTRA_TRACE);
    expect(span.parentSpanContext?.spanId).toBe(TOOL_CALL_SPAN);
    const text = await openMetrics(bridge);
    const counter = new RegExp(`mastra_background_task_finished_total\\{[^}]*status="completed"[^}]*\\} 1 # \\{trace_id="${MASTRA_TRACE}",span_id="${span.spanContext().spanId}"\\}`);
    const bucket = new RegExp(`mastra_background_task_duration_seconds_bucket\\{[^}]*status="completed"[^}]*\\} 1 # \\{trace_id="${MASTRA_TRACE}",span_id="${span.spanContext().spanId}"\\}`);
    expect(text).toMatch(counter);
    expect(text).toMatch(bucket);
    // Still counted once.
    expect(total(await scrape(bridge.app), 'mastra_background_task_finished_total')).toBe(1);
  });

  it('closing while a task waits for Mastra to store its span writes the span at once, in the run\'s trace', async () => {
    const source = new HeldLookupSource();
    const exporter = new InMemorySpanExporter();
    // What reached the exporter (its own list is cleared by the provider's shutdown at close).
    const exported: string[] = [];
    const exportSpans = exporter.export.bind(exporter);
    exporter.export = (spans, done) => {
      for (const s of spans) exported.push(s.spanContext().traceId);
      exportSpans(spans, done);
    };
    const b = startBridge({
      source,
      logger: silent,
      tracing: memoryTracing(exporter),
      config: { metrics: { defaultMetrics: false }, enrichment: { enabled: false }, traces: { parent: 'auto' } },
    });
    await b.whenReady(5_000);
    // Started just now: its first lookup is put off by Mastra's storage delay (seconds), so it is still waiting.
    const at = Date.now();
    const payload = { taskId: 'task-2', toolName: 'research_topic', toolCallId: 'call-2', agentId: 'research-agent', runId: RUN };
    source.sink!.frame(JSON.stringify({ type: 'background-task-running', payload: { ...payload, startedAt: new Date(at - 100).toISOString(), args: {} } }));
    source.sink!.frame(JSON.stringify({ type: 'background-task-completed', payload: { ...payload, completedAt: new Date(at).toISOString(), result: {} } }));
    await waitFor(async () => total(await scrape(b.app), 'mastra_background_task_finished_total') === 1, { timeoutMs: 10_000, message: 'the count' });
    expect(exporter.getFinishedSpans()).toHaveLength(0);
    await b.close();
    // No lookup was made, and the span was written before the final flush (not lost with the process).
    expect(source.lookups).toHaveLength(0);
    expect(exported).toEqual([runTraceId(RUN)]);
  });
});
