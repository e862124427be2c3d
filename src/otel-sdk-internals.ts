// The OpenTelemetry SDK's private parts the bridge relies on, fenced in one room (@opentelemetry/sdk-trace-base 2.12,
// pinned; see docs/upgrading.md). Three fast paths live here, each reporting to the fast-path register
// (fast-paths.ts) whether it is active, each falling back to the SDK's public API when the shape is not the expected
// one:
// - otel_direct_span: a tracer's resolved resource, scope, sampler, span limits and span processor, read from its
//   private fields, so that a finished task span can be built by hand as a ReadableSpan (HandBuiltSpan) and handed
//   straight to the processors. Else spans.ts goes through tracer.startSpan().
// - otel_queue_full_count: BatchSpanProcessor's `_droppedSpansCount`, the only trace of a span dropped for a full
//   queue. Else such drops are not counted.
// - otlp_retry_after_guard: the OTLP exporter's transport under its RetryingTransport (otlp-exporter-base 0.223), wrapped
//   so a `Retry-After: 0` retry is not a negative timeout (Node 23+ warns on each). Else the retry happens with the warning.
// test/compat.test.ts holds them active on the pinned versions. Must not: know about tasks or build span content.

import type { Attributes, HrTime, Link, SpanContext, SpanKind, SpanStatus, Tracer } from '@opentelemetry/api';
import { SpanKind as Kinds } from '@opentelemetry/api';
import type { InstrumentationScope } from '@opentelemetry/core';
import type { Resource } from '@opentelemetry/resources';
import { BatchSpanProcessor, type ReadableSpan, type Sampler, type SpanExporter, type SpanLimits, type SpanProcessor, type TimedEvent } from '@opentelemetry/sdk-trace-base';
import type { ExportResponse, IExporterTransport } from '@opentelemetry/otlp-exporter-base';
import type { FastPaths } from './fast-paths.js';

/**
 * What a finished span needs to reach the provider's processors without going through `tracer.startSpan()`: the
 * tracer's resource, scope, sampler and span limits as the provider resolved them (OTEL_TRACES_SAMPLER and the
 * OTEL_SPAN_*_LIMIT variables included), and its span processor.
 */
export interface SpanOutput {
  resource: Resource;
  scope: InstrumentationScope;
  sampler: Sampler;
  limits: Required<Pick<SpanLimits, 'attributeCountLimit' | 'attributeValueLengthLimit' | 'eventCountLimit' | 'attributePerEventCountLimit'>>;
  /** The provider's MultiSpanProcessor: onEnd() hands a span to every processor. */
  processor: Pick<SpanProcessor, 'onEnd'>;
}

/**
 * The SpanOutput of a tracer from @opentelemetry/sdk-trace 2.12 (what NodeTracerProvider hands out), read from the
 * Tracer's fields (`_resource`, `instrumentationScope`, `_sampler`, `_spanLimits`, `_spanProcessor`); or why not: the
 * tracer does not have that shape (another SDK version, a non-SDK tracer), or a processor is not a
 * BatchSpanProcessor, whose onStart() does nothing and which has no onEnding() — the two calls a hand-built span skips.
 */
export function readSpanOutput(tracer: Tracer): SpanOutput | { unavailable: string } {
  const t = tracer as unknown as {
    _resource?: Resource;
    instrumentationScope?: InstrumentationScope;
    _sampler?: Sampler;
    _spanLimits?: SpanLimits;
    _spanProcessor?: SpanProcessor & { _spanProcessors?: unknown };
  };
  const { _resource: resource, instrumentationScope: scope, _sampler: sampler, _spanLimits: limits, _spanProcessor: processor } = t;
  if (!resource || typeof resource !== 'object' || typeof scope?.name !== 'string') return { unavailable: 'the tracer has no _resource / instrumentationScope (not the pinned SDK tracer)' };
  if (typeof sampler?.shouldSample !== 'function' || typeof processor?.onEnd !== 'function' || !limits) {
    return { unavailable: 'the tracer has no _sampler / _spanLimits / _spanProcessor (not the pinned SDK tracer)' };
  }
  const processors = processor._spanProcessors;
  if (!Array.isArray(processors)) return { unavailable: 'the span processor has no _spanProcessors list (not the pinned SDK)' };
  if (!processors.every((p) => p instanceof BatchSpanProcessor)) return { unavailable: 'a span processor is not a BatchSpanProcessor' };
  const num = (v: number | undefined, dflt: number): number => (typeof v === 'number' ? v : dflt);
  return {
    resource,
    scope,
    sampler,
    limits: {
      attributeCountLimit: num(limits.attributeCountLimit, 128),
      attributeValueLengthLimit: num(limits.attributeValueLengthLimit, Infinity),
      eventCountLimit: num(limits.eventCountLimit, 128),
      attributePerEventCountLimit: num(limits.attributePerEventCountLimit, 128),
    },
    processor,
  };
}

/** readSpanOutput without the reason. */
export function spanOutputOf(tracer: Tracer): SpanOutput | undefined {
  const out = readSpanOutput(tracer);
  return 'unavailable' in out ? undefined : out;
}

const NO_LINKS: Link[] = Object.freeze([]) as unknown as Link[];

/** The fields of a finished span that vary; the rest is fixed (INTERNAL, ended, no links, nothing dropped). */
export interface HandBuiltSpanFields {
  context: SpanContext;
  parentSpanContext: SpanContext | undefined;
  name: string;
  startTime: HrTime;
  endTime: HrTime;
  duration: HrTime;
  status: SpanStatus;
  attributes: Attributes;
  events: TimedEvent[];
}

/** A finished span as the SDK's SpanImpl holds it after end(): what span processors and exporters read. */
export class HandBuiltSpan implements ReadableSpan {
  readonly kind: SpanKind = Kinds.INTERNAL;
  readonly links = NO_LINKS;
  readonly ended = true;
  readonly droppedAttributesCount = 0;
  readonly droppedEventsCount = 0;
  readonly droppedLinksCount = 0;
  constructor(
    private readonly context: SpanContext,
    readonly parentSpanContext: SpanContext | undefined,
    readonly name: string,
    readonly startTime: HrTime,
    readonly endTime: HrTime,
    readonly duration: HrTime,
    readonly status: SpanStatus,
    readonly attributes: Attributes,
    readonly events: TimedEvent[],
    readonly resource: Resource,
    readonly instrumentationScope: InstrumentationScope,
  ) {}

  spanContext(): SpanContext {
    return this.context;
  }
}

/** Builds the span and hands it to the provider's processors, as SpanImpl.end() does. */
export function endHandBuilt(out: SpanOutput, f: HandBuiltSpanFields): void {
  out.processor.onEnd(
    new HandBuiltSpan(f.context, f.parentSpanContext, f.name, f.startTime, f.endTime, f.duration, f.status, f.attributes, f.events, out.resource, out.scope),
  );
}

/**
 * A BatchSpanProcessor that counts the spans it drops because its queue is full (the SDK only says so in a diag debug
 * line): a collector slower than the task rate must show up in `mastra_task_bridge_spans_total`, not vanish. Still a
 * BatchSpanProcessor (readSpanOutput checks that). Reads `_droppedSpansCount`; without it, it counts nothing, behaves
 * as its parent, and reports otel_queue_full_count off.
 */
export class CountingBatchSpanProcessor extends BatchSpanProcessor {
  constructor(
    exporter: SpanExporter,
    config: ConstructorParameters<typeof BatchSpanProcessor>[1],
    private readonly onQueueFull: (spans: number) => void,
    fastPaths?: FastPaths,
  ) {
    super(exporter, config);
    const counted = typeof (this as unknown as { _droppedSpansCount?: unknown })._droppedSpansCount === 'number';
    fastPaths?.report('otel_queue_full_count', counted, counted ? undefined : 'BatchSpanProcessor has no _droppedSpansCount');
  }

  override onEnd(span: ReadableSpan): void {
    // The SDK counts drops in `_droppedSpansCount` (reset to 0 by the next span it accepts): it grew iff this one
    // was dropped. Shutdown and unsampled spans return before that and are not counted.
    const self = this as unknown as { _droppedSpansCount?: number };
    const before = self._droppedSpansCount;
    super.onEnd(span);
    if (typeof before === 'number' && (self._droppedSpansCount ?? 0) > before) this.onQueueFull(1);
  }
}

/**
 * `Retry-After: 0` from a collector: otlp-exporter-base 0.223's `parseRetryAfterToMills` turns 0 seconds into -1 ms, and
 * its RetryingTransport hands that to `setTimeout`, which Node clamps to 1 ms — and from Node 23 warns about
 * (`TimeoutNegativeWarning`) on every such retry. This wraps the HTTP transport under the exporter's RetryingTransport
 * (`exporter._delegate._transport._transport`, the pinned 0.223 shape) so a negative retry delay becomes 0: retry at
 * once, as the collector asked and as the SDK already did, without the warning. Returns false, changing nothing, when
 * the exporter does not have that shape (another SDK version); the retry then still happens, with the warning.
 */
export function guardNegativeRetryAfter(exporter: object): boolean {
  const retrying = (exporter as { _delegate?: { _transport?: { _transport?: IExporterTransport } } })._delegate?._transport;
  const inner = retrying?._transport;
  if (!retrying || typeof inner?.send !== 'function' || typeof inner.shutdown !== 'function') return false;
  const guarded: IExporterTransport = {
    async send(data: Uint8Array, timeoutMillis: number): Promise<ExportResponse> {
      const response = await inner.send(data, timeoutMillis);
      if (response.status === 'retryable' && response.retryInMillis !== undefined && response.retryInMillis < 0) return { ...response, retryInMillis: 0 };
      return response;
    },
    shutdown: () => inner.shutdown(),
  };
  retrying._transport = guarded;
  return true;
}
