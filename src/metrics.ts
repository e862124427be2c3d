// Every Prometheus metric the bridge exposes is defined here, and only here (the README table is checked against
// METRIC_NAMES by a test). A private Registry per bridge instance, so tests and embedders never share global state.
//
// Owns: names, help, label sets, buckets, bounded label values, and rendering (OpenMetrics with exemplars when the
// scraper asks for it, Prometheus text 0.0.4 otherwise). Must not: know about events, spans or HTTP.

import { setImmediate as yieldToLoop } from 'node:timers/promises';
import client, { Counter, Gauge, Histogram, Registry, type RegistryContentType } from 'prom-client';
import { EVENT_KINDS, FINAL_STATUSES, type FinalStatus } from './events.js';
import { FAST_PATHS, type FastPath, type FastPaths } from './fast-paths.js';
import { DEFAULT_DURATION_BUCKETS, DEFAULT_QUEUE_WAIT_BUCKETS, DEFAULT_SUSPENDED_BUCKETS } from './metric-buckets.js';
import { counterLines, familyHeader, histogramLines } from './exposition.js';
import {
  type HistogramSeriesState,
  type PendingExemplar,
  countPromFallback,
  counterAdd,
  histogramUpperBounds,
  counterSeries,
  histogramSeries,
  histogramWrite,
  promFastPathActive,
  promFastPathStatus,
} from './prom-fast.js';
import type { OpenCount, OpenTask } from './tracker.js';

export const EVENT_RESULTS = ['applied', 'duplicate', 'out_of_order', 'invalid'] as const;
export type EventResult = (typeof EVENT_RESULTS)[number];
export type EventLabel = (typeof EVENT_KINDS)[number] | 'unknown';

/** Every metric family name this module defines (bridge-specific; process_/nodejs_ defaults come from prom-client). */
export const METRIC_NAMES = [
  'mastra_background_task_started_total',
  'mastra_background_task_finished_total',
  'mastra_background_task_duration_seconds',
  'mastra_background_task_queue_wait_seconds',
  'mastra_background_task_suspended_seconds',
  'mastra_background_tasks',
  'mastra_background_task_output_chunks_total',
  'mastra_background_task_oldest_age_seconds',
  'mastra_background_tasks_overdue',
  'mastra_task_bridge_source_up',
  'mastra_task_bridge_source_reconnects_total',
  'mastra_task_bridge_events_total',
  'mastra_task_bridge_reconciled_total',
  'mastra_task_bridge_reconcile_failures_total',
  'mastra_task_bridge_last_event_timestamp_seconds',
  'mastra_task_bridge_enrichment_failures_total',
  'mastra_task_bridge_label_overflow_total',
  'mastra_task_bridge_evicted_tasks_total',
  'mastra_task_bridge_spans_total',
  'mastra_task_bridge_sse_clients',
  'mastra_task_bridge_sse_dropped_clients_total',
  'mastra_task_bridge_build_info',
  'mastra_task_bridge_api_requests_total',
  'mastra_task_bridge_api_rate_limited_total',
  'mastra_task_bridge_api_cache_total',
  'mastra_task_bridge_fast_path_info',
  'mastra_task_bridge_fast_path_fallbacks_total',
  'mastra_task_bridge_future_timestamps_total',
  'mastra_task_bridge_auth_failures_total',
] as const;

/** Why an `/api/events` client was dropped or refused: it did not read (`slow`), the client cap was reached, or its
 * address passed the connect limit. */
export const SSE_DROP_REASONS = ['slow', 'max_clients', 'rate_limited'] as const;
export type SseDropReason = (typeof SSE_DROP_REASONS)[number];
/** Routes of the task API, the only values of its `route` label (the matched pattern, never the raw URL). */
export const API_ROUTES = ['/api/tasks', '/api/tasks/:id'] as const;

/** Bounded reasons a source reports for a stream ending (anything else is counted as `error`). */
export const RECONNECT_REASONS: ReadonlySet<string> = new Set([
  'eof', 'refused', 'reset', 'timeout', 'dns', 'aborted', 'error', 'http_4xx', 'http_5xx', 'unauthorized', 'not_event_stream', 'redirect',
]);

/** Why a task lookup failed: the first three, or an answer refused unread (RefusedAnswer in sources/types.ts). */
export const ENRICHMENT_FAILURE_REASONS = ['error', 'not_found', 'overloaded', 'too_large', 'redirect', 'wrong_id'] as const;
export type EnrichmentFailureReason = (typeof ENRICHMENT_FAILURE_REASONS)[number];

export const OVERFLOW_LABEL_VALUE = '_other';
/** Values of the overflow counter's `label`: a label past its distinct values, or a pair past the pair cap. */
export const OVERFLOW_LABELS = ['agent_id', 'tool_name', 'series'] as const;
/**
 * (agent_id, tool_name) pairs kept before new ones fold into `_other`. At 1,000 pairs a scrape is about 110,000 lines
 * (the duration histogram alone 72,000): see the README's Performance section for its render time.
 */
export const DEFAULT_MAX_SERIES = 1000;
const MAX_LABEL_VALUE_LENGTH = 128;

export interface MetricsOptions {
  version: string;
  durationBuckets?: number[];
  queueWaitBuckets?: number[];
  suspendedBuckets?: number[];
  /** Distinct values allowed per label (agent_id, tool_name) before new ones fold into `_other`. */
  maxLabelValues?: number;
  /** Distinct (agent_id, tool_name) pairs before new pairs fold into `_other` (see pair()). */
  maxSeries?: number;
  /** process_* and nodejs_* collectors. */
  defaultMetrics?: boolean;
  /** Open tasks by agent, tool and phase, read at scrape time. */
  openTasks?: () => Iterable<OpenCount>;
  /** Every open task, scanned at scrape time for ages and overdue counts. */
  scanOpenTasks?: () => Iterable<OpenTask>;
  now?: () => number;
  /** Tasks Mastra holds as pending (only known from storage; set by reconciliation). */
  pendingTasks?: () => Iterable<{ agentId: string; toolName: string; count: number }>;
  /** Clients connected to `/api/events`, read at scrape time. */
  sseClients?: () => number;
  /** The fast-path register (fast-paths.ts), read at scrape time. */
  fastPaths?: FastPaths;
}

export interface Exemplar {
  traceId: string;
  spanId: string;
}

type Labels = { agent_id: string; tool_name: string };
type StatusLabels = Labels & { status: FinalStatus };

/** One bounded (agent_id, tool_name) series pair: shared label objects, and counts not yet handed to prom-client. */
interface Pair {
  labels: Labels;
  byStatus: Record<FinalStatus, FinishedSeries>;
  started: number;
  output: number;
}

type ExemplarLabels = Record<string, string>;
/** A finished series as taskFinished() returns it, for exemplarFollows(). */
export type FinishedSeriesRef = object;

/**
 * One (agent_id, tool_name, status) series of the finished counter and the duration histogram, kept here and handed
 * to prom-client in their collect() (see flushFinished): what prom-client's inc()/observe() with exemplars would have
 * stored, without their per-call label hashing, validation, closures and exemplar objects (src/prom-fast.ts).
 */
interface FinishedSeries extends HistogramSeriesState {
  labels: StatusLabels;
  /** Counter increments not yet handed over, and the exemplar of the last one (an empty set when it had none). */
  finished: number;
  exemplar: PendingExemplar | undefined;
  dirty: boolean;
}

const EVENT_LABELS: readonly EventLabel[] = [...EVENT_KINDS, 'unknown'];

/** Bounds a label's distinct values; the rest fold into `_other`, counted per label. */
class LabelBound {
  private readonly seen = new Set<string>();
  constructor(
    private readonly label: string,
    private readonly max: number,
    private readonly overflow: Counter<'label'>,
  ) {}

  value(raw: string): string {
    const v = raw.length > MAX_LABEL_VALUE_LENGTH ? raw.slice(0, MAX_LABEL_VALUE_LENGTH) : raw;
    if (this.seen.has(v)) return v;
    if (this.seen.size < this.max) {
      this.seen.add(v);
      return v;
    }
    this.overflow.inc({ label: this.label });
    return OVERFLOW_LABEL_VALUE;
  }

  /** Same as value() but never admits or counts: for scrape-time reads. */
  peek(raw: string): string {
    const v = raw.length > MAX_LABEL_VALUE_LENGTH ? raw.slice(0, MAX_LABEL_VALUE_LENGTH) : raw;
    return this.seen.has(v) ? v : OVERFLOW_LABEL_VALUE;
  }
}

export class BridgeMetrics {
  readonly registry: Registry<RegistryContentType>;
  private readonly started: Counter<'agent_id' | 'tool_name'>;
  private readonly finished: Counter<'agent_id' | 'tool_name' | 'status'>;
  private readonly duration: Histogram<'agent_id' | 'tool_name' | 'status'>;
  private readonly queueWait: Histogram<'agent_id' | 'tool_name'>;
  private readonly suspended: Histogram<'agent_id' | 'tool_name'>;
  private readonly outputChunks: Counter<'agent_id' | 'tool_name'>;
  private readonly sourceUpGauge: Gauge;
  private readonly reconnects: Counter<'source' | 'reason'>;
  private readonly events: Counter<'event' | 'result'>;
  private readonly lastEvent: Gauge;
  private readonly reconciledCounter: Counter<'status'>;
  private readonly reconcileFailures: Counter;
  private readonly enrichmentFailures: Counter<'reason'>;
  private readonly labelOverflow: Counter<'label'>;
  private readonly evicted: Counter;
  private readonly spans: Counter<'result'>;
  private readonly sseDropped: Counter<'reason'>;
  private readonly apiRequests: Counter<'route' | 'code'>;
  private readonly apiRateLimited: Counter;
  private readonly apiCache: Counter<'result'>;
  private readonly futureTimestamps: Counter<'where'>;
  private readonly authFailures: Counter<'result'>;
  private readonly agents: LabelBound;
  private readonly tools: LabelBound;
  private readonly knownPairs = new Set<string>();
  // Hot-path caches. prom-client hashes and validates the labels of every inc(); the per-event counters are instead
  // counted here and handed over in their collect() (every read — scrape, get() — runs it first), so what a scrape
  // sees is exact. Raw agent → raw tool → pair, only for values both bounds admitted (admitted values stay admitted).
  private readonly pairsByLabel = new Map<string, Pair>();
  private readonly pairsByRaw = new Map<string, Map<string, Pair>>();
  private readonly eventCounts = new Array<number>(EVENT_LABELS.length * EVENT_RESULTS.length).fill(0);
  private lastEventAt: number | undefined;
  private readonly counterNames = new Map<object, string>();
  private readonly durationBounds: number[];
  private readonly dirtySeries: FinishedSeries[] = [];
  private renderQueue: Promise<unknown> = Promise.resolve();
  private readonly fast: boolean;
  /** Histogram families rendered by src/exposition.ts a slice at a time (when the fast path is on). */
  private readonly slicedHistograms = new Map<unknown, { help: string; bounds: number[]; series: () => HistogramSeriesState[] }>();
  /** Counter families of one series per pair (or per pair and status), rendered the same way. */
  private readonly slicedCounters = new Set<unknown>();
  private readonly maxSeries: number;

  constructor(opts: MetricsOptions) {
    // Exemplars need an OpenMetrics registry at construction; render() switches the format per scrape.
    const RegistryWithType = Registry as unknown as new (contentType: RegistryContentType) => Registry<RegistryContentType>;
    const registry = new RegistryWithType(Registry.OPENMETRICS_CONTENT_TYPE);
    this.registry = registry;
    // prom-client types `registers` as text-format registries; ours switches format per scrape (see render()).
    const registers = [registry as unknown as Registry];

    this.labelOverflow = new Counter({
      name: 'mastra_task_bridge_label_overflow_total',
      help: 'Label values folded into "_other" because a label reached its limit of distinct values.',
      labelNames: ['label'],
      registers,
    });
    const max = opts.maxLabelValues ?? 200;
    this.maxSeries = opts.maxSeries ?? DEFAULT_MAX_SERIES;
    this.agents = new LabelBound('agent_id', max, this.labelOverflow);
    this.tools = new LabelBound('tool_name', max, this.labelOverflow);
    for (const label of OVERFLOW_LABELS) this.labelOverflow.inc({ label }, 0);

    const pairs = this.pairsByLabel;
    const flushFinished = (): void => this.flushFinished();
    this.started = new Counter({
      name: 'mastra_background_task_started_total',
      help: 'Background tasks that started running.',
      labelNames: ['agent_id', 'tool_name'],
      registers,
      collect() {
        for (const p of pairs.values()) {
          if (p.started === 0) continue;
          this.inc(p.labels, p.started);
          p.started = 0;
        }
      },
    });
    this.finished = new Counter({
      name: 'mastra_background_task_finished_total',
      help: 'Background tasks that finished, by final status (completed, failed, timed_out, cancelled).',
      labelNames: ['agent_id', 'tool_name', 'status'],
      enableExemplars: true,
      registers,
      collect: flushFinished,
    });
    this.duration = new Histogram({
      name: 'mastra_background_task_duration_seconds',
      help: DURATION_HELP,
      labelNames: ['agent_id', 'tool_name', 'status'],
      buckets: opts.durationBuckets ?? DEFAULT_DURATION_BUCKETS,
      enableExemplars: true,
      registers,
      collect: flushFinished,
    });
    // The same upper bounds, in the same order, as the histogram's own bucket search (flushFinished writes by index).
    this.durationBounds = histogramUpperBounds(this.duration, opts.durationBuckets ?? DEFAULT_DURATION_BUCKETS);
    this.fast = promFastPathActive();
    const prom = promFastPathStatus();
    opts.fastPaths?.report('prom_client_series', prom.active, prom.reason);
    this.queueWait = new Histogram({
      name: 'mastra_background_task_queue_wait_seconds',
      help: 'Time a background task waited between creation and its first start.',
      labelNames: ['agent_id', 'tool_name'],
      buckets: opts.queueWaitBuckets ?? DEFAULT_QUEUE_WAIT_BUCKETS,
      registers,
    });
    this.suspended = new Histogram({
      name: 'mastra_background_task_suspended_seconds',
      help: 'Time a background task spent suspended before it was resumed.',
      labelNames: ['agent_id', 'tool_name'],
      buckets: opts.suspendedBuckets ?? DEFAULT_SUSPENDED_BUCKETS,
      registers,
    });
    const openTasks = opts.openTasks;
    const pendingTasks = opts.pendingTasks;
    const peek = (agentId: string, toolName: string): Labels => this.peekPair(agentId, toolName);
    const knownPairs = this.knownPairs;
    new Gauge({
      name: 'mastra_background_tasks',
      help: 'Background tasks now running, suspended or pending, computed at scrape time.',
      labelNames: ['agent_id', 'tool_name', 'status'],
      registers,
      collect() {
        this.reset();
        // Every known pair reports 0 rather than disappearing, so alerts on absent series do not fire spuriously.
        for (const pair of knownPairs) {
          const [agent_id, tool_name] = pair.split('\u0000') as [string, string];
          for (const status of ['running', 'suspended']) this.set({ agent_id, tool_name, status }, 0);
        }
        for (const c of openTasks?.() ?? []) {
          if (c.count === 0) continue;
          this.inc({ ...peek(c.agentId, c.toolName), status: c.phase }, c.count);
        }
        if (pendingTasks) {
          for (const c of pendingTasks()) {
            this.inc({ ...peek(c.agentId, c.toolName), status: 'pending' }, c.count);
          }
        }
      },
    });
    const scan = opts.scanOpenTasks;
    const now = opts.now ?? Date.now;
    // Both gauges walk the open tasks once per scrape (about 1 ms per 20k tasks): exact, and no timers.
    const oldest = new Gauge({
      name: 'mastra_background_task_oldest_age_seconds',
      help: 'Age of the oldest open task: running since its last (re)start, suspended since it suspended.',
      labelNames: ['agent_id', 'tool_name', 'status'],
      registers,
      collect() {
        this.reset();
        if (!scan) return;
        const t = now();
        const max = new Map<string, { agent_id: string; tool_name: string; status: string; age: number }>();
        for (const task of scan()) {
          if (task.phase === 'pending') continue; // waiting in Mastra's queue, not running: its age is not a run's
          const since = task.phase === 'suspended' ? task.suspendedAt : (task.lastResumedAt ?? task.startedAt ?? task.info?.startedAt ?? task.firstSeenAt);
          const age = Math.max(0, (t - (since ?? task.firstSeenAt)) / 1000);
          const { agent_id, tool_name } = peek(task.agentId, task.toolName);
          const key = `${agent_id}\u0000${tool_name}\u0000${task.phase}`;
          const cur = max.get(key);
          if (!cur || age > cur.age) max.set(key, { agent_id, tool_name, status: task.phase, age });
        }
        for (const v of max.values()) this.set({ agent_id: v.agent_id, tool_name: v.tool_name, status: v.status }, v.age);
      },
    });
    void oldest;
    new Gauge({
      name: 'mastra_background_tasks_overdue',
      help: 'Running tasks whose current run has lasted longer than their timeout (timeoutMs from Mastra): stuck.',
      labelNames: ['agent_id', 'tool_name'],
      registers,
      collect() {
        this.reset();
        for (const pair of knownPairs) {
          const [agent_id, tool_name] = pair.split('\u0000') as [string, string];
          this.set({ agent_id, tool_name }, 0);
        }
        if (!scan) return;
        const t = now();
        for (const task of scan()) {
          const timeout = task.info?.timeoutMs;
          if (task.phase !== 'running' || timeout === undefined) continue;
          const since = task.lastResumedAt ?? task.startedAt ?? task.info?.startedAt ?? task.firstSeenAt;
          if (t - since > timeout) this.inc(peek(task.agentId, task.toolName));
        }
      },
    });
    this.outputChunks = new Counter({
      name: 'mastra_background_task_output_chunks_total',
      help: 'Output chunks background tasks streamed while running.',
      labelNames: ['agent_id', 'tool_name'],
      registers,
      collect() {
        for (const p of pairs.values()) {
          if (p.output === 0) continue;
          this.inc(p.labels, p.output);
          p.output = 0;
        }
      },
    });
    // One series per Mastra server followed (`host:port`, or `in-process`): one dead replica shows, and pages, as itself.
    this.sourceUpGauge = new Gauge({
      name: 'mastra_task_bridge_source_up',
      help: '1 when the bridge is connected to this Mastra server\'s background-task stream, else 0 (one series per server followed).',
      labelNames: ['source'],
      registers,
    });
    this.reconnects = new Counter({
      name: 'mastra_task_bridge_source_reconnects_total',
      help: 'Times a Mastra server\'s stream ended or a connection attempt failed, by server and reason (refused, reset, eof, timeout, http_5xx, unauthorized, ...).',
      labelNames: ['source', 'reason'],
      registers,
    });
    const eventCounts = this.eventCounts;
    const eventLabels = EVENT_LABELS.flatMap((event) => EVENT_RESULTS.map((result) => ({ event, result })));
    this.events = new Counter({
      name: 'mastra_task_bridge_events_total',
      help: 'Upstream events by type and what the bridge did with them (applied, duplicate, out_of_order, invalid).',
      labelNames: ['event', 'result'],
      registers,
      collect() {
        for (let i = 0; i < eventCounts.length; i++) {
          const n = eventCounts[i] as number;
          if (n === 0) continue;
          this.inc(eventLabels[i] as { event: string; result: string }, n);
          eventCounts[i] = 0;
        }
      },
    });
    for (const event of [...EVENT_KINDS, 'unknown'])
      for (const result of EVENT_RESULTS) this.events.inc({ event, result }, 0);
    const lastEventAt = (): number | undefined => this.lastEventAt;
    this.lastEvent = new Gauge({
      name: 'mastra_task_bridge_last_event_timestamp_seconds',
      help: 'Unix time the bridge last received an upstream event (0 before the first).',
      registers,
      collect() {
        const at = lastEventAt();
        if (at !== undefined) this.set(at);
      },
    });
    this.lastEvent.set(0);
    this.reconciledCounter = new Counter({
      name: 'mastra_task_bridge_reconciled_total',
      help: 'Task transitions found in Mastra storage rather than the stream (missed while disconnected, or never published), by resulting status.',
      labelNames: ['status'],
      registers,
    });
    for (const status of [...FINAL_STATUSES, 'running', 'suspended']) this.reconciledCounter.inc({ status }, 0);
    this.reconcileFailures = new Counter({
      name: 'mastra_task_bridge_reconcile_failures_total',
      help: 'Reconciliation steps that failed (Mastra unreachable or answering errors); retried on the next pass.',
      registers,
    });
    this.enrichmentFailures = new Counter({
      name: 'mastra_task_bridge_enrichment_failures_total',
      help: 'Task lookups (getTask) that failed; the span is exported without the missing fields.',
      labelNames: ['reason'],
      registers,
    });
    for (const reason of ENRICHMENT_FAILURE_REASONS) this.enrichmentFailures.inc({ reason }, 0);
    this.futureTimestamps = new Counter({
      name: 'mastra_task_bridge_future_timestamps_total',
      help: 'completedAt values further ahead of the bridge clock than the tolerance, clamped before they could move the checkpoint watermark or the reconcile scan cursor into the future.',
      labelNames: ['where'],
      registers,
    });
    for (const where of ['checkpoint', 'reconcile']) this.futureTimestamps.inc({ where }, 0);
    this.evicted = new Counter({
      name: 'mastra_task_bridge_evicted_tasks_total',
      help: 'Open tasks dropped from memory because the tracked-task cap was reached.',
      registers,
    });
    this.spans = new Counter({
      name: 'mastra_task_bridge_spans_total',
      help: 'Task spans by export outcome (exported; failed; queue_full: dropped before export, the batch queue full; dropped: not sampled or exporter disabled).',
      labelNames: ['result'],
      registers,
    });
    for (const result of ['exported', 'failed', 'queue_full', 'dropped']) this.spans.inc({ result }, 0);
    const sseClients = opts.sseClients;
    new Gauge({
      name: 'mastra_task_bridge_sse_clients',
      help: 'Clients connected to the /api/events stream, computed at scrape time.',
      registers,
      collect() {
        this.set(sseClients?.() ?? 0);
      },
    });
    this.sseDropped = new Counter({
      name: 'mastra_task_bridge_sse_dropped_clients_total',
      help: 'Clients of /api/events dropped because they did not read (slow: their buffer passed its cap, or their opening did not drain in time), or refused at the client cap (max_clients) or the per-address connect limit (rate_limited).',
      labelNames: ['reason'],
      registers,
    });
    for (const reason of SSE_DROP_REASONS) this.sseDropped.inc({ reason }, 0);
    // Task API: `route` is the matched pattern and `code` an HTTP status, both bounded.
    this.apiRequests = new Counter({
      name: 'mastra_task_bridge_api_requests_total',
      help: 'Task API requests by route pattern and HTTP status code.',
      labelNames: ['route', 'code'],
      registers,
    });
    for (const route of API_ROUTES) this.apiRequests.inc({ route, code: '200' }, 0);
    this.apiRateLimited = new Counter({
      name: 'mastra_task_bridge_api_rate_limited_total',
      help: 'Task API requests refused with 429 because their client exceeded the rate limit.',
      registers,
    });
    this.apiCache = new Counter({
      name: 'mastra_task_bridge_api_cache_total',
      help: 'Task API lookups by cache result: hit (answered from memory or joined an identical lookup in flight) or miss (asked Mastra).',
      labelNames: ['result'],
      registers,
    });
    for (const result of ['hit', 'miss']) this.apiCache.inc({ result }, 0);
    this.authFailures = new Counter({
      name: 'mastra_task_bridge_auth_failures_total',
      help: 'Requests refused for a missing or wrong bearer token (rejected: 401), or refused without a check after too many from one address (rate_limited: 429).',
      labelNames: ['result'],
      registers,
    });
    for (const result of ['rejected', 'rate_limited']) this.authFailures.inc({ result }, 0);
    new Gauge({
      name: 'mastra_task_bridge_build_info',
      help: 'Build information; the value is always 1.',
      labelNames: ['version', 'nodejs_version'],
      registers,
    }).set({ version: opts.version, nodejs_version: process.version }, 1);
    // Library bypasses (fast-paths.ts): which are in use, and how often a per-call one handed a call back to the
    // library. A path turning inactive after an upgrade is the signal to read docs/upgrading.md.
    const fastPaths = opts.fastPaths;
    new Gauge({
      name: 'mastra_task_bridge_fast_path_info',
      help: 'Fast paths that reach into a pinned library\'s private parts, by whether each is active (1 per reported path; active="false": the library\'s public path is used).',
      labelNames: ['path', 'active'],
      registers,
      collect() {
        this.reset();
        for (const s of fastPaths?.list() ?? []) this.set({ path: s.path, active: String(s.active) }, 1);
      },
    });
    const fallbacksSeen = new Map<FastPath, number>();
    new Counter({
      name: 'mastra_task_bridge_fast_path_fallbacks_total',
      help: 'Calls a fast path handed back to the library (e.g. OTLP requests the bridge\'s encoder did not expect, encoded by the SDK instead).',
      labelNames: ['path'],
      registers,
      collect() {
        for (const path of Object.keys(FAST_PATHS) as FastPath[]) {
          const n = fastPaths?.fallbacks(path) ?? 0;
          this.inc({ path }, n - (fallbacksSeen.get(path) ?? 0));
          fallbacksSeen.set(path, n);
        }
      },
    });

    const pairsInOrder = (): FinishedSeries[] => [...pairs.values()].flatMap((p) => FINAL_STATUSES.map((st) => p.byStatus[st]));
    this.slicedHistograms.set(this.duration, { help: DURATION_HELP, bounds: this.durationBounds, series: pairsInOrder });
    for (const c of [this.started, this.finished, this.outputChunks]) this.slicedCounters.add(c);
    for (const h of [this.queueWait, this.suspended]) {
      const help = (h as unknown as { help: string }).help;
      this.slicedHistograms.set(h, { help, bounds: histogramUpperBounds(h, []), series: () => histogramSeries(h) ?? [] });
    }

    if (opts.defaultMetrics !== false) client.collectDefaultMetrics({ register: registry as unknown as Registry });
  }

  /**
   * The series pair of (agent, tool): both values bounded per label (maxLabelValues), and the pairs themselves bounded
   * (maxSeries): 200 agents × 200 tools would otherwise be 40,000 pairs, 160,000 finished series and 2.9 million
   * histogram lines. Past the pair cap a new pair folds into (agent, `_other`) when that pair exists, else into
   * (`_other`, `_other`), so there are never more than maxSeries + 1 pairs; each fold is counted (label="series").
   */
  private pair(agentId: string, toolName: string): Pair {
    const hit = this.pairsByRaw.get(agentId)?.get(toolName);
    if (hit !== undefined) return hit;
    let agent_id = this.agents.value(agentId);
    let tool_name = this.tools.value(toolName);
    let key = `${agent_id}\u0000${tool_name}`;
    let folded = agent_id === OVERFLOW_LABEL_VALUE || tool_name === OVERFLOW_LABEL_VALUE;
    if (!this.knownPairs.has(key) && this.knownPairs.size >= this.maxSeries) {
      this.labelOverflow.inc({ label: 'series' });
      folded = true;
      ({ agent_id, tool_name } = this.foldPair(agent_id));
      key = `${agent_id}\u0000${tool_name}`;
    }
    let p = this.pairsByLabel.get(key);
    if (p === undefined) {
      const labels: Labels = { agent_id, tool_name };
      const byStatus = {} as Record<FinalStatus, FinishedSeries>;
      const nb = this.durationBounds.length;
      for (const status of FINAL_STATUSES) {
        byStatus[status] = {
          labels: { agent_id, tool_name, status },
          finished: 0,
          exemplar: undefined,
          count: 0,
          sum: 0,
          buckets: new Array<number>(nb).fill(0),
          bucketExemplars: new Array<PendingExemplar | undefined>(nb + 1).fill(undefined),
          dirty: false,
          entry: undefined,
          entryMap: undefined,
        };
      }
      p = { labels, byStatus, started: 0, output: 0 };
      this.pairsByLabel.set(key, p);
    }
    if (!this.knownPairs.has(key)) {
      // Known series start at 0 so rate() and absent-based alerts see them before the first failure.
      this.knownPairs.add(key);
      this.started.inc(p.labels, 0);
      this.outputChunks.inc(p.labels, 0);
      for (const status of FINAL_STATUSES) this.finished.inc({ labels: { ...p.labels, status }, value: 0 });
    }
    // Cache by raw values only when nothing folded into `_other` (folding is counted per occurrence).
    if (!folded) {
      let tools = this.pairsByRaw.get(agentId);
      if (tools === undefined) this.pairsByRaw.set(agentId, (tools = new Map()));
      tools.set(toolName, p);
    }
    return p;
  }

  /** Where a pair past the pair cap goes: (agent, `_other`) when that pair exists, else (`_other`, `_other`). */
  private foldPair(agent_id: string): Labels {
    return this.knownPairs.has(`${agent_id}\u0000${OVERFLOW_LABEL_VALUE}`)
      ? { agent_id, tool_name: OVERFLOW_LABEL_VALUE }
      : { agent_id: OVERFLOW_LABEL_VALUE, tool_name: OVERFLOW_LABEL_VALUE };
  }

  /** The pair's labels as pair() would give them, without admitting or counting anything: for scrape-time gauges. */
  private peekPair(agentId: string, toolName: string): Labels {
    const hit = this.pairsByRaw.get(agentId)?.get(toolName);
    if (hit !== undefined) return hit.labels;
    const agent_id = this.agents.peek(agentId);
    const tool_name = this.tools.peek(toolName);
    const p = this.pairsByLabel.get(`${agent_id}\u0000${tool_name}`);
    return p !== undefined ? p.labels : this.foldPair(agent_id);
  }

  taskStarted(agentId: string, toolName: string): void {
    this.pair(agentId, toolName).started++;
  }

  /** Returns the series counted, for exemplarFollows (opaque to callers). */
  taskFinished(agentId: string, toolName: string, status: FinalStatus, durationSeconds: number | undefined, exemplar?: Exemplar): FinishedSeriesRef {
    const series = this.pair(agentId, toolName).byStatus[status];
    // What prom-client's inc()/observe() with exemplars store, in the same order (see flushFinished). A task without
    // an exported span leaves the last exemplar alone: an empty label set would replace the last trace link and
    // render `# {}` (what prom-client's counter does with inc({ exemplarLabels: {} })).
    const timestamp = Date.now() / 1000;
    const labelSet: ExemplarLabels | undefined = exemplar ? { trace_id: exemplar.traceId, span_id: exemplar.spanId } : undefined;
    if (!this.fast) {
      // prom-client's internals are not as pinned (src/prom-fast.ts): its public API, slower but always right.
      countPromFallback();
      this.finished.inc(labelSet ? { labels: series.labels, value: 1, exemplarLabels: labelSet } : { labels: series.labels, value: 1 });
      if (durationSeconds === undefined) return series;
      this.duration.observe(labelSet ? { labels: series.labels, value: durationSeconds, exemplarLabels: labelSet } : { labels: series.labels, value: durationSeconds });
      return series;
    }
    if (!series.dirty) {
      series.dirty = true;
      this.dirtySeries.push(series);
    }
    series.finished++;
    if (labelSet) series.exemplar = { labelSet, value: 1, timestamp };
    if (durationSeconds === undefined) return series;
    if (!Number.isFinite(durationSeconds)) throw new TypeError(`Value is not a valid number: ${durationSeconds}`);
    series.sum += durationSeconds;
    series.count += 1;
    const bounds = this.durationBounds;
    let i = 0;
    while (i < bounds.length && durationSeconds > (bounds[i] as number)) i++;
    if (i < bounds.length) series.buckets[i] = (series.buckets[i] as number) + 1;
    if (labelSet) series.bucketExemplars[i] = { labelSet, value: durationSeconds, timestamp };
    return series;
  }

  /**
   * The exemplar of a task counted earlier without one (its span was written later, once placed): it becomes the
   * series' latest exemplar, on the counter and on the duration's bucket, as if it had come with the count.
   */
  exemplarFollows(counted: FinishedSeriesRef, durationSeconds: number | undefined, exemplar: Exemplar): void {
    // prom-client's public API cannot attach an exemplar without counting again: on the fallback it does not follow.
    if (!this.fast) return;
    const series = counted as FinishedSeries;
    const timestamp = Date.now() / 1000;
    const labelSet: ExemplarLabels = { trace_id: exemplar.traceId, span_id: exemplar.spanId };
    if (!series.dirty) {
      series.dirty = true;
      this.dirtySeries.push(series);
    }
    series.exemplar = { labelSet, value: 1, timestamp };
    if (durationSeconds === undefined || !Number.isFinite(durationSeconds)) return;
    const bounds = this.durationBounds;
    let i = 0;
    while (i < bounds.length && durationSeconds > (bounds[i] as number)) i++;
    series.bucketExemplars[i] = { labelSet, value: durationSeconds, timestamp };
  }

  /**
   * Hand the finished counts and durations to prom-client (every read — scrape, get() — runs collect() first, so what
   * it sees is exact). The writes into prom-client's internals are in src/prom-fast.ts; test/metrics.test.ts renders
   * both against prom-client's own inc()/observe().
   */
  private flushFinished(limit = Number.POSITIVE_INFINITY): void {
    const n = Math.min(limit, this.dirtySeries.length);
    for (let i = 0; i < n; i++) {
      const s = this.dirtySeries[i] as FinishedSeries;
      s.dirty = false;
      if (s.finished > 0 || s.exemplar) {
        counterAdd(this.finished, s.labels, s.finished, s.exemplar);
        s.finished = 0;
        s.exemplar = undefined;
      }
      if (s.count > 0) histogramWrite(this.duration, s);
    }
    if (n === this.dirtySeries.length) this.dirtySeries.length = 0;
    else this.dirtySeries.splice(0, n);
  }

  queueWaited(agentId: string, toolName: string, seconds: number): void {
    this.queueWait.observe(this.pair(agentId, toolName).labels, seconds);
  }

  resumedAfter(agentId: string, toolName: string, seconds: number): void {
    this.suspended.observe(this.pair(agentId, toolName).labels, seconds);
  }

  outputChunk(agentId: string, toolName: string): void {
    this.pair(agentId, toolName).output++;
  }

  event(event: EventLabel, result: EventResult, atSeconds?: number): void {
    const e = EVENT_LABELS.indexOf(event);
    const r = EVENT_RESULTS.indexOf(result);
    if (e < 0 || r < 0) this.events.inc({ event, result }); // not a declared label value: let prom-client judge it
    else {
      const i = e * EVENT_RESULTS.length + r;
      this.eventCounts[i] = (this.eventCounts[i] as number) + 1;
    }
    if (atSeconds !== undefined) this.lastEventAt = atSeconds;
  }

  sourceUp(source: string, up: boolean): void {
    this.sourceUpGauge.set({ source }, up ? 1 : 0);
  }

  /** A server no longer followed (discovery lost it): its series go. */
  forgetSource(source: string): void {
    this.sourceUpGauge.remove({ source });
    for (const reason of RECONNECT_REASONS) this.reconnects.remove({ source, reason });
  }

  reconciled(status: string): void {
    this.reconciledCounter.inc({ status });
  }

  reconcileFailed(): void {
    this.reconcileFailures.inc();
  }

  sourceReconnect(source: string, reason: string): void {
    this.reconnects.inc({ source, reason: RECONNECT_REASONS.has(reason) ? reason : 'error' });
  }

  enrichmentFailed(reason: EnrichmentFailureReason): void {
    this.enrichmentFailures.inc({ reason });
  }

  futureTimestamp(where: 'checkpoint' | 'reconcile', count = 1): void {
    this.futureTimestamps.inc({ where }, count);
  }

  taskEvicted(): void {
    this.evicted.inc();
  }

  spanOutcome(result: 'exported' | 'failed' | 'queue_full' | 'dropped', count = 1): void {
    this.spans.inc({ result }, count);
  }

  sseClientDropped(reason: SseDropReason): void {
    this.sseDropped.inc({ reason });
  }

  apiRequest(route: string, code: number): void {
    this.apiRequests.inc({ route: (API_ROUTES as readonly string[]).includes(route) ? route : '_other', code: String(code) });
  }

  apiRateLimitedRequest(): void {
    this.apiRateLimited.inc();
  }

  authFailed(result: 'rejected' | 'rate_limited'): void {
    this.authFailures.inc({ result });
  }

  apiCacheLookup(result: 'hit' | 'miss'): void {
    this.apiCache.inc({ result });
  }

  /**
   * Render for a scrape. OpenMetrics (with exemplars) when the Accept header asks for it, as Prometheus does with
   * exemplar storage on; text 0.0.4 otherwise. One family at a time, yielding to the event loop between families once
   * a slice of work has taken `RENDER_SLICE_MS`, so /healthz and the event stream are served during a large scrape
   * (registry.metrics() renders every family in one go: 1,000 pairs blocked the loop for over a second). The body is
   * what registry.metrics() gives. prom-client renames counters in place for OpenMetrics (it strips `_total`), so
   * renders are serialised and each sets the names it needs, then restores the canonical ones.
   */
  render(accept: string | undefined): Promise<{ contentType: string; body: string }> {
    const openMetrics = wantsOpenMetrics(accept);
    const next = this.renderQueue.then(async () => {
      const contentType = openMetrics ? Registry.OPENMETRICS_CONTENT_TYPE : Registry.PROMETHEUS_CONTENT_TYPE;
      this.registry.setContentType(contentType);
      const metrics = this.registry.getMetricsAsArray() as unknown as { name: string; type: string }[];
      const parts: string[] = [];
      let slice = performance.now();
      // The finished hand-over of a burst of new series (4,000 at the cap) is itself work: a slice at a time too.
      while (this.dirtySeries.length > 0) {
        this.flushFinished(RENDER_SLICE_SERIES);
        if (performance.now() - slice > RENDER_SLICE_MS) {
          await yieldToLoop();
          slice = performance.now();
        }
      }
      try {
        for (const metric of metrics) {
          const canonical = this.counterNames.get(metric) ?? metric.name;
          this.counterNames.set(metric, canonical);
          metric.name = openMetrics && metric.type === 'counter' ? canonical.replace(/_total$/, '') : canonical;
          const sliced = this.fast ? this.slicedHistograms.get(metric) : undefined;
          if (sliced) {
            // The largest families, written a slice of series at a time (src/exposition.ts).
            const lines = [familyHeader(canonical, sliced.help, 'histogram')];
            const series = sliced.series();
            for (let i = 0; i < series.length; i += RENDER_SLICE_SERIES) {
              histogramLines(canonical, sliced.bounds, series.slice(i, i + RENDER_SLICE_SERIES), openMetrics, lines);
              if (performance.now() - slice > RENDER_SLICE_MS) {
                await yieldToLoop();
                slice = performance.now();
              }
            }
            parts.push(lines.join('\n'));
          } else if (this.fast && this.slicedCounters.has(metric)) {
            // Runs the counter's collect() first, as its get() would (hands pending counts over).
            (metric as unknown as { collect?: () => void }).collect?.call(metric);
            const lines = [familyHeader(metric.name, (metric as unknown as { help: string }).help, 'counter')];
            const series = counterSeries(metric as unknown as Counter<string>) ?? [];
            const sampleName = openMetrics ? `${metric.name}_total` : metric.name;
            for (let i = 0; i < series.length; i += RENDER_SLICE_SERIES * 4) {
              counterLines(sampleName, series.slice(i, i + RENDER_SLICE_SERIES * 4), openMetrics, lines);
              if (performance.now() - slice > RENDER_SLICE_MS) {
                await yieldToLoop();
                slice = performance.now();
              }
            }
            parts.push(lines.join('\n'));
          } else {
            parts.push(await this.registry.getSingleMetricAsString(canonical));
          }
          metric.name = canonical;
          if (performance.now() - slice > RENDER_SLICE_MS) {
            await yieldToLoop();
            slice = performance.now();
          }
        }
      } finally {
        for (const metric of metrics) metric.name = this.counterNames.get(metric) ?? metric.name;
      }
      return { contentType, body: openMetrics ? `${parts.join('\n')}\n# EOF\n` : `${parts.join('\n\n')}\n` };
    });
    this.renderQueue = next.catch(() => undefined);
    return next;
  }
}

const DURATION_HELP = 'Background task duration from first start to completion, by final status.';

/** Work between two yields of a scrape render. */
const RENDER_SLICE_MS = 10;
const RENDER_SLICE_SERIES = 256;

/** True when the Accept header accepts application/openmetrics-text with q > 0. */
export function wantsOpenMetrics(accept: string | undefined): boolean {
  if (!accept) return false;
  for (const part of accept.split(',')) {
    const [type, ...params] = part.trim().split(';');
    if (type?.trim().toLowerCase() !== 'application/openmetrics-text') continue;
    const q = params.map((p) => p.trim()).find((p) => p.startsWith('q='));
    if (q === undefined || Number(q.slice(2)) > 0) return true;
  }
  return false;
}
