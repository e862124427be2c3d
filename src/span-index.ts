// What the bridge knows of each task's span, for the task API: the exact (traceId, spanId) of spans it wrote, and for
// tasks still open the span id they will get (deterministic from the task id) with the trace id when placement is
// deterministic too (`run`, `none`). Under `auto` an open task's trace is only known once Mastra's tool_call span is
// found at its end, so it is not guessed.
//
// A TaskSink (called once per finished task) with a bounded memory: the most recent `maxEntries` tasks.

import { FifoMap } from './fifo-map.js';
import type { TaskSink } from './sinks.js';
import { type ParentMode, type WrittenSpan, fallbackPlacement, taskSpanId } from './span-ids.js';
import type { FinishedTask } from './tracker.js';

export interface TaskSpanIds {
  /** Absent while the trace is not known yet (open task, auto placement). */
  traceId?: string;
  spanId: string;
}

export class SpanIndex implements TaskSink {
  // taskId → traceId + spanId (48 hex chars: one string per task keeps memory small); the oldest dropped first.
  private readonly written: FifoMap<string, string>;

  constructor(
    private readonly options: { maxEntries: number; mode: ParentMode; isOpen: (taskId: string) => boolean },
  ) {
    this.written = new FifoMap(options.maxEntries);
  }

  finished(task: FinishedTask, span: WrittenSpan): void {
    this.written.set(task.taskId, span.traceId + span.spanId);
  }

  /** The span ids of a task the bridge has seen, or undefined when it has not (or no longer remembers it). */
  lookup(task: { id: string; runId: string }): TaskSpanIds | undefined {
    const ids = this.written.get(task.id);
    if (ids) return { traceId: ids.slice(0, 32), spanId: ids.slice(32) };
    if (!this.options.isOpen(task.id)) return undefined;
    const spanId = taskSpanId(task.id);
    if (this.options.mode === 'auto') return { spanId };
    return { traceId: fallbackPlacement({ taskId: task.id, runId: task.runId }, this.options.mode).traceId, spanId };
  }
}
