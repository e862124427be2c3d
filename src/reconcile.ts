// Reconciliation against stored state, for everything the stream does not say: it has no ids and no replay, loses
// what happens while disconnected, and is silent when Mastra's restart recovery marks tasks failed.
//
// One pass (the bridge runs one after every connect, then every `reconcile.intervalSeconds`):
// 1. stored running and suspended tasks: open the ones the bridge has not seen, correct phases it missed;
// 2. open tasks Mastra no longer runs: resolve each with getTask (its real terminal status and time); a task Mastra no
//    longer knows at all (storage lost) on two passes in a row is finished as failed (`TaskLostError`), as Mastra's
//    own restart recovery does for tasks whose worker died;
// 3. tasks that began and ended inside a gap: listTasks by completedAt since the scan cursor (with an overlap);
//    finished ids the bridge already has are duplicates and change nothing;
// 4. pending tasks (they publish nothing until they run): counted for `mastra_background_tasks{status="pending"}`.
// The load on Mastra is bounded: `perPage` records a request, at most `maxPages` pages a query a pass.
//
// The completedAt scan may fall behind (completions faster than perPage × maxPages a pass). It must never read back
// further than the tracker remembers finished ids (its dedupe window): a task finished from the stream 20 minutes ago
// has no tombstone any more and would be counted again. So the scan never starts before `now - maxLagMs` (except for
// the backfill before the bridge started, whose ids come from the checkpoint and stay remembered for a dedupe window
// from the start); what it skips is logged, with the remedy.
//
// A completedAt further ahead of the bridge clock than `futureToleranceMs` (a wrong clock upstream, a hostile record)
// never moves the scan cursor: one task dated 2999 would make every later scan start in 2999 and find nothing. Such a
// record is counted once per task and logged sparingly, and it is not applied until it is due (within the tolerance):
// the scan has no upper date, so it comes back on every pass and on every start of a bridge (its completedAt is after
// any scanFrom), while the tracker and the checkpoint forget finished ids after their windows; applied, it would be
// finished again after each. A replica whose clock runs ahead gets its unseen tasks counted late, when their time
// comes; a task dated 2999 is counted only if the bridge saw it (the stream, or step 2 for a task it holds open).
// Any finished record dated ahead of the bridge clock is also read back longer than the tracker remembers it (the
// tracker's window runs from when it saw the task, the scan reads back by completedAt), so its id is remembered here,
// bounded, and it is never applied again. A cursor or start point beyond that tolerance (a scanFrom given from
// outside, a clock set back) is pulled back to now.

import type { Logger } from 'pino';
import { type TaskRecord, type TaskStatus, finalStatusOf } from './events.js';
import type { BridgeMetrics } from './metrics.js';
import type { Pipeline } from './pipeline.js';
import type { TaskQuery, TaskSource } from './sources/types.js';
import type { TaskTracker } from './tracker.js';
import { FifoMap } from './fifo-map.js';
import { LogThrottle } from './log-throttle.js';

export interface ReconcileOptions {
  perPage: number;
  maxPages: number;
  /** The completedAt scan looks back this far before its cursor, to cover events in flight at the last pass. */
  overlapMs: number;
  /** getTask calls a pass may make for open tasks missing upstream. */
  maxLookups: number;
  /** How far behind `now` the completedAt scan may be: less than the tracker's dedupe window. */
  maxLagMs: number;
  /** How far ahead of `now` a completedAt may be (clock skew) and still move the scan cursor. */
  futureToleranceMs?: number;
}

export const DEFAULT_RECONCILE: ReconcileOptions = {
  perPage: 100,
  maxPages: 10,
  overlapMs: 60_000,
  maxLookups: 200,
  maxLagMs: 14 * 60_000,
  futureToleranceMs: 5 * 60_000,
};
const iso = (ms: number): string => (Math.abs(ms) <= 8.64e15 ? new Date(ms).toISOString() : String(ms));
/**
 * Ids remembered of tasks dated ahead of the clock (at least; as many as one pass reads, perPage × maxPages, when that
 * is more): outliers counted, finished tasks not to apply again. An id read again is kept as the newest.
 */
const AHEAD_IDS_KEPT = 1_000;

/** The lag limit for a tracker that remembers finished ids for `dedupeWindowMs`: a minute of margin below it. */
export function maxLagFor(dedupeWindowMs: number): number {
  return Math.max(0, dedupeWindowMs - Math.min(60_000, dedupeWindowMs / 4));
}

export interface ReconcilerDeps {
  source: Pick<TaskSource, 'listTasks' | 'getTask'>;
  pipeline: Pick<Pipeline, 'reconcile'>;
  tracker: Pick<TaskTracker, 'openTasks' | 'isFinished'>;
  metrics: Pick<BridgeMetrics, 'reconciled' | 'reconcileFailed' | 'futureTimestamp'>;
  logger: Logger;
  now: () => number;
  /** Where the completedAt scan starts: the checkpoint's watermark minus its window, or the bridge's start. */
  scanFrom: number;
}

export interface PendingCount {
  agentId: string;
  toolName: string;
  count: number;
}

export class Reconciler {
  /** The latest completedAt the scan has seen (starts at scanFrom). */
  private cursor: number;
  /** After a pass that hit its page budget: where the next one continues. */
  private resumeAt: number | undefined;
  private missing = new Map<string, number>();
  private pendingCounts: PendingCount[] = [];
  private running: Promise<void> | undefined;
  /** A pass asked for while one runs (e.g. a reconnect): it runs once that one ends, so it sees the gap. */
  private queued: Promise<void> | undefined;
  private readonly startedAt: number;
  private readonly skipLog = new LogThrottle(1, 20);
  /** Task ids dated beyond the tolerance, already counted and logged. */
  private readonly futureIds: FifoMap<string, true>;
  /** Finished tasks dated ahead of the clock when read: never applied again. */
  private readonly finishedAhead: FifoMap<string, true>;

  constructor(
    private readonly deps: ReconcilerDeps,
    private readonly options: ReconcileOptions = DEFAULT_RECONCILE,
  ) {
    this.cursor = deps.scanFrom;
    this.startedAt = deps.now();
    const kept = Math.max(AHEAD_IDS_KEPT, options.perPage * options.maxPages);
    this.futureIds = new FifoMap(kept);
    this.finishedAhead = new FifoMap(kept);
  }

  /** Pending tasks by agent and tool, as of the last pass. */
  pending(): PendingCount[] {
    return this.pendingCounts;
  }

  /**
   * Run one pass. A call while a pass runs does not join it (that pass may have read storage before the gap the caller
   * knows of): it gets one fresh pass after it, shared by every call made meanwhile.
   */
  pass(signal?: AbortSignal): Promise<void> {
    if (this.running === undefined) return this.start(signal);
    this.queued ??= this.running.then(
      () => this.startQueued(signal),
      () => this.startQueued(signal),
    );
    return this.queued;
  }

  private startQueued(signal?: AbortSignal): Promise<void> {
    this.queued = undefined;
    return this.running ?? this.start(signal);
  }

  private start(signal?: AbortSignal): Promise<void> {
    const p = this.run(signal).finally(() => {
      if (this.running === p) this.running = undefined;
    });
    this.running = p;
    return p;
  }

  private async run(signal?: AbortSignal): Promise<void> {
    // Step 1 must succeed for readiness; the rest are best effort and counted when they fail.
    const upstream = await this.openUpstream(signal);
    await this.step('open_tasks', () => this.resolveVanished(upstream, signal));
    await this.step('completed_scan', () => this.scanCompleted(signal));
    await this.step('pending', () => this.countPending(signal));
  }

  private async step(name: string, fn: () => Promise<void>): Promise<void> {
    try {
      await fn();
    } catch (error) {
      this.deps.metrics.reconcileFailed();
      this.deps.logger.warn({ err: error, step: name }, 'reconciliation step failed; retrying next pass');
    }
  }

  private apply(record: TaskRecord): void {
    // One count per status a record moved the task into (opening a suspended task is one transition to `suspended`).
    const reached = new Set<string>();
    for (const t of this.deps.pipeline.reconcile(record)) {
      if (t.type === 'finished') reached.add(t.task.status);
      else if (t.type === 'started') reached.add(t.task.phase);
      else if (t.type === 'resumed') reached.add('running');
      else if (t.type === 'suspended') reached.add('suspended');
    }
    for (const status of reached) this.deps.metrics.reconciled(status);
  }

  private async *pages(query: TaskQuery, signal?: AbortSignal): AsyncGenerator<TaskRecord[], boolean> {
    const { perPage, maxPages } = this.options;
    for (let page = 0; page < maxPages; page++) {
      const { tasks, total } = await this.deps.source.listTasks({ ...query, page, perPage }, signal);
      yield tasks;
      if (tasks.length < perPage || (page + 1) * perPage >= total) return true;
    }
    return false;
  }

  private async openUpstream(signal?: AbortSignal): Promise<Set<string>> {
    const ids = new Set<string>();
    for (const status of ['running', 'suspended'] satisfies TaskStatus[]) {
      for await (const tasks of this.pages({ status, orderBy: 'createdAt', orderDirection: 'asc' }, signal)) {
        for (const record of tasks) {
          ids.add(record.id);
          this.apply(record);
        }
      }
    }
    return ids;
  }

  private async resolveVanished(upstream: Set<string>, signal?: AbortSignal): Promise<void> {
    const candidates = [...this.deps.tracker.openTasks()].filter((t) => !upstream.has(t.taskId)).slice(0, this.options.maxLookups);
    const seen = new Set(candidates.map((t) => t.taskId));
    for (const id of this.missing.keys()) if (!seen.has(id)) this.missing.delete(id);
    for (const task of candidates) {
      const record = await this.deps.source.getTask(task.taskId, signal);
      if (record) {
        this.missing.delete(task.taskId);
        this.apply(record);
        continue;
      }
      const misses = (this.missing.get(task.taskId) ?? 0) + 1;
      this.missing.set(task.taskId, misses);
      if (misses < 2) continue;
      this.missing.delete(task.taskId);
      this.deps.logger.warn({ taskId: task.taskId }, 'open task no longer known to Mastra (storage lost or cleaned up); finishing it as failed');
      this.apply({
        id: task.taskId,
        status: 'failed',
        agentId: task.agentId,
        toolName: task.toolName,
        toolCallId: task.toolCallId,
        runId: task.runId,
        completedAt: this.deps.now(),
        error: { message: 'Task no longer known to Mastra', stack: 'TaskLostError: Task no longer known to Mastra' },
      });
    }
  }

  private async scanCompleted(signal?: AbortSignal): Promise<void> {
    // Never before scanFrom: without a checkpoint, tasks that ended before the bridge started are not its to count.
    // After a truncated pass, continue where it stopped; otherwise look back `overlapMs` for records written late.
    const now = this.deps.now();
    const limit = now + (this.options.futureToleranceMs ?? DEFAULT_RECONCILE.futureToleranceMs!);
    if (this.cursor > limit) this.cursor = now;
    let from = this.resumeAt ?? Math.max(this.deps.scanFrom, this.cursor - this.options.overlapMs);
    if (from > limit) from = now - this.options.overlapMs;
    const floor = now - this.options.maxLagMs;
    if (floor > this.startedAt && from < floor) {
      if (this.skipLog.take()) {
        this.deps.logger.warn(
          { skippedFrom: new Date(from).toISOString(), skippedTo: new Date(floor).toISOString(), perPage: this.options.perPage, maxPages: this.options.maxPages },
          'completed-task scan fell behind further than finished tasks are remembered; skipping ahead (tasks that ended unseen in that range are not counted; raise reconcile.perPage or reconcile.maxPages)',
        );
      }
      this.deps.metrics.reconcileFailed();
      from = floor;
      this.resumeAt = undefined;
    }
    let latest = Number.NEGATIVE_INFINITY;
    const pages = this.pages({ dateFilterBy: 'completedAt', fromDate: new Date(Math.max(0, from)), orderBy: 'completedAt', orderDirection: 'asc' }, signal);
    let result = await pages.next();
    while (!result.done) {
      for (const record of result.value) {
        if (record.completedAt !== undefined && record.completedAt > limit) this.futureDated(record, limit);
        else if (record.completedAt !== undefined && record.completedAt > latest) latest = record.completedAt;
        if (this.mayApply(record, now, limit)) this.apply(record);
      }
      result = await pages.next();
    }
    const complete = result.value;
    if (latest > this.cursor) this.cursor = latest;
    this.resumeAt = complete ? undefined : Math.max(from, latest);
  }

  /** A scanned record is applied unless it was finished ahead of the clock before, or is dated beyond the tolerance. */
  private mayApply(record: TaskRecord, now: number, limit: number): boolean {
    if (this.finishedAhead.has(record.id)) {
      this.finishedAhead.set(record.id, true);
      return false;
    }
    const at = record.completedAt;
    if (at === undefined || at <= now || finalStatusOf(record) === undefined) return at === undefined || at <= limit;
    if (this.deps.tracker.isFinished(record.id)) {
      this.finishedAhead.set(record.id, true);
      return false;
    }
    if (at > limit) return false;
    this.finishedAhead.set(record.id, true); // applied now, once
    return true;
  }

  private futureDated(record: TaskRecord, limit: number): void {
    if (this.futureIds.has(record.id)) return;
    this.futureIds.set(record.id, true);
    this.deps.metrics.futureTimestamp('reconcile');
    if (this.futureLog.take()) {
      this.deps.logger.warn(
        { taskId: record.id, completedAt: iso(record.completedAt!), limit: iso(limit) },
        'stored task completed in the future (clock skew or a bad record): not applied until its completedAt is due, and it does not move the completed-task scan',
      );
    }
  }

  private readonly futureLog = new LogThrottle();

  private async countPending(signal?: AbortSignal): Promise<void> {
    const counts = new Map<string, PendingCount>();
    for await (const tasks of this.pages({ status: 'pending' }, signal)) {
      for (const t of tasks) {
        const key = `${t.agentId}\u0000${t.toolName}`;
        const c = counts.get(key);
        if (c) c.count++;
        else counts.set(key, { agentId: t.agentId, toolName: t.toolName, count: 1 });
      }
    }
    this.pendingCounts = [...counts.values()];
  }
}
