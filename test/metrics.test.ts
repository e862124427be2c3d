// The metric module alone: exposition in both formats, counter names that survive format switching, bounded labels,
// series that start at 0, and promtool's linter on the text rendering.
import { Counter, Histogram, Registry, type RegistryContentType } from 'prom-client';
import { describe, expect, it, vi } from 'vitest';
import { DEFAULT_DURATION_BUCKETS } from '../src/metric-buckets.js';
import { BridgeMetrics, METRIC_NAMES, wantsOpenMetrics } from '../src/metrics.js';
import { TaskTracker } from '../src/tracker.js';
import { withTraffic } from './support/metrics-text.js';

const OM = 'application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1';

describe('BridgeMetrics', () => {
  it('hands finished counts, durations and exemplars to prom-client exactly as its own inc()/observe() store them', async () => {
    // BridgeMetrics keeps the finished counter and duration histogram itself and writes them into prom-client at
    // collect time; the reference below is prom-client driven per call, as the bridge did before.
    vi.useFakeTimers({ toFake: ['Date'] });
    try {
      const RegistryOM = Registry as unknown as new (t: RegistryContentType) => Registry<RegistryContentType>;
      const ref = new RegistryOM(Registry.OPENMETRICS_CONTENT_TYPE);
      const registers = [ref as unknown as Registry];
      const labelNames = ['agent_id', 'tool_name', 'status'];
      const finished = new Counter({ name: 'mastra_background_task_finished_total', help: 'x', labelNames, enableExemplars: true, registers });
      const duration = new Histogram({ name: 'mastra_background_task_duration_seconds', help: 'x', labelNames, buckets: DEFAULT_DURATION_BUCKETS, enableExemplars: true, registers });
      const m = new BridgeMetrics({ version: 'x', defaultMetrics: false });
      const seen = new Set<string>();
      const finish = (agent: string, tool: string, status: 'completed' | 'failed' | 'timed_out' | 'cancelled', d: number | undefined, ex?: string): void => {
        if (!seen.has(agent + tool)) {
          seen.add(agent + tool);
          for (const st of ['completed', 'failed', 'timed_out', 'cancelled']) finished.inc({ labels: { agent_id: agent, tool_name: tool, status: st }, value: 0 });
        }
        const exemplar = ex ? { traceId: ex.repeat(32), spanId: ex.repeat(16) } : undefined;
        m.taskFinished(agent, tool, status, d, exemplar);
        const labels = { agent_id: agent, tool_name: tool, status };
        // The reference: prom-client's own calls, with exemplar labels only when there is a span (an empty set would
        // replace the counter's last exemplar).
        const exemplarLabels = exemplar ? ({ trace_id: exemplar.traceId, span_id: exemplar.spanId } as never) : undefined;
        finished.inc(exemplarLabels ? { labels, value: 1, exemplarLabels } : { labels, value: 1 });
        if (d !== undefined) duration.observe(exemplarLabels ? { labels, value: d, exemplarLabels } : { labels, value: d });
      };
      const lines = (body: string): string[] =>
        body.split('\n').filter((l) => l.startsWith('mastra_background_task_finished') || l.startsWith('mastra_background_task_duration_seconds'));
      const steps: [string, string, 'completed' | 'failed' | 'timed_out' | 'cancelled', number | undefined, string | undefined][] = [
        ['a', 't', 'completed', 0.1, '1'],
        ['a', 't', 'completed', 0.07, undefined],
        ['a', 't', 'failed', 7200, '2'], // past the last bucket: the +Inf exemplar
        ['b', 't', 'cancelled', undefined, undefined],
        ['a', 't', 'completed', 0.3, '3'],
        ['b', 'u', 'timed_out', 300, '4'],
        ['a', 't', 'completed', 0.1 + 0.2, '5'],
      ];
      let t = Date.parse('2026-01-01T00:00:00Z');
      for (const [i, step] of steps.entries()) {
        vi.setSystemTime((t += 1234));
        finish(...step);
        if (i % 3 === 2) expect(lines((await m.render(OM)).body).sort()).toEqual(lines(await ref.metrics()).sort());
      }
      const body = (await m.render(OM)).body;
      expect(lines(body).sort()).toEqual(lines(await ref.metrics()).sort());
      expect(body).toContain('le="+Inf",agent_id="a",tool_name="t",status="failed"} 1 # {trace_id="' + '2'.repeat(32));
    } finally {
      vi.useRealTimers();
    }
  });

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
    m.taskStarted('agent-b', 'tool-y'); // a known pair: every status of its finished counter starts at 0
    const { body } = await m.render('text/plain');
    for (const status of ['completed', 'failed', 'timed_out', 'cancelled']) {
      expect(body).toContain(`mastra_background_task_finished_total{agent_id="agent-b",tool_name="tool-y",status="${status}"} 0`);
    }
    expect(body).toContain('mastra_task_bridge_events_total{event="failed",result="invalid"} 0');
  });

  it('has one source_up series per server followed, and drops a server\'s series when it is no longer followed', async () => {
    const m = new BridgeMetrics({ version: 'x', defaultMetrics: false });
    m.sourceUp('10.0.0.1:4111', false);
    m.sourceUp('10.0.0.2:4111', true);
    m.sourceReconnect('10.0.0.1:4111', 'refused');
    m.sourceReconnect('10.0.0.1:4111', 'no such reason');
    let { body } = await m.render('text/plain');
    expect(body).toContain('mastra_task_bridge_source_up{source="10.0.0.1:4111"} 0');
    expect(body).toContain('mastra_task_bridge_source_up{source="10.0.0.2:4111"} 1');
    expect(body).toContain('mastra_task_bridge_source_reconnects_total{source="10.0.0.1:4111",reason="refused"} 1');
    expect(body).toContain('mastra_task_bridge_source_reconnects_total{source="10.0.0.1:4111",reason="error"} 1');
    m.forgetSource('10.0.0.1:4111');
    ({ body } = await m.render('text/plain'));
    expect(body).not.toContain('10.0.0.1:4111');
    expect(body).toContain('mastra_task_bridge_source_up{source="10.0.0.2:4111"} 1');
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
    m.taskStarted('agent', 'tool');
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
  // promtool check metrics on this rendering: test/ops-static.test.ts (system tier).
});
