// Bench helpers: realistic upstream events (as in-process chunks and as the SSE `data:` strings a remote Mastra
// server sends), a source that pushes them, and tracing whose exporter serialises each batch to OTLP protobuf and
// discards it. Nothing here does network I/O.

import { randomUUID } from 'node:crypto';
import { setImmediate as tick } from 'node:timers/promises';
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import { defaultResource, detectResources, envDetector, resourceFromAttributes } from '@opentelemetry/resources';
import { BatchSpanProcessor, type ReadableSpan, type SpanExporter } from '@opentelemetry/sdk-trace-base';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import { ATTR_SERVICE_NAME, ATTR_SERVICE_VERSION } from '@opentelemetry/semantic-conventions';
import { ConfigSchema } from '../src/config.js';
import type { TaskRecord } from '../src/events.js';
import { OtlpTraceSerializer } from '../src/otlp-encode.js';
import type { SourceSink, SpanRef, TaskPage, TaskQuery, TaskSource } from '../src/sources/types.js';
import { PresetIdGenerator, type Tracing } from '../src/telemetry.js';
import { VERSION } from '../src/version.js';

// ---------------------------------------------------------------------------------------------------------------
// Chunks

export interface Chunk {
  type: string;
  payload: Record<string, unknown>;
}

export const AGENTS = ['research-agent', 'billing-agent', 'ops-agent', 'support-agent'] as const;
export const TOOLS = ['research_topic', 'charge_card', 'provision_cluster', 'tail_logs', 'send_email', 'summarise_doc'] as const;

/** Deterministic PRNG (mulberry32) so every run gets the same mix. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function pick<T>(arr: readonly T[], r: number): T {
  return arr[Math.min(arr.length - 1, Math.floor(r * arr.length))] as T;
}

/** A flat (non-cons) string, as JSON.parse or a storage read would produce. */
export function flat(s: string): string {
  return Buffer.from(s, 'latin1').toString('latin1');
}

/** An OpenAI-style tool call id ("call_" + 24 alphanumerics), flat. */
export function toolCallId(): string {
  return flat(`call_${randomUUID().replace(/-/g, '').slice(0, 24)}`);
}

type Fate = 'completed' | 'failed' | 'timeout' | 'cancelled' | 'suspend';
// Terminal mix: 70 % completed, 12 % failed, 8 % timed out, 7 % cancelled, 3 % suspend → resume → completed.
const FATES: readonly [Fate, number][] = [
  ['completed', 0.7],
  ['failed', 0.12],
  ['timeout', 0.08],
  ['cancelled', 0.07],
  ['suspend', 0.03],
];

function fateOf(r: number): Fate {
  let acc = 0;
  for (const [f, w] of FATES) {
    acc += w;
    if (r < acc) return f;
  }
  return 'completed';
}

interface GenTask {
  ids: { taskId: string; toolName: string; toolCallId: string; agentId: string; runId: string };
  args: Record<string, unknown>;
  fate: Fate;
  startedAt: number;
  durationMs: number;
  step: number;
}

const STACK = [
  'PaymentDeclinedError: card declined: insufficient funds',
  '    at chargeCard (file:///app/src/tools/charge-card.ts:42:11)',
  '    at async Object.execute (file:///app/node_modules/@mastra/core/dist/tools/index.js:311:18)',
  '    at async runAttemptStep (file:///app/node_modules/@mastra/core/dist/background-tasks/index.js:902:20)',
].join('\n');

function chunkFor(t: GenTask, r: () => number): Chunk {
  const base = t.ids;
  const end = t.startedAt + t.durationMs;
  const step = t.step++;
  if (step === 0) return { type: 'background-task-running', payload: { ...base, startedAt: new Date(t.startedAt), args: t.args } };
  if (t.fate === 'suspend') {
    if (step === 1) {
      return {
        type: 'background-task-suspended',
        payload: { ...base, suspendPayload: { reason: 'approval required', amountCents: 1500 }, suspendedAt: new Date(t.startedAt + 40), args: t.args },
      };
    }
    if (step === 2) return { type: 'background-task-resumed', payload: { ...base, startedAt: new Date(end - 30), args: t.args } };
    return { type: 'background-task-completed', payload: { ...base, completedAt: new Date(end), result: { approved: true, approver: 'ops@example.com' } } };
  }
  if (step === 1 || step === 2) {
    return {
      type: 'background-task-output',
      payload: {
        ...base,
        payload: {
          type: 'tool-output',
          runId: base.runId,
          from: 'USER',
          payload: { output: { progress: step / 3, note: `processed ${Math.floor(r() * 500)} rows` }, toolCallId: base.toolCallId, toolName: base.toolName },
        },
      },
    };
  }
  const completedAt = new Date(end);
  switch (t.fate) {
    case 'completed':
      return { type: 'background-task-completed', payload: { ...base, completedAt, result: { ok: true, rows: 120, summary: 'Revenue grew 12 % quarter over quarter in EMEA.' } } };
    case 'failed':
      return { type: 'background-task-failed', payload: { ...base, completedAt, error: { message: 'card declined: insufficient funds', stack: STACK } } };
    case 'timeout':
      return { type: 'background-task-failed', payload: { ...base, completedAt, error: { message: 'Task timed out after 300000ms' } } };
    default:
      return { type: 'background-task-cancelled', payload: { ...base, completedAt } };
  }
}

export interface Generated {
  chunks: Chunk[];
  /** The same events as SSE `data:` strings, as a remote Mastra server sends them (dates as ISO strings). */
  frames: string[];
  tasks: number;
  /** What getTask would return for each task (for the enrichment-on variant), fresh strings like a storage read. */
  records: Map<string, TaskRecord>;
}

/**
 * `tasks` tasks of 4 events each (running, 2 outputs, terminal; 3 % running, suspended, resumed, completed), interleaved
 * as ~64 concurrent tasks would be; uuid task and run ids, runs of 1–3 tasks on one agent.
 */
export function generateChunks(tasks: number, seed: number, withRecords = false): Generated {
  const r = rng(seed);
  const chunks: Chunk[] = [];
  const records = new Map<string, TaskRecord>();
  const pool: GenTask[] = [];
  const now = Date.now();
  let created = 0;
  let runLeft = 0;
  let runId = '';
  let agentId: string = AGENTS[0];
  const newTask = (): GenTask => {
    if (runLeft <= 0) {
      runId = randomUUID();
      agentId = pick(AGENTS, r());
      runLeft = 1 + Math.floor(r() * 3);
    }
    runLeft--;
    created++;
    const startedAt = now - 60_000 + created;
    const t: GenTask = {
      ids: { taskId: randomUUID(), toolName: pick(TOOLS, r()), toolCallId: toolCallId(), agentId, runId },
      args: { query: 'quarterly revenue by region', limit: 20, region: 'EMEA' },
      fate: fateOf(r()),
      startedAt,
      durationMs: 50 + Math.floor(r() * 5000),
      step: 0,
    };
    if (withRecords) {
      records.set(t.ids.taskId, {
        id: flat(t.ids.taskId),
        status: 'running',
        toolName: flat(t.ids.toolName),
        toolCallId: flat(t.ids.toolCallId),
        agentId: flat(t.ids.agentId),
        runId: flat(t.ids.runId),
        threadId: flat(`thread-${runId.slice(0, 8)}`),
        resourceId: flat(`user-${Math.floor(r() * 1000)}`),
        createdAt: startedAt - 5,
        startedAt,
        retryCount: 0,
        maxRetries: 0,
        timeoutMs: 300_000,
      });
    }
    return t;
  };
  const CONCURRENT = 64;
  while (pool.length < Math.min(CONCURRENT, tasks)) pool.push(newTask());
  while (pool.length > 0) {
    const i = Math.floor(r() * pool.length);
    const t = pool[i] as GenTask;
    chunks.push(chunkFor(t, r));
    if (t.step === 4) {
      if (created < tasks) pool[i] = newTask();
      else {
        pool[i] = pool[pool.length - 1] as GenTask;
        pool.pop();
      }
    }
  }
  return { chunks, frames: toFrames(chunks), tasks, records };
}

/** SSE `data:` fields for chunks: JSON with ISO dates, exactly what Mastra's SSE route writes after `data: `. */
export function toFrames(chunks: readonly Chunk[]): string[] {
  return chunks.map((c) => JSON.stringify(c));
}

/** `n` running chunks (realistic ids and args), for the memory measurement. */
export function runningChunk(i: number, now: number): Chunk {
  return {
    type: 'background-task-running',
    payload: {
      taskId: randomUUID(),
      toolName: TOOLS[i % TOOLS.length] as string,
      toolCallId: toolCallId(),
      agentId: AGENTS[i % AGENTS.length] as string,
      runId: randomUUID(),
      startedAt: new Date(now - 1000 + (i % 1000)),
      args: { query: 'quarterly revenue by region', limit: 20, region: 'EMEA' },
    },
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Source

/**
 * A source that delivers pre-generated SSE `data:` strings to the bridge's sink (`sink.frame`, as RemoteSource does
 * after eventsource-parser) in batches, yielding to the event loop between batches (as a live stream does: the batch
 * span processor's timer and exports get to run). getTask answers from an in-memory map (or null), listTasks is
 * empty, findToolCallSpan says "no trace storage".
 */
export class BenchSource implements TaskSource {
  readonly kind = 'remote' as const;
  readonly description = 'bench: pre-generated SSE frames';
  records = new Map<string, TaskRecord>();
  private sink: SourceSink | undefined;
  private readonly connected: Promise<void>;
  private onConnected!: () => void;

  constructor() {
    this.connected = new Promise((r) => (this.onConnected = r));
  }

  run(sink: SourceSink, signal: AbortSignal): Promise<void> {
    this.sink = sink;
    sink.connected();
    this.onConnected();
    return new Promise((resolve) => {
      const stop = (): void => {
        sink.disconnected('stopped');
        resolve();
      };
      if (signal.aborted) stop();
      else signal.addEventListener('abort', stop, { once: true });
    });
  }

  /** Deliver every frame, `batch` per event-loop turn. */
  async push(frames: readonly string[], batch: number): Promise<void> {
    await this.connected;
    const sink = this.sink!;
    for (let i = 0; i < frames.length; i += batch) {
      const end = Math.min(frames.length, i + batch);
      for (let j = i; j < end; j++) sink.frame(frames[j] as string);
      await tick();
    }
  }

  async getTask(taskId: string): Promise<TaskRecord | null> {
    return this.records.get(taskId) ?? null;
  }

  /** Date windows as Mastra's stores answer them (fromDate inclusive, toDate exclusive): enrichment's batches. */
  async listTasks(query: TaskQuery = {}): Promise<TaskPage> {
    const by = query.dateFilterBy;
    if (by === undefined) return { tasks: [], total: 0, invalid: 0 };
    const from = query.fromDate?.getTime() ?? -Infinity;
    const to = query.toDate?.getTime() ?? Infinity;
    const hits: TaskRecord[] = [];
    for (const r of this.records.values()) {
      const at = r[by];
      if (at !== undefined && at >= from && at < to) hits.push(r);
    }
    hits.sort((a, b) => (a[by] ?? 0) - (b[by] ?? 0));
    const perPage = query.perPage ?? hits.length;
    const page = query.page ?? 0;
    return { tasks: hits.slice(page * perPage, (page + 1) * perPage), total: hits.length, invalid: 0 };
  }

  async findToolCallSpan(): Promise<SpanRef | null | undefined> {
    return undefined;
  }
}

/** Push helper for a bare callback (parse-only, bare Pipeline): same batching as BenchSource.push. */
export async function pushTo<T>(fn: (c: T) => void, chunks: readonly T[], batch: number): Promise<void> {
  for (let i = 0; i < chunks.length; i += batch) {
    const end = Math.min(chunks.length, i + batch);
    for (let j = i; j < end; j++) fn(chunks[j] as T);
    await tick();
  }
}

/**
 * A fake `backgroundTaskManager` whose stream() is a real ReadableStream fed in batches (pull-based, one batch per
 * event-loop turn), so the bridge's own InProcessSource reads it chunk by chunk as it reads Mastra's.
 */
export class FakeManager {
  private chunks: readonly unknown[] = [];
  private next = 0;
  private go!: () => void;
  private readonly started = new Promise<void>((r) => (this.go = r));
  private drainedResolve!: () => void;
  readonly drained = new Promise<void>((r) => (this.drainedResolve = r));

  constructor(private readonly batch: number) {}

  start(chunks: readonly unknown[]): void {
    this.chunks = chunks;
    this.go();
  }

  stream(options?: { abortSignal?: AbortSignal }): ReadableStream<unknown> {
    let closed = false;
    return new ReadableStream<unknown>(
      {
        start: (controller) => {
          options?.abortSignal?.addEventListener(
            'abort',
            () => {
              closed = true;
              try {
                controller.close();
              } catch {
                /* already closed */
              }
            },
            { once: true },
          );
        },
        pull: async (controller) => {
          await this.started;
          if (closed) return;
          if (this.next >= this.chunks.length) {
            this.drainedResolve();
            return new Promise<void>(() => undefined); // idle stream: never pulls again
          }
          await tick();
          if (closed) return;
          const end = Math.min(this.chunks.length, this.next + this.batch);
          for (; this.next < end; this.next++) controller.enqueue(this.chunks[this.next]);
        },
      },
      { highWaterMark: 0 },
    );
  }

  async getTask(): Promise<unknown> {
    return null;
  }

  async listTasks(): Promise<{ tasks: unknown[]; total: number }> {
    return { tasks: [], total: 0 };
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Tracing

/**
 * Serialises every batch to an OTLP/protobuf ExportTraceServiceRequest with the serializer the bridge's http/protobuf
 * exporter uses (OtlpTraceSerializer, src/otlp-encode.ts: ProtobufTraceSerializer's bytes), counts it, and throws it
 * away.
 */
export class SerialisingExporter implements SpanExporter {
  spans = 0;
  batches = 0;
  bytes = 0;
  serialiseMs = 0;
  /** Stands in for telemetry.ts's CountingExporter (bridge span-outcome counter); set once the bridge exists. */
  onOutcome: ((outcome: 'exported' | 'failed', spans: number) => void) | undefined;

  export(spans: ReadableSpan[], done: (result: ExportResult) => void): void {
    const t = performance.now();
    const body = OtlpTraceSerializer.serializeRequest(spans);
    this.serialiseMs += performance.now() - t;
    if (body === undefined) {
      this.onOutcome?.('failed', spans.length);
      done({ code: ExportResultCode.FAILED, error: new Error('serialisation failed') });
      return;
    }
    this.spans += spans.length;
    this.batches++;
    this.bytes += body.byteLength;
    this.onOutcome?.('exported', spans.length);
    done({ code: ExportResultCode.SUCCESS });
  }

  shutdown(): Promise<void> {
    return Promise.resolve();
  }

  forceFlush(): Promise<void> {
    return Promise.resolve();
  }
}

/**
 * The same wiring as telemetry.ts createTracing (resource, PresetIdGenerator, NodeTracerProvider, BatchSpanProcessor
 * with the config's default batch settings), with `exporter` in place of the OTLP HTTP exporter. Without an exporter:
 * spans are built but no processor receives them.
 */
export function benchTracing(exporter: SpanExporter | undefined): Tracing {
  const cfg = ConfigSchema.parse({}).otel;
  const resource = defaultResource()
    .merge(detectResources({ detectors: [envDetector] }))
    .merge(resourceFromAttributes({ [ATTR_SERVICE_NAME]: cfg.serviceName, [ATTR_SERVICE_VERSION]: VERSION }));
  const ids = new PresetIdGenerator();
  const spanProcessors = exporter
    ? [
        new BatchSpanProcessor(exporter, {
          maxQueueSize: cfg.batch.maxQueueSize,
          maxExportBatchSize: Math.min(cfg.batch.maxExportBatchSize, cfg.batch.maxQueueSize),
          scheduledDelayMillis: cfg.batch.scheduledDelayMs,
          exportTimeoutMillis: cfg.batch.exportTimeoutMs,
        }),
      ]
    : [];
  const provider = new NodeTracerProvider({ resource, idGenerator: ids, spanProcessors });
  return {
    tracer: provider.getTracer('mastra-task-bridge', VERSION),
    ids,
    exporting: true,
    forceFlush: () => provider.forceFlush(),
    shutdown: () => provider.shutdown(),
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Misc

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  if (n === 0) return Number.NaN;
  return n % 2 === 1 ? (s[(n - 1) / 2] as number) : ((s[n / 2 - 1] as number) + (s[n / 2] as number)) / 2;
}

export function fmt(n: number, digits = 0): string {
  return n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
}
