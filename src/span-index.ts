// What the bridge knows of each task's span, for the task API: the exact (traceId, spanId) of spans it wrote, and for
// tasks still open the span id they will get (deterministic from the task id) with the trace id when placement is
// deterministic too (`run`, `none`). Under `auto` an open task's trace is only known once Mastra's tool_call span is
// found at its end, so it is not guessed.
//
// A TaskSink (called once per finished task) with a bounded memory: the most recent `maxEntries` tasks.

import type { TaskSink } from './sinks.js';
import { type ParentMode, type WrittenSpan, fallbackPlacement, taskSpanId } from './span-ids.js';
import type { FinishedTask } from './tracker.js';

export interface TaskSpanIds {
  /** Absent while the trace is not known yet (open task, auto placement). */
  traceId?: string;
  spanId: string;
}

export class SpanIndex implements TaskSink {
  // taskId → traceId + spanId (48 hex chars: one string per task keeps memory small).
  private readonly written = new Map<string, string>();
  // Age order, oldest first, beside the map: evicting through a fresh `keys()` iterator walks every hole V8 leaves at
  // the front of a Map after deletes (≈80 µs per finished task once the index is full; see bench/). An id finished
  // again is pushed again; `stale` counts its older occurrences, which eviction skips.
  private order: string[] = [];
  private head = 0;
  private readonly stale = new Map<string, number>();

  constructor(
    private readonly options: { maxEntries: number; mode: ParentMode; isOpen: (taskId: string) => boolean },
  ) {}

  finished(task: FinishedTask, span: WrittenSpan): void {
    const id = task.taskId;
    if (this.written.has(id)) this.stale.set(id, (this.stale.get(id) ?? 0) + 1);
    this.written.set(id, span.traceId + span.spanId);
    this.order.push(id);
    while (this.written.size > this.options.maxEntries && this.head < this.order.length) {
      const oldest = this.order[this.head++] as string;
      const n = this.stale.size > 0 ? this.stale.get(oldest) : undefined;
      if (n === undefined) this.written.delete(oldest);
      else if (n > 1) this.stale.set(oldest, n - 1);
      else this.stale.delete(oldest);
    }
    if (this.head > 1024 && this.head * 2 > this.order.length) {
      this.order = this.order.slice(this.head);
      this.head = 0;
    }
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
