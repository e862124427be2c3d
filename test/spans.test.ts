// SpanWriter builds finished spans directly as ReadableSpans (src/spans.ts) instead of going through
// tracer.startSpan() / addEvent() / setStatus() / end(). These tests hold the two paths to one contract: for every
// kind of task, the span each path hands the processor serialises to the same OTLP protobuf bytes and has the same
// fields; and the direct path steps aside where it cannot match the SDK (limits that drop, samplers that decide).

import type { Tracer } from '@opentelemetry/api';
import { ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  BatchSpanProcessor,
  InMemorySpanExporter,
  type ReadableSpan,
  type Sampler,
  type SpanLimits,
  TraceIdRatioBasedSampler,
} from '@opentelemetry/sdk-trace-base';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import { describe, expect, it } from 'vitest';
import { type Placement, fallbackPlacement } from '../src/span-ids.js';
import { DEFAULT_SPAN_CONTENT, type SpanContent, SpanWriter } from '../src/spans.js';
import { spanOutputOf } from '../src/otel-sdk-internals.js';
import { PresetIdGenerator, type Tracing } from '../src/telemetry.js';
import type { FinishedTask, LifecycleEvent } from '../src/tracker.js';

const T0 = Date.parse('2026-01-01T00:00:00Z');

interface Setup {
  tracing: Tracing;
  exporter: InMemorySpanExporter;
  provider: NodeTracerProvider;
}

function setup(opts: { sampler?: Sampler; spanLimits?: SpanLimits; hideInternals?: boolean } = {}): Setup {
  const exporter = new InMemorySpanExporter();
  const ids = new PresetIdGenerator();
  const provider = new NodeTracerProvider({
    resource: resourceFromAttributes({ 'service.name': 'spans-test', 'service.version': '9.9.9' }),
    idGenerator: ids,
    spanProcessors: [new BatchSpanProcessor(exporter, { maxExportBatchSize: 512, maxQueueSize: 2048, scheduledDelayMillis: 60_000 })],
    ...(opts.sampler ? { sampler: opts.sampler } : {}),
    ...(opts.spanLimits ? { spanLimits: opts.spanLimits } : {}),
  });
  const real = provider.getTracer('mastra-task-bridge', '1.2.3');
  // A tracer with the same behaviour but not the SDK's shape: SpanWriter falls back to startSpan().
  const tracer: Tracer = opts.hideInternals
    ? { startSpan: (...a: Parameters<Tracer['startSpan']>) => real.startSpan(...a), startActiveSpan: real.startActiveSpan.bind(real) as Tracer['startActiveSpan'] }
    : real;
  return { exporter, provider, tracing: { tracer, ids, exporting: true, forceFlush: () => provider.forceFlush(), shutdown: () => provider.shutdown() } };
}

function task(over: Partial<FinishedTask> = {}): FinishedTask {
  return {
    taskId: '6f1c1f0e-8a4b-4d7e-9c1a-0b2d3e4f5a6b',
    agentId: 'research-agent',
    toolName: 'research_topic',
    toolCallId: 'call_abc123',
    runId: '0e9f8a7b-6c5d-4e3f-8a1b-2c3d4e5f6a7b',
    status: 'completed',
    completedAt: T0 + 4_000,
    startedAt: T0,
    events: [],
    outputCount: 0,
    startCounted: true,
    queueWaitObserved: false,
    origin: 'event',
    ...over,
  };
}

const outputs = (n: number, from = T0 + 100): LifecycleEvent[] => Array.from({ length: n }, (_, i) => ({ name: 'output', at: from + i * 10, index: i }));
const STACK = 'PaymentDeclinedError: card declined\n    at chargeCard (file:///app/src/tools/charge-card.ts:42:11)';

const cases: { name: string; task: FinishedTask; placement?: Placement; content?: SpanContent }[] = [
  { name: 'completed with output chunks', task: task({ events: outputs(2), outputCount: 2 }) },
  {
    name: 'failed with a stack, enriched (thread, resource, retries, queue wait)',
    task: task({
      status: 'failed',
      error: { message: 'card declined', stack: STACK },
      info: { threadId: 'thread-1', resourceId: 'user-1', createdAt: T0 - 250, retryCount: 1, maxRetries: 2, timeoutMs: 300_000 },
    }),
  },
  { name: 'timed out', task: task({ status: 'timed_out', error: { message: 'Task timed out after 300000ms' } }) },
  { name: 'cancelled while pending (no start)', task: task({ status: 'cancelled', startedAt: undefined, startCounted: false }) },
  {
    name: 'suspended and resumed, events clamped into the span',
    task: task({
      events: [
        { name: 'suspended', at: T0 + 40 },
        { name: 'resumed', at: T0 + 3_000 },
        { name: 'output', at: T0 + 9_999, index: 0 },
      ],
      outputCount: 1,
    }),
  },
  { name: 'reconciled, more outputs than the shared index objects', task: task({ origin: 'reconciled', events: outputs(70), outputCount: 70 }) },
  {
    name: 'under a Mastra tool_call span (remote parent)',
    task: task(),
    placement: { traceId: '4bf92f3577b34da6a3ce929d0e0e4736', parentSpanId: '00f067aa0ba902b7', origin: 'mastra' },
  },
  {
    name: 'payloads recorded (args, result, output content)',
    task: task({ args: { q: 'x' }, result: { ok: true }, events: [{ name: 'output', at: T0 + 5, index: 0, content: { rows: 3 } }], outputCount: 1 }),
    content: { ...DEFAULT_SPAN_CONTENT, recordArgs: true, recordResult: true, recordOutput: true },
  },
];

async function spansOf(s: Setup): Promise<ReadableSpan[]> {
  await s.provider.forceFlush();
  return s.exporter.getFinishedSpans();
}

/** Every field a processor or exporter reads, as plain data (key order included, via JSON). */
function fields(span: ReadableSpan): unknown {
  return JSON.parse(
    JSON.stringify({
      name: span.name,
      kind: span.kind,
      spanContext: span.spanContext(),
      parentSpanContext: span.parentSpanContext,
      startTime: span.startTime,
      endTime: span.endTime,
      duration: span.duration,
      ended: span.ended,
      status: span.status,
      attributes: Object.entries(span.attributes),
      events: span.events.map((e) => ({ ...e, attributes: Object.entries(e.attributes ?? {}) })),
      links: span.links,
      resource: span.resource.attributes,
      scope: span.instrumentationScope,
      dropped: [span.droppedAttributesCount, span.droppedEventsCount, span.droppedLinksCount],
    }),
  );
}

describe('SpanWriter: direct spans match the SDK path', () => {
  // Whether the direct path is active on the pinned SDK at all: test/compat.test.ts.
  it('does not take the direct path for a tracer without the SDK internals', () => {
    expect(spanOutputOf(setup({ hideInternals: true }).tracing.tracer)).toBeUndefined();
  });

  for (const c of cases) {
    it(c.name, async () => {
      const direct = setup();
      const sdk = setup({ hideInternals: true });
      const placement = c.placement ?? fallbackPlacement(c.task, 'run');
      const a = new SpanWriter(direct.tracing, c.content).write(structuredClone(c.task), placement);
      const b = new SpanWriter(sdk.tracing, c.content).write(structuredClone(c.task), placement);
      expect(a).toEqual(b);
      const [da, db] = [await spansOf(direct), await spansOf(sdk)];
      expect(da).toHaveLength(1);
      expect(db).toHaveLength(1);
      expect(da[0]!.constructor.name).toBe('HandBuiltSpan'); // the direct path was taken, not its fallback
      expect(db[0]!.constructor.name).toBe('SpanImpl');
      expect(fields(da[0]!)).toEqual(fields(db[0]!));
      expect(Buffer.from(ProtobufTraceSerializer.serializeRequest(da)!)).toEqual(Buffer.from(ProtobufTraceSerializer.serializeRequest(db)!));
    });
  }

  it('limits that would drop events: the SDK path decides (oldest events dropped, counted)', async () => {
    const limited = setup({ spanLimits: { eventCountLimit: 3 } });
    const sdk = setup({ spanLimits: { eventCountLimit: 3 }, hideInternals: true });
    const t = task({ events: outputs(5), outputCount: 5 });
    new SpanWriter(limited.tracing).write(structuredClone(t), fallbackPlacement(t, 'run'));
    new SpanWriter(sdk.tracing).write(structuredClone(t), fallbackPlacement(t, 'run'));
    const [sa, sb] = [await spansOf(limited), await spansOf(sdk)];
    expect(sa[0]!.constructor.name).toBe('SpanImpl');
    expect(sa[0]!.droppedEventsCount).toBe(2);
    expect(fields(sa[0]!)).toEqual(fields(sb[0]!));
  });

  it('value length limits: the SDK path decides, and truncates what is longer than the limit', async () => {
    const limited = setup({ spanLimits: { attributeValueLengthLimit: 8 } });
    const sdk = setup({ spanLimits: { attributeValueLengthLimit: 8 }, hideInternals: true });
    const t = task({ status: 'failed', error: { message: 'card declined', stack: STACK } });
    new SpanWriter(limited.tracing).write(structuredClone(t), fallbackPlacement(t, 'run'));
    new SpanWriter(sdk.tracing).write(structuredClone(t), fallbackPlacement(t, 'run'));
    const [s] = await spansOf(limited);
    const [reference] = await spansOf(sdk);
    expect(s!.constructor.name).toBe('SpanImpl'); // the direct path stepped aside: it never truncates
    expect(fields(s!)).toEqual(fields(reference!));
    // Values longer than 8 characters are cut to 8 (the untruncated value is longer, so this can fail) ...
    expect(t.toolName.length).toBeGreaterThan(8);
    expect(s!.attributes['gen_ai.tool.name']).toBe(t.toolName.slice(0, 8));
    expect(t.taskId.length).toBeGreaterThan(8);
    expect(s!.attributes['mastra.background_task.id']).toBe(t.taskId.slice(0, 8));
    expect(s!.attributes['error.type']).toBe('PaymentD');
    // ... and so are event attributes; shorter values and numbers are left alone.
    expect(s!.events.find((e) => e.name === 'exception')?.attributes?.['exception.message']).toBe('card dec');
    expect(s!.attributes['mastra.background_task.status']).toBe('failed');
    expect(s!.attributes['mastra.background_task.output_chunks']).toBe(0);
  });

  it('a sampler that drops: no span reaches the processor, and the ids say not sampled', async () => {
    const direct = setup({ sampler: new TraceIdRatioBasedSampler(0) });
    const t = task();
    const w = new SpanWriter(direct.tracing).write(t, fallbackPlacement(t, 'run'));
    expect(w.sampled).toBe(false);
    expect(w.traceId).toBe(fallbackPlacement(t, 'run').traceId);
    expect(await spansOf(direct)).toHaveLength(0);
  });
});
