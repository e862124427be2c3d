// One place that says whether the fast paths (src/fast-paths.ts) are active on the library versions package.json pins.
// Each fast path reaches into a library's private parts and falls back to its public path when they change; this file
// is the first to read after an upgrade (docs/upgrading.md). The byte-for-byte equivalence of each path with the
// library's own lives next to it (test/spans.test.ts, test/otlp-encode.test.ts, test/metrics.test.ts); here: is each
// one on, and is its being off or falling back visible (start log, info metric, fallback counter).
import { readFileSync } from 'node:fs';
import { ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BatchSpanProcessor, InMemorySpanExporter, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import pino from 'pino';
import { Counter, Histogram, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { startBridge } from '../src/bridge.js';
import { FAST_PATHS, FastPaths, logFastPaths } from '../src/fast-paths.js';
import { BridgeMetrics } from '../src/metrics.js';
import { CountingBatchSpanProcessor, readSpanOutput } from '../src/otel-sdk-internals.js';
import { createOtlpTraceSerializer } from '../src/otlp-encode.js';
import { promFastPathStatus } from '../src/prom-fast.js';
import { fallbackPlacement } from '../src/span-ids.js';
import { SpanWriter } from '../src/spans.js';
import type { TaskSource } from '../src/sources/types.js';
import { PresetIdGenerator, type Tracing } from '../src/telemetry.js';
import type { FinishedTask } from '../src/tracker.js';

const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as { dependencies: Record<string, string> };

/** A source that connects and then says nothing: the bridge starts, nothing flows. */
const quietSource: TaskSource = {
  kind: 'remote',
  description: 'quiet test source',
  async run(sink, signal) {
    sink.connected();
    await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
  },
  getTask: async () => null,
  listTasks: async () => ({ tasks: [], total: 0, invalid: 0 }),
  findToolCallSpan: async () => undefined,
};

function logCapture(): { logger: pino.Logger; lines: () => Record<string, unknown>[] } {
  const out: string[] = [];
  const logger = pino({ level: 'info' }, { write: (s: string) => void out.push(s) });
  return { logger, lines: () => out.map((l) => JSON.parse(l) as Record<string, unknown>) };
}

const T0 = Date.parse('2026-01-01T00:00:00Z');
function task(): FinishedTask {
  return {
    taskId: 'task-1', agentId: 'agent-a', toolName: 'tool-x', toolCallId: 'call-1', runId: 'run-1', status: 'failed',
    error: { message: 'boom', stack: 'Error: boom\n    at x' }, completedAt: T0 + 2_000, startedAt: T0, events: [{ name: 'output', at: T0 + 5, index: 0 }],
    outputCount: 1, startCounted: true, queueWaitObserved: false, origin: 'event',
  };
}

function sdkTracing(opts: { hideInternals?: boolean } = {}): { tracing: Tracing; exporter: InMemorySpanExporter; provider: NodeTracerProvider } {
  const exporter = new InMemorySpanExporter();
  const ids = new PresetIdGenerator();
  const provider = new NodeTracerProvider({
    resource: resourceFromAttributes({ 'service.name': 'compat' }),
    idGenerator: ids,
    spanProcessors: [new BatchSpanProcessor(exporter, { scheduledDelayMillis: 60_000 })],
  });
  const real = provider.getTracer('compat');
  const tracer = opts.hideInternals ? { startSpan: real.startSpan.bind(real), startActiveSpan: real.startActiveSpan.bind(real) } as typeof real : real;
  return { exporter, provider, tracing: { tracer, ids, exporting: true, fastPaths: new FastPaths(), forceFlush: () => provider.forceFlush(), shutdown: () => provider.shutdown() } };
}

describe('fast paths on the pinned versions', () => {
  it('the pins are exact: a fast path is only known good for the version it was checked on', () => {
    for (const name of ['prom-client', '@opentelemetry/sdk-trace-base', '@opentelemetry/sdk-trace-node', '@opentelemetry/otlp-transformer', '@opentelemetry/otlp-exporter-base', '@opentelemetry/exporter-trace-otlp-http', '@opentelemetry/exporter-trace-otlp-proto']) {
      expect(pkg.dependencies[name], name).toMatch(/^\d+\.\d+\.\d+$/);
    }
  });

  it('a bridge exporting OTLP/protobuf has every fast path active, says so at start and on /metrics', async () => {
    const { logger, lines } = logCapture();
    const bridge = startBridge({
      source: quietSource,
      logger,
      config: { otel: { endpoint: 'http://127.0.0.1:9', protocol: 'http/protobuf' }, metrics: { defaultMetrics: false } },
    });
    try {
      const states = bridge.tracing.fastPaths!.list();
      expect(states.map((s) => s.path).sort()).toEqual(Object.keys(FAST_PATHS).sort());
      for (const s of states) expect(s, s.path).toEqual({ path: s.path, active: true });
      const start = lines().find((l) => l.msg === 'fast paths');
      expect(start?.fastPaths).toEqual({ otel_direct_span: 'active', otel_queue_full_count: 'active', otlp_encoder: 'active', otlp_retry_after_guard: 'active', prom_client_series: 'active' });
      expect(lines().filter((l) => String(l.msg).startsWith('fast path off'))).toEqual([]);
      const text = (await bridge.app.inject({ url: '/metrics' })).body;
      for (const s of states) expect(text).toContain(`mastra_task_bridge_fast_path_info{path="${s.path}",active="true"} 1`);
      for (const path of Object.keys(FAST_PATHS)) expect(text).toContain(`mastra_task_bridge_fast_path_fallbacks_total{path="${path}"} 0`);
    } finally {
      await bridge.close();
    }
  });

  it('otel_direct_span: the pinned tracer exposes _resource, instrumentationScope, _sampler, _spanLimits, _spanProcessor', async () => {
    const { tracing, exporter, provider } = sdkTracing();
    expect(readSpanOutput(tracing.tracer)).not.toHaveProperty('unavailable');
    const t = task();
    new SpanWriter(tracing).write(t, fallbackPlacement(t, 'run'));
    await provider.forceFlush();
    expect(exporter.getFinishedSpans().map((s) => s.constructor.name)).toEqual(['HandBuiltSpan']);
    expect(tracing.fastPaths!.list()).toEqual([{ path: 'otel_direct_span', active: true }]);
  });

  it('otel_queue_full_count: the pinned BatchSpanProcessor keeps _droppedSpansCount, and a full queue is counted', async () => {
    const fastPaths = new FastPaths();
    let dropped = 0;
    // A collector that does not answer until released: the first batch stays in flight, the queue fills behind it.
    const pending: ((r: { code: number }) => void)[] = [];
    const exporter = { export: (_: ReadableSpan[], done: (r: { code: number }) => void) => void pending.push(done), shutdown: async () => {} };
    const processor = new CountingBatchSpanProcessor(exporter, { maxQueueSize: 2, maxExportBatchSize: 2, scheduledDelayMillis: 60_000 }, (n) => (dropped += n), fastPaths);
    expect(fastPaths.list()).toEqual([{ path: 'otel_queue_full_count', active: true }]);
    const provider = new NodeTracerProvider({ spanProcessors: [processor] });
    const tracer = provider.getTracer('compat');
    for (let i = 0; i < 7; i++) tracer.startSpan(`s${i}`).end(); // 2 in flight, 2 queued, 3 dropped
    expect(dropped).toBe(3);
    for (const done of pending.splice(0)) done({ code: 0 });
    await provider.shutdown();
    for (const done of pending.splice(0)) done({ code: 0 });
  });

  it('otlp_encoder: the bridge encodes its own spans itself, to the bytes of the pinned ProtobufTraceSerializer', async () => {
    const { tracing, exporter, provider } = sdkTracing();
    for (let i = 0; i < 20; i++) {
      const t = { ...task(), taskId: `task-${i}`, status: i % 2 ? ('completed' as const) : ('failed' as const) };
      new SpanWriter(tracing).write(t, fallbackPlacement(t, 'run'));
    }
    await provider.forceFlush();
    const spans = exporter.getFinishedSpans();
    let fallbacks = 0;
    const ours = createOtlpTraceSerializer(() => fallbacks++).serializeRequest(spans)!;
    expect(fallbacks).toBe(0);
    expect(Buffer.from(ours).equals(Buffer.from(ProtobufTraceSerializer.serializeRequest(spans)!))).toBe(true);
  });

  it('prom_client_series: the pinned prom-client has the internals prom-fast.ts writes at scrape time', () => {
    expect(promFastPathStatus()).toEqual({ active: true, fallbacks: 0 });
    const OpenMetricsRegistry = Registry as unknown as new (t: string) => Registry;
    const registers = [new OpenMetricsRegistry(Registry.OPENMETRICS_CONTENT_TYPE)];
    const counter = new Counter({ name: 'c_total', help: 'x', labelNames: ['a'], enableExemplars: true, registers }) as unknown as { incWithoutExemplar?: unknown; hashMap?: unknown };
    const histogram = new Histogram({ name: 'h', help: 'x', labelNames: ['a'], buckets: [1, 2], enableExemplars: true, registers }) as unknown as { hashMap?: unknown; upperBounds?: unknown };
    expect(typeof counter.incWithoutExemplar).toBe('function');
    expect(typeof counter.hashMap).toBe('object');
    expect(typeof histogram.hashMap).toBe('object');
    expect(histogram.upperBounds).toEqual([1, 2]);
  });
});

describe('a fast path off, or falling back, is visible', () => {
  it('a tracer without the SDK internals: reported off with the reason, warned at start, active="false" on /metrics', async () => {
    const { tracing } = sdkTracing({ hideInternals: true });
    new SpanWriter(tracing);
    const fastPaths = tracing.fastPaths!;
    expect(fastPaths.list()).toEqual([{ path: 'otel_direct_span', active: false, reason: expect.stringContaining('not the pinned SDK tracer') }]);
    const { logger, lines } = logCapture();
    logFastPaths(logger, fastPaths);
    expect(lines().find((l) => l.msg === 'fast paths')?.fastPaths).toEqual({ otel_direct_span: expect.stringMatching(/^off: /) });
    const warn = lines().find((l) => String(l.msg).startsWith('fast path off'));
    expect(warn).toMatchObject({ level: 40, path: 'otel_direct_span', relies_on: FAST_PATHS.otel_direct_span });
    const metrics = new BridgeMetrics({ version: 'x', defaultMetrics: false, fastPaths });
    const { body } = await metrics.render(undefined);
    expect(body).toContain('mastra_task_bridge_fast_path_info{path="otel_direct_span",active="false"} 1');
  });

  it('a request the encoder does not take is encoded by the SDK and counted in mastra_task_bridge_fast_path_fallbacks_total', async () => {
    const fastPaths = new FastPaths();
    const metrics = new BridgeMetrics({ version: 'x', defaultMetrics: false, fastPaths });
    const serializer = createOtlpTraceSerializer(() => fastPaths.fallback('otlp_encoder'));
    const { tracing, exporter, provider } = sdkTracing();
    const t = task();
    new SpanWriter(tracing).write(t, fallbackPlacement(t, 'run'));
    await provider.forceFlush();
    const [span] = exporter.getFinishedSpans();
    // A name that is not a string: the fast encoder refuses it, the SDK's serializer decides.
    const odd = Object.assign(Object.create(Object.getPrototypeOf(span!) as object) as ReadableSpan, span, { name: 42 });
    for (let i = 0; i < 2; i++) {
      expect(Buffer.from(serializer.serializeRequest([odd])!).equals(Buffer.from(ProtobufTraceSerializer.serializeRequest([odd])!))).toBe(true);
    }
    expect(fastPaths.fallbacks('otlp_encoder')).toBe(2);
    expect((await metrics.render(undefined)).body).toContain('mastra_task_bridge_fast_path_fallbacks_total{path="otlp_encoder"} 2');
    serializer.serializeRequest([span!]);
    expect((await metrics.render(undefined)).body).toContain('mastra_task_bridge_fast_path_fallbacks_total{path="otlp_encoder"} 2');
  });
});
