// OtlpTraceSerializer (src/otlp-encode.ts) against the SDK's ProtobufTraceSerializer (@opentelemetry/otlp-transformer
// 0.223.0): for every request here the two must produce the same bytes — the bridge's own spans (SpanWriter, both its
// direct and its SDK path), spans the SDK builds with every attribute type and edge value, and hand-built
// ReadableSpans with shapes the SDK API cannot produce. Shapes the fast encoder does not take fall back to the SDK's.

import { type Link, SpanKind, SpanStatusCode, TraceFlags, context, createTraceState, trace } from '@opentelemetry/api';
import { ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import { type Resource, defaultResource, resourceFromAttributes } from '@opentelemetry/resources';
import {
  BasicTracerProvider,
  BatchSpanProcessor,
  InMemorySpanExporter,
  type ReadableSpan,
  SimpleSpanProcessor,
  type SpanLimits,
} from '@opentelemetry/sdk-trace-base';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import { describe, expect, it } from 'vitest';
import { OtlpTraceSerializer, encodeStats } from '../src/otlp-encode.js';
import { type Placement, fallbackPlacement } from '../src/span-ids.js';
import { DEFAULT_SPAN_CONTENT, SpanWriter } from '../src/spans.js';
import { PresetIdGenerator, type Tracing } from '../src/telemetry.js';
import type { FinishedTask, LifecycleEvent } from '../src/tracker.js';

function sdkBytes(spans: ReadableSpan[]): Buffer {
  return Buffer.from(ProtobufTraceSerializer.serializeRequest(spans)!);
}

function ourBytes(spans: ReadableSpan[]): Buffer {
  return Buffer.from(OtlpTraceSerializer.serializeRequest(spans)!);
}

/** Same bytes, and produced by the fast encoder itself (no fallback). */
function expectIdentical(spans: ReadableSpan[]): void {
  const before = encodeStats.fallbacks;
  const ours = ourBytes(spans);
  expect(encodeStats.fallbacks).toBe(before);
  const theirs = sdkBytes(spans);
  expect(ours.length).toBe(theirs.length);
  expect(ours.equals(theirs)).toBe(true);
}

// A small deterministic PRNG (mulberry32) so failures reproduce.
function rng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// ---------------------------------------------------------------------------------------------------------------
// The bridge's spans

const T0 = Date.parse('2026-01-01T00:00:00Z');

function bridgeTracing(opts: { hideInternals?: boolean; spanLimits?: SpanLimits; resource?: Resource } = {}): {
  tracing: Tracing;
  spans: () => Promise<ReadableSpan[]>;
} {
  const exporter = new InMemorySpanExporter();
  const ids = new PresetIdGenerator();
  const provider = new NodeTracerProvider({
    resource: opts.resource ?? defaultResource().merge(resourceFromAttributes({ 'service.name': 'encode-test', 'service.version': '0.1.0' })),
    idGenerator: ids,
    spanProcessors: [new BatchSpanProcessor(exporter, { maxExportBatchSize: 100_000, maxQueueSize: 100_000, scheduledDelayMillis: 60_000 })],
    ...(opts.spanLimits ? { spanLimits: opts.spanLimits } : {}),
  });
  const real = provider.getTracer('mastra-task-bridge', '1.2.3');
  const tracer = opts.hideInternals ? { startSpan: real.startSpan.bind(real), startActiveSpan: real.startActiveSpan.bind(real) } : real;
  return {
    tracing: { tracer: tracer as typeof real, ids, exporting: true, forceFlush: () => provider.forceFlush(), shutdown: () => provider.shutdown() },
    spans: async () => {
      await provider.forceFlush();
      return exporter.getFinishedSpans();
    },
  };
}

const STATUSES: FinishedTask['status'][] = ['completed', 'completed', 'failed', 'timed_out', 'cancelled'];
const MESSAGES = ['card declined', 'Zahlung abgelehnt — Karte ungültig', '支払いが拒否されました', 'emoji 🚀🔥 fail', 'x'.repeat(300), ''];

function generatedTasks(n: number, seed: number): { task: FinishedTask; placement: Placement }[] {
  const r = rng(seed);
  const out: { task: FinishedTask; placement: Placement }[] = [];
  for (let i = 0; i < n; i++) {
    const status = STATUSES[Math.floor(r() * STATUSES.length)]!;
    const failed = status === 'failed' || status === 'timed_out';
    const outputs = Math.floor(r() * 5);
    const startedAt = r() < 0.1 ? undefined : T0 + i * 37;
    const events: LifecycleEvent[] = Array.from({ length: outputs }, (_, k) => ({
      name: 'output',
      at: T0 + i * 37 + k * 11,
      index: k,
      ...(r() < 0.3 ? { content: { rows: k, note: r() < 0.5 ? 'ünïcødé ✓' : 'plain' } } : {}),
    }));
    if (r() < 0.1) events.unshift({ name: 'suspended', at: T0 + i * 37 + 1 }, { name: 'resumed', at: T0 + i * 37 + 2 });
    const id = (i + seed * 1000).toString(16).padStart(12, '0');
    const task: FinishedTask = {
      taskId: `6f1c1f0e-8a4b-4d7e-9c1a-${id}`,
      agentId: ['research-agent', 'billing-agent', 'агент'][i % 3]!,
      toolName: ['research_topic', 'charge_card', 'send_email'][i % 3]!,
      toolCallId: `call_${i}`,
      runId: `0e9f8a7b-6c5d-4e3f-8a1b-${id}`,
      status,
      completedAt: T0 + i * 37 + 4_000,
      ...(startedAt !== undefined ? { startedAt } : {}),
      events,
      outputCount: outputs,
      startCounted: startedAt !== undefined,
      queueWaitObserved: false,
      origin: r() < 0.2 ? 'reconciled' : 'event',
      ...(failed ? { error: { message: MESSAGES[i % MESSAGES.length]!, ...(r() < 0.5 ? { stack: `Error: boom\n    at f (file:///a.ts:${i}:1)` } : {}) } } : {}),
      ...(r() < 0.5
        ? { info: { threadId: `thread-${i}`, resourceId: `user-${i % 7}`, createdAt: T0 + i * 37 - 250, retryCount: i % 3, maxRetries: 2, timeoutMs: 300_000 } }
        : {}),
      ...(r() < 0.3 ? { args: { q: `query ${i}`, n: i }, result: { ok: !failed, items: [1, 2, 3] } } : {}),
    };
    const placement: Placement =
      r() < 0.4
        ? { traceId: `4bf92f3577b34da6a3ce929d${id.slice(4)}`, parentSpanId: `00f067aa${id.slice(4)}`, origin: 'mastra' }
        : fallbackPlacement(task, 'run');
    out.push({ task, placement });
  }
  return out;
}

describe('OtlpTraceSerializer: the bridge’s spans', () => {
  it('direct-path spans (HandBuiltSpan) from SpanWriter: one large request and many small ones', async () => {
    const { tracing, spans } = bridgeTracing();
    const content = { ...DEFAULT_SPAN_CONTENT, recordArgs: true, recordResult: true, recordOutput: true };
    const writer = new SpanWriter(tracing, content);
    for (const { task, placement } of generatedTasks(2_000, 1)) writer.write(task, placement);
    const all = await spans();
    expect(all).toHaveLength(2_000);
    expect(all.every((s) => s.constructor.name === 'HandBuiltSpan')).toBe(true);
    expectIdentical(all); // ~1.5 MB: grows the encoder's buffer
    for (let i = 0; i < all.length; i += 97) expectIdentical(all.slice(i, i + 1 + (i % 13)));
  });

  it('SDK-path spans (SpanImpl) from SpanWriter, default content', async () => {
    const { tracing, spans } = bridgeTracing({ hideInternals: true });
    const writer = new SpanWriter(tracing);
    for (const { task, placement } of generatedTasks(500, 2)) writer.write(task, placement);
    const all = await spans();
    expect(all).toHaveLength(500);
    expect(all[0]!.constructor.name).toBe('SpanImpl');
    expectIdentical(all);
  });

  it('spans whose limits drop and truncate (dropped counts, truncated values)', async () => {
    const { tracing, spans } = bridgeTracing({ spanLimits: { eventCountLimit: 2, attributeCountLimit: 5, attributeValueLengthLimit: 6 } });
    const writer = new SpanWriter(tracing, { ...DEFAULT_SPAN_CONTENT, recordArgs: true, recordOutput: true });
    for (const { task, placement } of generatedTasks(200, 3)) writer.write(task, placement);
    const all = await spans();
    expect(all.some((s) => s.droppedEventsCount > 0)).toBe(true);
    expect(all.some((s) => s.droppedAttributesCount > 0)).toBe(true);
    expectIdentical(all);
  });
});

// ---------------------------------------------------------------------------------------------------------------
// Spans the SDK builds, every attribute type and edge value

const EDGE_VALUES: Record<string, unknown> = {
  'str.empty': '',
  'str.ascii': 'hello',
  'str.latin1': 'café crème',
  'str.cjk': '漢字かな交じり文',
  'str.emoji': '🚀 launch 👩‍👩‍👧 family',
  'str.lone-high': 'a\ud800b',
  'str.lone-low': '\udc00',
  'str.pair-split-end': 'end\ud83d',
  'str.long': 'y'.repeat(200),
  'str.long-unicode': 'ü'.repeat(100),
  'str.very-long': 'z'.repeat(20_000),
  'str.nul': 'a\u0000b',
  'str.short-then-unicode': 'abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKL€',
  'int.zero': 0,
  'int.neg-zero': -0,
  'int.one': 1,
  'int.127': 127,
  'int.128': 128,
  'int.u32max': 4294967295,
  'int.u32max+1': 4294967296,
  'int.i32min': -2147483648,
  'int.neg-one': -1,
  'int.neg-big': -1234567890123,
  'int.max-safe': Number.MAX_SAFE_INTEGER,
  'int.min-safe': Number.MIN_SAFE_INTEGER,
  'int.2^53': 2 ** 53,
  'int.2^62': 2 ** 62,
  'int.2^63-ish': 2 ** 63 - 1024,
  'int.-2^63': -(2 ** 63),
  'dbl.2^63': 2 ** 63,
  'dbl.-2^64': -(2 ** 64),
  'dbl.1e300': 1e300,
  'dbl.half': 0.5,
  'dbl.neg': -3.25,
  'dbl.tiny': 5e-324,
  'dbl.nan': Number.NaN,
  'dbl.inf': Number.POSITIVE_INFINITY,
  'dbl.-inf': Number.NEGATIVE_INFINITY,
  'bool.true': true,
  'bool.false': false,
  'arr.empty': [],
  'arr.str': ['a', '', 'ß', '🚀'],
  'arr.int': [1, -1, 2 ** 40, 0],
  'arr.dbl': [0.1, Number.NaN, Number.NEGATIVE_INFINITY],
  'arr.bool': [true, false],
  'arr.holes': ['a', null, undefined, 'b'],
  '': 'empty key',
  'ключ': 'unicode key',
  '123': 'integer-like key (sorted first by for-in)',
};

describe('OtlpTraceSerializer: spans the SDK builds', () => {
  it('every attribute type and edge value, on spans, events and links; kinds, statuses, parents, trace state', async () => {
    const exporter = new InMemorySpanExporter();
    const provider = new BasicTracerProvider({
      resource: defaultResource().merge(resourceFromAttributes({ 'service.name': 'edge', 'res.int': 7, 'res.arr': ['x', 'y'], 'res.dbl': 1.5 })),
      spanProcessors: [new SimpleSpanProcessor(exporter)],
      spanLimits: { attributeCountLimit: 1000, attributePerEventCountLimit: 1000, attributePerLinkCountLimit: 1000 },
    });
    const tracer = provider.getTracer('edge-scope', '9.9.9');
    const remote = trace.setSpanContext(context.active(), {
      traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
      spanId: '00f067aa0ba902b7',
      traceFlags: TraceFlags.SAMPLED,
      isRemote: true,
      traceState: createTraceState('vendor=abc,other=1'),
    });
    const link: Link = {
      context: { traceId: 'a'.repeat(32), spanId: 'b'.repeat(16), traceFlags: TraceFlags.NONE, traceState: createTraceState('l=1') },
      attributes: { 'link.attr': 'x', 'link.n': 3 },
    };
    const remoteLink: Link = { context: { traceId: '0'.repeat(31) + '1', spanId: '0'.repeat(15) + '2', traceFlags: TraceFlags.SAMPLED, isRemote: true } };

    const kinds = [SpanKind.INTERNAL, SpanKind.SERVER, SpanKind.CLIENT, SpanKind.PRODUCER, SpanKind.CONSUMER];
    for (const [i, kind] of kinds.entries()) {
      const span = tracer.startSpan(
        `span ${i} ✓`,
        { kind, attributes: EDGE_VALUES as never, startTime: [1_700_000_000 + i, 123_456_789], links: [link, remoteLink] },
        i % 2 ? remote : context.active(),
      );
      span.addEvent('no attrs', [1_700_000_000 + i, 5]);
      span.addEvent('with attrs', EDGE_VALUES as never, [1_700_000_000 + i, 999_999_999]);
      span.addEvent('', {}, [1_700_000_000 + i, 0]);
      if (i === 1) span.setStatus({ code: SpanStatusCode.ERROR, message: 'failure: ✗ 失敗' });
      if (i === 2) span.setStatus({ code: SpanStatusCode.OK });
      if (i === 3) span.setStatus({ code: SpanStatusCode.ERROR });
      span.end([1_700_000_100 + i, 1]);
    }
    // A child of a local parent; an empty span; a span in the year 2200 (seconds beyond 2^32).
    const parent = tracer.startSpan('parent', { startTime: [1_700_000_000, 0] });
    tracer.startSpan('child', { startTime: [1_700_000_000, 1] }, trace.setSpan(context.active(), parent)).end([1_700_000_000, 2]);
    parent.end([1_700_000_000, 3]);
    tracer.startSpan('', { startTime: [0, 0] }).end([0, 0]);
    tracer.startSpan('far future', { startTime: [7_258_118_400, 999_999_999] }).end([7_258_118_401, 0]);

    const spans = exporter.getFinishedSpans();
    expect(spans).toHaveLength(kinds.length + 4);
    expectIdentical(spans);
    for (const s of spans) expectIdentical([s]);
    expectIdentical([]);
  });

  it('several resources and scopes in one request, grouped in first-seen order; schema URLs', async () => {
    const exporter = new InMemorySpanExporter();
    const make = (resource: Resource) => new BasicTracerProvider({ resource, spanProcessors: [new SimpleSpanProcessor(exporter)] });
    const p1 = make(resourceFromAttributes({ 'service.name': 'one' }, { schemaUrl: 'https://opentelemetry.io/schemas/1.30.0' }));
    const p2 = make(resourceFromAttributes({}));
    const p3 = make(defaultResource());
    const scopes = [
      p1.getTracer('a', '1.0.0', { schemaUrl: 'https://example.com/schema' }),
      p2.getTracer('b'),
      p1.getTracer('c', '2.0.0'),
      p3.getTracer('d', ''),
      p2.getTracer('e', '3'),
    ];
    const r = rng(7);
    for (let i = 0; i < 60; i++) {
      const t = scopes[Math.floor(r() * scopes.length)]!;
      t.startSpan(`s${i}`, { attributes: { i, odd: i % 2 === 1 } }).end();
    }
    const spans = exporter.getFinishedSpans();
    expect(new Set(spans.map((s) => s.resource)).size).toBe(3);
    expectIdentical(spans);
    expectIdentical([...spans].reverse());
  });

  it('random attribute maps (fuzz)', () => {
    const r = rng(42);
    const exporter = new InMemorySpanExporter();
    const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)], spanLimits: { attributeCountLimit: 10_000 } });
    const tracer = provider.getTracer('fuzz');
    const chars = ['a', 'Z', '0', ' ', '\n', 'é', 'ß', '€', '漢', '🚀', '\ud800', '\udfff', '\u0000', '\u007f', '\u0080', '\u07ff', '\u0800', '\uffff'];
    const randomString = (): string => Array.from({ length: Math.floor(r() ** 3 * 400) }, () => chars[Math.floor(r() * chars.length)]).join('');
    const randomNumber = (): number => {
      const k = r();
      if (k < 0.3) return Math.floor(r() * 300) - 150;
      if (k < 0.5) return Math.floor((r() - 0.5) * 2 ** (r() * 70));
      if (k < 0.8) return (r() - 0.5) * 10 ** Math.floor(r() * 40 - 20);
      return [Number.NaN, Infinity, -Infinity, -0, 2 ** 63, -(2 ** 63), 2 ** 32, -(2 ** 32)][Math.floor(r() * 8)]!;
    };
    const randomValue = (): unknown => {
      const k = r();
      if (k < 0.35) return randomString();
      if (k < 0.7) return randomNumber();
      if (k < 0.8) return r() < 0.5;
      if (k < 0.9) return Array.from({ length: Math.floor(r() * 6) }, randomString);
      return Array.from({ length: Math.floor(r() * 6) }, randomNumber);
    };
    for (let i = 0; i < 400; i++) {
      const attributes: Record<string, unknown> = {};
      for (let k = Math.floor(r() * 30); k > 0; k--) attributes[r() < 0.9 ? `k.${Math.floor(r() * 50)}` : randomString()] = randomValue();
      const span = tracer.startSpan(randomString(), { attributes: attributes as never, startTime: [Math.floor(r() * 2 ** 33), Math.floor(r() * 1e9)] });
      for (let e = Math.floor(r() * 4); e > 0; e--) span.addEvent(randomString(), { v: randomValue() as never }, [Math.floor(r() * 2 ** 31), Math.floor(r() * 1e9)]);
      if (r() < 0.3) span.setStatus({ code: SpanStatusCode.ERROR, message: randomString() });
      span.end();
    }
    const spans = exporter.getFinishedSpans();
    expectIdentical(spans);
    for (let i = 0; i < spans.length; i += 10) expectIdentical(spans.slice(i, i + 10));
  });
});

// ---------------------------------------------------------------------------------------------------------------
// Hand-built ReadableSpans: what the SDK API does not produce, and what falls back

function handSpan(over: Partial<ReadableSpan> & { ctx?: Partial<ReturnType<ReadableSpan['spanContext']>> } = {}): ReadableSpan {
  const { ctx, ...rest } = over;
  const context = { traceId: '0af7651916cd43dd8448eb211c80319c', spanId: 'b7ad6b7169203331', traceFlags: 1, ...ctx };
  return {
    name: 'hand',
    kind: SpanKind.INTERNAL,
    spanContext: () => context,
    parentSpanContext: undefined,
    startTime: [1_700_000_000, 1],
    endTime: [1_700_000_001, 2],
    status: { code: SpanStatusCode.UNSET },
    attributes: {},
    links: [],
    events: [],
    duration: [1, 1],
    ended: true,
    resource: resourceFromAttributes({ 'service.name': 'hand' }),
    instrumentationScope: { name: 'hand-scope' },
    droppedAttributesCount: 0,
    droppedEventsCount: 0,
    droppedLinksCount: 0,
    ...rest,
  };
}

describe('OtlpTraceSerializer: hand-built spans', () => {
  it('bytes values, kvlist (object) values, nested arrays, values the SDK writes as an empty AnyValue', () => {
    const attributes = {
      bytes: new Uint8Array([0, 1, 255]),
      buffer: Buffer.from('buffer bytes'),
      emptyBytes: new Uint8Array(0),
      kv: { a: 1, b: 'two', nested: { deep: [true, { x: 0.5 }] } },
      emptyKv: {},
      nested: [[1, 2], ['a'], []],
      nul: null,
      undef: undefined,
      fn: () => 1,
      big: 10n,
    };
    expectIdentical([handSpan({ attributes: attributes as never })]);
    expectIdentical([handSpan({ events: [{ name: 'e', time: [1, 2], attributes: attributes as never }] })]);
  });

  it('attribute keys: more distinct keys than the key cache holds, long keys, unicode and unpaired surrogates', () => {
    const attributes: Record<string, string> = {};
    for (let i = 0; i < 3_000; i++) attributes[`key.${i}`] = `v${i}`;
    attributes['k'.repeat(300)] = 'long key';
    attributes['clé ✓ 🚀 \ud800'] = 'unicode key';
    expectIdentical([handSpan({ attributes }), handSpan({ attributes })]);
  });

  it('missing optional fields, dropped counts, unusual flags, scope attributes, no kind', () => {
    const resource = resourceFromAttributes({ a: 'b' });
    expectIdentical([
      handSpan({ kind: undefined as never, resource }),
      handSpan({ droppedAttributesCount: 3, droppedEventsCount: 300, droppedLinksCount: 70_000, resource }),
      handSpan({ ctx: { traceFlags: 0xfff, traceState: createTraceState('') }, resource }),
      handSpan({ parentSpanContext: { traceId: '0af7651916cd43dd8448eb211c80319c', spanId: '', traceFlags: 1, isRemote: true }, resource }),
      handSpan({ events: [{ name: 'e', time: [5, 6] }], links: [{ context: { traceId: 'AB'.repeat(16), spanId: 'Cd'.repeat(8), traceFlags: 1 } }], resource }),
      handSpan({ status: { code: SpanStatusCode.ERROR, message: '' }, attributes: undefined as never, resource }),
      handSpan({
        instrumentationScope: { name: 's', version: 'v', schemaUrl: 'u', attributes: { 'scope.attr': 1 }, droppedAttributesCount: 2 } as never,
        resource,
      }),
    ]);
  });

  it('falls back to ProtobufTraceSerializer for shapes it does not take, with the SDK’s bytes (or its error)', () => {
    const cases: ReadableSpan[][] = [
      [handSpan({ name: 42 as never })],
      [handSpan({ droppedAttributesCount: undefined as never })],
      [handSpan({ droppedEventsCount: 1.5 })],
      [handSpan({ status: { code: -1 as never } })],
      [handSpan({ events: [{ name: 'e', time: [1, 2], droppedAttributesCount: -2 }] })],
      [handSpan({ ctx: { spanId: 'abc' } })], // odd-length id: the SDK writes floor(n/2) bytes
      [handSpan({ parentSpanContext: { traceId: '0af7651916cd43dd8448eb211c80319c', spanId: 123 as never, traceFlags: 1 } })],
    ];
    for (const spans of cases) {
      const before = encodeStats.fallbacks;
      expect(ourBytes(spans).equals(sdkBytes(spans))).toBe(true);
      expect(encodeStats.fallbacks).toBe(before + 1);
    }
    // What the SDK throws on, the fallback throws on too.
    const broken = [handSpan({ status: undefined as never })];
    expect(() => ProtobufTraceSerializer.serializeRequest(broken)).toThrow();
    expect(() => OtlpTraceSerializer.serializeRequest(broken)).toThrow();
    // and the encoder is still sound afterwards
    expectIdentical([handSpan()]);
  });
});
