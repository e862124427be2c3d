// The span and trace id scheme, and where a task's span goes (Placement): shared by the span writer, placement
// resolution and the task API's span index, none of which needs the others for it.
//
// Id scheme (documented in the README so apps can line their own traces up with it):
// - span id of a task = first 16 hex of sha256("mastra-task-bridge/span/" + taskId): re-exporting a task after a
//   restart yields the same span, never a second one with another id.
// - trace id of a run = the runId's 32 hex digits when runId is a UUID (Mastra's runIds are), else the first 32 hex
//   of sha256("mastra-task-bridge/trace/" + runId). Start a run with `tracingOptions: { traceId: runId without dashes }`
//   and its spans share the trace with its tasks.
// - trace id of a lone task (parent mode `none`) = first 32 hex of sha256("mastra-task-bridge/trace/" + taskId).

import { createHash, hash } from 'node:crypto';

export type ParentMode = 'auto' | 'run' | 'none';

export interface Placement {
  traceId: string;
  /** The Mastra tool_call span to parent under; absent for a root span. */
  parentSpanId?: string;
  /** mastra: under Mastra's own tool_call span; run: the run's derived trace; task: a trace of its own. */
  origin: 'mastra' | 'run' | 'task';
}

export interface WrittenSpan {
  traceId: string;
  spanId: string;
  /** Whether the span is recorded (and exported when an exporter is set). */
  sampled: boolean;
}

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
