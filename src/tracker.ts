// The pure core: one state machine per background task.
//
// Owns: deciding what an event means given what came before — applied, duplicate or out of order — and which
// transitions (started, suspended, resumed, output, finished, evicted) follow; the open-task counts behind the
// `mastra_background_tasks` gauge; bounded memory (a cap on open tasks, a dedupe window for finished ones).
// Must not: do I/O, read a clock (every time is passed in), or know about spans, metrics or the wire format.
//
// Rules (each has a row in test/tracker.test.ts):
// - A `running` for an open task is a duplicate (the connect snapshot repeats live `running` frames), except after a
//   suspend, where it is a missed `resumed`.
// - The span starts at the FIRST start: storage and reconnect snapshots overwrite startedAt with the resume time.
// - A terminal event for a task never seen still finishes it once (cancelled while pending; bridge started mid-task).
// - After the terminal event, a repeated terminal event is a duplicate and anything else is out of order; both change
//   nothing. Finished task ids are remembered for `dedupeWindowMs` (bounded by `maxTombstones`).
// - A stored `pending` record for an open task (requeued for a retry) parks it: not counted as running (the stored
//   pending count covers it), not overdue, first start kept; its next `running` starts the new attempt.
// - Past `maxOpenTasks`, the oldest open task is evicted (counted); if its terminal event comes later it still gets its
//   one span, from its first start, and its start is not counted again. Evicted ids (and first starts) are remembered,
//   up to `maxOpenTasks` of them; a later stream event re-opens the task (no second `started`), reconciliation does not
//   (that would evict another task on every pass).

import { FifoMap } from './fifo-map.js';
import { type EventKind, type FinalStatus, type TaskError, type TaskEvent, type TaskIdentity, type TaskRecord, finalStatusOf, isTerminal, isTimeoutError } from './events.js';

/** `pending`: Mastra put the task back in its queue to retry (restart recovery with retries left); it runs again later. */
export type Phase = 'running' | 'suspended' | 'pending';
export type ApplyResult = 'applied' | 'duplicate' | 'out_of_order';

export interface TrackerOptions {
  /** Cap on open (running or suspended) tasks held in memory. */
  maxOpenTasks: number;
  /** How long a finished task id is remembered to recognise duplicates. */
  dedupeWindowMs: number;
  /** Cap on remembered finished task ids. */
  maxTombstones: number;
  /** Span events kept per task for output chunks (suspend/resume events are always kept, up to `maxLifecycleEvents`). */
  maxOutputEvents: number;
  maxLifecycleEvents: number;
  /** Keep payloads (args, output content) for spans; off by default, never needed for metrics. */
  keepArgs: boolean;
  keepOutput: boolean;
}

export const DEFAULT_TRACKER_OPTIONS: TrackerOptions = {
  maxOpenTasks: 100_000,
  dedupeWindowMs: 15 * 60_000,
  maxTombstones: 100_000,
  maxOutputEvents: 10,
  maxLifecycleEvents: 20,
  keepArgs: false,
  keepOutput: false,
};

export interface LifecycleEvent {
  name: 'suspended' | 'resumed' | 'output';
  /** Event time; output chunks carry none on the wire, so they get the time the bridge received them. */
  at: number;
  index?: number;
  content?: unknown;
}

/** What enrichment (one getTask) adds: fields the stream never carries. */
export interface TaskInfo {
  threadId?: string;
  resourceId?: string;
  createdAt?: number;
  startedAt?: number;
  retryCount?: number;
  maxRetries?: number;
  timeoutMs?: number;
}

export interface OpenTask extends TaskIdentity {
  phase: Phase;
  /** When the bridge first saw the task (observed time, not event time). */
  firstSeenAt: number;
  /** The first start seen in an event; undefined when the task was first seen after it started. */
  startedAt?: number;
  suspendedAt?: number;
  lastResumedAt?: number;
  events: LifecycleEvent[];
  outputCount: number;
  args?: unknown;
  info?: TaskInfo;
  queueWaitObserved: boolean;
}

export interface FinishedTask extends TaskIdentity {
  status: FinalStatus;
  completedAt: number;
  /** Best known first start (event, else stored record); undefined when the task never ran (cancelled while pending). */
  startedAt?: number;
  error?: TaskError;
  result?: unknown;
  args?: unknown;
  events: LifecycleEvent[];
  outputCount: number;
  info?: TaskInfo;
  /** Whether a `started` transition was already emitted for this task. */
  startCounted: boolean;
  queueWaitObserved: boolean;
  /** `event`: from the stream; `reconciled`: found in storage (the stream was silent). */
  origin: 'event' | 'reconciled';
}

export type Transition =
  | { type: 'started'; task: OpenTask }
  | { type: 'suspended'; task: OpenTask }
  | { type: 'resumed'; task: OpenTask; suspendedMs?: number }
  | { type: 'output'; task: OpenTask }
  | { type: 'queue_wait'; task: OpenTask; waitMs: number }
  | { type: 'finished'; task: FinishedTask }
  | { type: 'evicted'; task: OpenTask };

export interface Outcome {
  result: ApplyResult;
  transitions: Transition[];
}

export interface OpenCount {
  agentId: string;
  toolName: string;
  phase: Phase;
  count: number;
}

const NONE: Transition[] = [];

export class TaskTracker {
  readonly options: TrackerOptions;
  private readonly open = new Map<string, OpenTask>();
  // Finished task id → when it finished, for duplicate detection; oldest dropped first (past the window or the cap).
  private readonly tombstones: FifoMap<string, number>;
  // Evicted open task id → its first start, if known; at most maxOpenTasks remembered.
  private readonly evicted: FifoMap<string, number | undefined>;
  private readonly counts: OpenCount[] = [];
  private readonly countsByPair = new Map<string, Map<string, Record<'running' | 'suspended', OpenCount | undefined>>>();
  // agentId/toolName repeat across every task: share one string per value instead of one per task (bounded).
  private readonly interned = new Map<string, string>();

  constructor(options: Partial<TrackerOptions> = {}) {
    this.options = { ...DEFAULT_TRACKER_OPTIONS, ...options };
    this.tombstones = new FifoMap(this.options.maxTombstones);
    this.evicted = new FifoMap(this.options.maxOpenTasks);
  }

  /** Open tasks (running or suspended). */
  get size(): number {
    return this.open.size;
  }

  get tombstoneCount(): number {
    return this.tombstones.size;
  }

  get(taskId: string): OpenTask | undefined {
    return this.open.get(taskId);
  }

  isFinished(taskId: string): boolean {
    return this.tombstones.has(taskId);
  }

  openTasks(): IterableIterator<OpenTask> {
    return this.open.values();
  }

  /** Open-task counts by agent, tool and phase, maintained incrementally (scraping never walks the tasks). */
  openCounts(): IterableIterator<OpenCount> {
    return this.counts.values();
  }

  /** Apply one stream event observed at `observedAt` (epoch ms). */
  apply(event: TaskEvent, observedAt: number): Outcome {
    this.prune(observedAt);
    if (this.tombstones.has(event.taskId)) {
      return { result: isTerminal(event.kind) ? 'duplicate' : 'out_of_order', transitions: NONE };
    }
    const task = this.open.get(event.taskId);
    if (task === undefined) {
      if (this.evicted.size > 0 && this.evicted.has(event.taskId)) return this.afterEviction(event, observedAt);
      return this.firstSight(event, observedAt);
    }

    switch (event.kind) {
      case 'running':
        if (task.phase === 'suspended') return this.resume(task, event.at!, true);
        if (task.phase === 'pending') return this.rerun(task, event.at!);
        return { result: 'duplicate', transitions: NONE };
      case 'resumed':
        if (task.phase === 'suspended') return this.resume(task, event.at!, true);
        // Running already: the same resume again is a duplicate; a new one means we missed its suspend.
        if (task.lastResumedAt === event.at) return { result: 'duplicate', transitions: NONE };
        return this.resume(task, event.at!, false);
      case 'suspended':
        if (task.phase === 'suspended') return { result: 'duplicate', transitions: NONE };
        this.suspend(task, event.at!);
        return { result: 'applied', transitions: [{ type: 'suspended', task }] };
      case 'output':
        this.output(task, event, observedAt);
        return { result: 'applied', transitions: [{ type: 'output', task }] };
      default:
        return { result: 'applied', transitions: [{ type: 'finished', task: this.finish(task, event, 'event', observedAt) }] };
    }
  }

  /**
   * Merge a stored record into an open task (enrichment). Returns a `queue_wait` transition the first time both the
   * creation and the first start are known.
   */
  enrich(taskId: string, record: TaskRecord): Transition[] {
    const task = this.open.get(taskId);
    if (task === undefined) return NONE;
    task.info = infoOf(record);
    const start = task.startedAt ?? task.info.startedAt;
    if (!task.queueWaitObserved && task.info.createdAt !== undefined && start !== undefined) {
      task.queueWaitObserved = true;
      return [{ type: 'queue_wait', task, waitMs: Math.max(0, start - task.info.createdAt) }];
    }
    return NONE;
  }

  /**
   * Reconcile against stored state, for when the stream was silent (disconnects, Mastra restarts). A finished record
   * finishes the task once (open or never seen); an unfinished one corrects the phase.
   */
  reconcile(record: TaskRecord, observedAt: number): Outcome {
    this.prune(observedAt);
    if (this.tombstones.has(record.id)) return { result: 'duplicate', transitions: NONE };
    const final = finalStatusOf(record);
    const task = this.open.get(record.id);
    const wasEvicted = task === undefined && this.evicted.size > 0 && this.evicted.has(record.id);
    if (final !== undefined) {
      const identity = task ?? this.identityOf(record);
      let finished: FinishedTask;
      if (task) finished = this.finish(task, terminalEventFrom(record, final), 'reconciled', observedAt);
      else if (wasEvicted) finished = this.finishEvicted(identity, terminalEventFrom(record, final), 'reconciled', observedAt);
      else finished = this.finishUnseen(identity, terminalEventFrom(record, final), 'reconciled', observedAt);
      finished.info = infoOf(record);
      return { result: 'applied', transitions: [{ type: 'finished', task: finished }] };
    }
    if (wasEvicted) return { result: 'duplicate', transitions: NONE };
    if (record.status === 'pending') {
      if (task === undefined || task.phase === 'pending') return { result: 'duplicate', transitions: NONE };
      this.count(task, -1);
      task.phase = 'pending';
      task.suspendedAt = undefined;
      return { result: 'applied', transitions: NONE };
    }
    const phase: Phase = record.status === 'suspended' ? 'suspended' : 'running';
    if (task === undefined) {
      const at = phase === 'suspended' ? record.suspendedAt : record.startedAt;
      const event: TaskEvent = {
        kind: phase === 'suspended' ? 'suspended' : 'running',
        ...this.identityOf(record),
        at: at ?? observedAt,
      };
      const outcome = this.firstSight(event, observedAt);
      const created = this.open.get(record.id);
      if (created) created.info = infoOf(record);
      return outcome;
    }
    if (task.phase === phase) return { result: 'duplicate', transitions: NONE };
    if (task.phase === 'pending' && phase === 'running') return this.rerun(task, record.startedAt ?? observedAt);
    if (phase === 'suspended') {
      this.suspend(task, record.suspendedAt ?? observedAt);
      return { result: 'applied', transitions: [{ type: 'suspended', task }] };
    }
    return this.resume(task, record.startedAt ?? observedAt, true);
  }

  /** Slots in the evicted-task FIFO (for tests: it stays bounded by what is remembered). */
  get evictedSlots(): number {
    return this.evicted.slots;
  }

  /** Mark tasks as already finished (exported before a restart): their events become duplicates. */
  rememberFinished(taskIds: Iterable<string>, observedAt: number): void {
    for (const id of taskIds) if (!this.open.has(id)) this.tombstone(id, observedAt);
  }

  /** Forget finished task ids past the dedupe window; call on a timer when the stream is idle. */
  prune(now: number): void {
    const window = this.options.dedupeWindowMs;
    this.tombstones.dropOldestWhile((at) => now - at > window);
  }

  private tombstone(taskId: string, at: number): void {
    this.tombstones.set(taskId, at);
  }

  /** A stream event for a task evicted at the cap: finish it from its first start, or re-open it; never a 2nd start. */
  private afterEviction(event: TaskEvent, observedAt: number): Outcome {
    if (isTerminal(event.kind)) {
      const finished = this.finishEvicted(this.identityOf(event), event, 'event', observedAt);
      return { result: 'applied', transitions: [{ type: 'finished', task: finished }] };
    }
    const startedAt = this.evicted.get(event.taskId);
    this.evicted.delete(event.taskId);
    const outcome = this.firstSight(event, observedAt);
    const reopened = this.open.get(event.taskId);
    if (reopened && startedAt !== undefined) reopened.startedAt = startedAt;
    return { result: outcome.result, transitions: outcome.transitions.filter((t) => t.type !== 'started') };
  }

  private finishEvicted(identity: TaskIdentity, event: TaskEvent, origin: FinishedTask['origin'], observedAt: number): FinishedTask {
    const startedAt = this.evicted.get(identity.taskId);
    this.evicted.delete(identity.taskId);
    this.tombstone(identity.taskId, observedAt);
    const finished = this.finishedFrom(identity, event, origin, true);
    if (startedAt !== undefined) finished.startedAt = startedAt;
    return finished;
  }

  private rememberEvicted(task: OpenTask): void {
    this.evicted.set(task.taskId, task.startedAt ?? task.info?.startedAt);
  }

  private firstSight(event: TaskEvent, observedAt: number): Outcome {
    if (isTerminal(event.kind)) {
      const finished = this.finishUnseen(this.identityOf(event), event, 'event', observedAt);
      return { result: 'applied', transitions: [{ type: 'finished', task: finished }] };
    }
    // One literal holding every field an open task can get (unset ones undefined), in a fixed order, with no identity
    // object spread into it: every open task keeps one shape, so the code reading tasks stays monomorphic, and no
    // task grows a second backing store when a field is set later.
    const task: OpenTask = {
      taskId: event.taskId,
      agentId: this.intern(event.agentId),
      toolName: this.intern(event.toolName),
      toolCallId: event.toolCallId,
      runId: event.runId,
      phase: 'running',
      firstSeenAt: observedAt,
      // Only `running` carries the first start; `resumed` carries the resume time, and the rest carry none.
      startedAt: event.kind === 'running' ? event.at : undefined,
      suspendedAt: undefined,
      lastResumedAt: undefined,
      events: [],
      outputCount: 0,
      args: this.options.keepArgs ? event.args : undefined,
      info: undefined,
      queueWaitObserved: false,
    };
    this.open.set(task.taskId, task);
    this.count(task, +1);
    const transitions: Transition[] = [{ type: 'started', task }];
    if (event.kind === 'suspended') {
      this.suspend(task, event.at!);
      transitions.push({ type: 'suspended', task });
    } else if (event.kind === 'resumed') {
      task.lastResumedAt = event.at;
      this.pushLifecycle(task, { name: 'resumed', at: event.at! });
      transitions.push({ type: 'resumed', task });
    } else if (event.kind === 'output') {
      this.output(task, event, observedAt);
      transitions.push({ type: 'output', task });
    }
    if (this.open.size > this.options.maxOpenTasks) {
      const oldest = this.open.values().next().value as OpenTask;
      this.open.delete(oldest.taskId);
      this.count(oldest, -1);
      this.rememberEvicted(oldest);
      transitions.push({ type: 'evicted', task: oldest });
    }
    return { result: 'applied', transitions };
  }

  private suspend(task: OpenTask, at: number): void {
    this.count(task, -1);
    task.phase = 'suspended';
    task.suspendedAt = at;
    this.count(task, +1);
    this.pushLifecycle(task, { name: 'suspended', at });
  }

  private resume(task: OpenTask, at: number, fromSuspended: boolean): Outcome {
    let suspendedMs: number | undefined;
    if (fromSuspended && task.suspendedAt !== undefined) suspendedMs = Math.max(0, at - task.suspendedAt);
    this.count(task, -1);
    task.phase = 'running';
    task.suspendedAt = undefined;
    task.lastResumedAt = at;
    this.count(task, +1);
    this.pushLifecycle(task, { name: 'resumed', at });
    const t: Transition = suspendedMs === undefined ? { type: 'resumed', task } : { type: 'resumed', task, suspendedMs };
    return { result: 'applied', transitions: [t] };
  }

  /** A requeued task runs again (a retry): back to running; its start was counted and its first start is kept. */
  private rerun(task: OpenTask, at: number): Outcome {
    task.phase = 'running';
    task.lastResumedAt = at;
    this.count(task, +1);
    return { result: 'applied', transitions: NONE };
  }

  private output(task: OpenTask, event: TaskEvent, observedAt: number): void {
    task.outputCount++;
    if (task.outputCount <= this.options.maxOutputEvents) {
      const e: LifecycleEvent = { name: 'output', at: observedAt, index: task.outputCount - 1 };
      if (this.options.keepOutput && event.output !== undefined) e.content = event.output;
      task.events.push(e);
    }
  }

  private pushLifecycle(task: OpenTask, e: LifecycleEvent): void {
    let lifecycle = 0;
    for (const x of task.events) if (x.name !== 'output') lifecycle++;
    if (lifecycle < this.options.maxLifecycleEvents) task.events.push(e);
  }

  private finish(task: OpenTask, event: TaskEvent, origin: FinishedTask['origin'], observedAt: number): FinishedTask {
    this.open.delete(task.taskId);
    this.count(task, -1);
    this.tombstone(task.taskId, observedAt);
    const finished = this.finishedFrom(task, event, origin, true);
    finished.events = task.events;
    finished.outputCount = task.outputCount;
    finished.queueWaitObserved = task.queueWaitObserved;
    if (task.args !== undefined) finished.args = task.args;
    if (task.info) finished.info = task.info;
    const start = task.startedAt ?? task.info?.startedAt;
    if (start !== undefined) finished.startedAt = start;
    return finished;
  }

  private finishUnseen(identity: TaskIdentity, event: TaskEvent, origin: FinishedTask['origin'], observedAt: number): FinishedTask {
    this.tombstone(identity.taskId, observedAt);
    return this.finishedFrom(identity, event, origin, false);
  }

  private finishedFrom(identity: TaskIdentity, event: TaskEvent, origin: FinishedTask['origin'], startCounted: boolean): FinishedTask {
    const status: FinalStatus =
      event.kind === 'completed' ? 'completed' : event.kind === 'cancelled' ? 'cancelled' : isTimeoutError(event.error) ? 'timed_out' : 'failed';
    const finished: FinishedTask = {
      taskId: identity.taskId,
      agentId: identity.agentId,
      toolName: identity.toolName,
      toolCallId: identity.toolCallId,
      runId: identity.runId,
      status,
      completedAt: event.at!,
      events: [],
      outputCount: 0,
      startCounted,
      queueWaitObserved: false,
      origin,
    };
    if (event.error) finished.error = event.error;
    if (event.result !== undefined) finished.result = event.result;
    return finished;
  }

  private count(task: OpenTask, delta: 1 | -1): void {
    if (task.phase === 'pending') return; // stored pending tasks are counted from storage (Reconciler.pending)
    // agent → tool → per-phase count, looked up without building a key string per change.
    let tools = this.countsByPair.get(task.agentId);
    if (tools === undefined) this.countsByPair.set(task.agentId, (tools = new Map()));
    let phases = tools.get(task.toolName);
    if (phases === undefined) tools.set(task.toolName, (phases = { running: undefined, suspended: undefined }));
    const c = phases[task.phase];
    if (c) c.count += delta;
    else if (delta > 0) {
      const created: OpenCount = { agentId: task.agentId, toolName: task.toolName, phase: task.phase, count: 1 };
      phases[task.phase] = created;
      this.counts.push(created);
    }
  }

  private identityOf(src: Omit<TaskIdentity, 'taskId'> & ({ taskId: string } | { id: string })): TaskIdentity {
    return {
      taskId: 'taskId' in src ? src.taskId : src.id,
      agentId: this.intern(src.agentId),
      toolName: this.intern(src.toolName),
      toolCallId: src.toolCallId,
      runId: src.runId,
    };
  }

  private intern(s: string): string {
    const hit = this.interned.get(s);
    if (hit !== undefined) return hit;
    if (this.interned.size < 10_000) this.interned.set(s, s);
    return s;
  }
}

export function infoOf(record: TaskRecord): TaskInfo {
  const info: TaskInfo = {};
  if (record.threadId !== undefined) info.threadId = record.threadId;
  if (record.resourceId !== undefined) info.resourceId = record.resourceId;
  if (record.createdAt !== undefined) info.createdAt = record.createdAt;
  if (record.startedAt !== undefined) info.startedAt = record.startedAt;
  if (record.retryCount !== undefined) info.retryCount = record.retryCount;
  if (record.maxRetries !== undefined) info.maxRetries = record.maxRetries;
  if (record.timeoutMs !== undefined) info.timeoutMs = record.timeoutMs;
  return info;
}

function terminalEventFrom(record: TaskRecord, final: FinalStatus): TaskEvent {
  const kind: EventKind = final === 'completed' ? 'completed' : final === 'cancelled' ? 'cancelled' : 'failed';
  const event: TaskEvent = {
    kind,
    taskId: record.id,
    agentId: record.agentId,
    toolName: record.toolName,
    toolCallId: record.toolCallId,
    runId: record.runId,
    // A finished record without completedAt should not exist; fall back to the last time it is known to have lived.
    at: record.completedAt ?? record.suspendedAt ?? record.startedAt ?? record.createdAt ?? 0,
  };
  if (record.error) event.error = record.error;
  else if (final === 'timed_out') event.error = { message: `Task timed out after ${record.timeoutMs ?? 0}ms` };
  if (record.result !== undefined) event.result = record.result;
  return event;
}

/**
 * Complete a finished task with its stored record (the one getTask at or after the end), in place: the record gives
 * the true status (a `failed` that storage calls `timed_out`), the first start when no event gave it, and the stored
 * fields (thread, resource, retries). Returns the queue wait when it was not observed while the task ran (the task
 * is marked so that it is counted once).
 */
export function completeWithRecord(task: FinishedTask, record: TaskRecord | undefined): { queueWaitMs?: number } {
  if (record === undefined) return {};
  task.info = { ...task.info, ...infoOf(record) };
  if (task.status === 'failed' && record.status === 'timed_out') task.status = 'timed_out';
  // Storage overwrites startedAt on resume and retry; only use it when no event told us the first start.
  if (task.startedAt === undefined && record.startedAt !== undefined) task.startedAt = record.startedAt;
  if (task.queueWaitObserved || record.createdAt === undefined || task.startedAt === undefined) return {};
  task.queueWaitObserved = true;
  return { queueWaitMs: Math.max(0, task.startedAt - record.createdAt) };
}
