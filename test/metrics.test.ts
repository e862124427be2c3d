// The metric module alone: exposition in both formats, counter names that survive format switching, bounded labels,
// series that start at 0, and promtool's linter on the text rendering.
import { describe, expect, it } from 'vitest';
import { BridgeMetrics, METRIC_NAMES, wantsOpenMetrics } from '../src/metrics.js';
import { TaskTracker } from '../src/tracker.js';
import { promtool } from './support/prometheus.js';

const OM = 'application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1';

function withTraffic(opts: Partial<ConstructorParameters<typeof BridgeMetrics>[0]> = {}): BridgeMetrics {
  const m = new BridgeMetrics({ version: '1.2.3', defaultMetrics: false, ...opts });
  m.taskStarted('agent-a', 'tool-x');
  m.taskFinished('agent-a', 'tool-x', 'failed', 1.5, { traceId: 'a'.repeat(32), spanId: 'b'.repeat(16) });
  m.taskFinished('agent-a', 'tool-x', 'completed', 0.2);
  m.queueWaited('agent-a', 'tool-x', 0.01);
  m.resumedAfter('agent-a', 'tool-x', 42);
  m.outputChunk('agent-a', 'tool-x');
  m.event('running', 'applied', 1_700_000_000);
  m.sourceUp(true);
  m.sourceReconnect('refused');
  return m;
}

describe('BridgeMetrics', () => {
  it('negotiates OpenMetrics only when asked', () => {
    expect(wantsOpenMetrics(OM)).toBe(true);
    expect(wantsOpenMetrics('text/plain')).toBe(false);
    expect(wantsOpenMetrics(undefined)).toBe(false);
    expect(wantsOpenMetrics('application/openmetrics-text;q=0')).toBe(false);
  });

  it('renders OpenMetrics with exemplars on the finished counter and duration histogram', async () => {
    const { contentType, body } = await withTraffic().render(OM);
    expect(contentType).toContain('application/openmetrics-text');
    expect(body.trimEnd().endsWith('# EOF')).toBe(true);
    expect(body).toMatch(/mastra_background_task_finished_total\{agent_id="agent-a",tool_name="tool-x",status="failed"\} 1 # \{trace_id="a{32}",span_id="b{16}"\} 1 \d/);
    expect(body).toMatch(/mastra_background_task_duration_seconds_bucket\{le="2\.5",agent_id="agent-a",tool_name="tool-x",status="failed"\} 1 # \{trace_id="a{32}",span_id="b{16}"\} 1\.5/);
  });

  it('a finish without a span keeps the last real exemplar and never renders an empty one', async () => {
    const m = withTraffic();
    m.taskFinished('agent-a', 'tool-x', 'failed', 1.6); // e.g. spans not exported
    m.taskFinished('agent-a', 'tool-x', 'cancelled', 0.1);
    const { body } = await m.render(OM);
    expect(body).toMatch(/mastra_background_task_finished_total\{agent_id="agent-a",tool_name="tool-x",status="failed"\} 2 # \{trace_id="a{32}",span_id="b{16}"\} 1 \d/);
    expect(body).toMatch(/mastra_background_task_finished_total\{agent_id="agent-a",tool_name="tool-x",status="cancelled"\} 1\n/);
    expect(body).not.toContain('# {}');
  });

  it('keeps `_total` on counters in text format after an OpenMetrics render (prom-client renames in place)', async () => {
    const m = withTraffic();
    await m.render(OM);
    const [text, om] = await Promise.all([m.render('text/plain'), m.render(OM)]);
    expect(text.contentType).toContain('text/plain');
    expect(text.body).toContain('# TYPE mastra_background_task_started_total counter');
    expect(text.body).toContain('mastra_background_task_started_total{agent_id="agent-a",tool_name="tool-x"} 1');
    expect(text.body).not.toContain(' # {trace_id');
    expect(om.body).toContain('# TYPE mastra_background_task_started counter');
  });

  it('starts every status of a known agent/tool at 0, and pre-initialises event series', async () => {
    const m = new BridgeMetrics({ version: 'x', defaultMetrics: false });
    m.touch('agent-b', 'tool-y');
    const { body } = await m.render('text/plain');
    for (const status of ['completed', 'failed', 'timed_out', 'cancelled']) {
      expect(body).toContain(`mastra_background_task_finished_total{agent_id="agent-b",tool_name="tool-y",status="${status}"} 0`);
    }
    expect(body).toContain('mastra_task_bridge_events_total{event="failed",result="invalid"} 0');
    expect(body).toContain('mastra_task_bridge_source_up 0');
  });

  it('folds label values past the limit into _other and counts it', async () => {
    const m = new BridgeMetrics({ version: 'x', defaultMetrics: false, maxLabelValues: 2 });
    for (const tool of ['t1', 't2', 't3', 't4']) m.taskStarted('agent', tool);
    const { body } = await m.render('text/plain');
    expect(body).toContain('mastra_background_task_started_total{agent_id="agent",tool_name="_other"} 2');
    expect(body).toContain('mastra_task_bridge_label_overflow_total{label="tool_name"} 2');
    expect(body).not.toContain('tool_name="t3"');
  });

  it('computes open-task gauges at scrape time from the tracker', async () => {
    const tracker = new TaskTracker();
    const t0 = 1_000_000;
    const base = { toolName: 'tool', toolCallId: 'c', agentId: 'agent', runId: 'r' };
    tracker.apply({ kind: 'running', taskId: 'a', at: t0, ...base }, t0);
    tracker.apply({ kind: 'running', taskId: 'b', at: t0 + 1000, ...base }, t0);
    tracker.apply({ kind: 'suspended', taskId: 'b', at: t0 + 2000, ...base }, t0);
    tracker.enrich('a', { id: 'a', status: 'running', timeoutMs: 5000, ...base });
    const m = new BridgeMetrics({ version: 'x', defaultMetrics: false, openTasks: () => tracker.openCounts(), scanOpenTasks: () => tracker.openTasks(), now: () => t0 + 10_000 });
    m.touch('agent', 'tool');
    const { body } = await m.render('text/plain');
    expect(body).toContain('mastra_background_tasks{agent_id="agent",tool_name="tool",status="running"} 1');
    expect(body).toContain('mastra_background_tasks{agent_id="agent",tool_name="tool",status="suspended"} 1');
    expect(body).toContain('mastra_background_task_oldest_age_seconds{agent_id="agent",tool_name="tool",status="running"} 10');
    expect(body).toContain('mastra_background_task_oldest_age_seconds{agent_id="agent",tool_name="tool",status="suspended"} 8');
    expect(body).toContain('mastra_background_tasks_overdue{agent_id="agent",tool_name="tool"} 1');
  });

  it('defines every family in METRIC_NAMES and nothing else of its own', async () => {
    const { body } = await withTraffic().render('text/plain');
    const families = new Set([...body.matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1]));
    expect([...families].sort()).toEqual([...METRIC_NAMES].sort());
  });

  it('passes promtool check metrics on the text rendering', async () => {
    const { body } = await withTraffic().render('text/plain');
    const r = promtool(['check', 'metrics'], { input: body });
    expect(r.stderr + r.stdout).toBe('');
    expect(r.code).toBe(0);
  });
});
