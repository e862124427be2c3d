// A real Prometheus (Debian package) scrapes a bridge watching a real in-process Mastra with live traffic: every
// family arrives with the right type (via Prometheus' metadata API), and a histogram exemplar's trace_id is the trace
// id of a span the bridge exported.
import type { Mastra } from '@mastra/core';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type BridgeHandle, startBridge } from '../src/bridge.js';
import { createDemoMastra, shutdownDemoMastra } from '../demo/app.js';
import { type Workload, startWorkload } from '../demo/workload.js';
import { METRIC_NAMES } from '../src/metrics.js';
import { type OtlpReceiver, startOtlpReceiver } from './support/otlp-receiver.js';
import { waitFor } from './support/poll.js';
import { type PrometheusHandle, startPrometheus } from './support/prometheus.js';
import { type DemoStack, startDemoStack } from './support/stack.js';
import { PROMETHEUS, describeWith } from './support/system.js';

const EXPECTED_TYPES: Record<string, string> = {
  mastra_background_task_started_total: 'counter',
  mastra_background_task_finished_total: 'counter',
  mastra_background_task_duration_seconds: 'histogram',
  mastra_background_task_queue_wait_seconds: 'histogram',
  mastra_background_task_suspended_seconds: 'histogram',
  mastra_background_tasks: 'gauge',
  mastra_background_task_output_chunks_total: 'counter',
  mastra_background_task_oldest_age_seconds: 'gauge',
  mastra_background_tasks_overdue: 'gauge',
  mastra_task_bridge_source_up: 'gauge',
  mastra_task_bridge_source_reconnects_total: 'counter',
  mastra_task_bridge_events_total: 'counter',
  mastra_task_bridge_last_event_timestamp_seconds: 'gauge',
  mastra_task_bridge_reconciled_total: 'counter',
  mastra_task_bridge_reconcile_failures_total: 'counter',
  mastra_task_bridge_enrichment_failures_total: 'counter',
  mastra_task_bridge_label_overflow_total: 'counter',
  mastra_task_bridge_evicted_tasks_total: 'counter',
  mastra_task_bridge_spans_total: 'counter',
  mastra_task_bridge_sse_clients: 'gauge',
  mastra_task_bridge_sse_dropped_clients_total: 'counter',
  mastra_task_bridge_build_info: 'gauge',
  mastra_task_bridge_api_requests_total: 'counter',
  mastra_task_bridge_api_rate_limited_total: 'counter',
  mastra_task_bridge_api_cache_total: 'counter',
  mastra_task_bridge_fast_path_info: 'gauge',
  mastra_task_bridge_fast_path_fallbacks_total: 'counter',
  mastra_task_bridge_future_timestamps_total: 'counter',
  mastra_task_bridge_auth_failures_total: 'counter',
};

describeWith([PROMETHEUS], 'a real Prometheus scraping the bridge', () => {
  let receiver: OtlpReceiver;
  let mastra: Mastra;
  let bridge: BridgeHandle;
  let workload: Workload;
  let prom: PrometheusHandle;
  let stack: DemoStack | undefined;

  beforeAll(async () => {
    stack = await startDemoStack({ config: { metrics: { defaultMetrics: true } }, workload: { ratePerSecond: 8 } });
    ({ mastra, bridge } = stack);
    receiver = stack.receiver!;
    workload = stack.workload!;
    prom = await startPrometheus({ targets: [stack.base.replace('http://', '')] });
    await prom.waitForTargetsUp(30_000);
  }, 60_000);

  afterAll(async () => {
    await prom?.close();
    await stack?.close();
  });

  it('has the contract up to date in the test itself', () => {
    expect(Object.keys(EXPECTED_TYPES).sort()).toEqual([...METRIC_NAMES].sort());
  });

  it('stores every family with the right type', async () => {
    const meta = await waitFor(
      async () => {
        const m = await prom.api<Record<string, { type: string }[]>>('metadata');
        return METRIC_NAMES.every((n) => m[n] ?? m[n.replace(/_total$/, '')]) ? m : undefined;
      },
      { timeoutMs: 20_000, message: 'metadata for every family' },
    );
    for (const [name, type] of Object.entries(EXPECTED_TYPES)) {
      // OpenMetrics names counter families without `_total`; Prometheus keeps the family name.
      const entry = meta[name] ?? meta[name.replace(/_total$/, '')];
      expect(entry?.[0]?.type, name).toBe(type);
    }
    const up = await prom.query('mastra_task_bridge_source_up');
    expect(up.result[0]?.value[1]).toBe('1');
  });

  it('links a duration bucket to an exported trace through its exemplar', async () => {
    const now = Date.now() / 1000;
    const series = await waitFor(
      async () => {
        const r = await prom.queryExemplars('mastra_background_task_duration_seconds_bucket', now - 300, Date.now() / 1000 + 60);
        return r.some((s) => s.exemplars?.length) ? r : undefined;
      },
      { timeoutMs: 30_000, message: 'exemplars stored by Prometheus' },
    );
    await bridge.tracing.forceFlush();
    const exported = new Set(receiver.spans().map((s) => s.traceId));
    const exemplars = series.flatMap((s) => s.exemplars);
    expect(exemplars.length).toBeGreaterThan(0);
    for (const e of exemplars) {
      const traceId = e.labels.trace_id ?? '';
      expect(traceId).toMatch(/^[0-9a-f]{32}$/);
      expect(exported.has(traceId), `exemplar trace ${traceId} was exported`).toBe(true);
    }
  });

  it('answers the queries a dashboard needs', async () => {
    const byStatus = await waitFor(
      async () => {
        const r = await prom.query('sum by (status) (mastra_background_task_finished_total)');
        return r.result.length >= 4 ? r : undefined;
      },
      { message: 'finished counts by status' },
    );
    expect(byStatus.result.map((r: { metric: { status: string } }) => r.metric.status).sort()).toEqual(['cancelled', 'completed', 'failed', 'timed_out']);
    const p95 = await prom.query('histogram_quantile(0.95, sum by (le) (mastra_background_task_duration_seconds_bucket))');
    expect(Number(p95.result[0]?.value[1])).toBeGreaterThan(0);
  });
});
