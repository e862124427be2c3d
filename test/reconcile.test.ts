// Reconciliation against stored state, through a whole bridge on an in-memory source whose store the test controls
// (listTasks with Mastra's filters, ordering and paging): bounded paging of a burst, tasks that vanished upstream,
// pending counts. The end-to-end restart tests (remote-*.e2e) cover the same code against a real Mastra server.
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { type BridgeHandle, startBridge } from '../src/bridge.js';
import { Checkpoint } from '../src/checkpoint.js';
import { maxLagFor, Reconciler } from '../src/reconcile.js';
import { TaskTracker } from '../src/tracker.js';
import type { TaskRecord } from '../src/events.js';
import type { FinishedTask } from '../src/tracker.js';
import type { SourceSink, TaskPage, TaskQuery, TaskSource } from '../src/sources/types.js';
import { PresetIdGenerator, type Tracing } from '../src/telemetry.js';
import { scrape, total } from './support/metrics-text.js';
import { waitFor } from './support/poll.js';

const silent = pino({ level: 'silent' });
const T0 = Date.UTC(2026, 10, 25, 12, 0, 0);

/** A source over a store the test edits; the stream connects and then stays silent. */
class StoreSource implements TaskSource {
  readonly kind = 'remote' as const;
  readonly description = 'in-memory store';
  readonly records = new Map<string, TaskRecord>();
  readonly listCalls: TaskQuery[] = [];
  readonly getCalls: string[] = [];
  sink: SourceSink | undefined;
  /** When set, completedAt scan calls past this many wait for releaseScans() (so a timer pass cannot slip in). */
  holdScansAfter: number | undefined;
  private scans = 0;
  private release: () => void = () => undefined;
  private readonly released = new Promise<void>((resolve) => (this.release = resolve));

  releaseScans(): void {
    this.release();
  }

  async run(sink: SourceSink, signal: AbortSignal): Promise<void> {
    this.sink = sink;
    sink.connected();
    await new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }));
  }
  async getTask(id: string): Promise<TaskRecord | null> {
    this.getCalls.push(id);
    return this.records.get(id) ?? null;
  }
  async listTasks(q: TaskQuery): Promise<TaskPage> {
    if (q.dateFilterBy === 'completedAt' && this.holdScansAfter !== undefined && ++this.scans > this.holdScansAfter) await this.released;
    this.listCalls.push(q);
    const statuses = q.status === undefined ? undefined : Array.isArray(q.status) ? q.status : [q.status];
    const key = q.orderBy ?? 'createdAt';
    let tasks = [...this.records.values()].filter((t) => !statuses || statuses.includes(t.status));
    if (q.dateFilterBy && q.fromDate) tasks = tasks.filter((t) => (t[q.dateFilterBy!] ?? -Infinity) >= q.fromDate!.getTime());
    tasks.sort((a, b) => (a[key] ?? 0) - (b[key] ?? 0));
    const perPage = q.perPage ?? 100;
    const page = q.page ?? 0;
    return { tasks: tasks.slice(page * perPage, (page + 1) * perPage), total: tasks.length, invalid: 0 };
  }
  async findToolCallSpan(): Promise<undefined> {
    return undefined;
  }
}

function record(id: string, status: TaskRecord['status'], extra: Partial<TaskRecord> = {}): TaskRecord {
  return { id, status, toolName: 'research_topic', toolCallId: `call-${id}`, agentId: 'research-agent', runId: `run-${id}`, createdAt: T0 - 1000, ...extra };
}

describe('reconciliation', () => {
  let bridge: BridgeHandle | undefined;
  afterEach(async () => {
    await bridge?.close();
    bridge = undefined;
  });

  it('finds a burst of tasks that ended unseen, paging at most maxPages a pass, each counted once', async () => {
    const source = new StoreSource();
    source.holdScansAfter = 5; // the first pass's page budget; later passes wait until the test has looked at it
    for (let i = 0; i < 250; i++) {
      source.records.set(`t${i}`, record(`t${i}`, i % 5 === 0 ? 'failed' : 'completed', { startedAt: T0 + i, completedAt: T0 + 1000 + i, error: i % 5 === 0 ? { message: 'x' } : undefined }));
    }
    bridge = startBridge({
      source,
      logger: silent,
      now: () => T0,
      config: { otel: { tracesExporter: 'none' }, metrics: { defaultMetrics: false }, enrichment: { enabled: false }, reconcile: { intervalSeconds: 1, perPage: 20, maxPages: 5 } },
    });
    await bridge.whenReady(5_000);
    await bridge.idle();
    const scanCalls = () => source.listCalls.filter((q) => q.dateFilterBy === 'completedAt');
    // The first pass stops at its page budget.
    expect(scanCalls()).toHaveLength(5);
    expect(scanCalls().every((q) => q.perPage === 20)).toBe(true);
    expect(total(await scrape(bridge.app), 'mastra_background_task_finished_total')).toBe(100);
    // Later passes continue where it stopped.
    source.releaseScans();
    await waitFor(async () => total(await scrape(bridge!.app), 'mastra_background_task_finished_total') === 250, { timeoutMs: 15_000, message: "all 250 counted" });
    const callsAtEnd = scanCalls().length;
    await waitFor(() => scanCalls().length > callsAtEnd + 1, { timeoutMs: 5_000, message: 'another pass' });
    const s = await scrape(bridge.app);
    expect(total(s, 'mastra_background_task_finished_total')).toBe(250);
    expect(total(s, 'mastra_background_task_finished_total', { status: 'failed' })).toBe(50);
    expect(total(s, 'mastra_task_bridge_reconciled_total', { status: 'completed' })).toBe(200);
    expect(total(s, 'mastra_task_bridge_reconciled_total', { status: 'failed' })).toBe(50);
  });

  it('resolves open tasks that vanished upstream: the stored terminal status, or TaskLostError when unknown twice', async () => {
    const source = new StoreSource();
    const finished: FinishedTask[] = [];
    bridge = startBridge({
      source,
      logger: silent,
      sinks: [{ finished: (t) => void finished.push(t) }],
      config: { otel: { tracesExporter: 'none' }, metrics: { defaultMetrics: false }, enrichment: { enabled: false }, reconcile: { intervalSeconds: 1 } },
    });
    await bridge.whenReady(5_000);
    const now = Date.now();
    for (const id of ['recovered', 'lost']) {
      source.sink!.chunk({ type: 'background-task-running', payload: { taskId: id, toolName: 'research_topic', toolCallId: `call-${id}`, agentId: 'research-agent', runId: `run-${id}`, startedAt: new Date(now - 500), args: {} } });
    }
    // Mastra's restart recovery rewrote one in storage, without an event; the other is gone from storage.
    source.records.set('recovered', record('recovered', 'failed', { startedAt: now - 500, completedAt: now, error: { message: 'Worker process terminated before task completed' } }));
    await waitFor(() => finished.length === 2, { timeoutMs: 10_000, message: 'both resolved' });
    const recovered = finished.find((t) => t.taskId === 'recovered')!;
    expect(recovered).toMatchObject({ status: 'failed', completedAt: now, startedAt: now - 500, origin: 'reconciled' });
    expect(recovered.error?.message).toBe('Worker process terminated before task completed');
    const lost = finished.find((t) => t.taskId === 'lost')!;
    expect(lost.status).toBe('failed');
    expect(lost.error?.stack).toMatch(/^TaskLostError/);
    expect(source.getCalls.filter((id) => id === 'lost').length).toBeGreaterThanOrEqual(2);
    const s = await scrape(bridge.app);
    expect(total(s, 'mastra_background_task_finished_total', { status: 'failed' })).toBe(2);
    expect(total(s, 'mastra_background_tasks', { status: 'running' })).toBe(0);
  });

  it('publishes stored pending and suspended tasks (they send no event) in mastra_background_tasks', async () => {
    const source = new StoreSource();
    for (let i = 0; i < 3; i++) source.records.set(`p${i}`, record(`p${i}`, 'pending'));
    source.records.set('s0', record('s0', 'suspended', { startedAt: T0, suspendedAt: T0 + 10 }));
    bridge = startBridge({ source, logger: silent, config: { otel: { tracesExporter: 'none' }, metrics: { defaultMetrics: false }, enrichment: { enabled: false } } });
    await bridge.whenReady(5_000);
    await waitFor(async () => total(await scrape(bridge!.app), 'mastra_background_tasks', { status: 'pending' }) === 3, { message: 'pending counted' });
    const s = await scrape(bridge.app);
    expect(total(s, 'mastra_background_tasks', { status: 'suspended' })).toBe(1);
    expect(total(s, 'mastra_task_bridge_reconciled_total', { status: 'suspended' })).toBe(1);
  });

  it('counts a failing step and stays ready', async () => {
    const source = new StoreSource();
    let fail = true;
    const list = source.listTasks.bind(source);
    source.listTasks = async (q) => {
      if (fail && q.dateFilterBy === 'completedAt') throw new Error('upstream 503');
      return list(q);
    };
    bridge = startBridge({ source, logger: silent, config: { otel: { tracesExporter: 'none' }, metrics: { defaultMetrics: false }, reconcile: { intervalSeconds: 1 } } });
    await bridge.whenReady(5_000);
    expect(total(await scrape(bridge.app), 'mastra_task_bridge_reconcile_failures_total')).toBeGreaterThanOrEqual(1);
    fail = false;
    expect((await bridge.app.inject({ method: 'GET', url: '/readyz' })).statusCode).toBe(200);
  });
});

describe('stored tasks dated ahead of the bridge clock, read back on every pass', () => {
  const bridges: BridgeHandle[] = [];
  afterEach(async () => {
    for (const b of bridges.splice(0)) await b.close();
  });

  function memoryTracing(exporter: InMemorySpanExporter): Tracing {
    const ids = new PresetIdGenerator();
    const provider = new NodeTracerProvider({ idGenerator: ids, spanProcessors: [new SimpleSpanProcessor(exporter)] });
    return { tracer: provider.getTracer('test'), ids, exporting: true, forceFlush: () => provider.forceFlush(), shutdown: () => provider.shutdown() };
  }

  // The completedAt scan has no upper date, so a record dated 2999 comes back on every pass and on every start; a
  // finished record dated ahead of the clock at all is read back until the scan passes its completedAt, longer than
  // the tracker remembers finished ids (15 minutes from when it saw the task). Applied again after that, a task would
  // be finished a second time: a second span and terminal count.
  it('each task gets at most one span and one terminal count, over 40 minutes of passes and a restart', async () => {
    let clock = T0;
    const source = new StoreSource();
    const exporter = new InMemorySpanExporter();
    const finished: string[] = [];
    const year2999 = Date.UTC(2999, 0, 1);
    const skewed = T0 + 10 * 60_000; // a replica whose clock runs 10 minutes ahead (the tolerance is 5)
    const start = () => {
      const b = startBridge({
        source,
        logger: silent,
        now: () => clock,
        sinks: [{ finished: (t) => void finished.push(`${t.taskId} ${t.origin}`) }],
        tracing: memoryTracing(exporter),
        // Passes run when the test asks (reconcileNow), on the clock it moves.
        config: { metrics: { defaultMetrics: false }, enrichment: { enabled: false }, reconcile: { intervalSeconds: 86_400 } },
      });
      bridges.push(b);
      return b;
    };
    // Ended unseen, only in storage: dated 2999, and dated by the fast clock.
    source.records.set('stored2999', record('stored2999', 'completed', { startedAt: T0 - 500, completedAt: year2999 }));
    source.records.set('storedSkewed', record('storedSkewed', 'cancelled', { startedAt: T0 - 500, completedAt: skewed }));
    const bridge = start();
    await waitFor(() => source.sink !== undefined, { message: 'the source runs' });
    // Ended on the stream (its events come first, as in life), stored likewise.
    for (const [id, at] of [['streamed2999', year2999], ['streamedSkewed', skewed]] as const) {
      const identity = { taskId: id, toolName: 'research_topic', toolCallId: `call-${id}`, agentId: 'research-agent', runId: `run-${id}` };
      source.sink!.chunk({ type: 'background-task-running', payload: { ...identity, startedAt: new Date(T0 - 500), args: {} } });
      source.sink!.chunk({ type: 'background-task-failed', payload: { ...identity, completedAt: new Date(at), error: { message: 'x' } } });
    }
    await bridge.whenReady(5_000);
    await bridge.idle();
    source.records.set('streamed2999', record('streamed2999', 'failed', { startedAt: T0 - 500, completedAt: year2999, error: { message: 'x' } }));
    source.records.set('streamedSkewed', record('streamedSkewed', 'failed', { startedAt: T0 - 500, completedAt: skewed, error: { message: 'x' } }));
    const scans = () => source.listCalls.filter((q) => q.dateFilterBy === 'completedAt').length;
    const passes = async (b: BridgeHandle, fromMinute: number, toMinute: number) => {
      // A pass a minute, pruning finished ids as the bridge's timer does.
      for (let minute = fromMinute; minute <= toMinute; minute++) {
        clock = T0 + minute * 60_000;
        b.tracker.prune(clock);
        const before = scans();
        await b.reconcileNow();
        expect(scans()).toBe(before + 1);
      }
      await b.idle();
    };
    await passes(bridge, 0, 40);
    expect(bridge.tracker.tombstoneCount).toBe(0); // the dedupe window has long passed: only the reconciler remembers
    // The skewed stored task is counted once it is due (within the tolerance), at minute 5; the one dated 2999 never
    // (it would be a span ending in 2999 and a 973-year duration), but counted as an outlier.
    expect(finished).toEqual(['streamed2999 event', 'streamedSkewed event', 'storedSkewed reconciled']);
    const spansOf = (id: string) => exporter.getFinishedSpans().filter((sp) => sp.attributes['mastra.background_task.id'] === id).length;
    expect(['stored2999', 'streamed2999', 'storedSkewed', 'streamedSkewed'].map(spansOf)).toEqual([0, 1, 1, 1]);
    const s = await scrape(bridge.app);
    expect(total(s, 'mastra_background_task_finished_total', { status: 'completed' })).toBe(0);
    expect(total(s, 'mastra_background_task_finished_total', { status: 'failed' })).toBe(2);
    expect(total(s, 'mastra_background_task_finished_total', { status: 'cancelled' })).toBe(1);
    expect(total(s, 'mastra_task_bridge_reconciled_total')).toBe(1); // storedSkewed, once
    expect(total(s, 'mastra_task_bridge_future_timestamps_total', { where: 'reconcile' })).toBe(4); // once per task

    // A new bridge process (no checkpoint) starts from now: the records dated 2999 are read again, and not applied.
    await bridge.close();
    bridges.splice(0);
    finished.length = 0;
    const restarted = start();
    await restarted.whenReady(5_000);
    await passes(restarted, 41, 60);
    expect(finished).toEqual([]);
    expect(total(await scrape(restarted.app), 'mastra_task_bridge_future_timestamps_total', { where: 'reconcile' })).toBe(2);
  });
});

describe('Reconciler on its own (a real tracker, a store, a clock the test moves)', () => {
  function setup(opts: { perPage: number; maxPages: number }) {
    let clock = T0;
    const source = new StoreSource();
    const tracker = new TaskTracker({ dedupeWindowMs: 15 * 60_000 });
    const finished: string[] = [];
    const warnings: string[] = [];
    let failures = 0;
    const logger = pino({ level: 'warn' }, { write: (l: string) => void warnings.push(JSON.parse(l).msg) });
    const reconciler = new Reconciler(
      {
        source,
        tracker,
        logger,
        now: () => clock,
        scanFrom: T0,
        pipeline: {
          reconcile: (record) => {
            const out = tracker.reconcile(record, clock);
            for (const t of out.transitions) if (t.type === 'finished') finished.push(t.task.taskId);
            return out.transitions;
          },
        },
        metrics: { reconciled: () => undefined, reconcileFailed: () => void failures++, futureTimestamp: () => undefined },
      },
      { perPage: opts.perPage, maxPages: opts.maxPages, overlapMs: 60_000, maxLookups: 10, maxLagMs: maxLagFor(15 * 60_000) },
    );
    return { source, tracker, reconciler, finished, warnings, failures: () => failures, setClock: (t: number) => (clock = t) };
  }

  it('a completed scan that fell behind never reads back past the dedupe window (it would count stream-finished tasks again)', async () => {
    const { source, tracker, reconciler, finished, warnings, failures, setClock } = setup({ perPage: 10, maxPages: 1 });
    // 300 tasks finish over 5 minutes, every one seen on the stream.
    for (let i = 0; i < 300; i++) {
      const at = T0 + i * 1000;
      source.records.set(`s${i}`, record(`s${i}`, 'completed', { startedAt: at - 10, completedAt: at }));
      tracker.apply({ kind: 'completed', taskId: `s${i}`, toolName: 'research_topic', toolCallId: `call-s${i}`, agentId: 'research-agent', runId: `run-s${i}`, at }, at);
    }
    setClock(T0 + 300_000);
    await reconciler.pass(); // 10 records a pass: far behind, all duplicates so far
    expect(finished).toEqual([]);
    // 30 minutes later every tombstone has expired, and the scan is still minutes behind.
    setClock(T0 + 30 * 60_000);
    tracker.prune(T0 + 30 * 60_000);
    expect(tracker.tombstoneCount).toBe(0);
    await reconciler.pass();
    const scans = source.listCalls.filter((q) => q.dateFilterBy === 'completedAt');
    expect(scans.at(-1)!.fromDate!.getTime()).toBeGreaterThanOrEqual(T0 + 30 * 60_000 - maxLagFor(15 * 60_000));
    expect(finished).toEqual([]); // none counted twice
    expect(warnings.some((w) => w.startsWith('completed-task scan fell behind'))).toBe(true);
    expect(failures()).toBe(1);
  });

  it('a pass asked for while one runs gets a fresh pass after it (a reconnect must not reuse pre-gap reads)', async () => {
    const { source, reconciler, finished } = setup({ perPage: 100, maxPages: 10 });
    // The first pass's last step (pending tasks) waits until the test releases it: its completedAt scan is done.
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    const list = source.listTasks.bind(source);
    let held = 0;
    source.listTasks = async (q) => {
      if (q.status === 'pending' && held++ === 0) await released;
      return list(q);
    };
    const first = reconciler.pass();
    await waitFor(() => held === 1, { message: 'first pass past its completed scan' });
    // The gap: a task starts and ends after the first pass read storage (e.g. while the stream was down).
    source.records.set('gap', record('gap', 'completed', { startedAt: T0 + 5, completedAt: T0 + 10 }));
    const second = reconciler.pass();
    expect(reconciler.pass()).toBe(second); // one queued pass, shared by every call meanwhile
    release();
    await first;
    expect(finished).toEqual([]);
    await second;
    expect(source.listCalls.filter((q) => q.dateFilterBy === 'completedAt')).toHaveLength(2);
    expect(finished).toEqual(['gap']);
  });
});

describe('checkpoint file', () => {
  const dirs: string[] = [];
  const tmp = () => {
    const d = mkdtempSync(join(tmpdir(), 'checkpoint-'));
    dirs.push(d);
    return d;
  };
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  it('round-trips the watermark and the exported ids inside the window', () => {
    const path = join(tmp(), 'state', 'cp.jsonl');
    const cp = new Checkpoint(path, 60_000);
    expect(cp.load()).toBeUndefined();
    cp.record([{ taskId: 'old', completedAt: T0 - 120_000 }]);
    cp.record([
      { taskId: 'a', completedAt: T0 - 1000 },
      { taskId: 'b', completedAt: T0 },
    ]);
    const loaded = new Checkpoint(path, 60_000).load()!;
    expect(loaded.watermark).toBe(T0);
    expect([...loaded.exported.keys()].sort()).toEqual(['a', 'b']);
  });

  it('keeps its creation time: the backfill never reaches before the first start, even with nothing exported', () => {
    const path = join(tmp(), 'cp.jsonl');
    const cp = new Checkpoint(path, 60_000);
    expect(cp.load()).toBeUndefined();
    cp.create(T0);
    const empty = new Checkpoint(path, 60_000);
    const state = empty.load()!;
    expect(state).toMatchObject({ watermark: 0, createdAt: T0 });
    expect(empty.backfillFrom(state)).toBe(T0);
    empty.record([{ taskId: 'a', completedAt: T0 + 30_000 }]);
    expect(empty.backfillFrom(new Checkpoint(path, 60_000).load()!)).toBe(T0); // watermark - window is before it
    empty.record([{ taskId: 'b', completedAt: T0 + 600_000 }]);
    expect(empty.backfillFrom(new Checkpoint(path, 60_000).load()!)).toBe(T0 + 540_000);
    // A file written before createdAt was kept: its watermark, or no backfill at all when it has none.
    const legacy = join(tmp(), 'legacy.jsonl');
    writeFileSync(legacy, '{"format":"mastra-task-bridge-checkpoint","version":1,"watermark":0}\n');
    const old = new Checkpoint(legacy, 60_000);
    expect(old.backfillFrom(old.load()!)).toBeUndefined();
  });

  it('a restart after a run that exported nothing backfills what finished while it was down, not what finished before it ever ran', async () => {
    const path = join(tmp(), 'cp.jsonl');
    const source = new StoreSource();
    source.records.set('before', record('before', 'completed', { startedAt: T0 - 3_600_000, completedAt: T0 - 3_500_000 }));
    const config = { otel: { tracesExporter: 'none' as const }, metrics: { defaultMetrics: false }, enrichment: { enabled: false }, state: { checkpointFile: path } };
    const first = startBridge({ source, logger: silent, now: () => T0, config });
    await first.whenReady(5_000);
    await first.idle();
    expect(total(await scrape(first.app), 'mastra_background_task_finished_total')).toBe(0);
    await first.close();
    source.records.set('down', record('down', 'completed', { startedAt: T0 + 10_000, completedAt: T0 + 20_000 }));
    const second = startBridge({ source, logger: silent, now: () => T0 + 60_000, config });
    try {
      await second.whenReady(5_000);
      await second.idle();
      const s = await scrape(second.app);
      expect(total(s, 'mastra_background_task_finished_total')).toBe(1);
      expect(total(s, 'mastra_task_bridge_reconciled_total', { status: 'completed' })).toBe(1);
    } finally {
      await second.close();
    }
  });

  it('ignores a torn last line, refuses a file that is not a checkpoint, compacts atomically', () => {
    const dir = tmp();
    const path = join(dir, 'cp.jsonl');
    const cp = new Checkpoint(path, 60_000);
    cp.record([{ taskId: 'a', completedAt: T0 }]);
    cp.record([{ taskId: 'b', completedAt: T0 + 1 }]);
    writeFileSync(path, `${readFileSync(path, 'utf8')}{"id":"c","c":`);
    expect([...new Checkpoint(path, 60_000).load()!.exported.keys()].sort()).toEqual(['a', 'b']);

    const other = join(dir, 'other.json');
    writeFileSync(other, '{"hello":"world"}\n');
    expect(() => new Checkpoint(other, 60_000).load()).toThrow(/not a mastra-task-bridge checkpoint/);

    cp.compact();
    expect(readdirSync(dir).sort()).toEqual(['cp.jsonl', 'other.json']);
    expect(new Checkpoint(path, 60_000).load()!.exported.size).toBe(2);
  });
});
