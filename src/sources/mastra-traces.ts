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
 */
import type { Mastra } from '@mastra/core';
import type { SpanRef } from './types.js';

/** The subset of a stored span record this module reads. */
interface StoredSpan {
  traceId: string;
  spanId: string;
  spanType?: string;
  runId?: string | null;
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
const MAX_TRACES_PER_RUN = 20;

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

function isToolCallSpan(span: StoredSpan, toolCallId: string): boolean {
  if (span.spanType !== TOOL_CALL) return false;
  const fromAttributes = span.attributes?.['toolCallId'];
  if (fromAttributes === toolCallId) return true;
  return fromAttributes === undefined && span.metadata?.['toolCallId'] === toolCallId;
}

/**
 * Finds the `tool_call` span Mastra recorded for `toolCallId` in the agent run `runId`.
 * Returns its trace id (the agent run's trace) and span id, or null when there is no trace
 * storage, no trace for the run yet, or no matching span (yet). Never throws.
 */
export async function findToolCallSpan(mastra: Mastra, runId: string, toolCallId: string): Promise<SpanRef | null> {
  const store = await getTraceStore(mastra);
  if (!store || !runId || !toolCallId) return null;

  // 1. The documented path: root spans of the run, then each trace's spans.
  try {
    const { spans: roots } = await store.listTraces({
      filters: { runId },
      pagination: { page: 0, perPage: MAX_TRACES_PER_RUN },
    });
    const traceIds = [...new Set(roots.map((r) => r.traceId))];
    for (const traceId of traceIds) {
      const trace = await store.getTrace({ traceId });
      const span = trace?.spans.find((s) => isToolCallSpan(s, toolCallId));
      if (span) return { traceId: span.traceId, spanId: span.spanId };
    }
  } catch {
    // listTraces / getTrace not implemented by this store: try the branch index below.
  }

  // 2. Branch index (tool_call spans by their own runId): also finds agent runs nested under
  //    another root (e.g. an agent called from a workflow). Not every store implements it.
  if (typeof store.listBranches === 'function') {
    try {
      const { branches } = await store.listBranches({
        filters: { runId, spanType: TOOL_CALL },
        pagination: { page: 0, perPage: 100 },
      });
      const span = branches.find((s) => isToolCallSpan(s, toolCallId));
      if (span) return { traceId: span.traceId, spanId: span.spanId };
    } catch {
      // not implemented
    }
  }
  return null;
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
