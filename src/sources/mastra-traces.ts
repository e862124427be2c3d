/**
 * In-process lookup of Mastra's own stored traces (written by `@mastra/observability`'s
 * MastraStorageExporter / DefaultExporter into the app's storage), so a bridge span for a
 * background task can be parented under Mastra's `tool_call` span of the agent run.
 *
 * The calls mirror the Mastra server's observability routes:
 *   GET /api/observability/traces?runId=  ->  (await storage.getStore('observability')).listTraces({ filters: { runId }, pagination })
 *   GET /api/observability/traces/:id     ->  (await storage.getStore('observability')).getTrace({ traceId })
 * `listTraces` returns ROOT spans only (one per trace: the `agent_run` span carries `runId`);
 * `getTrace` returns every span of the trace. The `tool_call` span (spanType 'tool_call') carries
 * `attributes.toolCallId`; its parent is the agent's `model_step` span.
 *
 * With the default 'batch-with-updates' strategy a span is written when it STARTS (after the
 * exporter's batch delay, `maxBatchWaitMs`, 5 s by default) and updated when it ends, so the
 * tool_call span is findable while the background task still runs. With the 'insert-only'
 * strategy spans only appear once they end.
 *
 * Both sources find spans through RunSpanFinder (one matcher, one per-run cache): a run's stored trace ids and every
 * tool_call span of a trace read once are kept, so the other tasks of the run need no request, and lookups for one
 * run that overlap share one read.
 */
import type { Mastra } from '@mastra/core';
import type { SpanRef } from './types.js';

/** The subset of a stored span record this module reads (stored in process, JSON over HTTP). */
export interface StoredSpan {
  traceId?: unknown;
  spanId?: unknown;
  spanType?: unknown;
  runId?: unknown;
  /** Date in process, ISO string over HTTP; createdAt is when the storage exporter wrote the span. */
  startedAt?: unknown;
  createdAt?: unknown;
  attributes?: Record<string, unknown> | null;
  metadata?: Record<string, unknown> | null;
}

/** The subset of Mastra's ObservabilityStorage API used here (kept structural: methods may be "not implemented"). */
interface TraceListArgs {
  filters?: { runId?: string; startedAt?: { start?: Date; end?: Date } };
  pagination?: { page: number; perPage: number };
  orderBy?: { field: 'startedAt'; direction: 'DESC' };
}

interface TraceStore {
  listTraces(args: TraceListArgs): Promise<{ spans: StoredSpan[] }>;
  /** The same rows without input, output and attributes (Mastra ≥ 1.6x); optional. */
  listTracesLight?(args: TraceListArgs): Promise<{ spans: StoredSpan[] }>;
  getTrace(args: { traceId: string }): Promise<{ traceId: string; spans: StoredSpan[] } | null>;
  listBranches?(args: {
    filters?: { runId?: string; spanType?: string };
    pagination?: { page: number; perPage: number };
  }): Promise<{ branches: StoredSpan[] }>;
}

const TOOL_CALL = 'tool_call';
export const MAX_TRACES_PER_RUN = 20;

/**
 * The toolCallId of a stored `tool_call` span, else undefined. Mastra ≥ 1.57 puts it in `attributes.toolCallId`;
 * earlier ones only in `metadata.toolCallId` (when the app passed it). One rule for both sources.
 */
export function toolCallIdOf(span: StoredSpan): string | undefined {
  if (span.spanType !== TOOL_CALL || typeof span.spanId !== 'string') return undefined;
  const fromAttributes = span.attributes?.['toolCallId'];
  if (typeof fromAttributes === 'string') return fromAttributes;
  const fromMetadata = span.metadata?.['toolCallId'];
  return typeof fromMetadata === 'string' ? fromMetadata : undefined;
}

/** How a source reads stored traces; each call is one read of Mastra's storage (one HTTP request remotely). */
export interface TraceReads {
  /** The run's trace ids (root spans by runId); [] when not stored (yet); undefined when the app stores no traces. */
  runTraceIds(runId: string, signal?: AbortSignal): Promise<string[] | undefined>;
  /** Every span of a trace, or undefined when it cannot be read. */
  traceSpans(traceId: string, signal?: AbortSignal): Promise<StoredSpan[] | undefined>;
  /** tool_call spans of the run found through the branch index (runs nested under another root); optional. */
  runToolCallBranches?(runId: string, signal?: AbortSignal): Promise<StoredSpan[]>;
  /**
   * Root spans (one per trace) started in [from, to], newest first, at most `limit`: one read for the trace ids of
   * many runs. undefined when the store cannot list them this way (the per-run list is used instead). Optional.
   */
  recentRoots?(from: Date, to: Date, limit: number, signal?: AbortSignal): Promise<StoredSpan[] | undefined>;
}

/** The run a stored root span belongs to: its runId column (full records) or metadata.runId (light records). */
export function runIdOf(span: StoredSpan): string | undefined {
  if (typeof span.runId === 'string') return span.runId;
  const fromMetadata = span.metadata?.['runId'];
  return typeof fromMetadata === 'string' ? fromMetadata : undefined;
}

interface RunEntry {
  traceIds: string[] | undefined;
  /** traceIds came from a shared root listing (which may not show every trace of the run): a miss asks by runId. */
  fromListing?: boolean;
  /** A shared listing was tried for this run: it is not waited for again. */
  listed?: boolean;
  /** toolCallId → its span, for every tool_call span of the run read so far. */
  spans: Map<string, SpanRef>;
  reading: Promise<boolean | undefined> | undefined;
}

const RUNS_KEPT = 1_000;

/**
 * How long lookups for run trace ids are gathered into one root listing. A quick task's lookup comes at a fixed delay
 * after its start (PlacementResolver), so lookups arrive at the rate tasks start: a window this long gathers several
 * runs a request on a busy app, and delays only the span (the count never waits on placement).
 */
export const ROOTS_WINDOW_MS = 500;
/** How long before a task's start its run's root span may have started (the agent's steps before the tool call). */
export const ROOTS_LEAD_MS = 60_000;
/** Most roots one listing asks for (each costs Mastra about 0.1 ms to serve: asked in proportion to the runs waiting). */
const ROOTS_MAX = 100;
const ROOTS_PER_RUN = 2;
const ROOTS_SPARE = 8;

interface RootWaiter {
  runId: string;
  at: number;
  resolve: (found: boolean) => void;
}

/**
 * Finds a task's tool_call span with as few reads as it can: an answer already read costs nothing; a lookup that
 * finds a read of the same run under way waits for it; the run's trace ids are read once, and for runs whose tasks'
 * start times are known, gathered for ROOTS_WINDOW_MS and read for all of them in one root listing (newest first,
 * from the earliest start less ROOTS_LEAD_MS to the latest) that also remembers the trace ids of every other run it
 * lists (their tasks, still running, need no list of their own when they end); a run the listing does not show is
 * asked for by runId as before. Bounded (RUNS_KEPT runs, oldest first out).
 */
export class RunSpanFinder {
  private readonly runs = new Map<string, RunEntry>();
  private rootWaiters: RootWaiter[] = [];
  private rootTimer: ReturnType<typeof setTimeout> | undefined;
  /** Set once the store answered a root listing with an error: the per-run list only, from then on. */
  private rootsUnsupported = false;

  constructor(
    private readonly reads: TraceReads,
    private readonly windowMs = ROOTS_WINDOW_MS,
  ) {}

  /** `startedAt`: the task's start (Mastra's clock, ms), when known: lets its run's trace id come from a shared listing. */
  async find(runId: string, toolCallId: string, signal?: AbortSignal, startedAt?: number): Promise<SpanRef | null | undefined> {
    if (!runId || !toolCallId) return null;
    const entry = this.runs.get(runId);
    const known = entry?.spans.get(toolCallId);
    if (known) return known;
    if (entry?.reading) {
      // A read started before this task asked may have missed its span: its answer only counts when it found it.
      const stored = await entry.reading;
      if (stored === undefined) return undefined;
      return entry.spans.get(toolCallId) ?? null;
    }
    const e = entry ?? this.entry(runId);
    const reading = this.read(runId, e, signal, startedAt);
    e.reading = reading;
    try {
      const stored = await reading;
      if (stored === undefined) return undefined;
      const found = e.spans.get(toolCallId);
      if (!found && e.fromListing) {
        // The listing may have shown only some of the run's traces: the next attempt asks for all of them.
        e.traceIds = undefined;
        e.fromListing = false;
      }
      return found ?? null;
    } finally {
      if (e.reading === reading) e.reading = undefined;
    }
  }

  /** Reads the run's traces into `entry`: undefined when the app stores no traces, else whether any trace was read. */
  private async read(runId: string, entry: RunEntry, signal?: AbortSignal, startedAt?: number): Promise<boolean | undefined> {
    if (entry.traceIds === undefined && !entry.listed && startedAt !== undefined && this.reads.recentRoots && !this.rootsUnsupported) {
      entry.listed = true;
      await this.listedWithOthers(runId, startedAt);
    }
    let traceIds = entry.traceIds;
    if (traceIds === undefined) {
      const ids = await this.reads.runTraceIds(runId, signal);
      if (ids === undefined) return undefined;
      // A run's trace id never changes once stored; an empty answer means "not yet", asked again next time.
      if (ids.length > 0) entry.traceIds = ids;
      traceIds = ids;
    }
    for (const traceId of traceIds) {
      const spans = await this.reads.traceSpans(traceId, signal);
      for (const span of spans ?? []) this.remember(entry, span, traceId);
    }
    if (this.reads.runToolCallBranches && entry.spans.size === 0) {
      for (const span of await this.reads.runToolCallBranches(runId, signal)) {
        if (typeof span.traceId === 'string') this.remember(entry, span, span.traceId);
      }
    }
    return traceIds.length > 0 || entry.spans.size > 0;
  }

  /** Waits for the next shared root listing; true when it showed the run (its trace ids are then in its entry). */
  private listedWithOthers(runId: string, at: number): Promise<boolean> {
    return new Promise<boolean>((resolve) => {
      this.rootWaiters.push({ runId, at, resolve });
      this.rootTimer ??= setTimeout(() => void this.listRoots(), this.windowMs);
    });
  }

  private async listRoots(): Promise<void> {
    const waiters = this.rootWaiters;
    this.rootWaiters = [];
    this.rootTimer = undefined;
    let from = Infinity;
    let to = -Infinity;
    for (const w of waiters) {
      from = Math.min(from, w.at);
      to = Math.max(to, w.at);
    }
    const runs = new Set(waiters.map((w) => w.runId)).size;
    const limit = Math.min(ROOTS_MAX, runs * ROOTS_PER_RUN + ROOTS_SPARE);
    let roots: StoredSpan[] | undefined = [];
    try {
      // No caller's signal: the listing serves every waiter; a source bounds its own request time.
      roots = await this.reads.recentRoots!(new Date(from - ROOTS_LEAD_MS), new Date(to), limit);
    } catch {
      // A failed request (not an unsupported one): these runs are asked for by runId.
      roots = [];
    }
    if (roots === undefined) this.rootsUnsupported = true;
    const byRun = new Map<string, Set<string>>();
    for (const root of roots ?? []) {
      const run = runIdOf(root);
      if (run === undefined || typeof root.traceId !== 'string') continue;
      let ids = byRun.get(run);
      if (!ids) byRun.set(run, (ids = new Set()));
      ids.add(root.traceId);
    }
    for (const [run, ids] of byRun) {
      const entry = this.entry(run);
      if (entry.traceIds !== undefined || entry.listed && !waiters.some((w) => w.runId === run)) continue;
      entry.traceIds = [...ids];
      entry.fromListing = true;
      entry.listed = true;
    }
    for (const w of waiters) w.resolve(byRun.has(w.runId));
  }

  private entry(runId: string): RunEntry {
    let entry = this.runs.get(runId);
    if (!entry) {
      entry = { traceIds: undefined, spans: new Map(), reading: undefined };
      this.runs.set(runId, entry);
      if (this.runs.size > RUNS_KEPT) this.runs.delete(this.runs.keys().next().value as string);
    }
    return entry;
  }

  private remember(entry: RunEntry, span: StoredSpan, traceId: string): void {
    const id = toolCallIdOf(span);
    // The first one stored wins (a resumed tool call can have a second span with the same toolCallId).
    if (id === undefined || entry.spans.has(id)) return;
    const ref: SpanRef = { traceId, spanId: span.spanId as string };
    const storedAfterMs = millis(span.createdAt) - millis(span.startedAt);
    if (Number.isFinite(storedAfterMs) && storedAfterMs >= 0) ref.storedAfterMs = storedAfterMs;
    entry.spans.set(id, ref);
  }
}

function millis(v: unknown): number {
  if (v instanceof Date) return v.getTime();
  return typeof v === 'string' ? Date.parse(v) : Number.NaN;
}

async function getTraceStore(mastra: Mastra): Promise<TraceStore | undefined> {
  try {
    const storage = mastra.getStorage();
    if (!storage) return undefined;
    const store = await storage.getStore('observability');
    return (store ?? undefined) as TraceStore | undefined;
  } catch {
    return undefined;
  }
}

/** TraceReads on the app's own storage (in process): the calls the server's observability routes make. */
export function storeReads(mastra: Mastra): TraceReads {
  return {
    async runTraceIds(runId) {
      const store = await getTraceStore(mastra);
      if (!store) return undefined;
      try {
        const { spans: roots } = await store.listTraces({ filters: { runId }, pagination: { page: 0, perPage: MAX_TRACES_PER_RUN } });
        return [...new Set(roots.map((r) => r.traceId).filter((t): t is string => typeof t === 'string'))];
      } catch {
        return []; // not implemented by this store: the branch index may still know the run
      }
    },
    async traceSpans(traceId) {
      const store = await getTraceStore(mastra);
      try {
        return (await store?.getTrace({ traceId }))?.spans;
      } catch {
        return undefined;
      }
    },
    async recentRoots(from, to, limit) {
      const store = await getTraceStore(mastra);
      if (!store) return undefined;
      const args: TraceListArgs = {
        filters: { startedAt: { start: from, end: to } },
        pagination: { page: 0, perPage: limit },
        orderBy: { field: 'startedAt', direction: 'DESC' },
      };
      // A throw is this call's failure (the runs are asked for one by one), not "unsupported".
      const { spans } = typeof store.listTracesLight === 'function' ? await store.listTracesLight(args) : await store.listTraces(args);
      return spans;
    },
    // Branch index (tool_call spans by their own runId): also finds agent runs nested under another root (e.g. an
    // agent called from a workflow). Not every store implements it.
    async runToolCallBranches(runId) {
      const store = await getTraceStore(mastra);
      if (typeof store?.listBranches !== 'function') return [];
      try {
        const { branches } = await store.listBranches({ filters: { runId, spanType: TOOL_CALL }, pagination: { page: 0, perPage: 100 } });
        return branches;
      } catch {
        return [];
      }
    },
  };
}

/**
 * Finds the `tool_call` span Mastra recorded for `toolCallId` in the agent run `runId` (one-off, no cache).
 * Returns its trace id (the agent run's trace) and span id, or null when there is no trace
 * storage, no trace for the run yet, or no matching span (yet). Never throws.
 */
export async function findToolCallSpan(mastra: Mastra, runId: string, toolCallId: string): Promise<SpanRef | null> {
  return (await new RunSpanFinder(storeReads(mastra)).find(runId, toolCallId)) ?? null;
}

/**
 * Whether Mastra's trace storage is usable for findToolCallSpan: an observability storage domain
 * is present AND it holds at least one trace. (Mastra's InMemoryStore always has the domain, even
 * when no exporter writes to it, hence the second check.) Never throws.
 */
export async function hasTraceStorage(mastra: Mastra): Promise<boolean> {
  const store = await getTraceStore(mastra);
  if (!store) return false;
  try {
    const { spans } = await store.listTraces({ pagination: { page: 0, perPage: 1 } });
    return spans.length > 0;
  } catch {
    return false;
  }
}
