// Task lookups (getTask) that fill in what the stream never carries: threadId, resourceId, createdAt, retries, the
// true status. Bounded: a fixed number of lookups in flight, a bounded queue, a small cache. The event pump never
// waits on a lookup; a failed lookup degrades the span (counted), it never loses it.
// What it keeps is only what enrichment reads (identity, status, times, retries; see slim()): a stored record can carry
// megabytes of args, result or suspend payload, and none of it is read here (span args come from the stream's own
// `running` event, under traces.recordArgs), so no payload is held in the cache or in a lookup's answer.

import type { TaskRecord } from './events.js';
import { type RefusedAnswer, SourceError, type TaskPage, type TaskQuery, type TaskSource } from './sources/types.js';

export type EnrichmentFailure = 'error' | 'not_found' | 'overloaded' | RefusedAnswer;

export interface EnrichmentOptions {
  enabled: boolean;
  concurrency: number;
  /** Lookups waiting for a slot (or gathered for a batch); past this, new lookups fail as `overloaded`. */
  maxQueue: number;
  /** Records kept for tasks that finish after their lookup. */
  cacheSize: number;
  timeoutMs: number;
  /**
   * How long hinted lookups are gathered before they are sent, ms: those close in time go as one listTasks over a
   * date window instead of one getTask each. 0 (the default) sends every lookup at once as a getTask. Off by default
   * because Mastra's stores have no index on startedAt/completedAt: a window is a full scan of the task table (twice:
   * COUNT and SELECT), so it only pays while the table is small. Measured on LibSQL over HTTP (bench/request-costs.ts):
   * with ~300 stored tasks a window of 10 costs Mastra 1.6–1.8 ms against 0.9–1.3 ms a getTask; with 20,000 stored
   * tasks (2 KB payloads, what ~5.5 tasks/s leave under Mastra's 1 h retention) 5.5–6.3 ms against 0.7–0.8 ms.
   */
  batchWindowMs?: number;
}

export const DEFAULT_ENRICHMENT: Required<EnrichmentOptions> = {
  enabled: true,
  concurrency: 4,
  maxQueue: 10_000,
  cacheSize: 10_000,
  timeoutMs: 5_000,
  batchWindowMs: 0,
};

/**
 * A batch's window: the tasks asked for in one listTasks lie within this span of their times. A wider window reads
 * more records nobody asked about (other tasks of a busy app), and Mastra pays for each (~0.15 ms a record).
 */
export const BATCH_MAX_SPAN_MS = 2_000;
/** Tasks asked for in one listTasks (its perPage). */
export const BATCH_MAX_TASKS = 100;

/**
 * What the pipeline knows of a task's stored record before asking: one of its times on Mastra's clock, exactly as
 * the stream carried it (the stored value: the stream's events are published from the stored record). It lets the
 * lookup be one record of a listTasks date window shared with other tasks.
 */
export interface LookupHint {
  by: 'startedAt' | 'completedAt';
  /** Epoch ms. */
  at: number;
}

type Result = TaskRecord | undefined;

/** finishedNow(): the answer needs a lookup (or waits on one under way). */
export const NEEDS_LOOKUP: unique symbol = Symbol('needs lookup');

/** One task's lookup under way: gathered for a batch, queued, or sent. */
interface Lookup {
  taskId: string;
  hint: LookupHint | undefined;
  settle(record: Result): void;
}

/** Work holding one concurrency slot: one getTask, or one listTasks for several tasks. */
interface Job {
  lookups: number;
  run(): Promise<void>;
}

export class Enricher {
  private readonly pending = new Map<string, Promise<Result>>();
  private readonly cache = new Map<string, TaskRecord>();
  private readonly queue: Job[] = [];
  private queued = 0; // lookups in queued jobs
  private gathered: Lookup[] = [];
  private gatherTimer: ReturnType<typeof setTimeout> | undefined;
  private active = 0;
  private readonly windowMs: number;
  // Tasks a batch asks for: halved when an answer is refused as too large (records carry their args and results,
  // and source.maxResponseBytes caps an answer), grown back by one per batch answered whole.
  private batchLimit = BATCH_MAX_TASKS;

  constructor(
    private readonly source: Pick<TaskSource, 'getTask'> & Partial<Pick<TaskSource, 'listTasks'>>,
    private readonly options: EnrichmentOptions,
    private readonly onFailure: (reason: EnrichmentFailure, taskId: string, error?: unknown) => void,
  ) {
    // A source that cannot list (a test double) gets one getTask a task, as before batching.
    this.windowMs = typeof source.listTasks === 'function' ? (options.batchWindowMs ?? DEFAULT_ENRICHMENT.batchWindowMs) : 0;
  }

  /**
   * Start a lookup unless one is cached or under way; resolves with the record, or undefined on failure. With a
   * hint (the task's start as the stream carried it) the lookup may share one listTasks with others.
   */
  lookup(taskId: string, hint?: LookupHint): Promise<Result> {
    if (!this.options.enabled) return Promise.resolve(undefined);
    const cached = this.cache.get(taskId);
    if (cached) return Promise.resolve(cached);
    return this.pending.get(taskId) ?? this.start(taskId, false, hint);
  }

  /**
   * The record of a finished task: a lookup under way is awaited, a cached one reused unless it may be stale. `hint`
   * (the task's completedAt) lets a new lookup share a listTasks.
   */
  forFinished(taskId: string, stale: (record: TaskRecord) => boolean, hint?: LookupHint): Promise<Result> {
    if (!this.options.enabled) return Promise.resolve(undefined);
    const inflight = this.pending.get(taskId);
    const cached = this.cache.get(taskId);
    this.cache.delete(taskId);
    if (inflight) {
      return inflight.then((r) => {
        this.cache.delete(taskId);
        if (r === undefined || !stale(r)) return r;
        // Asked again by someone else meanwhile (a final lookup under way): join it.
        return this.pending.get(taskId) ?? this.start(taskId, true, hint);
      });
    }
    if (cached && !stale(cached)) return Promise.resolve(cached);
    return this.start(taskId, true, hint);
  }

  get enabled(): boolean {
    return this.options.enabled;
  }

  /**
   * forFinished()'s answer when it is known without waiting (enrichment off, or a cached record that is not stale;
   * the cached record is consumed, as forFinished does), else NEEDS_LOOKUP with nothing changed: call forFinished.
   */
  finishedNow(taskId: string, stale: (record: TaskRecord) => boolean): Result | typeof NEEDS_LOOKUP {
    if (!this.options.enabled) return undefined;
    if (this.pending.has(taskId)) return NEEDS_LOOKUP;
    const cached = this.cache.get(taskId);
    if (cached === undefined || stale(cached)) return NEEDS_LOOKUP;
    this.cache.delete(taskId);
    return cached;
  }

  /** Lookups not yet answered: gathered for a batch, queued, or sent (a batch's slot counts once). */
  get inFlight(): number {
    return this.active + this.queued + this.gathered.length;
  }

  /** Send the gathered lookups now rather than at the end of their window (shutdown, idle()). */
  flush(): void {
    if (this.gatherTimer !== undefined) clearTimeout(this.gatherTimer);
    this.gatherTimer = undefined;
    const lookups = this.gathered;
    if (lookups.length === 0) return;
    this.gathered = [];
    for (const cluster of clusters(lookups, this.batchLimit)) {
      if (cluster.length === 1) this.schedule(this.getTaskJob(cluster[0]!));
      else this.schedule(this.batchJob(cluster));
    }
  }

  private start(taskId: string, final: boolean, hint: LookupHint | undefined): Promise<Result> {
    if (this.queued + this.gathered.length >= this.options.maxQueue) {
      this.onFailure('overloaded', taskId);
      return Promise.resolve(undefined);
    }
    let lookup!: Lookup;
    const p = new Promise<Result>((resolve) => {
      lookup = {
        taskId,
        hint: hint !== undefined && Number.isFinite(hint.at) ? hint : undefined,
        settle: (record) => {
          // Removed before the callers wake: one that finds the record stale starts the next lookup for this task.
          if (this.pending.get(taskId) === p) this.pending.delete(taskId);
          // A final lookup is consumed at once; only first-sight lookups wait in the cache for the task's end.
          if (record && !final) this.remember(taskId, record);
          resolve(record);
        },
      };
    });
    this.pending.set(taskId, p);
    if (lookup.hint !== undefined && this.windowMs > 0) {
      this.gathered.push(lookup);
      // A full batch gains nothing by waiting (and a burst must not hold maxQueue lookups for a whole window).
      if (this.gathered.length >= BATCH_MAX_TASKS) this.flush();
      else this.gatherTimer ??= setTimeout(() => this.flush(), this.windowMs);
    } else {
      this.schedule(this.getTaskJob(lookup));
    }
    return p;
  }

  /** Run a job now if a slot is free, else queue it. */
  private schedule(job: Job): void {
    if (this.active < this.options.concurrency) {
      this.runJob(job);
      return;
    }
    this.queued += job.lookups;
    this.queue.push(job);
  }

  /** Jobs that waited already (fallbacks): free slots first, then ahead of the queue, in their order. */
  private scheduleFirst(jobs: Job[]): void {
    let i = 0;
    while (i < jobs.length && this.active < this.options.concurrency) this.runJob(jobs[i++]!);
    const rest = jobs.slice(i);
    for (const job of rest) this.queued += job.lookups;
    this.queue.unshift(...rest);
  }

  private runJob(job: Job): void {
    this.active++;
    job
      .run()
      .catch(() => undefined)
      .finally(() => {
        this.active--;
        const next = this.queue.shift();
        if (next) {
          this.queued -= next.lookups;
          this.runJob(next);
        }
      });
  }

  private getTaskJob(lookup: Lookup): Job {
    return {
      lookups: 1,
      run: () =>
        this.fetch(lookup.taskId).then(
          (record) => lookup.settle(record),
          () => lookup.settle(undefined),
        ),
    };
  }

  /**
   * One listTasks for a cluster; every task the answer lacks (its time changed by a retry or a resume, a page too
   * small for the window, a failed or refused answer) falls back to its own getTask, which alone may count a failure.
   */
  private batchJob(lookups: Lookup[]): Job {
    return {
      lookups: lookups.length,
      run: async () => {
        const page = await this.list(lookups);
        const missing: Lookup[] = [];
        if (page === undefined) missing.push(...lookups);
        else {
          // Only the records asked for are read (and slimmed); the rest of the answer is dropped with it.
          const found = new Map<string, TaskRecord>();
          const wanted = new Set(lookups.map((l) => l.taskId));
          for (const r of page.tasks) if (wanted.has(r.id)) found.set(r.id, r);
          for (const l of lookups) {
            const r = found.get(l.taskId);
            if (r === undefined) missing.push(l);
            else l.settle(slim(r));
          }
        }
        // Each fallback takes a slot of its own (this job still holds one), ahead of lookups that came later.
        this.scheduleFirst(missing.map((l) => this.getTaskJob(l)));
      },
    };
  }

  private async list(lookups: Lookup[]): Promise<TaskPage | undefined> {
    const by = lookups[0]!.hint!.by;
    let from = Infinity;
    let to = -Infinity;
    for (const l of lookups) {
      from = Math.min(from, l.hint!.at);
      to = Math.max(to, l.hint!.at);
    }
    // Mastra's stores compare fromDate inclusively and toDate exclusively, at ms precision (ISO strings in LibSQL,
    // timestamps in PostgreSQL, Dates in memory): the window ends 1 ms after its last task.
    const query: TaskQuery = { dateFilterBy: by, fromDate: new Date(from), toDate: new Date(to + 1), orderBy: by, orderDirection: 'asc', page: 0, perPage: BATCH_MAX_TASKS };
    const listTasks = this.source.listTasks!;
    try {
      const page = await (listTasks.length >= 2 ? this.source.listTasks!(query, AbortSignal.timeout(this.options.timeoutMs)) : this.source.listTasks!(query));
      this.batchLimit = Math.min(BATCH_MAX_TASKS, this.batchLimit + 1);
      return page;
    } catch (error) {
      if (error instanceof SourceError && error.refused === 'too_large') this.batchLimit = Math.max(1, Math.floor(lookups.length / 2));
      // Not counted: each task's own getTask follows, and counts a failure only if it fails too.
      return undefined;
    }
  }

  private async fetch(taskId: string): Promise<Result> {
    const record = await this.fetchWhole(taskId);
    return record === undefined ? undefined : slim(record);
  }

  private async fetchWhole(taskId: string): Promise<Result> {
    // The timeout only matters to a getTask that takes a signal (a remote source); one declared without it (in
    // process) could never see it, and AbortSignal.timeout costs a timer per lookup (~10 µs).
    const getTask = this.source.getTask;
    try {
      const record = await (getTask.length >= 2 ? this.source.getTask(taskId, AbortSignal.timeout(this.options.timeoutMs)) : this.source.getTask(taskId));
      if (record === null) this.onFailure('not_found', taskId);
      return record ?? undefined;
    } catch (error) {
      this.onFailure(error instanceof SourceError && error.refused ? error.refused : 'error', taskId, error);
      return undefined;
    }
  }

  private remember(taskId: string, record: TaskRecord): void {
    this.cache.set(taskId, record);
    if (this.cache.size > this.options.cacheSize) this.cache.delete(this.cache.keys().next().value as string);
  }
}

/**
 * Gathered lookups as listTasks windows: by field, in time order, a new cluster where the span would pass
 * BATCH_MAX_SPAN_MS or the size `limit` (at most BATCH_MAX_TASKS). A cluster of one is a getTask.
 */
function clusters(lookups: Lookup[], limit: number): Lookup[][] {
  const out: Lookup[][] = [];
  for (const by of ['startedAt', 'completedAt'] as const) {
    const group = lookups.filter((l) => l.hint!.by === by).sort((a, b) => a.hint!.at - b.hint!.at);
    let current: Lookup[] = [];
    for (const l of group) {
      if (current.length > 0 && (current.length >= limit || l.hint!.at - current[0]!.hint!.at > BATCH_MAX_SPAN_MS)) {
        out.push(current);
        current = [];
      }
      current.push(l);
    }
    if (current.length > 0) out.push(current);
  }
  return out;
}

/** The fields enrichment reads (tracker.enrich, completeWithRecord): no payloads (args, result, suspendPayload, error). */
export function slim(r: TaskRecord): TaskRecord {
  const out: TaskRecord = { id: r.id, status: r.status, toolName: r.toolName, toolCallId: r.toolCallId, agentId: r.agentId, runId: r.runId };
  if (r.threadId !== undefined) out.threadId = r.threadId;
  if (r.resourceId !== undefined) out.resourceId = r.resourceId;
  if (r.createdAt !== undefined) out.createdAt = r.createdAt;
  if (r.startedAt !== undefined) out.startedAt = r.startedAt;
  if (r.suspendedAt !== undefined) out.suspendedAt = r.suspendedAt;
  if (r.completedAt !== undefined) out.completedAt = r.completedAt;
  if (r.retryCount !== undefined) out.retryCount = r.retryCount;
  if (r.maxRetries !== undefined) out.maxRetries = r.maxRetries;
  if (r.timeoutMs !== undefined) out.timeoutMs = r.timeoutMs;
  return out;
}
