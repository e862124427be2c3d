// The pump alone (src/pipeline.ts), with its real collaborators and a stub source: every task finishes exactly once
// (one terminal count, one span, one sink call) whatever the stream repeats, including when the finish waits on a
// lookup, and a sink that throws never stops the pump.
import { InMemorySpanExporter, BatchSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import type { TaskRecord } from '../src/events.js';
import { Enricher } from '../src/enrichment.js';
import { BridgeMetrics } from '../src/metrics.js';
import { Pipeline } from '../src/pipeline.js';
import { PlacementResolver } from '../src/placement.js';
import type { TaskSink } from '../src/sinks.js';
import type { TaskPage, TaskQuery, TaskSource } from '../src/sources/types.js';
import { waitFor } from './support/poll.js';
import { SpanWriter } from '../src/spans.js';
import { PresetIdGenerator } from '../src/telemetry.js';
import { TaskTracker } from '../src/tracker.js';
import { parseExposition, total } from './support/metrics-text.js';

const T0 = Date.parse('2026-03-01T10:00:00Z');
const base = (taskId: string) => ({ taskId, toolName: 'tool-x', toolCallId: `call-${taskId}`, agentId: 'agent-a', runId: 'run-1' });
const record = (taskId: string, over: Partial<TaskRecord> = {}): TaskRecord => {
  const { taskId: id, ...rest } = base(taskId);
  return { id, ...rest, status: 'completed', startedAt: T0, completedAt: T0 + 1_000, ...over };
};
const running = (taskId: string) => ({ type: 'background-task-running', payload: { ...base(taskId), startedAt: new Date(T0), args: {} } });
const completed = (taskId: string) => ({ type: 'background-task-completed', payload: { ...base(taskId), completedAt: new Date(T0 + 1_000), result: 1 } });

function setup(
  opts: { sinks?: TaskSink[]; lookup?: (taskId: string) => Promise<TaskRecord | null>; list?: (q: TaskQuery) => Promise<TaskPage>; batchWindowMs?: number } = {},
) {
  const exporter = new InMemorySpanExporter();
  const provider = new NodeTracerProvider({ idGenerator: new PresetIdGenerator(), spanProcessors: [new BatchSpanProcessor(exporter, { scheduledDelayMillis: 60_000 })] });
  const ids = new PresetIdGenerator();
  const tracing = { tracer: provider.getTracer('pipeline-test'), ids, exporting: true, forceFlush: () => provider.forceFlush(), shutdown: () => provider.shutdown() };
  const source: Pick<TaskSource, 'getTask' | 'findToolCallSpan'> & Partial<Pick<TaskSource, 'listTasks'>> = {
    getTask: opts.lookup ?? (async () => null),
    findToolCallSpan: async () => undefined,
    ...(opts.list ? { listTasks: opts.list } : {}),
  };
  const warnings: string[] = [];
  const logger = pino({ level: 'warn' }, { write: (s: string) => void warnings.push(s) });
  const metrics = new BridgeMetrics({ version: 't', defaultMetrics: false });
  const pipeline = new Pipeline({
    tracker: new TaskTracker({}),
    metrics,
    spans: new SpanWriter(tracing),
    enricher: new Enricher(
      source,
      { enabled: opts.lookup !== undefined, concurrency: 2, maxQueue: 100, cacheSize: 100, timeoutMs: 5_000, ...(opts.batchWindowMs !== undefined ? { batchWindowMs: opts.batchWindowMs } : {}) },
      () => {},
    ),
    placement: new PlacementResolver(source, { mode: 'run', attempts: 1, retryDelayMs: 0, timeoutMs: 1_000 }),
    logger,
    exporting: true,
    maxFrameBytes: 1 << 20,
    ...(opts.sinks ? { sinks: opts.sinks } : {}),
  });
  const finishedTotal = async () => total(parseExposition((await metrics.render(undefined)).body), 'mastra_background_task_finished_total');
  const spans = async () => {
    await provider.forceFlush();
    return exporter.getFinishedSpans();
  };
  return { pipeline, finishedTotal, spans, warnings };
}

describe('Pipeline', () => {
  it('finishes a task exactly once: one count, one span, one sink call, however often the end arrives', async () => {
    const finished: string[] = [];
    const { pipeline, finishedTotal, spans } = setup({ sinks: [{ finished: (t) => void finished.push(t.taskId) }] });
    pipeline.chunk(running('t1'));
    pipeline.chunk(completed('t1'));
    pipeline.chunk(completed('t1')); // the same event again (a redelivery)
    pipeline.frame(JSON.stringify({ ...completed('t1'), payload: { ...completed('t1').payload, completedAt: new Date(T0 + 1_000).toISOString() } })); // and over the wire
    pipeline.reconcile(record('t1')); // and from storage
    await pipeline.idle();
    expect(finished).toEqual(['t1']);
    expect(await finishedTotal()).toBe(1);
    expect((await spans()).map((s) => s.attributes['mastra.background_task.id'])).toEqual(['t1']);
  });

  it('a finish that waits on a lookup is still counted once, and idle() waits for it', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const lookup = async (taskId: string): Promise<TaskRecord | null> => {
      await gate;
      return record(taskId, { threadId: 'thread-1' });
    };
    const finished: string[] = [];
    const { pipeline, finishedTotal, spans } = setup({ lookup, sinks: [{ finished: (t) => void finished.push(t.taskId) }] });
    pipeline.chunk(completed('t2')); // first seen at its end: its record is looked up before the span is written
    pipeline.chunk(completed('t2'));
    expect(finished).toEqual([]);
    const idle = pipeline.idle();
    release();
    await idle;
    expect(finished).toEqual(['t2']);
    expect(await finishedTotal()).toBe(1);
    const [span, ...more] = await spans();
    expect(more).toEqual([]);
    expect(span!.attributes['gen_ai.conversation.id']).toBe('thread-1');
  });

  it('a sink that throws does not stop the pump: later sinks, later events and later tasks go on', async () => {
    const seen: string[] = [];
    const transitions: string[] = [];
    const broken: TaskSink = {
      finished: () => {
        throw new Error('sink broke');
      },
      transition: () => {
        throw new Error('sink broke on a transition');
      },
    };
    const healthy: TaskSink = { finished: (t) => void seen.push(t.taskId), transition: (t) => void transitions.push(`${t.type} ${t.task.taskId}`) };
    const { pipeline, finishedTotal, spans, warnings } = setup({ sinks: [broken, healthy] });
    for (const id of ['a', 'b', 'c']) {
      pipeline.chunk(running(id));
      pipeline.chunk(completed(id));
    }
    await pipeline.idle();
    expect(seen).toEqual(['a', 'b', 'c']);
    expect(transitions).toEqual(['started a', 'started b', 'started c']);
    expect(await finishedTotal()).toBe(3);
    expect(await spans()).toHaveLength(3);
    expect(warnings.filter((w) => w.includes('task sink failed'))).toHaveLength(6);
  });

  it('passes each task’s time to enrichment: first sights share a startedAt window, stale records a completedAt one', async () => {
    const stored = new Map<string, TaskRecord>();
    // Retries allowed: the record read at first sight may be stale at the end, so the end is looked up again.
    for (const id of ['a', 'b']) stored.set(id, record(id, { status: 'running', completedAt: undefined, maxRetries: 1, threadId: `thread-${id}` }));
    const gets: string[] = [];
    const queries: TaskQuery[] = [];
    const list = async (q: TaskQuery): Promise<TaskPage> => {
      queries.push(q);
      const by = q.dateFilterBy!;
      const tasks = [...stored.values()].filter((r) => r[by]! >= q.fromDate!.getTime() && r[by]! < q.toDate!.getTime());
      return { tasks, total: tasks.length, invalid: 0 };
    };
    const lookedUp: string[] = [];
    const { pipeline, spans } = setup({
      lookup: async (id) => (gets.push(id), stored.get(id) ?? null),
      list,
      batchWindowMs: 60_000, // sent by idle() only: the test decides when
      sinks: [{ finished: () => undefined, lookedUp: (id) => void lookedUp.push(id) }],
    });
    pipeline.chunk(running('a'));
    pipeline.chunk(running('b'));
    await pipeline.idle();
    await waitFor(() => lookedUp.length === 2, { timeoutMs: 5_000, message: 'both first-sight lookups answered' });
    for (const id of ['a', 'b']) stored.set(id, record(id, { maxRetries: 1, threadId: `thread-${id}` }));
    pipeline.chunk(completed('a'));
    pipeline.chunk(completed('b'));
    await pipeline.idle();
    expect(queries.map((q) => [q.dateFilterBy, q.fromDate!.getTime() - T0, q.toDate!.getTime() - T0])).toEqual([
      ['startedAt', 0, 1],
      ['completedAt', 1_000, 1_001],
    ]);
    expect(gets).toEqual([]);
    expect((await spans()).map((s) => s.attributes['gen_ai.conversation.id']).sort()).toEqual(['thread-a', 'thread-b']);
  });
});
