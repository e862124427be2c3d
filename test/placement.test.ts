// PlacementResolver alone: a fake trace lookup, a clock and a sleep the test controls (no timers).
import { describe, expect, it, vi } from 'vitest';
import { DEFAULT_PLACEMENT, PlacementResolver } from '../src/placement.js';
import { runTraceId } from '../src/span-ids.js';
import type { SpanRef } from '../src/sources/types.js';
import { RunSpanFinder, type StoredSpan, type TraceReads, toolCallIdOf } from '../src/sources/mastra-traces.js';

const RUN_A = '11111111-1111-4111-8111-111111111111';
const RUN_B = '22222222-2222-4222-8222-222222222222';
const task = (runId: string, n: number) => ({ taskId: `task-${runId}-${n}`, runId, toolCallId: `call-${n}` });

function setup() {
  let clock = 1_000_000;
  const calls: string[] = [];
  const source = {
    async findToolCallSpan(runId: string): Promise<SpanRef | null | undefined> {
      calls.push(runId);
      return runId === RUN_B ? { traceId: 'b'.repeat(32), spanId: 'c'.repeat(16) } : null;
    },
  };
  const resolver = new PlacementResolver(source, DEFAULT_PLACEMENT, () => clock, async (ms) => void (clock += ms));
  return { resolver, calls, advance: (ms: number) => (clock += ms) };
}

describe('PlacementResolver (auto)', () => {
  it('a run whose span was never found: its other tasks fall back at once, without waiting out the retries', async () => {
    const { resolver, calls, advance } = setup();
    expect(resolver.immediate(task(RUN_A, 1))).toBeUndefined();
    expect(await resolver.resolve(task(RUN_A, 1))).toEqual({ traceId: runTraceId(RUN_A), origin: 'run' });
    expect(calls).toHaveLength(DEFAULT_PLACEMENT.attempts);
    expect(resolver.immediate(task(RUN_A, 2))).toEqual({ traceId: runTraceId(RUN_A), origin: 'run' });
    expect(await resolver.resolve(task(RUN_A, 3))).toEqual({ traceId: runTraceId(RUN_A), origin: 'run' });
    expect(calls).toHaveLength(DEFAULT_PLACEMENT.attempts);
    // Other runs are still looked up and placed under Mastra's span.
    expect(resolver.immediate(task(RUN_B, 1))).toBeUndefined();
    expect(await resolver.resolve(task(RUN_B, 1))).toEqual({ traceId: 'b'.repeat(32), parentSpanId: 'c'.repeat(16), origin: 'mastra' });
    // After a while the run is asked about again.
    advance(5 * 60_000 + 1);
    expect(resolver.immediate(task(RUN_A, 4))).toBeUndefined();
  });

  it('run and none modes never look anything up', async () => {
    for (const mode of ['run', 'none'] as const) {
      const calls: string[] = [];
      const resolver = new PlacementResolver({ findToolCallSpan: async (r: string) => { calls.push(r); return null; } }, { ...DEFAULT_PLACEMENT, mode });
      expect(resolver.immediate(task(RUN_A, 1))?.origin).toBe(mode === 'run' ? 'run' : 'task');
      expect((await resolver.resolve(task(RUN_A, 1))).origin).toBe(mode === 'run' ? 'run' : 'task');
      expect(calls).toEqual([]);
    }
  });
});

describe('RunSpanFinder (stored-trace reads shared per run)', () => {
  const span = (id: string, toolCallId: string, where: 'attributes' | 'metadata' = 'attributes') => ({
    traceId: 't'.repeat(32),
    spanId: id,
    spanType: 'tool_call',
    [where]: { toolCallId },
  });

  it('one matcher: attributes.toolCallId (Mastra ≥ 1.57), else metadata.toolCallId; other span types never match', () => {
    expect(toolCallIdOf(span('s1', 'c1'))).toBe('c1');
    expect(toolCallIdOf(span('s1', 'c1', 'metadata'))).toBe('c1');
    expect(toolCallIdOf({ ...span('s1', 'c1'), attributes: null, metadata: { toolCallId: 'c2' } })).toBe('c2');
    expect(toolCallIdOf({ ...span('s1', 'c1'), spanType: 'model_step' })).toBeUndefined();
    expect(toolCallIdOf({ spanType: 'tool_call', spanId: 's', attributes: {} })).toBeUndefined();
  });

  it('the run is read once for all its tasks; overlapping lookups share one read; a miss is read again later', async () => {
    const reads: string[] = [];
    let stored: ReturnType<typeof span>[] = [];
    let release: () => void = () => undefined;
    let held: Promise<void> | undefined;
    const finder = new RunSpanFinder({
      async runTraceIds(runId) {
        reads.push(`list ${runId}`);
        return stored.length > 0 ? ['t'.repeat(32)] : [];
      },
      async traceSpans(traceId) {
        reads.push(`trace ${traceId.slice(0, 4)}`);
        await held;
        return stored;
      },
    });
    // Not stored yet: each lookup asks (and the trace ids are not remembered).
    expect(await finder.find(RUN_A, 'c1')).toBeNull();
    expect(reads).toEqual([`list ${RUN_A}`]);
    stored = [span('s1', 'c1'), span('s2', 'c2', 'metadata'), span('s3', 'c3')];
    held = new Promise((r) => (release = r));
    const a = finder.find(RUN_A, 'c1');
    const b = finder.find(RUN_A, 'c2');
    await new Promise((r) => setImmediate(r));
    release();
    expect(await a).toEqual({ traceId: 't'.repeat(32), spanId: 's1' });
    expect(await b).toEqual({ traceId: 't'.repeat(32), spanId: 's2' });
    // The third task of the run costs nothing: its span was read with the others.
    expect(await finder.find(RUN_A, 'c3')).toEqual({ traceId: 't'.repeat(32), spanId: 's3' });
    expect(reads).toEqual([`list ${RUN_A}`, `list ${RUN_A}`, 'trace tttt']);
    // A tool call not in the trace yet: the trace is read again, its id list is not.
    expect(await finder.find(RUN_A, 'c4')).toBeNull();
    expect(reads.slice(3)).toEqual(['trace tttt']);
  });
});

describe('PlacementResolver first lookup', () => {
  // A fake store that holds each run's tool_call span from `storedAfterMs` after the task started, and says so in the
  // span (createdAt − startedAt), as Mastra's stored spans do.
  function store(storedAfterMs: number) {
    let clock = 1_000_000;
    const calls: number[] = [];
    const started = new Map<string, number>();
    const source = {
      async findToolCallSpan(runId: string): Promise<SpanRef | null> {
        calls.push(clock);
        return clock - started.get(runId)! >= storedAfterMs ? { traceId: 'a'.repeat(32), spanId: 'b'.repeat(16), storedAfterMs } : null;
      },
    };
    const resolver = new PlacementResolver(source, DEFAULT_PLACEMENT, () => clock, async (ms) => void (clock += ms));
    const quickTask = async (runId: string) => {
      started.set(runId, clock);
      clock += 100; // a quick task: ends 100 ms after it started
      calls.length = 0;
      const placed = await resolver.resolve({ taskId: `task-${runId}`, runId, toolCallId: 'c', startedAt: started.get(runId)!, completedAt: clock });
      return { placed, requests: calls.length, askedAfterMs: calls[0]! - started.get(runId)! };
    };
    return { resolver, quickTask };
  }

  it('waits Mastra\'s default batch delay before the first span is found, then the storage delay the spans report', async () => {
    const { resolver, quickTask } = store(2_000); // an app whose exporter writes within 2 s
    const first = await quickTask(RUN_A);
    expect(first).toMatchObject({ placed: { origin: 'mastra' }, requests: 1 });
    expect(first.askedAfterMs).toBeGreaterThanOrEqual(5_000);
    const second = await quickTask(RUN_B);
    expect(second).toMatchObject({ placed: { origin: 'mastra' }, requests: 1 });
    expect(second.askedAfterMs).toBeGreaterThanOrEqual(2_000);
    expect(second.askedAfterMs).toBeLessThan(5_000);
    expect(resolver.firstLookupDelayMs).toBeLessThan(5_000);
  });

  it('a slower store: the first task retries until found, the next one asks once, late enough', async () => {
    const { quickTask } = store(8_000);
    const first = await quickTask(RUN_A);
    expect(first.placed.origin).toBe('mastra');
    expect(first.requests).toBeGreaterThan(1);
    const second = await quickTask(RUN_B);
    expect(second).toMatchObject({ placed: { origin: 'mastra' }, requests: 1 });
    expect(second.askedAfterMs).toBeGreaterThanOrEqual(8_000);
  });
});

describe('RunSpanFinder: one root listing for the runs that ask together', () => {
  const RUN_C = '33333333-3333-4333-8333-333333333333';
  const trace = (run: string) => run.slice(0, 1).repeat(32);
  const root = (run: string, where: 'runId' | 'metadata' = 'metadata'): StoredSpan =>
    where === 'runId' ? { traceId: trace(run), spanId: 'r'.repeat(16), runId: run } : { traceId: trace(run), spanId: 'r'.repeat(16), metadata: { runId: run } };
  const toolCall = (run: string, n: number): StoredSpan => ({ traceId: trace(run), spanId: `${n}`.repeat(16), spanType: 'tool_call', attributes: { toolCallId: `call-${n}` } });

  function reads(listed: StoredSpan[] | undefined) {
    const log: string[] = [];
    const spans = new Map<string, StoredSpan[]>();
    const r: TraceReads = {
      async runTraceIds(runId) {
        log.push(`list ${runId.slice(0, 1)}`);
        return spans.has(trace(runId)) ? [trace(runId)] : [];
      },
      async traceSpans(traceId) {
        log.push(`trace ${traceId.slice(0, 1)}`);
        return spans.get(traceId) ?? [];
      },
      async recentRoots(from, to, limit) {
        log.push(`roots ${to.getTime() - from.getTime()} ${limit}`);
        return listed;
      },
    };
    return { r, log, spans };
  }

  it('runs that ask within the window share one listing; it also serves a run that asks later', async () => {
    const { r, log, spans } = reads([root(RUN_A), root(RUN_B, 'runId'), root(RUN_C)]);
    for (const run of [RUN_A, RUN_B, RUN_C]) spans.set(trace(run), [toolCall(run, 1)]);
    const finder = new RunSpanFinder(r, 5);
    const [a, b] = await Promise.all([finder.find(RUN_A, 'call-1', undefined, 1_000_000), finder.find(RUN_B, 'call-1', undefined, 1_000_400)]);
    expect(a).toEqual({ traceId: trace(RUN_A), spanId: '1'.repeat(16) });
    expect(b).toEqual({ traceId: trace(RUN_B), spanId: '1'.repeat(16) });
    // One listing from the earliest start less a minute to the latest, sized by the runs waiting; no list by runId.
    expect(log.filter((l) => l.startsWith('roots'))).toEqual([`roots ${60_000 + 400} 12`]);
    expect(log.filter((l) => l.startsWith('list'))).toEqual([]);
    // RUN_C was listed too: its task needs only the trace read.
    log.length = 0;
    expect(await finder.find(RUN_C, 'call-1', undefined, 1_000_800)).toEqual({ traceId: trace(RUN_C), spanId: '1'.repeat(16) });
    expect(log).toEqual(['trace 3']);
  });

  it('a run the listing does not show, or one whose span is not in the listed trace, is asked for by runId', async () => {
    const { r, log, spans } = reads([root(RUN_A)]);
    spans.set(trace(RUN_B), [toolCall(RUN_B, 1)]);
    const finder = new RunSpanFinder(r, 5);
    expect(await finder.find(RUN_B, 'call-1', undefined, 1_000_000)).toEqual({ traceId: trace(RUN_B), spanId: '1'.repeat(16) });
    expect(log).toEqual([`roots 60000 10`, 'list 2', 'trace 2']);
    // RUN_A's listed trace does not hold call-1 (yet): the next attempt asks for every trace of the run by runId.
    log.length = 0;
    expect(await finder.find(RUN_A, 'call-1', undefined, 1_000_000)).toBeNull();
    expect(log).toEqual(['trace 1']);
    spans.set(trace(RUN_A), [toolCall(RUN_A, 1)]);
    log.length = 0;
    expect(await finder.find(RUN_A, 'call-1', undefined, 1_000_000)).toEqual({ traceId: trace(RUN_A), spanId: '1'.repeat(16) });
    expect(log).toEqual(['list 1', 'trace 1']);
  });

  it('a store that cannot list roots by time is not asked again; without a start time nothing waits for a listing', async () => {
    const { r, log, spans } = reads(undefined);
    spans.set(trace(RUN_A), [toolCall(RUN_A, 1)]);
    spans.set(trace(RUN_B), [toolCall(RUN_B, 1)]);
    const finder = new RunSpanFinder(r, 5);
    expect(await finder.find(RUN_A, 'call-1', undefined, 1_000_000)).not.toBeNull();
    expect(await finder.find(RUN_B, 'call-1', undefined, 1_000_000)).not.toBeNull();
    expect(log).toEqual(['roots 60000 10', 'list 1', 'trace 1', 'list 2', 'trace 2']);
    const other = reads([root(RUN_A)]);
    other.spans.set(trace(RUN_A), [toolCall(RUN_A, 1)]);
    expect(await new RunSpanFinder(other.r, 5).find(RUN_A, 'call-1')).not.toBeNull();
    expect(other.log).toEqual(['list 1', 'trace 1']);
  });
});

describe('PlacementResolver when the bridge closes', () => {
  it('a task waiting for Mastra to store its span is placed by its fallback at once, and asks nothing', async () => {
    vi.useFakeTimers();
    try {
      const calls: string[] = [];
      const closing = new AbortController();
      const resolver = new PlacementResolver(
        { findToolCallSpan: async (runId: string) => { calls.push(runId); return null; } },
        { ...DEFAULT_PLACEMENT, closing: closing.signal },
      );
      let placed: unknown;
      // Just started: its first lookup is seconds away (Mastra's storage delay).
      const p = resolver.resolve({ ...task(RUN_A, 1), startedAt: Date.now() }).then((x) => (placed = x));
      await vi.advanceTimersByTimeAsync(100);
      expect(placed).toBeUndefined();
      closing.abort();
      await vi.advanceTimersByTimeAsync(0); // no timer runs out: only the abort can settle it
      await p;
      expect(placed).toEqual({ traceId: runTraceId(RUN_A), origin: 'run' });
      expect(calls).toEqual([]);
      // After close, nothing waits.
      expect(await resolver.resolve({ ...task(RUN_B, 1), startedAt: Date.now() })).toEqual({ traceId: runTraceId(RUN_B), origin: 'run' });
      expect(vi.getTimerCount()).toBe(0);
    } finally {
      vi.useRealTimers();
    }
  });

  it('between retries too: a miss, then the close, and no further lookup', async () => {
    vi.useFakeTimers();
    try {
      const calls: number[] = [];
      const closing = new AbortController();
      const resolver = new PlacementResolver(
        { findToolCallSpan: async () => { calls.push(Date.now()); return null; } },
        { ...DEFAULT_PLACEMENT, closing: closing.signal },
      );
      // Started a minute ago: asked at once, misses, then waits 250 ms for the retry.
      const p = resolver.resolve({ ...task(RUN_A, 1), startedAt: Date.now() - 60_000 });
      await vi.advanceTimersByTimeAsync(0);
      expect(calls).toHaveLength(1);
      closing.abort();
      expect(await p).toEqual({ traceId: runTraceId(RUN_A), origin: 'run' });
      expect(calls).toHaveLength(1);
      // Closed: every later task is placed at once, without a lookup.
      expect(resolver.immediate(task(RUN_B, 2))).toEqual({ traceId: runTraceId(RUN_B), origin: 'run' });
    } finally {
      vi.useRealTimers();
    }
  });
});
