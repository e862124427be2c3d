// The scrape at its capped maximum (issue 10, must fix 1): (agent_id, tool_name) pairs are capped, the rest fold into
// `_other` and are counted, nothing is lost from the totals, and the sliced render (src/exposition.ts) gives what
// prom-client's own registry.metrics() gives. Also the prom-client fast path's visible fallback (src/prom-fast.ts).
import { afterEach, describe, expect, it, vi } from 'vitest';
import { FINAL_STATUSES } from '../src/events.js';
import { BridgeMetrics, DEFAULT_MAX_SERIES, OVERFLOW_LABEL_VALUE } from '../src/metrics.js';
import { promFastPathActive, promFastPathStatus, resetPromFastPath } from '../src/prom-fast.js';

const OM = 'application/openmetrics-text; version=1.0.0';

function sample(body: string, name: string, labels: string): number {
  const line = body.split('\n').find((l) => l.startsWith(`${name}{${labels}}`) || (labels === '' && l.startsWith(`${name} `)));
  return line === undefined ? Number.NaN : Number(line.split(' ')[1]);
}
function sum(body: string, name: string): number {
  return body
    .split('\n')
    .filter((l) => l.startsWith(`${name}{`))
    .reduce((acc, l) => acc + Number(l.split('} ')[1]!.split(' ')[0]), 0);
}
/** Sample lines, sorted (order within a family carries no meaning), without # comments. */
const samples = (body: string): string[] => body.split('\n').filter((l) => l !== '' && !l.startsWith('#')).sort();

afterEach(() => {
  resetPromFastPath();
  vi.useRealTimers();
});

describe('BridgeMetrics at the series cap', () => {
  it('keeps at most maxSeries + 1 pairs of 200 × 200 offered, folds and counts the rest, and loses no task', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(Date.parse('2026-12-01T00:00:00Z'));
    const m = new BridgeMetrics({ version: 'x', defaultMetrics: false, maxLabelValues: 200 });
    let n = 0;
    for (let a = 0; a < 200; a++) {
      for (let t = 0; t < 200; t++) {
        const status = FINAL_STATUSES[n % 4]!;
        const hex = (++n).toString(16).padStart(32, '0');
        m.taskStarted(`agent-${a}`, `tool_${t}`);
        m.queueWaited(`agent-${a}`, `tool_${t}`, (n % 100) / 100);
        m.taskFinished(`agent-${a}`, `tool_${t}`, status, (n % 600) / 3, { traceId: hex, spanId: hex.slice(16) });
      }
    }
    const body = (await m.render(OM)).body;
    const pairs = new Set(
      body
        .split('\n')
        .filter((l) => l.startsWith('mastra_background_task_started_total{'))
        .map((l) => l.slice(0, l.indexOf('}'))),
    );
    expect(pairs.size).toBe(DEFAULT_MAX_SERIES + 1);
    expect(sample(body, 'mastra_background_task_started_total', `agent_id="${OVERFLOW_LABEL_VALUE}",tool_name="${OVERFLOW_LABEL_VALUE}"`)).toBe(40_000 - DEFAULT_MAX_SERIES);
    // Counted per folded occurrence, as the per-label folds are: three calls per folded task here.
    expect(sample(body, 'mastra_task_bridge_label_overflow_total', 'label="series"')).toBe(3 * (40_000 - DEFAULT_MAX_SERIES));
    expect(sample(body, 'mastra_task_bridge_label_overflow_total', 'label="agent_id"')).toBe(0);
    // Every task is counted once, wherever it folded.
    expect(sum(body, 'mastra_background_task_started_total')).toBe(40_000);
    expect(sum(body, 'mastra_background_task_finished_total')).toBe(40_000);
    expect(sum(body, 'mastra_background_task_duration_seconds_count')).toBe(40_000);
    expect(sum(body, 'mastra_background_task_queue_wait_seconds_count')).toBe(40_000);
    // The sliced render is what prom-client renders from the same registry, line for line.
    expect(samples(body)).toEqual(samples(await m.registry.metrics()));
    // And the next scrape (nothing new) is the same.
    expect(samples((await m.render(OM)).body)).toEqual(samples(body));
    expect(samples((await m.render(undefined)).body)).toEqual(samples(await (m.registry.setContentType('text/plain; version=0.0.4; charset=utf-8' as never), m.registry.metrics())));
  });

  it('folds a new pair into (agent, _other) when that pair exists, and open-task gauges follow the fold', async () => {
    const open: { agentId: string; toolName: string; phase: 'running'; count: number }[] = [];
    const m = new BridgeMetrics({ version: 'x', defaultMetrics: false, maxLabelValues: 2, maxSeries: 3, openTasks: () => open });
    m.taskStarted('a', 't1');
    m.taskStarted('a', 't2');
    m.taskStarted('a', 't3'); // tool label past its 2 values: (a, _other), the third pair
    m.taskStarted('a', 't1b'); // a new tool value is also past the label cap: (a, _other)
    m.taskStarted('b', 't1'); // a new pair past the pair cap, (b, _other) does not exist: (_other, _other)
    open.push({ agentId: 'b', toolName: 't1', phase: 'running', count: 2 }, { agentId: 'a', toolName: 't2', phase: 'running', count: 1 });
    const body = (await m.render(undefined)).body;
    expect(sample(body, 'mastra_background_task_started_total', 'agent_id="a",tool_name="_other"')).toBe(2);
    expect(sample(body, 'mastra_background_task_started_total', 'agent_id="_other",tool_name="_other"')).toBe(1);
    expect(sample(body, 'mastra_task_bridge_label_overflow_total', 'label="series"')).toBe(1);
    expect(sample(body, 'mastra_background_tasks', 'agent_id="_other",tool_name="_other",status="running"')).toBe(2);
    expect(sample(body, 'mastra_background_tasks', 'agent_id="a",tool_name="t2",status="running"')).toBe(1);
    expect(body).not.toContain('agent_id="b"');
  });
});

describe('prom-client fast path (src/prom-fast.ts)', () => {
  it('is active on the pinned prom-client, and its fallback renders the same samples, counted', async () => {
    expect(promFastPathActive()).toBe(true);
    const traffic = (m: BridgeMetrics): void => {
      for (let i = 0; i < 50; i++) {
        const hex = (i + 1).toString(16).padStart(32, '0');
        m.taskFinished(`agent-${i % 3}`, `tool-${i % 5}`, FINAL_STATUSES[i % 4]!, i === 7 ? undefined : i * 13.7, i % 3 === 0 ? undefined : { traceId: hex, spanId: hex.slice(16) });
        m.queueWaited(`agent-${i % 3}`, `tool-${i % 5}`, i / 10);
      }
    };
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(Date.parse('2026-12-01T00:00:00Z'));
    const fast = new BridgeMetrics({ version: 'x', defaultMetrics: false });
    traffic(fast);
    const fastBody = (await fast.render(OM)).body;
    const warnings: string[] = [];
    const onWarning = (w: Error): void => void warnings.push(w.message);
    process.on('warning', onWarning);
    try {
      resetPromFastPath({ active: false, reason: 'forced by test' });
      const slow = new BridgeMetrics({ version: 'x', defaultMetrics: false });
      traffic(slow);
      expect(samples((await slow.render(OM)).body)).toEqual(samples(fastBody));
      const status = promFastPathStatus();
      expect(status).toMatchObject({ active: false, reason: 'forced by test' });
      expect(status.fallbacks).toBe(50);
      await vi.waitFor(() => expect(warnings.filter((w) => w.includes('forced by test'))).toHaveLength(1));
    } finally {
      process.off('warning', onWarning);
    }
  });
});
