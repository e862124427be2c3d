// The one file that wires the OpenTelemetry SDK: resource, tracer provider, batch processor and OTLP exporter.
//
// Owns: turning the tracing config into a Tracer whose span ids the bridge chooses (deterministic ids, see spans.ts),
// counting export outcomes, flush and shutdown. Must not: build spans or know about tasks.
// The provider is never registered globally: a library must not take over its host's OTel setup.

import type { Tracer } from '@opentelemetry/api';
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import { OTLPTraceExporter as OTLPJsonExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { OTLPTraceExporter as OTLPProtoExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { defaultResource, detectResources, envDetector, resourceFromAttributes } from '@opentelemetry/resources';
import { BatchSpanProcessor, type IdGenerator, type ReadableSpan, RandomIdGenerator, type SpanExporter } from '@opentelemetry/sdk-trace-base';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import { ATTR_SERVICE_NAME, ATTR_SERVICE_VERSION } from '@opentelemetry/semantic-conventions';

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

export type ExportOutcome = 'exported' | 'failed';

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
  if (config.tracesUrl !== undefined) {
    const exporterConfig = {
      url: config.tracesUrl,
      ...(config.headers ? { headers: config.headers } : {}),
      ...(config.timeoutMs ? { timeoutMillis: config.timeoutMs } : {}),
    };
    const exporter = config.protocol === 'http/json' ? new OTLPJsonExporter(exporterConfig) : new OTLPProtoExporter(exporterConfig);
    spanProcessors.push(new BatchSpanProcessor(new CountingExporter(exporter, onOutcome, onExported), config.batch));
  }
  const provider = new NodeTracerProvider({ resource, idGenerator: ids, spanProcessors });
  return {
    tracer: provider.getTracer('mastra-task-bridge', config.serviceVersion),
    ids,
    exporting: config.tracesUrl !== undefined,
    forceFlush: () => provider.forceFlush(),
    shutdown: () => provider.shutdown(),
  };
}
