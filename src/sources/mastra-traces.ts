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
interface TraceStore {
  listTraces(args: {
    filters?: { runId?: string };
    pagination?: { page: number; perPage: number };
  }): Promise<{ spans: StoredSpan[] }>;
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
}

interface RunEntry {
  traceIds: string[] | undefined;
  /** toolCallId → its span, for every tool_call span of the run read so far. */
  spans: Map<string, SpanRef>;
  reading: Promise<boolean | undefined> | undefined;
}

const RUNS_KEPT = 1_000;

/**
 * Finds a task's tool_call span with as few reads as it can: an answer already read costs nothing; a lookup that
 * finds a read of the same run under way waits for it; the run's trace ids are read once. Bounded (RUNS_KEPT runs,
 * oldest first out).
 */
export class RunSpanFinder {
  private readonly runs = new Map<string, RunEntry>();

  constructor(private readonly reads: TraceReads) {}

  async find(runId: string, toolCallId: string, signal?: AbortSignal): Promise<SpanRef | null | undefined> {
    if (!runId || !toolCallId) return null;
    let entry = this.runs.get(runId);
    const known = entry?.spans.get(toolCallId);
    if (known) return known;
    if (entry?.reading) {
      // A read started before this task asked may have missed its span: its answer only counts when it found it.
      const stored = await entry.reading;
      if (stored === undefined) return undefined;
      return entry.spans.get(toolCallId) ?? null;
    }
    if (!entry) {
      entry = { traceIds: undefined, spans: new Map(), reading: undefined };
      this.runs.set(runId, entry);
      if (this.runs.size > RUNS_KEPT) this.runs.delete(this.runs.keys().next().value as string);
    }
    const e = entry;
    const reading = this.read(runId, e, signal);
    e.reading = reading;
    try {
      const stored = await reading;
      if (stored === undefined) return undefined;
      return e.spans.get(toolCallId) ?? null;
    } finally {
      if (e.reading === reading) e.reading = undefined;
    }
  }

  /** Reads the run's traces into `entry`: undefined when the app stores no traces, else whether any trace was read. */
  private async read(runId: string, entry: RunEntry, signal?: AbortSignal): Promise<boolean | undefined> {
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
