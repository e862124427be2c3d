// Finished tasks → OpenTelemetry spans, exactly one per task.
//
// Owns: the span contract (name, kind, times, attributes, events, status) and the id scheme. Must not: do I/O or
// decide where a task's parent is (the pipeline resolves placement; this file only applies it).
//
// Id scheme (documented in the README so apps can line their own traces up with it):
// - span id of a task = first 16 hex of sha256("mastra-task-bridge/span/" + taskId): re-exporting a task after a
//   restart yields the same span, never a second one with another id.
// - trace id of a run = the runId's 32 hex digits when runId is a UUID (Mastra's runIds are), else the first 32 hex
//   of sha256("mastra-task-bridge/trace/" + runId). Start a run with `tracingOptions: { traceId: runId without dashes }`
//   and its spans share the trace with its tasks.
// - trace id of a lone task (parent mode `none`) = first 32 hex of sha256("mastra-task-bridge/trace/" + taskId).

import { createHash, hash } from 'node:crypto';
import { ROOT_CONTEXT, type Span, SpanKind, SpanStatusCode, TraceFlags, trace } from '@opentelemetry/api';
import { errorType } from './events.js';
import type { Tracing } from './telemetry.js';
import type { FinishedTask } from './tracker.js';

export type ParentMode = 'auto' | 'run' | 'none';

export interface Placement {
  traceId: string;
  /** The Mastra tool_call span to parent under; absent for a root span. */
  parentSpanId?: string;
  /** mastra: under Mastra's own tool_call span; run: the run's derived trace; task: a trace of its own. */
  origin: 'mastra' | 'run' | 'task';
}

export interface SpanContent {
  recordArgs: boolean;
  recordResult: boolean;
  recordOutput: boolean;
  /** Truncation for args, results, output content and error messages. */
  maxPayloadLength: number;
  maxStackLength: number;
}

export const DEFAULT_SPAN_CONTENT: SpanContent = {
  recordArgs: false,
  recordResult: false,
  recordOutput: false,
  maxPayloadLength: 2048,
  maxStackLength: 4096,
};

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const ZERO_TRACE = '0'.repeat(32);

// One-shot hash (Node ≥ 20.12) when present: same digest, without a Hash object per call.
const oneShot = typeof hash === 'function' ? hash : undefined;

function sha256Hex(s: string): string {
  return oneShot ? oneShot('sha256', s, 'hex') : createHash('sha256').update(s).digest('hex');
}

export function runTraceId(runId: string): string {
  if (UUID.test(runId)) {
    const hex = runId.replace(/-/g, '').toLowerCase();
    if (hex !== ZERO_TRACE) return hex;
  }
  return sha256Hex(`mastra-task-bridge/trace/${runId}`).slice(0, 32);
}

export function taskTraceId(taskId: string): string {
  return sha256Hex(`mastra-task-bridge/trace/${taskId}`).slice(0, 32);
}

export function taskSpanId(taskId: string): string {
  const id = sha256Hex(`mastra-task-bridge/span/${taskId}`).slice(0, 16);
  // An all-zero span id is invalid; the odds are 2^-64, but the fix is one line.
  return id === '0000000000000000' ? '0000000000000001' : id;
}

/** Where a task's span goes when Mastra's own trace is not available. */
export function fallbackPlacement(task: { taskId: string; runId: string }, mode: ParentMode): Placement {
  return mode === 'none' ? { traceId: taskTraceId(task.taskId), origin: 'task' } : { traceId: runTraceId(task.runId), origin: 'run' };
}

export function spanName(toolName: string): string {
  return `background_task ${toolName}`;
}

function truncate(s: string, max: number): string {
  return s.length > max ? `${s.slice(0, max)}…[truncated ${s.length - max} chars]` : s;
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

export interface WrittenSpan {
  traceId: string;
  spanId: string;
  /** Whether the span is recorded (and exported when an exporter is set). */
  sampled: boolean;
}

export class SpanWriter {
  constructor(
    private readonly tracing: Tracing,
    private readonly content: SpanContent = DEFAULT_SPAN_CONTENT,
  ) {}

  write(task: FinishedTask, placement: Placement): WrittenSpan {
    const { tracer, ids } = this.tracing;
    const spanId = taskSpanId(task.taskId);
    const info = task.info ?? {};
    const start = task.startedAt ?? info.createdAt ?? task.completedAt;
    const end = Math.max(start, task.completedAt);

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

    let span: Span;
    try {
      span = tracer.startSpan(spanName(task.toolName), { kind: SpanKind.INTERNAL, startTime: start, attributes }, parentContext);
    } finally {
      ids.nextTraceId = undefined;
      ids.nextSpanId = undefined;
    }

    for (const e of task.events) {
      const attrs: Record<string, string | number> = {};
      if (e.index !== undefined) attrs['mastra.background_task.output.index'] = e.index;
      if (e.content !== undefined && this.content.recordOutput) {
        attrs['mastra.background_task.output.content'] = payloadString(e.content, this.content.maxPayloadLength);
      }
      span.addEvent(e.name, attrs, Math.min(Math.max(e.at, start), end));
    }
    if (task.status === 'failed' || task.status === 'timed_out') {
      const type = errorType(task.error, task.status);
      const message = truncate(task.error?.message ?? '', this.content.maxPayloadLength);
      span.setAttribute('error.type', type);
      const exceptionAttrs: Record<string, string> = { 'exception.type': type, 'exception.message': message };
      if (task.error?.stack) exceptionAttrs['exception.stacktrace'] = truncate(task.error.stack, this.content.maxStackLength);
      span.addEvent('exception', exceptionAttrs, end);
      span.setStatus({ code: SpanStatusCode.ERROR, message });
    }
    const ctx = span.spanContext();
    const sampled = span.isRecording();
    span.end(end);
    return { traceId: ctx.traceId, spanId: ctx.spanId, sampled };
  }
}
