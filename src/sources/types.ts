// The one interface every upstream implements: the in-process Mastra (in-process.ts) and a remote Mastra server.
//
// A source delivers raw upstream chunks (objects in process, SSE `data:` strings remotely) and parses nothing itself
// beyond handing them on: events.ts is the only wire-format parser. Lookups return parsed records.

import type { TaskRecord, TaskStatus } from '../events.js';

/** The identity filters Mastra's task list takes (the task API passes its own through unchanged). */
export interface TaskFilter {
  agentId?: string;
  runId?: string;
  threadId?: string;
  resourceId?: string;
  toolName?: string;
  toolCallId?: string;
}

export interface TaskQuery extends TaskFilter {
  status?: TaskStatus | TaskStatus[];
  fromDate?: Date;
  toDate?: Date;
  dateFilterBy?: 'createdAt' | 'startedAt' | 'suspendedAt' | 'completedAt';
  orderBy?: 'createdAt' | 'startedAt' | 'suspendedAt' | 'completedAt';
  orderDirection?: 'asc' | 'desc';
  /** 0-indexed page. */
  page?: number;
  perPage?: number;
}

export interface TaskPage {
  tasks: TaskRecord[];
  total: number;
  /** Records the source could not parse (counted, never guessed at). */
  invalid: number;
}

export interface SpanRef {
  traceId: string;
  spanId: string;
  /** How long after it started Mastra stored the span (its createdAt − startedAt, both Mastra's clock), when known. */
  storedAfterMs?: number;
}

/** Where the source delivers what it receives. Every call is synchronous and never throws. */
export interface SourceSink {
  /** An in-process chunk `{ type, payload }`. */
  chunk(chunk: unknown): void;
  /** One SSE `data:` field from a remote server. */
  frame(data: string): void;
  /** A frame the source could not even hand on (e.g. larger than the frame limit); counted as invalid. */
  dropped(reason: 'oversized' | 'not_json', detail: string): void;
  /** The stream is open (the connect snapshot follows). */
  connected(): void;
  /**
   * The stream ended, or a connection attempt failed (`wasConnected` false); the source reconnects by itself unless
   * stopped. `reason` is a bounded token (refused, reset, eof, timeout, http_5xx, unauthorized, not_event_stream,
   * redirect, …), usable as a label.
   */
  disconnected(reason: string, error?: unknown, wasConnected?: boolean): void;
}

/**
 * Why a remote answer was refused unread (a `bad_response`): larger than `source.maxResponseBytes`, a redirect (never
 * followed: it may point at another origin), or a getTask record for another id. Bounded: an enrichment failure reason.
 */
export type RefusedAnswer = 'too_large' | 'redirect' | 'wrong_id';

/** Thrown by lookups; `kind` maps to HTTP status in the task API and to the enrichment failure reason. */
export class SourceError extends Error {
  constructor(
    message: string,
    readonly kind: 'unavailable' | 'timeout' | 'unauthorized' | 'bad_response',
    options?: { cause?: unknown; refused?: RefusedAnswer },
  ) {
    super(message, options);
    this.name = 'SourceError';
    this.refused = options?.refused;
  }
  readonly refused: RefusedAnswer | undefined;
}

export interface TaskSource {
  readonly kind: 'in-process' | 'remote';
  /** Human-readable, secret-free description for logs and the landing page. */
  readonly description: string;
  /** Subscribe to the unfiltered stream until `signal` aborts; reconnects by itself. Resolves when stopped. */
  run(sink: SourceSink, signal: AbortSignal): Promise<void>;
  /** The stored task, or null when Mastra does not know it. Throws SourceError when the lookup itself fails. */
  getTask(taskId: string, signal?: AbortSignal): Promise<TaskRecord | null>;
  listTasks(query: TaskQuery, signal?: AbortSignal): Promise<TaskPage>;
  /**
   * Mastra's own `tool_call` span for a task, from its stored traces: undefined when the app stores no traces (auto
   * placement falls back at once), null when traces exist but this one is not (yet) there.
   */
  findToolCallSpan(runId: string, toolCallId: string, signal?: AbortSignal, startedAt?: number): Promise<SpanRef | null | undefined>;
}
