// PlacementResolver alone: a fake trace lookup, a clock and a sleep the test controls (no timers).
import { describe, expect, it } from 'vitest';
import { DEFAULT_PLACEMENT, PlacementResolver } from '../src/placement.js';
import { runTraceId } from '../src/span-ids.js';
import type { SpanRef } from '../src/sources/types.js';

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
