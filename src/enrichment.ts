// Task lookups (getTask) that fill in what the stream never carries: threadId, resourceId, createdAt, retries, the
// true status. Bounded: a fixed number of lookups in flight, a bounded queue, a small cache. The event pump never
// waits on a lookup; a failed lookup degrades the span (counted), it never loses it.
// What it keeps is only what enrichment reads (identity, status, times, retries; see slim()): a stored record can carry
// megabytes of args, result or suspend payload, and none of it is read here (span args come from the stream's own
// `running` event, under traces.recordArgs), so no payload is held in the cache or in a lookup's answer.

import type { TaskRecord } from './events.js';
import { type RefusedAnswer, SourceError, type TaskSource } from './sources/types.js';

export type EnrichmentFailure = 'error' | 'not_found' | 'overloaded' | RefusedAnswer;

export interface EnrichmentOptions {
  enabled: boolean;
  concurrency: number;
  /** Lookups waiting for a slot; past this, new lookups fail as `overloaded`. */
  maxQueue: number;
  /** Records kept for tasks that finish after their lookup. */
  cacheSize: number;
  timeoutMs: number;
}

export const DEFAULT_ENRICHMENT: EnrichmentOptions = { enabled: true, concurrency: 4, maxQueue: 10_000, cacheSize: 10_000, timeoutMs: 5_000 };

type Result = TaskRecord | undefined;

/** finishedNow(): the answer needs a lookup (or waits on one under way). */
export const NEEDS_LOOKUP: unique symbol = Symbol('needs lookup');

export class Enricher {
  private readonly pending = new Map<string, Promise<Result>>();
  private readonly cache = new Map<string, TaskRecord>();
  private readonly queue: (() => void)[] = [];
  private active = 0;

  constructor(
    private readonly source: Pick<TaskSource, 'getTask'>,
    private readonly options: EnrichmentOptions,
    private readonly onFailure: (reason: EnrichmentFailure, taskId: string, error?: unknown) => void,
  ) {}

  /** Start a lookup unless one is cached or under way; resolves with the record, or undefined on failure. */
  lookup(taskId: string): Promise<Result> {
    if (!this.options.enabled) return Promise.resolve(undefined);
    const cached = this.cache.get(taskId);
    if (cached) return Promise.resolve(cached);
    return this.pending.get(taskId) ?? this.start(taskId);
  }

  /** The record of a finished task: a lookup under way is awaited, a cached one reused unless it may be stale. */
  forFinished(taskId: string, stale: (record: TaskRecord) => boolean): Promise<Result> {
    if (!this.options.enabled) return Promise.resolve(undefined);
    const inflight = this.pending.get(taskId);
    const cached = this.cache.get(taskId);
    this.cache.delete(taskId);
    if (inflight) {
      return inflight.then((r) => {
        this.cache.delete(taskId);
        return r !== undefined && stale(r) ? this.start(taskId, true) : r;
      });
    }
    if (cached && !stale(cached)) return Promise.resolve(cached);
    return this.start(taskId, true);
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

  get inFlight(): number {
    return this.active + this.queue.length;
  }

  private start(taskId: string, final = false): Promise<Result> {
    if (this.queue.length >= this.options.maxQueue) {
      this.onFailure('overloaded', taskId);
      return Promise.resolve(undefined);
    }
    const p = new Promise<Result>((resolve) => {
      const run = () => {
        this.active++;
        this.fetch(taskId).then(
          (record) => {
            // A final lookup is consumed at once; only first-sight lookups wait in the cache for the task's end.
            if (record && !final) this.remember(taskId, record);
            resolve(record);
          },
          () => resolve(undefined),
        ).finally(() => {
          this.active--;
          // Only this lookup's own entry: a caller woken by it may already have started the next one for this task.
          if (this.pending.get(taskId) === p) this.pending.delete(taskId);
          this.queue.shift()?.();
        });
      };
      if (this.active < this.options.concurrency) run();
      else this.queue.push(run);
    });
    this.pending.set(taskId, p);
    return p;
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
