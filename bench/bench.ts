// npm run bench  (= node --expose-gc --import tsx bench/bench.ts)
//
// One run, four measurements; a human summary, then as the FINAL stdout line one JSON object:
//   {"pipelineEventsPerSec":…,"parseOnlyEventsPerSec":…,"ratio":…,"bytesPerInflightTask":…,"mastraOverheadRatio":…,
//    "mastraRemoteOverheadRatio":…}   (null for a part that did not run)
//
// (a) throughput, in this process: pre-generated SSE `data:` strings (what RemoteSource hands the sink) through
//     startBridge() (BenchSource → Pipeline: parseFrame → tracker → metrics → spans → BatchSpanProcessor → exporter
//     that serialises each batch to OTLP protobuf and discards it); enrichment disabled, placement `run`. Timed region:
//     first frame → pipeline idle → forceFlush. Versus a parse-only consumer (parseFrame) of the same strings. Plus
//     informational variants and a cost breakdown.
// (b) memory, in a child (`node --expose-gc --import tsx bench/bench.ts --memory`): heap per in-flight task with
//     100k `running` tasks open in a whole bridge (startBridge, config defaults, enrichment answered from memory), and
//     again with stored records carrying large payloads (256 KiB args and result each).
// (c) Mastra overhead, in a child (same flags, `--mastra`): a real in-process Mastra (createDemoMastra, observability
//     on: traces stored + OTLP to a discarding receiver) running 1000 quick background tasks, without and with the
//     bridge attached, ABBA-alternated, medians.
// (r) Mastra overhead, remote: the demo Mastra server in its own process (bench/remote-mastra.ts; LibSQL, observability
//     on) running bursts of agent runs, phases without and with a bridge attached over HTTP (ABBA three times; "without" waits as long after each burst as the bridge took to catch up), Mastra's own
//     CPU time per task compared.
//
// Switches: `--parts=a,b,c,r` runs only the parts listed (e.g. `--parts=r`); `--throughput-only` is `--parts=a`.
// Sizes: BENCH_ROUNDS (a, default 3), BENCH_MASTRA_TASKS (c, default 1000), BENCH_REMOTE_RUNS (r, default 200);
// BENCH_REMOTE_PARENT=run (r: the bridge with traces.parent run, no trace lookups).
//
// Not a test: nothing here asserts a time. It throws only when the telemetry is wrong (lost spans or tasks).

import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { dirname, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import { startBridge } from '../src/bridge.js';
import { ConfigSchema } from '../src/config.js';
import { parseFrame, parseTaskRecord } from '../src/events.js';
import { BridgeMetrics } from '../src/metrics.js';
import type { Pipeline } from '../src/pipeline.js';
import type { WrittenSpan } from '../src/span-ids.js';
import type { SpanWriter } from '../src/spans.js';
import type { TaskSink } from '../src/sinks.js';
import { TaskTracker } from '../src/tracker.js';
import { VERSION } from '../src/version.js';
import { trackerOptions, wirePipeline } from '../src/wiring.js';
import {
  BenchSource,
  FakeManager,
  type Generated,
  SerialisingExporter,
  benchTracing,
  flat,
  fmt,
  generateChunks,
  median,
  pushTo,
  runningChunk,
} from './support.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(HERE, '..');
const RESULT_MARK = '@@RESULT ';

const GOALS = { pipelineEventsPerSec: 100_000, ratio: 0.3, bytesPerInflightTask: 2048, mastraOverheadRatio: 0.95 };

/** The bridge's frame size limit (config default), as the pipeline applies it. */
const MAX_FRAME_BYTES = ConfigSchema.parse({}).source.maxFrameBytes;
/** Events the source delivers per event-loop turn (≈ 256 tasks' worth). */
const BATCH = 1024;
/** Measured rounds: 50k tasks × 4 events = 200k events each. */
const ROUND_TASKS = 50_000;
const ROUNDS = Number(process.env['BENCH_ROUNDS'] ?? 3);

type Gc = () => void;

function getGc(): Gc | undefined {
  const g = (globalThis as { gc?: Gc }).gc;
  return typeof g === 'function' ? g : undefined;
}

/** CPU time (user + system, all threads: includes concurrent GC) in ms since `from`. */
function cpuMs(from: NodeJS.CpuUsage): number {
  const d = process.cpuUsage(from);
  return (d.user + d.system) / 1000;
}

const silent = pino({ level: 'silent' });
const log = (s = ''): void => console.log(s);

// =================================================================================================================
// (a) Throughput

interface RoundResult {
  events: number;
  tasks: number;
  ms: number;
  eps: number;
  /** events per CPU-second of this process (all threads): less sensitive to other load on the machine. */
  epsCpu: number;
  spans: number;
  finished: number;
  serialiseMs: number;
}

class CountingSink implements TaskSink {
  n = 0;
  finished(_task: unknown, _span: WrittenSpan): void {
    this.n++;
  }
}

/** Frames only: the chunk objects are dropped so they do not sit in the heap (and in every GC) while timing. */
function framesFor(tasks: number, seed: number, withRecords = false): { frames: string[]; tasks: number; records: Generated['records'] } {
  const g = generateChunks(tasks, seed, withRecords);
  return { frames: g.frames, tasks: g.tasks, records: g.records };
}

async function timedRound(
  frames: readonly string[],
  tasks: number,
  push: () => Promise<void>,
  settle: () => Promise<void>,
  exporter: SerialisingExporter,
  sink: CountingSink,
  gc: Gc | undefined,
): Promise<RoundResult> {
  gc?.();
  const spans0 = exporter.spans;
  const fin0 = sink.n;
  const ser0 = exporter.serialiseMs;
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  await push();
  await settle();
  const ms = performance.now() - t0;
  const cpu = cpuMs(c0);
  return {
    events: frames.length,
    tasks,
    ms,
    eps: frames.length / (ms / 1000),
    epsCpu: frames.length / (cpu / 1000),
    spans: exporter.spans - spans0,
    finished: sink.n - fin0,
    serialiseMs: exporter.serialiseMs - ser0,
  };
}

async function pipelineThroughput(gc: Gc | undefined, roundsWanted: number): Promise<{ rounds: RoundResult[]; lastFrames: string[]; bytesPerSpan: number }> {
  const exporter = new SerialisingExporter();
  const tracing = benchTracing(exporter);
  const source = new BenchSource();
  const sink = new CountingSink();
  const handle = startBridge({
    source,
    config: { log: { level: 'silent' }, enrichment: { enabled: false }, traces: { parent: 'run' } },
    tracing,
    logger: silent,
    sinks: [sink],
  });
  exporter.onOutcome = (outcome, n) => handle.metrics.spanOutcome(outcome, n);
  await handle.whenReady(5_000);
  const settle = async (): Promise<void> => {
    await handle.idle();
    await tracing.forceFlush();
  };

  // Warm-up: 10k tasks (40k events).
  await source.push(framesFor(10_000, 1).frames, BATCH);
  await settle();

  const rounds: RoundResult[] = [];
  let lastFrames: string[] = [];
  for (let i = 0; i < roundsWanted; i++) {
    const g = framesFor(ROUND_TASKS, 100 + i);
    rounds.push(await timedRound(g.frames, g.tasks, () => source.push(g.frames, BATCH), settle, exporter, sink, gc));
    lastFrames = g.frames;
  }
  const bytesPerSpan = exporter.bytes / Math.max(1, exporter.spans);
  await handle.close();
  return { rounds, lastFrames, bytesPerSpan };
}

/** The parse-only consumer: parseFrame on the same strings, same delivery (batches, a yield between them). */
async function parseOnly(frames: readonly string[], passes: number, gc: Gc | undefined): Promise<{ eps: number[]; epsCpu: number[] }> {
  const eps: number[] = [];
  const epsCpu: number[] = [];
  let ok = 0;
  const consume = (f: string): void => {
    if (parseFrame(f, MAX_FRAME_BYTES).ok) ok++;
  };
  await pushTo(consume, frames, BATCH); // warm-up pass
  for (let p = 0; p < passes; p++) {
    ok = 0;
    gc?.();
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    await pushTo(consume, frames, BATCH);
    const ms = performance.now() - t0;
    const cpu = cpuMs(c0);
    if (ok !== frames.length) throw new Error(`parse-only: ${frames.length - ok} frames failed to parse`);
    eps.push(frames.length / (ms / 1000));
    epsCpu.push(frames.length / (cpu / 1000));
  }
  return { eps, epsCpu };
}

/** Informational: enrichment ON, getTask answered from memory (no I/O), one round. */
async function enrichedThroughput(gc: Gc | undefined): Promise<RoundResult & { lookups: number; misses: number }> {
  const exporter = new SerialisingExporter();
  const tracing = benchTracing(exporter);
  const source = new BenchSource();
  let lookups = 0;
  let misses = 0;
  const getTask = source.getTask.bind(source);
  source.getTask = async (id: string) => {
    lookups++;
    const r = await getTask(id);
    if (r === null) misses++;
    return r;
  };
  const sink = new CountingSink();
  const handle = startBridge({ source, config: { log: { level: 'silent' }, traces: { parent: 'run' } }, tracing, logger: silent, sinks: [sink] });
  await handle.whenReady(5_000);
  const settle = async (): Promise<void> => {
    await handle.idle();
    await tracing.forceFlush();
  };
  const warm = framesFor(5_000, 7, true);
  source.records = warm.records;
  await source.push(warm.frames, BATCH);
  await settle();
  const g = framesFor(ROUND_TASKS, 200, true);
  source.records = g.records;
  lookups = 0;
  misses = 0;
  const r = await timedRound(g.frames, g.tasks, () => source.push(g.frames, BATCH), settle, exporter, sink, gc);
  await handle.close();
  return { ...r, lookups, misses };
}

/** Informational: in-process chunks (Date objects) through the real InProcessSource reading a ReadableStream. */
async function inProcessSourceThroughput(gc: Gc | undefined): Promise<RoundResult> {
  const exporter = new SerialisingExporter();
  const tracing = benchTracing(exporter);
  const manager = new FakeManager(BATCH);
  const sink = new CountingSink();
  const handle = startBridge({
    mastra: { backgroundTaskManager: manager },
    config: { log: { level: 'silent' }, enrichment: { enabled: false }, traces: { parent: 'run' } },
    tracing,
    logger: silent,
    sinks: [sink],
  });
  await handle.whenReady(5_000);
  const chunks = generateChunks(ROUND_TASKS, 300).chunks;
  const r = await timedRound(
    chunks.map(() => ''),
    ROUND_TASKS,
    async () => {
      manager.start(chunks);
      await manager.drained;
    },
    async () => {
      await handle.idle();
      await tracing.forceFlush();
    },
    exporter,
    sink,
    gc,
  );
  await handle.close();
  return r;
}

type Stage = 'parse+tracker (no-op metrics, no-op spans)' | '+ real metrics' | '+ real SpanWriter (no processor)' | '+ BatchSpanProcessor + OTLP protobuf serialise';
const STAGES: Stage[] = ['parse+tracker (no-op metrics, no-op spans)', '+ real metrics', '+ real SpanWriter (no processor)', '+ BatchSpanProcessor + OTLP protobuf serialise'];

/** A bare Pipeline wired by startBridge()'s own wiring (enrichment off, placement run), with parts swapped for no-ops. */
function stagePipeline(stage: number): { pipeline: Pipeline; flush: () => Promise<void>; exporter?: SerialisingExporter } {
  const config = ConfigSchema.parse({ enrichment: { enabled: false }, traces: { parent: 'run' } });
  const tracker = new TaskTracker(trackerOptions(config));
  const noop = (): void => undefined;
  const metrics =
    stage >= 1
      ? new BridgeMetrics({
          version: VERSION,
          durationBuckets: config.metrics.durationBuckets,
          queueWaitBuckets: config.metrics.queueWaitBuckets,
          suspendedBuckets: config.metrics.suspendedBuckets,
          maxLabelValues: config.metrics.maxLabelValues,
          defaultMetrics: false,
          openTasks: () => tracker.openCounts(),
          scanOpenTasks: () => tracker.openTasks(),
        })
      : (new Proxy({}, { get: () => noop }) as unknown as BridgeMetrics);
  const exporter = stage >= 3 ? new SerialisingExporter() : undefined;
  const tracing = benchTracing(exporter);
  const fixed: WrittenSpan = { traceId: 'a'.repeat(32), spanId: 'b'.repeat(16), sampled: true };
  const { pipeline } = wirePipeline(config, {
    source: new BenchSource(),
    tracker,
    metrics,
    tracing,
    logger: silent,
    ...(stage >= 2 ? {} : { spans: { write: () => fixed } as unknown as SpanWriter }),
  });
  return { pipeline, flush: () => tracing.forceFlush(), ...(exporter ? { exporter } : {}) };
}

/** CPU µs per event of each stage (CPU time, not wall: the stages are compared with each other, under the same load). */
async function breakdown(gc: Gc | undefined): Promise<{ stage: Stage; usPerEvent: number }[]> {
  const g = framesFor(25_000, 400); // 100k events
  const out: { stage: Stage; usPerEvent: number }[] = [];
  for (let s = 0; s < STAGES.length; s++) {
    const us: number[] = [];
    for (let rep = 0; rep < 4; rep++) {
      const { pipeline, flush, exporter } = stagePipeline(s);
      gc?.();
      const c0 = process.cpuUsage();
      await pushTo((f: string) => pipeline.frame(f), g.frames, BATCH);
      await pipeline.idle();
      await flush();
      const cpu = cpuMs(c0);
      if (exporter && exporter.spans !== g.tasks) throw new Error(`breakdown: ${exporter.spans} spans for ${g.tasks} tasks`);
      if (rep > 0) us.push((cpu * 1000) / g.frames.length); // rep 0 warms this stage's code paths
    }
    out.push({ stage: STAGES[s] as Stage, usPerEvent: median(us) });
  }
  return out;
}

// =================================================================================================================
// (b) Memory (child process, --expose-gc)

interface MemoryResult {
  tasks: number;
  /** The figure: a whole bridge with config defaults (enrichment on), per open task. */
  bytesPerInflightTask: number;
  bridgeOpen: number;
  lookups: number;
  /** Informational: a bare TaskTracker fed by parseFrame, per open task. */
  trackerBytesPerInflightTask: number;
  /** The same whole bridge, with stored records carrying large payloads (args and result of LARGE_PAYLOAD each). */
  largePayload: { tasks: number; payloadBytes: number; bytesPerInflightTask: number };
}

const LARGE_PAYLOAD_TASKS = 2_000;
const LARGE_PAYLOAD = 256 * 1024;

/**
 * Heap per open task when every getTask answer carries LARGE_PAYLOAD of args and of result (issue 10: the enrichment
 * cache held whole records). Each lookup parses a fresh copy, as RemoteSource does with a response body.
 */
async function largePayloadMemory(gc: Gc): Promise<MemoryResult['largePayload']> {
  const N = LARGE_PAYLOAD_TASKS;
  const now = Date.now();
  const taskIds = Array.from({ length: N }, () => flat(randomUUID()));
  const blob = JSON.stringify('x'.repeat(LARGE_PAYLOAD));
  const source = new BenchSource();
  let lookups = 0;
  source.getTask = async (id: string) => {
    lookups++;
    const raw =
      `{"id":${JSON.stringify(id)},"status":"running","toolName":"research_topic","toolCallId":"call_${id}","agentId":"research-agent",` +
      `"runId":"${randomUUID()}","threadId":"thread-1","resourceId":"user-1","createdAt":"${new Date(now - 2000).toISOString()}",` +
      `"startedAt":"${new Date(now - 1000).toISOString()}","retryCount":0,"maxRetries":0,"timeoutMs":300000,"args":{"doc":${blob}},"result":{"doc":${blob}}}`;
    const parsed = parseTaskRecord(JSON.parse(raw));
    return parsed.ok ? parsed.value : null;
  };
  const handle = startBridge({ source, config: { log: { level: 'silent' } }, tracing: benchTracing(undefined), logger: silent });
  await handle.whenReady(5_000);
  await source.push(runningFrames(0, 64, now, Array.from({ length: 64 }, () => randomUUID())), BATCH);
  await handle.idle();
  await new Promise((r) => setTimeout(r, 50));
  const open0 = handle.tracker.size;
  const lookups0 = lookups;
  const h0 = heapUsed(gc);
  for (let i = 0; i < N; i += BATCH) await source.push(runningFrames(i, Math.min(BATCH, N - i), now, taskIds), BATCH);
  const deadline = Date.now() + 120_000;
  while (lookups - lookups0 < N && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  await new Promise((r) => setTimeout(r, 50));
  const h1 = heapUsed(gc);
  if (handle.tracker.size - open0 !== N) throw new Error(`bridge holds ${handle.tracker.size - open0} new open tasks, expected ${N}`);
  await handle.close();
  return { tasks: N, payloadBytes: 2 * LARGE_PAYLOAD, bytesPerInflightTask: (h1 - h0) / N };
}

function heapUsed(gc: Gc): number {
  gc();
  gc();
  return process.memoryUsage().heapUsed;
}

/** `n` running frames for tasks `from … from+n-1`, built on demand so the input is never part of the measured heap. */
function runningFrames(from: number, n: number, now: number, taskIds: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = from; i < from + n; i++) {
    const c = runningChunk(i, now);
    c.payload.taskId = taskIds[i];
    out.push(JSON.stringify(c));
  }
  return out;
}

async function memoryChild(): Promise<MemoryResult> {
  const gc = getGc();
  if (!gc) throw new Error('run with --expose-gc');
  const N = 100_000;
  const now = Date.now();
  const taskIds = Array.from({ length: N }, () => flat(randomUUID()));

  // What getTask returns, prepared before the baseline (the bench owns it, not the bridge); each lookup hands out a
  // fresh parse of it, as RemoteSource does with a response body.
  const stored = new Map<string, string>();
  for (let i = 0; i < N; i++) {
    stored.set(
      taskIds[i] as string,
      JSON.stringify({
        id: taskIds[i],
        status: 'running',
        toolName: 'research_topic',
        toolCallId: `call_${i}`,
        agentId: 'research-agent',
        runId: randomUUID(),
        threadId: `thread-${i % 5000}`,
        resourceId: `user-${i % 1000}`,
        createdAt: new Date(now - 2000).toISOString(),
        startedAt: new Date(now - 1000).toISOString(),
        retryCount: 0,
        maxRetries: 0,
        timeoutMs: 300_000,
        args: { query: 'quarterly revenue by region', limit: 20, region: 'EMEA' },
      }),
    );
  }
  const source = new BenchSource();
  let lookups = 0;
  source.getTask = async (id: string) => {
    lookups++;
    const raw = stored.get(id);
    if (raw === undefined) return null;
    const parsed = parseTaskRecord(JSON.parse(raw));
    return parsed.ok ? parsed.value : null;
  };
  // Config defaults but for the open-task cap (default 100k; raised so the 64 warm-up tasks evict nothing), no span
  // exporter (no task ends).
  const handle = startBridge({
    source,
    config: { log: { level: 'silent' }, tracker: { maxOpenTasks: 2 * N } },
    tracing: benchTracing(undefined),
    logger: silent,
  });
  await handle.whenReady(5_000);
  // Touch every agent/tool label pair first so one-off metric series are not counted per task.
  await source.push(runningFrames(0, 64, now, Array.from({ length: 64 }, () => randomUUID())), BATCH);
  await handle.idle();
  await new Promise((r) => setTimeout(r, 50));
  const open0 = handle.tracker.size;
  let h0 = heapUsed(gc);
  for (let i = 0; i < N; i += BATCH) await source.push(runningFrames(i, Math.min(BATCH, N - i), now, taskIds), BATCH);
  // Let every lookup land (they run 4 at a time behind the pump).
  const deadline = Date.now() + 60_000;
  while (lookups < N && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  await new Promise((r) => setTimeout(r, 50));
  const h1 = heapUsed(gc);
  const bridgeOpen = handle.tracker.size - open0;
  if (bridgeOpen !== N) throw new Error(`bridge holds ${bridgeOpen} new open tasks, expected ${N}`);
  const bytesPerInflightTask = (h1 - h0) / N;
  await handle.close();

  // Informational: a bare TaskTracker (no enrichment info, no metrics, no enrichment cache).
  h0 = heapUsed(gc);
  let tracker: TaskTracker | undefined = new TaskTracker();
  for (let i = 0; i < N; i += BATCH) {
    for (const f of runningFrames(i, Math.min(BATCH, N - i), now, taskIds)) {
      const parsed = parseFrame(f, MAX_FRAME_BYTES);
      if (!parsed.ok) throw new Error(parsed.detail);
      tracker.apply(parsed.value, now);
    }
  }
  const h2 = heapUsed(gc);
  if (tracker.size !== N) throw new Error(`tracker holds ${tracker.size} tasks, expected ${N}`);
  const trackerBytesPerInflightTask = (h2 - h0) / N;
  tracker = undefined;
  const largePayload = await largePayloadMemory(gc);
  return { tasks: N, bytesPerInflightTask, bridgeOpen, lookups, trackerBytesPerInflightTask, largePayload };
}

// =================================================================================================================
// (c) Mastra overhead (child process)

interface MastraRun {
  arm: 'without' | 'with';
  tasks: number;
  ms: number;
  tasksPerSec: number;
  /** CPU ms of the whole process (all threads) over the timed region, per task. */
  cpuMsPerTask: number;
  /** with: time from the last terminal event until the bridge was idle and flushed. */
  catchUpMs?: number;
  bridgeFinished?: number;
  spans?: number;
  enrichmentFailures?: number;
}

interface MastraResult {
  runs: MastraRun[];
  withoutMedian: number;
  withMedian: number;
  ratio: number;
  /** Median CPU per task without / with: the same comparison measured in CPU time, less sensitive to other load. */
  cpuRatio: number;
}

const MASTRA_TASKS = Number(process.env['BENCH_MASTRA_TASKS'] ?? 1000);

async function mastraChild(): Promise<MastraResult> {
  process.env['MASTRA_TELEMETRY_DISABLED'] = 'true';
  const gc = getGc();
  const { createDemoMastra, shutdownDemoMastra } = await import('../demo/app.js');
  const { dispatchQuickTask } = await import('../demo/workload.js');
  const { OtelExporter } = await import('@mastra/otel-exporter');
  const TERMINAL = new Set(['background-task-completed', 'background-task-failed', 'background-task-cancelled']);
  const agents = ['bench-agent-a', 'bench-agent-b', 'bench-agent-c'];
  const tools = ['quick_task', 'quick_lookup'];

  async function once(arm: 'without' | 'with', n: number): Promise<MastraRun> {
    gc?.();
    // The demo app (three agents, scripted model, InMemoryStore, quiet logger); concurrency raised so the batch is
    // limited by Mastra's own per-task work rather than by its default slots.
    // Observability on, as production apps run it (issue 9): traces stored (Mastra's default 5 s batch wait) and
    // exported over OTLP to the parent's discarding receiver.
    const otlp = process.env['BENCH_OTLP_URL'];
    const mastra = createDemoMastra({
      backgroundTasks: { globalConcurrency: 50, perAgentConcurrency: 50 },
      observability: {
        maxBatchWaitMs: 5_000,
        exporters: otlp
          ? [new OtelExporter({ provider: { custom: { endpoint: otlp, protocol: 'http/protobuf' } }, signals: { traces: true, logs: false } })]
          : [],
      },
    });
    const manager = mastra.backgroundTaskManager;
    if (!manager) throw new Error('no backgroundTaskManager');
    // Completion detector (both arms): one stream subscriber counting terminal events.
    const counterAbort = new AbortController();
    let terminal = 0;
    let allDone!: () => void;
    const done = new Promise<void>((r) => (allDone = r));
    const reader = manager.stream({ abortSignal: counterAbort.signal, includeExisting: false }).getReader();
    const counting = (async () => {
      for (;;) {
        const { value, done: end } = await reader.read();
        if (end) return;
        if (TERMINAL.has(String((value as { type?: unknown }).type)) && ++terminal >= n) allDone();
      }
    })().catch(() => undefined);

    let handle: ReturnType<typeof startBridge> | undefined;
    let exporter: SerialisingExporter | undefined;
    const sink = new CountingSink();
    if (arm === 'with') {
      exporter = new SerialisingExporter();
      // As a user embeds it: config defaults (enrichment on, placement auto), spans to a discarding OTLP exporter.
      handle = startBridge({ mastra, config: { log: { level: 'silent' } }, tracing: benchTracing(exporter), logger: silent, sinks: [sink] });
      const h = handle;
      exporter.onOutcome = (o, k) => h.metrics.spanOutcome(o, k);
      await handle.whenReady(10_000);
    }
    await new Promise((r) => setTimeout(r, 50)); // let the subscriptions settle

    const c0 = process.cpuUsage();
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: n }, (_, i) =>
        dispatchQuickTask(mastra, {
          durationMs: 5,
          outcome: i % 10 === 9 ? 'fail' : 'complete',
          agentId: agents[i % agents.length] as string,
          toolName: tools[i % tools.length] as string,
          threadId: `thread-${i % 50}`,
          resourceId: `user-${i % 7}`,
        }),
      ),
    );
    await done;
    const t1 = performance.now();
    const run: MastraRun = { arm, tasks: n, ms: t1 - t0, tasksPerSec: n / ((t1 - t0) / 1000), cpuMsPerTask: cpuMs(c0) / n };
    if (handle) {
      await handle.idle();
      await handle.tracing.forceFlush();
      run.catchUpMs = performance.now() - t1;
      run.bridgeFinished = sink.n;
      run.spans = exporter?.spans ?? 0;
      const m = handle.registry.getSingleMetric('mastra_task_bridge_enrichment_failures_total');
      const values = m ? (await m.get()).values : [];
      run.enrichmentFailures = values.reduce((s, v) => s + v.value, 0);
      await handle.close();
    }
    counterAbort.abort();
    await counting;
    await shutdownDemoMastra(mastra, { drainTimeoutMs: 2_000 });
    return run;
  }

  // Warm-up (discarded): both arms, small batches.
  await once('without', 300);
  await once('with', 300);
  // ABBA three times: six runs per arm (single runs swing by ±20% on a shared 2-core machine; medians of six settle).
  const schedule: ('without' | 'with')[] = ['without', 'with', 'with', 'without', 'without', 'with', 'with', 'without', 'without', 'with', 'with', 'without'];
  const runs: MastraRun[] = [];
  for (const arm of schedule) {
    const r = await once(arm, MASTRA_TASKS);
    runs.push(r);
    const extra = r.arm === 'with' ? `, bridge caught up ${fmt(r.catchUpMs ?? 0)} ms later, ${r.bridgeFinished} finished / ${r.spans} spans, ${r.enrichmentFailures} enrichment failures` : '';
    console.log(`${r.arm.padEnd(7)} ${r.tasks} tasks in ${fmt(r.ms)} ms = ${fmt(r.tasksPerSec, 1)} tasks/s, ${fmt(r.cpuMsPerTask, 2)} CPU ms/task${extra}`);
  }
  const withoutMedian = median(runs.filter((r) => r.arm === 'without').map((r) => r.tasksPerSec));
  const withMedian = median(runs.filter((r) => r.arm === 'with').map((r) => r.tasksPerSec));
  const cpuWithout = median(runs.filter((r) => r.arm === 'without').map((r) => r.cpuMsPerTask));
  const cpuWith = median(runs.filter((r) => r.arm === 'with').map((r) => r.cpuMsPerTask));
  return { runs, withoutMedian, withMedian, ratio: withMedian / withoutMedian, cpuRatio: cpuWithout / cpuWith };
}

// =================================================================================================================
// (r) Mastra overhead, remote: the demo Mastra server in its own process (bench/remote-mastra.ts) with observability
// on (traces stored in LibSQL + OTLP to a discarding receiver here), bursts of agent runs, phases without and with a
// bridge in this process attached over HTTP (config defaults: enrichment on, placement auto). Mastra's own CPU time
// per task is the figure; the bridge's CPU is this process's and not counted.

interface RemotePhase {
  arm: 'without' | 'with';
  tasks: number;
  burstMs: number;
  /** Mastra process CPU (user + system) per task over the phase: burst, the bridge catching up (with), a final flush. */
  cpuMsPerTask: number;
  /** with: the bridge's finished tasks, spans, placements under Mastra's tool_call span, requests it made to Mastra. */
  bridgeFinished?: number;
  spans?: number;
  placedUnderToolCall?: number;
  catchUpMs?: number;
  requests?: Record<string, number>;
}

interface RemoteResult {
  phases: RemotePhase[];
  cpuWithout: number;
  cpuWith: number;
  /** cpuWithout / cpuWith: ≥ 0.95 means the bridge costs Mastra at most ~5% CPU per task. */
  ratio: number;
}

const REMOTE_RUNS = Number(process.env['BENCH_REMOTE_RUNS'] ?? 200);
const REMOTE_AT_ONCE = 6;
/** BENCH_REMOTE_PARENT=run|none measures the bridge with that traces.parent instead of the default (auto). */
const REMOTE_PARENT = process.env['BENCH_REMOTE_PARENT'] as 'auto' | 'run' | 'none' | undefined;

/** Counts the bridge's requests to Mastra by route (the observability and task lookups it makes). */
function countingFetch(counts: Record<string, number>): typeof fetch {
  return (input, init) => {
    const url = new URL(typeof input === 'string' ? input : input instanceof URL ? input.href : input.url);
    const path = url.pathname.replace(/^\/api/, '');
    const key = path.startsWith('/background-tasks/stream')
      ? 'stream'
      : path.startsWith('/background-tasks/')
        ? 'getTask'
        : path === '/background-tasks'
          ? 'listTasks'
          : path.startsWith('/observability/')
            ? `observability ${path.replace(/\/[0-9a-f]{16,}(?=\/|$)/g, '/:id')}${url.searchParams.has('runId') ? '?runId' : ''}`
            : path;
    counts[key] = (counts[key] ?? 0) + 1;
    return globalThis.fetch(input, init);
  };
}

async function remoteOverhead(): Promise<RemoteResult> {
  const { RemoteSource } = await import('../src/sources/remote.js');
  const receiver = await discardingOtlpReceiver();
  const otlpUrl = receiver.url;

  const child = spawn(process.execPath, ['--import', 'tsx', resolve(HERE, 'remote-mastra.ts'), otlpUrl], {
    cwd: ROOT,
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { ...process.env, MASTRA_TELEMETRY_DISABLED: 'true' },
  });
  const answers: ((x: unknown) => void)[] = [];
  const stderr: string[] = [];
  createInterface({ input: child.stdout! }).on('line', (line) => {
    if (line.startsWith(RESULT_MARK)) answers.shift()?.(JSON.parse(line.slice(RESULT_MARK.length)));
    else log(`  [mastra] ${line}`);
  });
  createInterface({ input: child.stderr! }).on('line', (line) => {
    stderr.push(line);
    if (stderr.length > 40) stderr.shift();
  });
  const exited = new Promise<never>((_, reject) =>
    child.on('exit', (code) => reject(new Error(`Mastra server exited ${code}${stderr.length ? `:\n${stderr.join('\n')}` : ''}`))),
  );
  const ask = <T>(cmd: string): Promise<T> =>
    Promise.race([new Promise<T>((r) => { answers.push(r as (x: unknown) => void); child.stdin!.write(`${cmd}\n`); }), exited]);

  try {
    const { url } = await ask<{ url: string }>('url');
    let settleMs = 0;
    const phase = async (arm: 'without' | 'with', runs: number): Promise<RemotePhase> => {
      let handle: ReturnType<typeof startBridge> | undefined;
      let exporter: PlacementCountingExporter | undefined;
      const sink = new PlacementSink();
      const requests: Record<string, number> = {};
      if (arm === 'with') {
        exporter = new PlacementCountingExporter();
        const source = new RemoteSource({ baseUrl: url, fetch: countingFetch(requests) });
        handle = startBridge({
          source,
          config: { log: { level: 'silent' }, ...(REMOTE_PARENT ? { traces: { parent: REMOTE_PARENT } } : {}) },
          tracing: benchTracing(exporter),
          logger: silent,
          sinks: [sink],
        });
        const h = handle;
        exporter.onOutcome = (o, k) => h.metrics.spanOutcome(o, k);
        await handle.whenReady(10_000);
      }
      const { cpuMs: c0 } = await ask<{ cpuMs: number }>('cpu');
      const burst = await ask<{ tasks: number; ms: number }>(`burst ${runs} ${REMOTE_AT_ONCE}`);
      const t1 = performance.now();
      const r: RemotePhase = { arm, tasks: burst.tasks, burstMs: burst.ms, cpuMsPerTask: 0 };
      if (handle) {
        const deadline = Date.now() + 60_000;
        while (sink.n < burst.tasks && Date.now() < deadline) await new Promise((res) => setTimeout(res, 20));
        await handle.idle();
        await handle.tracing.forceFlush();
        r.catchUpMs = performance.now() - t1;
        settleMs = Math.max(settleMs, r.catchUpMs);
      } else {
        // The same wall time after the burst as a bridge takes to catch up (the longest so far): Mastra's own work in
        // that time (its exporters' timers, the storage batch) is charged to neither arm.
        await new Promise((res) => setTimeout(res, settleMs));
      }
      await ask('flush');
      const { cpuMs: c1 } = await ask<{ cpuMs: number }>('cpu');
      r.cpuMsPerTask = (c1 - c0) / burst.tasks;
      if (handle) {
        r.bridgeFinished = sink.n;
        r.placedUnderToolCall = exporter?.underToolCall ?? 0;
        r.spans = exporter?.spans ?? 0;
        await handle.close();
        r.requests = requests;
      }
      return r;
    };
    await phase('without', 30);
    await phase('with', 30);
    // ABBA three times: single phases of one arm spread by ±15% on this box; six per arm give a steadier median.
    const schedule: ('without' | 'with')[] = ['without', 'with', 'with', 'without', 'without', 'with', 'with', 'without', 'without', 'with', 'with', 'without'];
    const phases: RemotePhase[] = [];
    for (const arm of schedule) {
      const r = await phase(arm, REMOTE_RUNS);
      phases.push(r);
      const extra =
        r.arm === 'with'
          ? `; bridge: ${r.bridgeFinished} finished, ${r.spans} spans, ${r.placedUnderToolCall} under Mastra's tool_call span, caught up ${fmt(r.catchUpMs ?? 0)} ms after the burst; requests ${JSON.stringify(r.requests)}`
          : '';
      log(`    ${r.arm.padEnd(7)} ${r.tasks} tasks, burst ${fmt(r.burstMs)} ms, Mastra CPU ${fmt(r.cpuMsPerTask, 2)} ms/task${extra}`);
    }
    const cpuWithout = median(phases.filter((p) => p.arm === 'without').map((p) => p.cpuMsPerTask));
    const cpuWith = median(phases.filter((p) => p.arm === 'with').map((p) => p.cpuMsPerTask));
    log(`    OTLP requests received from Mastra: ${receiver.requests}`);
    return { phases, cpuWithout, cpuWith, ratio: cpuWithout / cpuWith };
  } finally {
    child.stdin!.end('quit\n');
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([exited.catch(() => undefined), new Promise((r) => (timer = setTimeout(r, 10_000)))]);
    clearTimeout(timer);
    if (child.exitCode === null) child.kill('SIGKILL');
    await receiver.close();
  }
}

/** An OTLP/HTTP receiver for Mastra's own spans (parts c and r): reads each request and throws it away. */
async function discardingOtlpReceiver(): Promise<{ url: string; readonly requests: number; close(): Promise<void> }> {
  const http = await import('node:http');
  let requests = 0;
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      requests++;
      res.writeHead(200, { 'content-type': req.headers['content-type'] ?? 'application/x-protobuf' }).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as { port: number }).port}`,
    get requests() {
      return requests;
    },
    close: () => {
      server.closeAllConnections();
      return new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/** Counts finished tasks. */
class PlacementSink implements TaskSink {
  n = 0;
  finished(): void {
    this.n++;
  }
}

/** The serialising exporter, also counting spans placed under Mastra's own tool_call span. */
class PlacementCountingExporter extends SerialisingExporter {
  underToolCall = 0;
  override export(spans: Parameters<SerialisingExporter['export']>[0], done: Parameters<SerialisingExporter['export']>[1]): void {
    for (const s of spans) if (s.attributes['mastra.background_task.placement'] === 'mastra') this.underToolCall++;
    super.export(spans, done);
  }
}

// =================================================================================================================
// Orchestration

function runChild<T>(flag: '--memory' | '--mastra', label: string, timeoutMs: number, env: Record<string, string> = {}): Promise<T> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, ['--expose-gc', '--import', 'tsx', fileURLToPath(import.meta.url), flag], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, MASTRA_TELEMETRY_DISABLED: 'true', ...env },
    });
    let result: T | undefined;
    const stderr: string[] = [];
    createInterface({ input: child.stdout }).on('line', (line) => {
      if (line.startsWith(RESULT_MARK)) result = JSON.parse(line.slice(RESULT_MARK.length)) as T;
      else log(`  [${label}] ${line}`);
    });
    createInterface({ input: child.stderr }).on('line', (line) => {
      stderr.push(line);
      if (stderr.length > 40) stderr.shift();
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      if (result !== undefined && code === 0) resolvePromise(result);
      else reject(new Error(`${label} child exited ${code ?? signal}${stderr.length ? `:\n${stderr.join('\n')}` : ''}`));
    });
  });
}

const verdict = (ok: boolean): string => (ok ? 'PASS' : 'MISS');

async function throughput(gc: Gc | undefined): Promise<{ pipelineEps: number; pipelineEpsCpu: number; parseEps: number; ratio: number }> {
  log('(a) Throughput — startBridge({ source: BenchSource }) → Pipeline: parseFrame → tracker → metrics → SpanWriter →');
  log('    NodeTracerProvider + BatchSpanProcessor (config defaults: queue 8192, batch 512, delay 1000 ms) → exporter that');
  log('    serialises each batch with the bridge\'s OtlpTraceSerializer (src/otlp-encode.ts; ProtobufTraceSerializer\'s bytes) and discards it.');
  log('    Enrichment: DISABLED (config enrichment.enabled=false; no getTask). Placement: mode "run" (no lookups).');
  log('    Input: SSE `data:` strings as a Mastra server sends them (JSON, ISO dates), handed to sink.frame() as RemoteSource');
  log('    does; 4 events/task, mix 70% completed / 12% failed / 8% timeout / 7% cancelled / 3% suspend→resume→completed;');
  log(`    4 agents, 6 tools, uuid ids, ~64 tasks interleaved; ${BATCH} frames per event-loop turn.`);
  log(`    Timed: first frame → pipeline idle → forceFlush. Warm-up 40k events, then ${ROUNDS} rounds × 200k events (median).`);

  const { rounds, lastFrames, bytesPerSpan } = await pipelineThroughput(gc, ROUNDS);
  for (const [i, r] of rounds.entries()) {
    log(
      `    round ${i + 1}: ${fmt(r.events)} events (${fmt(r.tasks)} tasks) in ${fmt(r.ms)} ms = ${fmt(r.eps)} events/s ` +
        `(${fmt(r.epsCpu)} per CPU-s); ${fmt(r.spans)} spans serialised, ${fmt(r.finished)} finished; serialise ${fmt(r.serialiseMs)} ms (${fmt((100 * r.serialiseMs) / r.ms, 1)}%)`,
    );
    if (r.spans !== r.tasks || r.finished !== r.tasks) throw new Error(`round ${i + 1}: expected ${r.tasks} spans and finished tasks`);
  }
  const pipelineEps = median(rounds.map((r) => r.eps));
  const pipelineEpsCpu = median(rounds.map((r) => r.epsCpu));
  log(`    OTLP protobuf: ${fmt(bytesPerSpan)} bytes per span`);
  const parse = await parseOnly(lastFrames, 5, gc);
  const parseEps = median(parse.eps);
  const parseEpsCpu = median(parse.epsCpu);
  log(`    parse-only (parseFrame on the same 200k strings, same delivery), 5 passes: ${parse.eps.map((x) => fmt(x)).join(', ')} events/s`);
  const ratio = pipelineEps / parseEps;
  log(`    ratio pipeline / parse-only: ${ratio.toFixed(3)} wall-clock, ${(pipelineEpsCpu / parseEpsCpu).toFixed(3)} in CPU time`);

  log('');
  log('    Informational variants (one 200k-event round each):');
  const enriched = await enrichedThroughput(gc);
  log(
    `    - enrichment ON (config default; getTask answered from memory, no I/O): ${fmt(enriched.eps)} events/s ` +
      `(${fmt(enriched.lookups)} lookups, ${enriched.misses} misses, ${fmt(enriched.spans)} spans)`,
  );
  const viaStream = await inProcessSourceThroughput(gc);
  log(`    - in-process chunks via the real InProcessSource reading a ReadableStream: ${fmt(viaStream.eps)} events/s (${fmt(viaStream.spans)} spans)`);
  if (viaStream.spans !== viaStream.tasks) throw new Error('InProcessSource variant lost spans');

  log('');
  log('    Where the time goes — CPU µs per event (process CPU incl. GC threads), bare Pipeline wired as startBridge does,');
  log('    parts swapped for no-ops, 100k events, median of 3 after a warm rep:');
  const stages = await breakdown(gc);
  let prevUs = 1e6 / parseEpsCpu;
  log(`      ${'parse only (parseFrame)'.padEnd(50)} ${fmt(prevUs, 2).padStart(6)} µs/event`);
  for (const s of stages) {
    log(`      ${s.stage.padEnd(50)} ${fmt(s.usPerEvent, 2).padStart(6)} µs/event  (${s.usPerEvent >= prevUs ? '+' : ''}${fmt(s.usPerEvent - prevUs, 2)})`);
    prevUs = s.usPerEvent;
  }

  return { pipelineEps, pipelineEpsCpu, parseEps, ratio };
}

type Part = 'a' | 'b' | 'c' | 'r';
const ALL_PARTS: readonly Part[] = ['a', 'b', 'c', 'r'];

/** `--parts=a,c` runs those parts only; `--throughput-only` is `--parts=a`; no switch runs every part. */
function partsFrom(argv: readonly string[]): Set<Part> {
  if (argv.includes('--throughput-only')) return new Set(['a']);
  const arg = argv.find((a) => a.startsWith('--parts='));
  if (!arg) return new Set(ALL_PARTS);
  const parts = arg.slice('--parts='.length).split(',').map((p) => p.trim());
  for (const p of parts) if (!ALL_PARTS.includes(p as Part)) throw new Error(`unknown bench part "${p}" (parts: ${ALL_PARTS.join(', ')})`);
  return new Set(parts as Part[]);
}

async function main(parts: Set<Part>): Promise<void> {
  const started = performance.now();
  const gc = getGc();
  const os = await import('node:os');
  log('mastra-task-bridge bench');
  log(`node ${process.version}, ${os.cpus().length} CPUs, load average ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}; gc between rounds: ${gc ? 'yes' : 'no (run via npm run bench)'}`);
  log('Wall-clock rates move with other load on the machine; the CPU-time figures (events per CPU-second) move less.');
  log('');
  const a = parts.has('a') ? await throughput(gc) : undefined;
  if (!a) log('(a) skipped');
  const mem = parts.has('b') ? await memory() : undefined;
  const mastra = parts.has('c') ? await mastraOverhead() : undefined;
  const remote = parts.has('r') ? await remoteMastraOverhead() : undefined;

  const result = {
    pipelineEventsPerSec: a ? Math.round(a.pipelineEps) : null,
    parseOnlyEventsPerSec: a ? Math.round(a.parseEps) : null,
    ratio: a ? Number(a.ratio.toFixed(3)) : null,
    bytesPerInflightTask: mem ? Math.round(mem.bytesPerInflightTask) : null,
    mastraOverheadRatio: mastra ? Number(mastra.ratio.toFixed(3)) : null,
    mastraRemoteOverheadRatio: remote ? Number(remote.ratio.toFixed(3)) : null,
  };
  log('');
  log('Summary');
  if (a && result.pipelineEventsPerSec !== null && result.parseOnlyEventsPerSec !== null && result.ratio !== null) {
    log(`  pipeline throughput      ${fmt(result.pipelineEventsPerSec).padStart(12)} events/s    goal ≥ ${fmt(GOALS.pipelineEventsPerSec)}   ${verdict(result.pipelineEventsPerSec >= GOALS.pipelineEventsPerSec)}`);
    log(`  pipeline per CPU-second  ${fmt(a.pipelineEpsCpu).padStart(12)} events/CPU-s`);
    log(`  parse-only throughput    ${fmt(result.parseOnlyEventsPerSec).padStart(12)} events/s    (reference)`);
    log(`  pipeline / parse-only    ${result.ratio.toFixed(3).padStart(12)}             goal ≥ ${GOALS.ratio}       ${verdict(result.ratio >= GOALS.ratio)}`);
  }
  if (result.bytesPerInflightTask !== null) {
    log(`  bytes per in-flight task ${fmt(result.bytesPerInflightTask).padStart(12)} bytes       goal ≤ ${fmt(GOALS.bytesPerInflightTask)}     ${verdict(result.bytesPerInflightTask <= GOALS.bytesPerInflightTask)}`);
  }
  if (result.mastraOverheadRatio !== null) {
    log(`  Mastra with/without      ${result.mastraOverheadRatio.toFixed(3).padStart(12)}             goal ≥ ${GOALS.mastraOverheadRatio}      ${verdict(result.mastraOverheadRatio >= GOALS.mastraOverheadRatio)}`);
  }
  if (result.mastraRemoteOverheadRatio !== null) {
    log(`  Mastra remote CPU ratio  ${result.mastraRemoteOverheadRatio.toFixed(3).padStart(12)}             goal ≥ ${GOALS.mastraOverheadRatio}      ${verdict(result.mastraRemoteOverheadRatio >= GOALS.mastraOverheadRatio)}`);
  }
  log(`  (total ${fmt((performance.now() - started) / 1000, 1)} s; load average now ${os.loadavg().map((x) => x.toFixed(2)).join(' ')})`);
  console.log(JSON.stringify(result));
}

async function memory(): Promise<MemoryResult> {
  log('');
  log('(b) Memory — child: node --expose-gc --import tsx bench/bench.ts --memory');
  log('    startBridge with config defaults (enrichment ON: getTask answered from memory with a fresh parse per lookup), 100k');
  log('    `running` frames, none finished; heapUsed delta after 2×gc() / 100k. The frames are built per batch and dropped.');
  const mem = await runChild<MemoryResult>('--memory', 'memory', 120_000);
  log(`    ${fmt(mem.bytesPerInflightTask)} bytes per in-flight task (${fmt(mem.bridgeOpen)} open, ${fmt(mem.lookups)} lookups)`);
  log(`    informational: a bare TaskTracker (no stored-record info, no enrichment cache): ${fmt(mem.trackerBytesPerInflightTask)} bytes per task`);
  const lp = mem.largePayload;
  log(
    `    large payloads (each getTask answer carries ${fmt(lp.payloadBytes / 1024)} KiB of args + result, ${fmt(lp.tasks)} tasks): ` +
      `${fmt(lp.bytesPerInflightTask)} bytes per in-flight task   goal ≤ ${fmt(GOALS.bytesPerInflightTask)}   ${verdict(lp.bytesPerInflightTask <= GOALS.bytesPerInflightTask)}`,
  );
  return mem;
}

async function mastraOverhead(): Promise<MastraResult> {
  log('');
  log('(c) Mastra overhead — child: node --expose-gc --import tsx bench/bench.ts --mastra');
  log('    createDemoMastra({ backgroundTasks: { globalConcurrency 50, perAgentConcurrency 50 } }) (InMemoryStore) per run,');
  log('    observability on (MastraStorageExporter, 5 s batch wait, + @mastra/otel-exporter to a discarding receiver here);');
  log(`    ${MASTRA_TASKS} quick tasks (dispatchQuickTask: 5 ms, 10% fail) dispatched at once; timed first dispatch → all terminal`);
  log('    (one counting stream subscriber in both arms). "with": startBridge({ mastra }) with config defaults (enrichment on,');
  log('    placement auto), spans to the serialising/discarding exporter. ABBA order, 6 runs per arm after a warm-up of each.');
  const receiver = await discardingOtlpReceiver();
  let mastra: MastraResult;
  try {
    mastra = await runChild<MastraResult>('--mastra', 'mastra', 300_000, { BENCH_OTLP_URL: receiver.url });
  } finally {
    await receiver.close();
  }
  log(`    OTLP requests received from Mastra: ${receiver.requests}`);
  log(`    median without: ${fmt(mastra.withoutMedian, 1)} tasks/s, with: ${fmt(mastra.withMedian, 1)} tasks/s; in CPU time per task: ${mastra.cpuRatio.toFixed(3)}`);
  return mastra;
}

async function remoteMastraOverhead(): Promise<RemoteResult> {
  log('');
  log('(r) Mastra overhead, remote — the demo Mastra server as its own process (bench/remote-mastra.ts): @mastra/hono,');
  log('    LibSQL file storage, observability on (MastraStorageExporter with Mastra\'s default 5 s batch wait, plus');
  log('    @mastra/otel-exporter over OTLP to a discarding receiver in this process), background concurrency 50.');
  log(`    Phases of ${REMOTE_RUNS} agent runs (scripted model, one quick research_topic call each), ${REMOTE_AT_ONCE} at a time; "with": a`);
  log(`    bridge in this process on RemoteSource over HTTP, config defaults (enrichment on, placement ${REMOTE_PARENT ?? 'auto'}), from before the`);
  log('    burst until it has finished every task. Figure: Mastra\'s own CPU (process.cpuUsage, reported by the server) per');
  log('    task over the phase incl. a final span flush. ABBA three times (6 phases per arm) after a warm-up of each; "without" waits as long after its burst as a bridge took to catch up; medians.');
  const r = await remoteOverhead();
  log(`    median Mastra CPU per task without: ${fmt(r.cpuWithout, 2)} ms, with: ${fmt(r.cpuWith, 2)} ms; ratio without/with ${r.ratio.toFixed(3)}`);
  return r;
}

async function child(flag: string): Promise<void> {
  const result = flag === '--memory' ? await memoryChild() : await mastraChild();
  console.log(RESULT_MARK + JSON.stringify(result));
}

// A safety net only: everything above closes what it opens; if a stray handle kept the process alive, say so and exit.
function exitSoon(code: number): void {
  process.exitCode = code;
  setTimeout(() => {
    console.error('bench: process still alive 5 s after finishing (a handle was left open); exiting');
    process.exit(code);
  }, 5_000).unref();
}

const flag = process.argv[2];
(flag === '--memory' || flag === '--mastra' ? child(flag) : main(partsFrom(process.argv.slice(2)))).then(
  () => exitSoon(0),
  (error: unknown) => {
    console.error('bench failed:', error);
    exitSoon(1);
  },
);
