// The one file that wires the OpenTelemetry SDK: resource, tracer provider, batch processor and OTLP exporter.
//
// Owns: turning the tracing config into a Tracer whose span ids the bridge chooses (deterministic ids, see spans.ts),
// counting export outcomes, flush and shutdown. Must not: build spans or know about tasks.
// The provider is never registered globally: a library must not take over its host's OTel setup.

import type { Tracer } from '@opentelemetry/api';
import { ExportResultCode, type ExportResult, type InstrumentationScope } from '@opentelemetry/core';
import { OTLPTraceExporter as OTLPJsonExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { type ExportResponse, type IExporterTransport, OTLPExporterBase, type OTLPExporterNodeConfigBase } from '@opentelemetry/otlp-exporter-base';
import { convertLegacyHttpOptions, createOtlpHttpExportDelegate } from '@opentelemetry/otlp-exporter-base/node-http';
import { TraceExporterMetricsHelper } from '@opentelemetry/otlp-transformer';
import { type Resource, defaultResource, detectResources, envDetector, resourceFromAttributes } from '@opentelemetry/resources';
import {
  BatchSpanProcessor,
  type IdGenerator,
  type ReadableSpan,
  RandomIdGenerator,
  type Sampler,
  type SpanExporter,
  type SpanLimits,
  type SpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import { ATTR_SERVICE_NAME, ATTR_SERVICE_VERSION } from '@opentelemetry/semantic-conventions';
import { OtlpTraceSerializer } from './otlp-encode.js';

export interface TracingConfig {
  serviceName: string;
  serviceVersion: string;
  /** Full OTLP traces URL (…/v1/traces); undefined: spans are built (ids, exemplars) but not exported. */
  tracesUrl: string | undefined;
  protocol: 'http/protobuf' | 'http/json';
  headers?: Record<string, string>;
  timeoutMs?: number;
  batch: { maxQueueSize: number; maxExportBatchSize: number; scheduledDelayMillis: number; exportTimeoutMillis: number };
}

/** `queue_full`: dropped by the batch processor before any export, its queue (`otel.batch.maxQueueSize`) full. */
export type ExportOutcome = 'exported' | 'failed' | 'queue_full';

/**
 * Lets the caller choose the ids of the next span: set `next` right before `tracer.startSpan()`, which reads it
 * synchronously. Random ids otherwise.
 */
export class PresetIdGenerator implements IdGenerator {
  private readonly random = new RandomIdGenerator();
  nextTraceId: string | undefined;
  nextSpanId: string | undefined;

  generateTraceId(): string {
    const id = this.nextTraceId ?? this.random.generateTraceId();
    this.nextTraceId = undefined;
    return id;
  }

  generateSpanId(): string {
    const id = this.nextSpanId ?? this.random.generateSpanId();
    this.nextSpanId = undefined;
    return id;
  }
}

export interface Tracing {
  tracer: Tracer;
  ids: PresetIdGenerator;
  /** Whether spans leave the process. */
  exporting: boolean;
  /** Whether the exporter's `Retry-After: 0` guard is in place (see guardNegativeRetryAfter). */
  retryAfterGuarded?: boolean;
  forceFlush(): Promise<void>;
  shutdown(): Promise<void>;
}

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
 * The SpanOutput of a tracer from @opentelemetry/sdk-trace 2.12 (what NodeTracerProvider hands out; the version is
 * pinned), read from the Tracer's fields (`_resource`, `instrumentationScope`, `_sampler`, `_spanLimits`,
 * `_spanProcessor`); undefined when the tracer does not have that shape (another SDK version, a non-SDK tracer) or when
 * a processor is not a BatchSpanProcessor, whose onStart() does nothing and which has no onEnding() — the two calls a
 * span built outside the SDK skips. Callers then use `tracer.startSpan()`.
 */
export function spanOutputOf(tracer: Tracer): SpanOutput | undefined {
  const t = tracer as unknown as {
    _resource?: Resource;
    instrumentationScope?: InstrumentationScope;
    _sampler?: Sampler;
    _spanLimits?: SpanLimits;
    _spanProcessor?: SpanProcessor & { _spanProcessors?: unknown };
  };
  const { _resource: resource, instrumentationScope: scope, _sampler: sampler, _spanLimits: limits, _spanProcessor: processor } = t;
  if (!resource || typeof resource !== 'object' || typeof scope?.name !== 'string') return undefined;
  if (typeof sampler?.shouldSample !== 'function' || typeof processor?.onEnd !== 'function' || !limits) return undefined;
  const processors = processor._spanProcessors;
  if (!Array.isArray(processors) || !processors.every((p) => p instanceof BatchSpanProcessor)) return undefined;
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

/** Wraps an exporter to count what reached the collector and what did not. */
class CountingExporter implements SpanExporter {
  constructor(
    private readonly inner: SpanExporter,
    private readonly onOutcome: (outcome: ExportOutcome, spans: number, error?: Error) => void,
    private readonly onExported?: (spans: ReadableSpan[]) => void,
  ) {}

  export(spans: ReadableSpan[], done: (result: ExportResult) => void): void {
    try {
      this.inner.export(spans, (result) => {
        const ok = result.code === ExportResultCode.SUCCESS;
        this.onOutcome(ok ? 'exported' : 'failed', spans.length, result.error);
        if (ok) this.onExported?.(spans);
        done(result);
      });
    } catch (error) {
      this.onOutcome('failed', spans.length, error as Error);
      done({ code: ExportResultCode.FAILED, error: error as Error });
    }
  }

  shutdown(): Promise<void> {
    return this.inner.shutdown();
  }

  forceFlush(): Promise<void> {
    return this.inner.forceFlush?.() ?? Promise.resolve();
  }
}

/**
 * A BatchSpanProcessor that counts the spans it drops because its queue is full (the SDK only says so in a diag debug
 * line): a collector slower than the task rate must show up in `mastra_task_bridge_spans_total`, not vanish. Still a
 * BatchSpanProcessor (spanOutputOf's fast path checks that). Reads the SDK 2.12 field `_droppedSpansCount` (pinned);
 * without it, it counts nothing and behaves as its parent.
 */
export class CountingBatchSpanProcessor extends BatchSpanProcessor {
  constructor(
    exporter: SpanExporter,
    config: ConstructorParameters<typeof BatchSpanProcessor>[1],
    private readonly onQueueFull: (spans: number) => void,
  ) {
    super(exporter, config);
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
 * The `http/protobuf` traces exporter: @opentelemetry/exporter-trace-otlp-proto 0.223's OTLPTraceExporter (node) built
 * the same way from otlp-exporter-base's public API — same HTTP transport, retries, compression, headers, timeouts,
 * OTEL_EXPORTER_OTLP_* handling and self-observability metrics — with OtlpTraceSerializer (otlp-encode.ts, same bytes,
 * faster) in place of ProtobufTraceSerializer.
 */
export class OTLPProtoTraceExporter extends OTLPExporterBase<ReadableSpan[]> implements SpanExporter {
  constructor(config: OTLPExporterNodeConfigBase = {}) {
    super(
      createOtlpHttpExportDelegate(
        convertLegacyHttpOptions(config, 'TRACES', 'v1/traces', { 'Content-Type': 'application/x-protobuf' }),
        OtlpTraceSerializer,
        'otlp_http_span_exporter', // OTEL_COMPONENT_TYPE_VALUE_OTLP_HTTP_SPAN_EXPORTER, as exporter-trace-otlp-proto passes it
        TraceExporterMetricsHelper,
        config.selfObsMeterProvider,
      ),
    );
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

export function createTracing(
  config: TracingConfig,
  onOutcome: (outcome: ExportOutcome, spans: number, error?: Error) => void = () => {},
  /** Spans the collector acknowledged (the restart checkpoint records these). */
  onExported?: (spans: ReadableSpan[]) => void,
): Tracing {
  const resource = defaultResource()
    .merge(detectResources({ detectors: [envDetector] }))
    .merge(resourceFromAttributes({ [ATTR_SERVICE_NAME]: config.serviceName, [ATTR_SERVICE_VERSION]: config.serviceVersion }));
  const ids = new PresetIdGenerator();
  const spanProcessors = [];
  let retryAfterGuarded = false;
  if (config.tracesUrl !== undefined) {
    const exporterConfig = {
      url: config.tracesUrl,
      ...(config.headers ? { headers: config.headers } : {}),
      ...(config.timeoutMs ? { timeoutMillis: config.timeoutMs } : {}),
    };
    const exporter = config.protocol === 'http/json' ? new OTLPJsonExporter(exporterConfig) : new OTLPProtoTraceExporter(exporterConfig);
    retryAfterGuarded = guardNegativeRetryAfter(exporter);
    spanProcessors.push(
      new CountingBatchSpanProcessor(new CountingExporter(exporter, onOutcome, onExported), config.batch, (n) => onOutcome('queue_full', n)),
    );
  }
  const provider = new NodeTracerProvider({ resource, idGenerator: ids, spanProcessors });
  return {
    tracer: provider.getTracer('mastra-task-bridge', config.serviceVersion),
    ids,
    exporting: config.tracesUrl !== undefined,
    retryAfterGuarded,
    forceFlush: () => provider.forceFlush(),
    shutdown: () => provider.shutdown(),
  };
}
