// The event pump: upstream chunk → parse → tracker → metrics now, and for finished tasks → enrichment → placement →
// span + terminal count. The synchronous part never waits on I/O; finishing a task is asynchronous and tracked so
// shutdown can drain it.
//
// Exactly-once: the tracker emits `finished` once per task id (within its dedupe window); finish() is the only place
// that records the terminal count and writes the span, and it does both or, on a bug, logs and counts neither twice.
// The count never waits on placement (a stored-trace lookup can take seconds, or find nothing): when the span's parent
// needs a lookup, the count is recorded at once without an exemplar, and the exemplar follows when the span is
// written (metrics.exemplarFollows).

import type { Logger } from 'pino';
import { type Parsed, type TaskEvent, type TaskRecord, parseEvent, parseFrame } from './events.js';
import { type Enricher, NEEDS_LOOKUP } from './enrichment.js';
import type { BridgeMetrics, EventLabel, Exemplar, FinishedSeriesRef } from './metrics.js';
import type { PlacementResolver } from './placement.js';
import { type Placement, type WrittenSpan, fallbackPlacement } from './span-ids.js';
import type { SpanWriter } from './spans.js';
import type { TaskSink } from './sinks.js';
import type { StreamMerge } from './stream-merge.js';
import { type FinishedTask, type TaskTracker, type Transition, completeWithRecord } from './tracker.js';
import { LogThrottle } from './log-throttle.js';

export interface PipelineDeps {
  tracker: TaskTracker;
  metrics: BridgeMetrics;
  spans: SpanWriter;
  enricher: Enricher;
  placement: PlacementResolver;
  logger: Logger;
  /** Whether spans leave the process (exemplars only point at traces that exist). */
  exporting: boolean;
  maxFrameBytes: number;
  now?: () => number;
  /** Observers of finished tasks (task API, checkpoints); called after the span and count are recorded. */
  sinks?: TaskSink[];
  /** Exactly-once across several streams (a fleet of replicas); absent with one stream. */
  merge?: StreamMerge;
}

const durationOf = (task: FinishedTask): number | undefined =>
  task.startedAt !== undefined ? Math.max(0, task.completedAt - task.startedAt) / 1000 : undefined;

// Retries publish nothing, so a record read while the task ran may be stale when it could have retried.
const mayBeStale = (r: TaskRecord): boolean => (r.maxRetries ?? 0) > 0 || r.status === 'pending';

export class Pipeline {
  private readonly now: () => number;
  private readonly inflight = new Set<Promise<void>>();
  private readonly invalidLog = new LogThrottle(10, 1000);
  // The sinks that observe live transitions and lookups, picked once (most sinks only observe finished tasks).
  private readonly transitionSinks: TaskSink[];
  private readonly lookupSinks: TaskSink[];

  constructor(private readonly deps: PipelineDeps) {
    this.now = deps.now ?? Date.now;
    this.transitionSinks = (deps.sinks ?? []).filter((s) => typeof s.transition === 'function');
    this.lookupSinks = (deps.sinks ?? []).filter((s) => typeof s.lookedUp === 'function');
  }

  /** An in-process chunk; `source` names the stream it came on (several streams: see stream-merge.ts). */
  chunk(chunk: unknown, source?: string): void {
    this.handle(parseEvent(chunk), source);
  }

  /** A remote SSE data field. */
  frame(data: string, source?: string): void {
    this.handle(parseFrame(data, this.deps.maxFrameBytes), source);
  }

  /** A frame the source dropped before parsing (e.g. oversized). */
  dropped(reason: string, detail: string): void {
    this.invalid(undefined, reason, detail);
  }

  /** Apply a stored record found by reconciliation (the stream was silent about it). */
  reconcile(record: TaskRecord): Transition[] {
    const outcome = this.deps.tracker.reconcile(record, this.now());
    if (this.deps.merge !== undefined && this.deps.tracker.get(record.id) === undefined) this.deps.merge.forget(record.id);
    for (const t of outcome.transitions) this.transition(t, record);
    return outcome.transitions;
  }

  /** Resolves when every finished task seen so far has its span and terminal count. */
  async idle(): Promise<void> {
    // Lookups gathered for a batch go now: whoever waits for idle (shutdown, a test) should not wait out the window.
    this.deps.enricher.flush();
    while (this.inflight.size > 0) await Promise.allSettled([...this.inflight]);
  }

  private handle(parsed: Parsed<TaskEvent>, source: string | undefined): void {
    const observedAt = this.now();
    if (!parsed.ok) {
      this.invalid(parsed.kind, parsed.reason, parsed.detail, observedAt);
      return;
    }
    const event = parsed.value;
    const merge = this.deps.merge;
    // Several streams: a repeat of what another stream already delivered never reaches the tracker.
    if (merge !== undefined && merge.admit(event, source ?? '') === 'repeat') {
      this.deps.metrics.event(event.kind, 'duplicate', observedAt / 1000);
      return;
    }
    let outcome;
    try {
      outcome = this.deps.tracker.apply(event, observedAt);
    } catch (error) {
      this.deps.logger.error({ err: error, taskId: event.taskId }, 'tracker failed on an event');
      this.deps.metrics.event(event.kind, 'invalid', observedAt / 1000);
      return;
    }
    if (merge !== undefined && this.deps.tracker.get(event.taskId) === undefined) merge.forget(event.taskId);
    this.deps.metrics.event(event.kind, outcome.result, observedAt / 1000);
    for (const t of outcome.transitions) this.transition(t);
  }

  private invalid(kind: EventLabel | undefined, reason: string, detail: string, observedAt = this.now()): void {
    this.deps.metrics.event(kind ?? 'unknown', 'invalid', observedAt / 1000);
    // Bad upstream data is counted always, logged sparingly: a broken upstream must not flood the log.
    if (this.invalidLog.take()) this.deps.logger.warn({ reason, detail, dropped: this.invalidLog.count }, 'dropped invalid upstream event');
  }

  private transition(t: Transition, record?: TaskRecord): void {
    const { metrics, enricher, tracker } = this.deps;
    switch (t.type) {
      case 'started':
        metrics.taskStarted(t.task.agentId, t.task.toolName);
        if (record) {
          for (const x of tracker.enrich(t.task.taskId, record)) this.transition(x);
          this.notify(t);
          this.notifyLookedUp(t.task.taskId);
        } else if (!enricher.enabled) {
          // No lookup to wait for: it ends now.
          this.notify(t);
          this.notifyLookedUp(t.task.taskId);
        } else {
          const taskId = t.task.taskId;
          this.notify(t);
          // The start as the stream carried it (the stored startedAt: a first `running`, or the resume time of a first
          // `resumed`) lets the lookup share one listTasks window with other tasks that started close by.
          const at = t.task.startedAt ?? t.task.lastResumedAt;
          void enricher
            .lookup(taskId, at !== undefined ? { by: 'startedAt', at } : undefined)
            .then((r) => {
              if (r) for (const x of tracker.enrich(taskId, r)) this.transition(x);
              this.notifyLookedUp(taskId);
            })
            // Telemetry never breaks its host: a throw here would be an unhandled rejection, which ends the process.
            .catch((error: unknown) => this.deps.logger.error({ err: error, taskId }, 'applying a task lookup failed'));
        }
        return;
      case 'resumed':
        if (t.suspendedMs !== undefined) metrics.resumedAfter(t.task.agentId, t.task.toolName, t.suspendedMs / 1000);
        this.notify(t);
        return;
      case 'output':
        metrics.outputChunk(t.task.agentId, t.task.toolName);
        this.notify(t);
        return;
      case 'queue_wait':
        metrics.queueWaited(t.task.agentId, t.task.toolName, t.waitMs / 1000);
        return;
      case 'evicted':
        metrics.taskEvicted();
        this.notify(t);
        return;
      case 'suspended':
        this.notify(t);
        return;
      case 'finished': {
        const task = t.task;
        // Fast path: when neither the record nor the placement needs a lookup, finish now (no promises per task).
        const now = record ?? this.deps.enricher.finishedNow(task.taskId, mayBeStale);
        const where = now === NEEDS_LOOKUP ? undefined : this.deps.placement.immediate(task);
        if (now !== NEEDS_LOOKUP && where !== undefined) {
          try {
            this.complete(task, now, where);
          } catch (error) {
            this.deps.logger.error({ err: error, taskId: task.taskId }, 'failed to finish task telemetry');
          }
          return;
        }
        const p = this.finish(task, now).catch((error) => {
          this.deps.logger.error({ err: error, taskId: task.taskId }, 'failed to finish task telemetry');
        });
        this.inflight.add(p);
        void p.finally(() => this.inflight.delete(p));
        return;
      }
    }
  }

  /** Live transitions to the sinks that observe them (the event feed); a failing sink never breaks the pump. */
  private notify(t: Parameters<NonNullable<TaskSink['transition']>>[0]): void {
    const sinks = this.transitionSinks;
    if (sinks.length === 0) return;
    const now = this.now();
    for (const sink of sinks) {
      try {
        sink.transition!(t, now);
      } catch (error) {
        this.deps.logger.warn({ err: error }, 'task sink failed');
      }
    }
  }

  private notifyLookedUp(taskId: string): void {
    for (const sink of this.lookupSinks) {
      try {
        sink.lookedUp!(taskId, this.deps.tracker.get(taskId));
      } catch (error) {
        this.deps.logger.warn({ err: error }, 'task sink failed');
      }
    }
  }

  /** `known`: the record already settled (possibly undefined: none), or NEEDS_LOOKUP to ask the enricher. */
  private async finish(task: FinishedTask, known: TaskRecord | undefined | typeof NEEDS_LOOKUP): Promise<void> {
    const record = known === NEEDS_LOOKUP ? await this.deps.enricher.forFinished(task.taskId, mayBeStale, { by: 'completedAt', at: task.completedAt }) : known;
    const where = this.deps.placement.immediate(task);
    if (where !== undefined) {
      this.complete(task, record, where);
      return;
    }
    // The lookup may take seconds or find nothing: count now, the exemplar follows the span.
    this.settle(task, record);
    const counted = this.count(task);
    let placed: Placement;
    try {
      placed = await this.deps.placement.resolve(task);
    } catch (error) {
      // Counted already: the span is still written, in the run's trace.
      this.deps.logger.warn({ err: error, taskId: task.taskId }, 'placing a task span failed');
      placed = fallbackPlacement(task, 'run');
    }
    const span = this.deps.spans.write(task, placed);
    const exemplar = this.exemplarOf(span);
    if (exemplar) this.deps.metrics.exemplarFollows(counted.series, counted.duration, exemplar);
    this.notifyFinished(task, span);
  }

  private complete(task: FinishedTask, record: TaskRecord | undefined, where: Placement): void {
    this.settle(task, record);
    // The span first: the count carries its exemplar.
    const span = this.deps.spans.write(task, where);
    this.deps.metrics.taskFinished(task.agentId, task.toolName, task.status, durationOf(task), this.exemplarOf(span));
    this.notifyFinished(task, span);
  }

  /** Merges the stored record into the task, with the counts it settles (queue wait, a start not seen live). */
  private settle(task: FinishedTask, record: TaskRecord | undefined): void {
    const { metrics } = this.deps;
    const { queueWaitMs } = completeWithRecord(task, record);
    if (queueWaitMs !== undefined) metrics.queueWaited(task.agentId, task.toolName, queueWaitMs / 1000);
    // A task first seen at its end was not counted as started; it did start unless it was cancelled while pending.
    if (!task.startCounted && (task.status !== 'cancelled' || task.startedAt !== undefined)) {
      metrics.taskStarted(task.agentId, task.toolName);
    }
  }

  /** The terminal count without an exemplar (it follows the span). */
  private count(task: FinishedTask): { series: FinishedSeriesRef; duration: number | undefined } {
    const duration = durationOf(task);
    return { series: this.deps.metrics.taskFinished(task.agentId, task.toolName, task.status, duration, undefined), duration };
  }

  /** The count's exemplar: the span, when it is exported (else the span is counted as dropped). */
  private exemplarOf(span: WrittenSpan): Exemplar | undefined {
    if (this.deps.exporting && span.sampled) return { traceId: span.traceId, spanId: span.spanId };
    this.deps.metrics.spanOutcome('dropped');
    return undefined;
  }

  private notifyFinished(task: FinishedTask, span: WrittenSpan): void {
    for (const sink of this.deps.sinks ?? []) {
      try {
        sink.finished(task, span);
      } catch (error) {
        this.deps.logger.warn({ err: error }, 'task sink failed');
      }
    }
  }
}
