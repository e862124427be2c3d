// Source over an in-process Mastra: `mastra.backgroundTaskManager.stream()` plus its getTask/listTasks.
//
// Owns: the subscription lifecycle (resubscribe if the stream ends while the bridge runs) and mapping the manager's
// lookups to parsed records. Must not: interpret events (events.ts does), or import @mastra/core at runtime — the
// bridge works without Mastra installed when it watches a remote server.

import { type TaskRecord, parseTaskRecord } from '../events.js';
import { RunSpanFinder, hasTraceStorage, storeReads } from './mastra-traces.js';

/** How long a "no traces stored" answer is reused by the lookups that come right after it. */
const STORAGE_RECHECK_MS = 1_000;
import { SourceError, type SourceSink, type SpanRef, type TaskPage, type TaskQuery, type TaskSource } from './types.js';
import { sleepUnlessAborted } from '../sleep.js';

interface ManagerLike {
  stream(options?: { abortSignal?: AbortSignal; includeExisting?: boolean }): ReadableStream<unknown>;
  getTask(taskId: string): Promise<unknown>;
  listTasks(filter?: Record<string, unknown>): Promise<{ tasks: unknown[]; total: number }>;
}

/** The slice of a Mastra instance the bridge uses. */
export interface MastraLike {
  backgroundTaskManager?: unknown;
}

const RESUBSCRIBE_DELAY_MS = 500;

export class InProcessSource implements TaskSource {
  readonly kind = 'in-process' as const;
  readonly description = 'in-process Mastra (backgroundTaskManager.stream)';
  private readonly manager: ManagerLike;

  constructor(private readonly mastra: MastraLike) {
    const manager = mastra.backgroundTaskManager as ManagerLike | undefined;
    if (!manager || typeof manager.stream !== 'function') {
      throw new Error('mastra.backgroundTaskManager is not available: create Mastra with { backgroundTasks: { enabled: true } }');
    }
    this.manager = manager;
  }

  async run(sink: SourceSink, signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      let reason = 'eof';
      let error: unknown;
      try {
        const stream = this.manager.stream({ abortSignal: signal, includeExisting: true });
        const reader = stream.getReader();
        sink.connected();
        try {
          for (;;) {
            const { value, done } = await reader.read();
            if (done) break;
            sink.chunk(value);
          }
        } finally {
          reader.releaseLock();
        }
      } catch (e) {
        reason = 'error';
        error = e;
      }
      if (signal.aborted) {
        sink.disconnected('stopped');
        return;
      }
      sink.disconnected(reason, error);
      await sleepUnlessAborted(RESUBSCRIBE_DELAY_MS, signal);
    }
  }

  async getTask(taskId: string): Promise<TaskRecord | null> {
    let raw: unknown;
    try {
      raw = await this.manager.getTask(taskId);
    } catch (e) {
      throw new SourceError(`getTask failed: ${(e as Error).message}`, 'unavailable', { cause: e });
    }
    if (raw === null || raw === undefined) return null;
    const parsed = parseTaskRecord(raw);
    if (!parsed.ok) throw new SourceError(`getTask returned an invalid record: ${parsed.detail}`, 'bad_response');
    return parsed.value;
  }

  async listTasks(query: TaskQuery): Promise<TaskPage> {
    let raw: { tasks: unknown[]; total: number };
    try {
      raw = await this.manager.listTasks({ ...query });
    } catch (e) {
      throw new SourceError(`listTasks failed: ${(e as Error).message}`, 'unavailable', { cause: e });
    }
    const tasks: TaskRecord[] = [];
    let invalid = 0;
    for (const t of raw.tasks ?? []) {
      const parsed = parseTaskRecord(t);
      if (parsed.ok) tasks.push(parsed.value);
      else invalid++;
    }
    return { tasks, total: typeof raw.total === 'number' ? raw.total : tasks.length, invalid };
  }

  async findToolCallSpan(runId: string, toolCallId: string, _signal?: AbortSignal, startedAt?: number): Promise<SpanRef | null | undefined> {
    // Traces are worth looking for once the store holds one (checked until it does). The first lookup comes seconds
    // after a task's start (see PlacementResolver), so an app with observability has stored its first spans by then;
    // a store with none at all (tracing off, or only work outside agent runs) has nothing to find: fall back at once,
    // and the resolver asks again in 30 s.
    if (!this.tracesStored) {
      // Tasks that ended together wake together: one check answers them all, and a "none" holds for a second.
      const now = Date.now();
      if (!this.storageCheck || (this.storageCheckedAt !== undefined && now - this.storageCheckedAt > STORAGE_RECHECK_MS)) {
        this.storageCheckedAt = undefined;
        this.storageCheck = hasTraceStorage(this.mastra as never).finally(() => (this.storageCheckedAt = Date.now()));
      }
      this.tracesStored = await this.storageCheck;
    }
    if (!this.tracesStored) return undefined;
    this.spanFinder ??= new RunSpanFinder(storeReads(this.mastra as never));
    return this.spanFinder.find(runId, toolCallId, undefined, startedAt);
  }

  private spanFinder: RunSpanFinder | undefined;
  private tracesStored = false;
  private storageCheck: Promise<boolean> | undefined;
  private storageCheckedAt: number | undefined;
}
