// The one file that wires the OpenTelemetry SDK: resource, tracer provider, batch processor and OTLP exporter.
//
// Owns: turning the tracing config into a Tracer whose span ids the bridge chooses (deterministic ids, see
// span-ids.ts), counting export outcomes, flush and shutdown. Must not: build spans, know about tasks, or read the
// SDK's private parts (otel-sdk-internals.ts does).
// The provider is never registered globally: a library must not take over its host's OTel setup.

import type { Tracer } from '@opentelemetry/api';
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import { OTLPTraceExporter as OTLPJsonExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { OTLPExporterBase, type OTLPExporterNodeConfigBase } from '@opentelemetry/otlp-exporter-base';
import { convertLegacyHttpOptions, createOtlpHttpExportDelegate } from '@opentelemetry/otlp-exporter-base/node-http';
import { TraceExporterMetricsHelper } from '@opentelemetry/otlp-transformer';
import { defaultResource, detectResources, envDetector, resourceFromAttributes } from '@opentelemetry/resources';
import { type IdGenerator, type ReadableSpan, RandomIdGenerator, type SpanExporter } from '@opentelemetry/sdk-trace-base';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import { ATTR_SERVICE_NAME, ATTR_SERVICE_VERSION } from '@opentelemetry/semantic-conventions';
import { FastPaths } from './fast-paths.js';
import { createOtlpTraceSerializer } from './otlp-encode.js';
import { CountingBatchSpanProcessor, guardNegativeRetryAfter } from './otel-sdk-internals.js';

export { guardNegativeRetryAfter };

export interface TracingConfig {
  serviceName: string;
  serviceVersion: string;
  /** Full OTLP traces URL (…/v1/traces); undefined: spans are built (ids, exemplars) but not exported. */
  tracesUrl: string | undefined;
  protocol: 'http/protobuf' | 'http/json';
  headers?: Record<string, string>;
  timeoutMs?: number;
  batch: { maxQueueSize: number; maxExportBatchSize: number; scheduledDelayMillis: number; exportTimeoutMillis: number };
  /** Where the exporter's fast paths report (otlp_encoder, otel_queue_full_count); default a register of its own. */
  fastPaths?: FastPaths;
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
  /** The fast-path register this tracing and the span writer report to (absent on hand-made Tracings in tests). */
  fastPaths?: FastPaths;
  /** Whether the exporter's `Retry-After: 0` guard is in place (see guardNegativeRetryAfter). */
  retryAfterGuarded?: boolean;
  forceFlush(): Promise<void>;
  shutdown(): Promise<void>;
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
 * The `http/protobuf` traces exporter: @opentelemetry/exporter-trace-otlp-proto 0.223's OTLPTraceExporter (node) built
 * the same way from otlp-exporter-base's public API — same HTTP transport, retries, compression, headers, timeouts,
 * OTEL_EXPORTER_OTLP_* handling and self-observability metrics — with OtlpTraceSerializer (otlp-encode.ts, same bytes,
 * faster) in place of ProtobufTraceSerializer.
 */
export class OTLPProtoTraceExporter extends OTLPExporterBase<ReadableSpan[]> implements SpanExporter {
  constructor(config: OTLPExporterNodeConfigBase = {}, onEncoderFallback?: () => void) {
    super(
      createOtlpHttpExportDelegate(
        convertLegacyHttpOptions(config, 'TRACES', 'v1/traces', { 'Content-Type': 'application/x-protobuf' }),
        createOtlpTraceSerializer(onEncoderFallback),
        'otlp_http_span_exporter', // OTEL_COMPONENT_TYPE_VALUE_OTLP_HTTP_SPAN_EXPORTER, as exporter-trace-otlp-proto passes it
        TraceExporterMetricsHelper,
        config.selfObsMeterProvider,
      ),
    );
  }
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
  const fastPaths = config.fastPaths ?? new FastPaths();
  const spanProcessors = [];
  let retryAfterGuarded = false;
  if (config.tracesUrl !== undefined) {
    const exporterConfig = {
      url: config.tracesUrl,
      ...(config.headers ? { headers: config.headers } : {}),
      ...(config.timeoutMs ? { timeoutMillis: config.timeoutMs } : {}),
    };
    let exporter: SpanExporter;
    if (config.protocol === 'http/json') exporter = new OTLPJsonExporter(exporterConfig);
    else {
      exporter = new OTLPProtoTraceExporter(exporterConfig, () => fastPaths.fallback('otlp_encoder'));
      fastPaths.report('otlp_encoder', true);
    }
    retryAfterGuarded = guardNegativeRetryAfter(exporter);
    fastPaths.report('otlp_retry_after_guard', retryAfterGuarded, 'the exporter is not the otlp-exporter-base 0.223 shape (_delegate._transport._transport)');
    spanProcessors.push(
      new CountingBatchSpanProcessor(new CountingExporter(exporter, onOutcome, onExported), config.batch, (n) => onOutcome('queue_full', n), fastPaths),
    );
  }
  const provider = new NodeTracerProvider({ resource, idGenerator: ids, spanProcessors });
  return {
    tracer: provider.getTracer('mastra-task-bridge', config.serviceVersion),
    ids,
    exporting: config.tracesUrl !== undefined,
    fastPaths,
    retryAfterGuarded,
    forceFlush: () => provider.forceFlush(),
    shutdown: () => provider.shutdown(),
  };
}
