// PlacementResolver alone: a fake trace lookup, a clock and a sleep the test controls (no timers).
import { describe, expect, it } from 'vitest';
import { DEFAULT_PLACEMENT, PlacementResolver } from '../src/placement.js';
import { runTraceId } from '../src/span-ids.js';
import type { SpanRef } from '../src/sources/types.js';
import { RunSpanFinder, toolCallIdOf } from '../src/sources/mastra-traces.js';

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
