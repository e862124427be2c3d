// The pipeline → event hub adapter: turns tracker transitions and finished tasks into `/api/events` events.
//
// Enrichment: the stream never carries threadId or resourceId, so a new task's events are held until its first
// lookup ends (milliseconds in process; bounded by the enricher's timeout and queue), then published with them. Held
// events keep their order; past `maxHeldPerTask` they are published unenriched rather than held without bound. A
// finished task is published from the `finished` sink, after its lookup and placement: with the true status
// (`timed_out`), the error class and, when its span was exported, its trace and span ids.
// Must not: do I/O or publish payload contents.

import { errorType } from './events.js';
import type { BridgeEvent, EventHub, TaskView } from './event-hub.js';
import type { TaskSink } from './sinks.js';
import type { WrittenSpan } from './span-ids.js';
import type { FinishedTask, OpenTask, TaskInfo } from './tracker.js';

export interface EventFeedOptions {
  /** Whether spans leave the process: trace ids are only published for spans that exist somewhere. */
  exporting: boolean;
  maxHeldPerTask?: number;
  /** Whether new tasks get a first lookup (enrichment on): only then are their events held for it. Default true. */
  holdForLookup?: boolean;
}

function withInfo(v: TaskView, info: TaskInfo | undefined): TaskView {
  if (info === undefined) return v;
  if (info.threadId !== undefined) v.threadId = info.threadId;
  if (info.resourceId !== undefined) v.resourceId = info.resourceId;
  if (v.startedAt === undefined && info.startedAt !== undefined) v.startedAt = info.startedAt;
  return v;
}

// Views are built as one literal holding every field a view can get, unset ones undefined (JSON leaves them out): no
// intermediate identity object, no spread, and no properties added afterwards (each addition past a literal's own
// fields costs an extra backing-store allocation). One view per event.
export function openView(task: OpenTask): TaskView {
  const info = task.info;
  return {
    taskId: task.taskId,
    toolName: task.toolName,
    toolCallId: task.toolCallId,
    agentId: task.agentId,
    runId: task.runId,
    status: task.phase,
    outputCount: task.outputCount,
    startedAt: task.startedAt ?? info?.startedAt,
    suspendedAt: task.phase === 'suspended' ? task.suspendedAt : undefined,
    resumedAt: task.lastResumedAt,
    threadId: info?.threadId,
    resourceId: info?.resourceId,
  };
}

/** openView(task) written into an existing view (same fields, same order of assignment as the literal). */
function refreshOpenView(v: TaskView, task: OpenTask): TaskView {
  const info = task.info;
  v.taskId = task.taskId;
  v.toolName = task.toolName;
  v.toolCallId = task.toolCallId;
  v.agentId = task.agentId;
  v.runId = task.runId;
  v.status = task.phase;
  v.outputCount = task.outputCount;
  v.startedAt = task.startedAt ?? info?.startedAt;
  v.suspendedAt = task.phase === 'suspended' ? task.suspendedAt : undefined;
  v.resumedAt = task.lastResumedAt;
  v.threadId = info?.threadId;
  v.resourceId = info?.resourceId;
  return v;
}

export function finishedView(task: FinishedTask, span: WrittenSpan | undefined): TaskView {
  const info = task.info;
  const failed = task.status === 'failed' || task.status === 'timed_out';
  return {
    taskId: task.taskId,
    toolName: task.toolName,
    toolCallId: task.toolCallId,
    agentId: task.agentId,
    runId: task.runId,
    status: task.status,
    completedAt: task.completedAt,
    outputCount: task.outputCount,
    startedAt: task.startedAt ?? info?.startedAt,
    durationMs: task.startedAt !== undefined ? Math.max(0, task.completedAt - task.startedAt) : undefined,
    threadId: info?.threadId,
    resourceId: info?.resourceId,
    traceId: span?.traceId,
    spanId: span?.spanId,
    errorType: failed ? errorType(task.error, task.status) : undefined,
  };
}

export class EventFeed implements TaskSink {
  private readonly held = new Map<string, BridgeEvent[]>();
  private readonly maxHeld: number;
  private readonly holdForLookup: boolean;

  constructor(
    private readonly hub: EventHub,
    private readonly options: EventFeedOptions,
  ) {
    this.maxHeld = options.maxHeldPerTask ?? 64;
    this.holdForLookup = options.holdForLookup ?? true;
  }

  /** Tasks whose events wait for their first lookup. */
  get holding(): number {
    return this.held.size;
  }

  transition(t: Parameters<NonNullable<TaskSink['transition']>>[0], observedAt: number): void {
    const id = t.task.taskId;
    if (t.type === 'evicted') {
      this.release(id, undefined);
      this.hub.forget(id);
      return;
    }
    const queue = this.held.size > 0 ? this.held.get(id) : undefined;
    const holdNew = queue === undefined && t.type === 'started' && t.task.info === undefined && this.holdForLookup;
    // No id has left the hub yet: nothing can ever be delivered or replayed, so only the snapshot state is updated,
    // and the task's open view (referenced by the hub alone) is updated in place instead of built anew.
    const quiet = queue === undefined && !holdNew && this.hub.quiet;
    const prev = quiet ? this.hub.openView(id) : undefined;
    const task = prev !== undefined ? refreshOpenView(prev, t.task) : openView(t.task);
    const at =
      t.type === 'started'
        ? (task.startedAt ?? observedAt)
        : t.type === 'suspended'
          ? (task.suspendedAt ?? observedAt)
          : t.type === 'resumed'
            ? (task.resumedAt ?? observedAt)
            : observedAt;
    if (quiet) {
      this.hub.record(t.type, at, task);
      return;
    }
    const event: BridgeEvent = { type: t.type, at, task };
    if (queue) {
      queue.push(event);
      if (queue.length >= this.maxHeld) this.release(id, undefined);
      return;
    }
    if (holdNew) {
      this.held.set(id, [event]);
      return;
    }
    this.hub.publish(event);
  }

  lookedUp(taskId: string, task: OpenTask | undefined): void {
    this.release(taskId, task?.info);
  }

  finished(task: FinishedTask, span: WrittenSpan): void {
    this.release(task.taskId, task.info);
    const exported = this.options.exporting && span.sampled;
    const view = finishedView(task, exported ? span : undefined);
    if (this.hub.quiet) this.hub.record('finished', task.completedAt, view);
    else this.hub.publish({ type: 'finished', at: task.completedAt, task: view });
  }

  private release(taskId: string, info: TaskInfo | undefined): void {
    if (this.held.size === 0) return;
    const queue = this.held.get(taskId);
    if (!queue) return;
    this.held.delete(taskId);
    for (const e of queue) {
      withInfo(e.task, info);
      if (this.hub.quiet) this.hub.record(e.type, e.at, e.task);
      else this.hub.publish(e);
    }
  }
}
