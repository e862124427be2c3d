// Finished tasks → OpenTelemetry spans, exactly one per task.
//
// Owns: the span contract (name, kind, times, attributes, events, status). Must not: do I/O, choose ids (span-ids.ts)
// or decide where a task's parent is (the pipeline resolves placement; this file only applies it), or read the SDK's
// private parts (otel-sdk-internals.ts does, for the direct path).

import {
  type Attributes,
  type HrTime,
  type Link,
  ROOT_CONTEXT,
  type Span,
  type SpanContext,
  SpanKind,
  type SpanStatus,
  SpanStatusCode,
  TraceFlags,
  trace,
} from '@opentelemetry/api';
import { hrTimeDuration, millisToHrTime, otperformance } from '@opentelemetry/core';
import { SamplingDecision, type TimedEvent } from '@opentelemetry/sdk-trace-base';
import { errorType } from './events.js';
import { type SpanOutput, endHandBuilt, readSpanOutput } from './otel-sdk-internals.js';
import { type Placement, type WrittenSpan, taskSpanId } from './span-ids.js';
import type { Tracing } from './telemetry.js';
import { type ErrorMessageMode, scrubHead } from './redact.js';
import type { FinishedTask } from './tracker.js';

export interface SpanContent {
  recordArgs: boolean;
  recordResult: boolean;
  recordOutput: boolean;
  /** Truncation for args, results, output content and error messages. */
  maxPayloadLength: number;
  maxStackLength: number;
  /** exception.message, the status message and exception.stacktrace: scrubbed (default), as stored, or left out. */
  errorMessage?: ErrorMessageMode;
}

export const DEFAULT_SPAN_CONTENT: SpanContent = {
  recordArgs: false,
  recordResult: false,
  recordOutput: false,
  maxPayloadLength: 2048,
  maxStackLength: 4096,
};

export function spanName(toolName: string): string {
  return `background_task ${toolName}`;
}

function truncate(s: string, max: number): string {
  return s.length > max ? `${s.slice(0, max)}…[truncated ${s.length - max} chars]` : s;
}

/** truncate(scrubSecrets(s), max), scanning only the start of a long `s` (scrubHead says how far and why). */
function scrubbedTruncate(s: string, max: number): string {
  const { head, rest } = scrubHead(s, max);
  return rest > 0 ? `${head}…[truncated ${rest} chars]` : head;
}

/** Payloads become JSON strings, truncated; anything unserialisable is described, never thrown. */
export function payloadString(v: unknown, max: number): string {
  let s: string;
  try {
    s = typeof v === 'string' ? v : (JSON.stringify(v) ?? String(v));
  } catch {
    s = '[unserialisable]';
  }
  return truncate(s, max);
}

// The fixed parts of every span built directly (see SpanWriter): shared, never mutated.
const NO_LINKS: Link[] = Object.freeze([]) as unknown as Link[];
const NO_ATTRIBUTES: Attributes = Object.freeze({});
const OUTPUT_INDEX = 'mastra.background_task.output.index';
/** `{ [OUTPUT_INDEX]: i }` for the first output indexes, one frozen object each instead of one per span event. */
const INDEX_ATTRIBUTES: Attributes[] = Array.from({ length: 64 }, (_, i) => Object.freeze({ [OUTPUT_INDEX]: i }));
const UNSET_STATUS: SpanStatus = Object.freeze({ code: SpanStatusCode.UNSET });
// The most attributes a task span gets (10 always, 6 from the stored record, queue wait, args, result, error.type) and
// the most per event (the exception event's 3): span limits at or above these never drop or truncate anything.
const MAX_SPAN_ATTRIBUTES = 20;
const MAX_EVENT_ATTRIBUTES = 3;

/**
 * Builds each task's span. With a tracer from the SDK the bridge wires (spanOutputOf), the finished span is built as a
 * plain ReadableSpan and handed to the provider's processors — the same fields, values and order that
 * `tracer.startSpan()` + `addEvent()` + `setStatus()` + `end()` produce (test/spans.test.ts compares the two), without
 * the SDK's per-call sanitising, limit checks and time conversions, which cost about as much as the rest of the
 * bridge. The SDK path remains for any other tracer and for the rare spans the shortcut does not cover: a sampler that
 * adds attributes or trace state (or decides RECORD only), span limits that would drop or truncate, a start time the
 * SDK would read as a performance timestamp.
 */
export class SpanWriter {
  private readonly output: SpanOutput | undefined;
  /** Whether the limits are high enough for any task span (the event count is checked per span). */
  private readonly limitsFit: boolean;

  constructor(
    private readonly tracing: Tracing,
    private readonly content: SpanContent = DEFAULT_SPAN_CONTENT,
  ) {
    const read = readSpanOutput(tracing.tracer);
    this.output = 'unavailable' in read ? undefined : read;
    const l = this.output?.limits;
    this.limitsFit =
      l !== undefined && l.attributeCountLimit >= MAX_SPAN_ATTRIBUTES && l.attributePerEventCountLimit >= MAX_EVENT_ATTRIBUTES && l.attributeValueLengthLimit === Infinity;
    tracing.fastPaths?.report(
      'otel_direct_span',
      this.limitsFit,
      'unavailable' in read ? read.unavailable : 'span limits (OTEL_SPAN_*_LIMIT) low enough to drop or truncate: the SDK applies them',
    );
  }

  /** The error's message and stack as the span may carry them (traces.errorMessage), truncated. */
  private errorText(error: { message: string; stack?: string } | undefined): { message: string; stack: string | undefined } {
    const mode = this.content.errorMessage ?? 'scrub';
    if (mode === 'none' || error === undefined) return { message: '', stack: undefined };
    const shown = (s: string, max: number): string => (mode === 'scrub' ? scrubbedTruncate(s, max) : truncate(s, max));
    return {
      message: shown(error.message ?? '', this.content.maxPayloadLength),
      stack: error.stack ? shown(error.stack, this.content.maxStackLength) : undefined,
    };
  }

  write(task: FinishedTask, placement: Placement): WrittenSpan {
    if (this.output !== undefined && this.limitsFit) {
      const written = this.writeDirect(this.output, task, placement);
      if (written !== undefined) return written;
    }
    return this.writeViaTracer(task, placement);
  }

  /** The span's attributes before its end (error.type is set last, as the SDK path does). */
  private attributesOf(task: FinishedTask, placement: Placement): Record<string, string | number | boolean> {
    const info = task.info ?? {};
    const attributes: Record<string, string | number | boolean> = {
      'gen_ai.operation.name': 'execute_tool',
      'gen_ai.tool.name': task.toolName,
      'gen_ai.tool.call.id': task.toolCallId,
      'gen_ai.agent.id': task.agentId,
      'mastra.metadata.runId': task.runId,
      'mastra.background_task.id': task.taskId,
      'mastra.background_task.status': task.status,
      'mastra.background_task.output_chunks': task.outputCount,
      'mastra.background_task.origin': task.origin,
      'mastra.background_task.placement': placement.origin,
    };
    if (info.threadId !== undefined) {
      attributes['gen_ai.conversation.id'] = info.threadId;
      attributes['mastra.metadata.threadId'] = info.threadId;
    }
    if (info.resourceId !== undefined) attributes['mastra.metadata.resourceId'] = info.resourceId;
    if (info.retryCount !== undefined) attributes['mastra.background_task.retry_count'] = info.retryCount;
    if (info.maxRetries !== undefined) attributes['mastra.background_task.max_retries'] = info.maxRetries;
    if (info.timeoutMs !== undefined) attributes['mastra.background_task.timeout_ms'] = info.timeoutMs;
    if (info.createdAt !== undefined && task.startedAt !== undefined) {
      attributes['mastra.background_task.queue_wait_ms'] = Math.max(0, task.startedAt - info.createdAt);
    }
    if (this.content.recordArgs && task.args !== undefined) {
      attributes['gen_ai.tool.call.arguments'] = payloadString(task.args, this.content.maxPayloadLength);
    }
    if (this.content.recordResult && task.result !== undefined) {
      attributes['gen_ai.tool.call.result'] = payloadString(task.result, this.content.maxPayloadLength);
    }
    return attributes;
  }

  private times(task: FinishedTask): { start: number; end: number } {
    const start = task.startedAt ?? task.info?.createdAt ?? task.completedAt;
    return { start, end: Math.max(start, task.completedAt) };
  }

  private writeDirect(out: SpanOutput, task: FinishedTask, placement: Placement): WrittenSpan | undefined {
    const start = task.startedAt ?? task.info?.createdAt ?? task.completedAt;
    const end = Math.max(start, task.completedAt);
    // SpanImpl reads a number no later than performance.now() as a performance timestamp, not epoch ms.
    if (start <= otperformance.now()) return undefined;
    const failed = task.status === 'failed' || task.status === 'timed_out';
    if (task.events.length + (failed ? 1 : 0) > out.limits.eventCountLimit) return undefined;

    const spanId = taskSpanId(task.taskId);
    const traceId = placement.traceId;
    const parentSpanContext: SpanContext | undefined =
      placement.parentSpanId !== undefined ? { traceId, spanId: placement.parentSpanId, traceFlags: TraceFlags.SAMPLED, isRemote: true } : undefined;
    const parentContext = parentSpanContext ? trace.setSpanContext(ROOT_CONTEXT, parentSpanContext) : ROOT_CONTEXT;
    const name = spanName(task.toolName);
    const attributes = this.attributesOf(task, placement);
    const sampling = out.sampler.shouldSample(parentContext, traceId, name, SpanKind.INTERNAL, attributes, NO_LINKS);
    if (sampling.decision === SamplingDecision.NOT_RECORD) return { traceId, spanId, sampled: false };
    if (sampling.decision !== SamplingDecision.RECORD_AND_SAMPLED || sampling.attributes !== undefined || sampling.traceState !== undefined) {
      return undefined;
    }

    const events: TimedEvent[] = [];
    for (const e of task.events) {
      let attrs: Attributes;
      if (e.content !== undefined && this.content.recordOutput) {
        attrs = {};
        if (e.index !== undefined) attrs[OUTPUT_INDEX] = e.index;
        attrs['mastra.background_task.output.content'] = payloadString(e.content, this.content.maxPayloadLength);
      } else if (e.index !== undefined) {
        attrs = INDEX_ATTRIBUTES[e.index] ?? { [OUTPUT_INDEX]: e.index };
      } else {
        attrs = NO_ATTRIBUTES;
      }
      events.push({ name: e.name, attributes: attrs, time: millisToHrTime(Math.min(Math.max(e.at, start), end)), droppedAttributesCount: 0 });
    }
    const startTime = millisToHrTime(start);
    const endTime = millisToHrTime(end);
    let status = UNSET_STATUS;
    if (failed) {
      const type = errorType(task.error, task.status);
      const { message, stack } = this.errorText(task.error);
      attributes['error.type'] = type;
      const exceptionAttrs: Attributes = { 'exception.type': type, 'exception.message': message };
      if (stack) exceptionAttrs['exception.stacktrace'] = stack;
      events.push({ name: 'exception', attributes: exceptionAttrs, time: endTime, droppedAttributesCount: 0 });
      status = { code: SpanStatusCode.ERROR, message };
    }
    const context: SpanContext = { traceId, spanId, traceFlags: TraceFlags.SAMPLED, traceState: undefined };
    endHandBuilt(out, { context, parentSpanContext, name, startTime, endTime, duration: hrTimeDuration(startTime, endTime), status, attributes, events });
    return { traceId, spanId, sampled: true };
  }

  private writeViaTracer(task: FinishedTask, placement: Placement): WrittenSpan {
    const { tracer, ids } = this.tracing;
    const spanId = taskSpanId(task.taskId);
    const { start, end } = this.times(task);

    let parentContext = ROOT_CONTEXT;
    if (placement.parentSpanId !== undefined) {
      parentContext = trace.setSpanContext(ROOT_CONTEXT, {
        traceId: placement.traceId,
        spanId: placement.parentSpanId,
        traceFlags: TraceFlags.SAMPLED,
        isRemote: true,
      });
    } else {
      ids.nextTraceId = placement.traceId;
    }
    ids.nextSpanId = spanId;
    const attributes = this.attributesOf(task, placement);

    let span: Span;
    try {
      span = tracer.startSpan(spanName(task.toolName), { kind: SpanKind.INTERNAL, startTime: start, attributes }, parentContext);
    } finally {
      ids.nextTraceId = undefined;
      ids.nextSpanId = undefined;
    }

    for (const e of task.events) {
      const attrs: Record<string, string | number> = {};
      if (e.index !== undefined) attrs[OUTPUT_INDEX] = e.index;
      if (e.content !== undefined && this.content.recordOutput) {
        attrs['mastra.background_task.output.content'] = payloadString(e.content, this.content.maxPayloadLength);
      }
      span.addEvent(e.name, attrs, Math.min(Math.max(e.at, start), end));
    }
    if (task.status === 'failed' || task.status === 'timed_out') {
      const type = errorType(task.error, task.status);
      const { message, stack } = this.errorText(task.error);
      span.setAttribute('error.type', type);
      const exceptionAttrs: Record<string, string> = { 'exception.type': type, 'exception.message': message };
      if (stack) exceptionAttrs['exception.stacktrace'] = stack;
      span.addEvent('exception', exceptionAttrs, end);
      span.setStatus({ code: SpanStatusCode.ERROR, message });
    }
    const ctx = span.spanContext();
    const sampled = span.isRecording();
    span.end(end);
    return { traceId: ctx.traceId, spanId: ctx.spanId, sampled };
  }
}
