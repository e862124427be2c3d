// Proves test/support/otlp-receiver.ts against the real OTel JS exporters: http/json (exporter-trace-otlp-http)
// and http/protobuf (exporter-trace-otlp-proto), each with and without gzip, plus simulated collector failures; and the
// bridge's own http/protobuf exporter (telemetry.ts OTLPProtoTraceExporter: the SDK's machinery, otlp-encode.ts bytes).
import { SpanKind, SpanStatusCode, context, trace, type HrTime } from '@opentelemetry/api';
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import { OTLPTraceExporter as OTLPHttpJsonExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { OTLPTraceExporter as OTLPProtoExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { defaultResource, resourceFromAttributes } from '@opentelemetry/resources';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
  type ReadableSpan,
  type SpanExporter,
} from '@opentelemetry/sdk-trace-base';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { OTLPProtoTraceExporter } from '../src/telemetry.js';
import { startOtlpReceiver, type OtlpReceiver } from './support/otlp-receiver.js';

type ExporterConfig = NonNullable<ConstructorParameters<typeof OTLPHttpJsonExporter>[0]>;
type Compression = NonNullable<ExporterConfig['compression']>;

const START: HrTime = [1_700_000_000, 123_456_789];
const CHILD_START: HrTime = [1_700_000_000, 500_000_001];
const EVENT_TIME: HrTime = [1_700_000_000, 750_000_007];
const CHILD_END: HrTime = [1_700_000_001, 1];
const END: HrTime = [1_700_000_001, 987_654_321];
const nanos = ([s, ns]: HrTime): bigint => BigInt(s) * 1_000_000_000n + BigInt(ns);

let receiver: OtlpReceiver;
beforeAll(async () => {
  receiver = await startOtlpReceiver();
});
afterAll(async () => {
  await receiver?.close();
});
afterEach(() => receiver.reset());

function makeExporter(protocol: 'json' | 'protobuf' | 'bridge-protobuf', compression: 'none' | 'gzip'): SpanExporter {
  const config: ExporterConfig = { url: receiver.tracesUrl, compression: compression as Compression, timeoutMillis: 5_000 };
  if (protocol === 'bridge-protobuf') return new OTLPProtoTraceExporter(config);
  return protocol === 'json' ? new OTLPHttpJsonExporter(config) : new OTLPProtoExporter(config);
}

/** Records a parent (SERVER, error status, event) and a child (INTERNAL) span with fixed timestamps. */
function recordSpans(provider: BasicTracerProvider): { traceId: string; parentId: string; childId: string } {
  const tracer = provider.getTracer('harness-test-scope', '1.2.3');
  const parent = tracer.startSpan('task.run', {
    kind: SpanKind.SERVER,
    startTime: START,
    attributes: {
      'task.id': 'task-42',
      'task.attempt': 3,
      'task.ratio': 0.25,
      'task.cached': false,
      'task.tags': ['a', 'b'],
      'task.sizes': [1, 2, 3],
    },
  });
  parent.addEvent('task.progress', { 'progress.step': 2, 'progress.note': 'halfway' }, EVENT_TIME);
  const child = tracer.startSpan('task.step', { startTime: CHILD_START }, trace.setSpan(context.active(), parent));
  child.setStatus({ code: SpanStatusCode.OK });
  child.end(CHILD_END);
  parent.setStatus({ code: SpanStatusCode.ERROR, message: 'boom' });
  parent.end(END);
  return { traceId: parent.spanContext().traceId, parentId: parent.spanContext().spanId, childId: child.spanContext().spanId };
}

describe.each([
  { protocol: 'json', compression: 'none', contentType: 'application/json' },
  { protocol: 'json', compression: 'gzip', contentType: 'application/json' },
  { protocol: 'protobuf', compression: 'none', contentType: 'application/x-protobuf' },
  { protocol: 'protobuf', compression: 'gzip', contentType: 'application/x-protobuf' },
  { protocol: 'bridge-protobuf', compression: 'none', contentType: 'application/x-protobuf' },
  { protocol: 'bridge-protobuf', compression: 'gzip', contentType: 'application/x-protobuf' },
] as const)('OTLP receiver with http/$protocol, compression=$compression', ({ protocol, compression, contentType }) => {
  it('decodes ids, parentage, exact times, attributes, events, status, resource and scope', async () => {
    const provider = new BasicTracerProvider({
      // BasicTracerProvider 2.x uses a given resource as is: merge the SDK defaults (telemetry.sdk.*) in explicitly.
      resource: defaultResource().merge(
        resourceFromAttributes({ 'service.name': 'harness-test', 'deployment.environment.name': 'test' }),
      ),
      spanProcessors: [new SimpleSpanProcessor(makeExporter(protocol, compression))],
    });
    const ids = recordSpans(provider);
    await provider.forceFlush();
    const spans = await receiver.waitForSpans(2);
    await provider.shutdown();

    expect(spans).toHaveLength(2);
    const parent = spans.find((s) => s.name === 'task.run');
    const child = spans.find((s) => s.name === 'task.step');
    expect(parent).toBeDefined();
    expect(child).toBeDefined();

    expect(parent!.traceId).toBe(ids.traceId);
    expect(parent!.traceId).toMatch(/^[0-9a-f]{32}$/);
    expect(parent!.spanId).toBe(ids.parentId);
    expect(parent!.spanId).toMatch(/^[0-9a-f]{16}$/);
    expect(parent!.parentSpanId).toBe('');
    expect(child!.traceId).toBe(ids.traceId);
    expect(child!.spanId).toBe(ids.childId);
    expect(child!.parentSpanId).toBe(ids.parentId);

    expect(parent!.kind).toBe(2); // SPAN_KIND_SERVER
    expect(child!.kind).toBe(1); // SPAN_KIND_INTERNAL
    expect(parent!.startTimeUnixNano).toBe(nanos(START));
    expect(parent!.startTimeUnixNano).toBe(1_700_000_000_123_456_789n);
    expect(parent!.endTimeUnixNano).toBe(nanos(END));
    expect(child!.startTimeUnixNano).toBe(nanos(CHILD_START));
    expect(child!.endTimeUnixNano).toBe(nanos(CHILD_END));

    expect(parent!.attributes).toEqual({
      'task.id': 'task-42',
      'task.attempt': 3,
      'task.ratio': 0.25,
      'task.cached': false,
      'task.tags': ['a', 'b'],
      'task.sizes': [1, 2, 3],
    });
    expect(parent!.events).toEqual([
      { name: 'task.progress', timeUnixNano: nanos(EVENT_TIME), attributes: { 'progress.step': 2, 'progress.note': 'halfway' } },
    ]);
    expect(parent!.status).toEqual({ code: 2, message: 'boom' });
    expect(child!.status).toEqual({ code: 1, message: '' });

    expect(parent!.resource).toMatchObject({ 'service.name': 'harness-test', 'deployment.environment.name': 'test' });
    expect(parent!.resource['telemetry.sdk.language']).toBe('nodejs');
    expect(parent!.scope).toEqual({ name: 'harness-test-scope', version: '1.2.3' });

    const requests = receiver.requests();
    expect(requests.length).toBeGreaterThanOrEqual(1);
    for (const r of requests) {
      expect(r).toMatchObject({ contentType, encoding: compression === 'gzip' ? 'gzip' : '', status: 200 });
    }
    expect(requests.reduce((n, r) => n + r.spanCount, 0)).toBe(2);
  });
});

describe('OTLP receiver failure simulation', () => {
  async function captureSpans(): Promise<ReadableSpan[]> {
    const memory = new InMemorySpanExporter();
    const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(memory)] });
    recordSpans(provider);
    await provider.forceFlush();
    const spans = memory.getFinishedSpans();
    await provider.shutdown();
    return spans;
  }
  const exportOnce = (exporter: SpanExporter, spans: ReadableSpan[]): Promise<ExportResult> =>
    new Promise((resolve) => exporter.export(spans, resolve));

  it.each(['json', 'protobuf', 'bridge-protobuf'] as const)('a non-retryable status (400) makes the %s exporter report FAILED', async (protocol) => {
    const spans = await captureSpans();
    const exporter = makeExporter(protocol, 'none');
    receiver.failNext(1, 400);
    const failed = await exportOnce(exporter, spans);
    expect(failed.code).toBe(ExportResultCode.FAILED);
    expect(failed.error).toBeDefined();
    expect(receiver.spans()).toHaveLength(0);
    expect(receiver.requests().map((r) => r.status)).toEqual([400]);

    // the failure budget is spent: the next export is accepted
    const ok = await exportOnce(exporter, spans);
    expect(ok.code).toBe(ExportResultCode.SUCCESS);
    expect(receiver.spans()).toHaveLength(2);
    await exporter.shutdown();
  });

  it('a dead collector (503 with Retry-After: 0 on every attempt) makes the exporter give up with FAILED', async () => {
    const spans = await captureSpans();
    const exporter = makeExporter('protobuf', 'none');
    receiver.failNext(100, 503, { retryAfterSec: 0 });
    const result = await exportOnce(exporter, spans);
    expect(result.code).toBe(ExportResultCode.FAILED);
    // OTel JS retries retryable statuses (429/502/503/504): 1 attempt + up to 5 retries.
    expect(receiver.requests().map((r) => r.status)).toEqual(Array(6).fill(503));
    expect(receiver.spans()).toHaveLength(0);
    await exporter.shutdown();
  });

  it('a single 503 is retried (after ~1 s backoff) and the export then succeeds', async () => {
    const spans = await captureSpans();
    const exporter = makeExporter('json', 'gzip');
    receiver.failNext(1); // default status 503
    const result = await exportOnce(exporter, spans);
    expect(result.code).toBe(ExportResultCode.SUCCESS);
    expect(receiver.requests().map((r) => r.status)).toEqual([503, 200]);
    expect(receiver.spans()).toHaveLength(2);
    await exporter.shutdown();
  });

  it('rejects OTLP/JSON whose ids are not hex (as a collector does) with 400', async () => {
    const res = await fetch(receiver.tracesUrl, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({
        resourceSpans: [{ scopeSpans: [{ spans: [{ traceId: 'CvdlGRbNQ92ESOshHIAxnA==', spanId: 'b7ad6b7169203331', name: 'x' }] }] }],
      }),
    });
    expect(res.status).toBe(400);
    expect(await res.text()).toMatch(/traceId must be 32 hex/);
    expect(receiver.spans()).toHaveLength(0);
  });

  it('answers an empty ExportTraceServiceResponse in the request encoding', async () => {
    const json = await fetch(receiver.tracesUrl, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ resourceSpans: [] }),
    });
    expect(json.status).toBe(200);
    expect(json.headers.get('content-type')).toBe('application/json');
    expect(await json.json()).toEqual({});
    const pb = await fetch(receiver.tracesUrl, {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-protobuf' },
      body: new Uint8Array(0),
    });
    expect(pb.status).toBe(200);
    expect(pb.headers.get('content-type')).toBe('application/x-protobuf');
    expect((await pb.arrayBuffer()).byteLength).toBe(0);
  });
});
