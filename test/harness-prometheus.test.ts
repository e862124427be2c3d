// Proves test/support/prometheus.ts against a real Prometheus scraping a prom-client registry over OpenMetrics
// (histogram with {trace_id, span_id} exemplars), and the promtool wrapper on a text-format rendering.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { Counter, Gauge, Histogram, Registry, type OpenMetricsContentType, type RegistryContentType } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from './support/poll.js';
import { prometheusConfig, promtool, startPrometheus, type PrometheusHandle } from './support/prometheus.js';
import { PROMETHEUS, PROMTOOL, describeWith, hasAll } from './support/system.js';

const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const SPAN_ID = '00f067aa0ba902b7';

/**
 * Defines the test metrics on `registry`. Called once for the OpenMetrics registry Prometheus scrapes and once for a
 * text-format registry for promtool: exemplars can only be enabled on OpenMetrics registries, and rendering
 * OpenMetrics renames counters in place (see the last test), so the two must not share metric objects.
 */
function defineMetrics(registry: Registry<RegistryContentType>, exemplars: boolean) {
  // <string>: prom-client 15.1.3 types `exemplarLabels` as LabelValues<T> (the metric's own label names), so with a
  // narrow T `{ trace_id, span_id }` does not type-check; a string label type accepts both.
  const histogram = new Histogram<string>({
    name: 'harness_task_duration_seconds',
    help: 'Task duration',
    labelNames: ['task_kind'] as const,
    buckets: [0.1, 0.5, 1, 5],
    enableExemplars: exemplars,
    registers: [registry],
  });
  const counter = new Counter({ name: 'harness_tasks_total', help: 'Tasks finished', labelNames: ['task_kind'] as const, registers: [registry] });
  if (exemplars) {
    histogram.observe({ labels: { task_kind: 'demo' }, value: 0.3, exemplarLabels: { trace_id: TRACE_ID, span_id: SPAN_ID } });
  } else {
    histogram.observe({ task_kind: 'demo' }, 0.3);
  }
  counter.inc({ task_kind: 'demo' }, 2);
  return { histogram, counter };
}

let registry: Registry<OpenMetricsContentType>;
let server: Server;
let target: string;
const acceptHeaders: string[] = [];
let prom: PrometheusHandle | undefined;

// Outside the describe (one Prometheus for the file): only when the binaries are there (see describeWith below).
const haveBinaries = hasAll([PROMETHEUS, PROMTOOL]);

if (haveBinaries) beforeAll(async () => {
  registry = new Registry<OpenMetricsContentType>();
  registry.setContentType(Registry.OPENMETRICS_CONTENT_TYPE);
  defineMetrics(registry, true);

  server = createServer((req, res) => {
    if (req.url !== '/metrics') {
      res.writeHead(404).end();
      return;
    }
    acceptHeaders.push(String(req.headers.accept ?? ''));
    registry.metrics().then(
      (body) => res.writeHead(200, { 'Content-Type': registry.contentType }).end(body),
      (err: unknown) => res.writeHead(500).end(String(err)),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  target = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  prom = await startPrometheus({ targets: [target] });
});

if (haveBinaries) afterAll(async () => {
  await prom?.close();
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
});

describeWith([PROMETHEUS, PROMTOOL], 'Prometheus harness', () => {
  it('scrapes the target over OpenMetrics and answers queries', async () => {
    const p = prom!;
    await p.waitForTargetsUp(30_000);
    const targets = await p.targets();
    expect(targets).toHaveLength(1);
    expect(targets[0]).toMatchObject({ health: 'up', scrapeUrl: `http://${target}/metrics` });
    expect(acceptHeaders.some((a) => a.includes('application/openmetrics-text'))).toBe(true);

    const count = await waitFor(
      async () => {
        const r = await p.query('harness_task_duration_seconds_count{task_kind="demo"}');
        return r.result.length > 0 && r;
      },
      { timeoutMs: 10_000, message: 'histogram count series' },
    );
    expect(count.resultType).toBe('vector');
    expect(count.result[0].metric).toMatchObject({ __name__: 'harness_task_duration_seconds_count', task_kind: 'demo', job: 'bridge' });
    expect(count.result[0].value[1]).toBe('1');

    const total = await p.query('harness_tasks_total{task_kind="demo"}');
    expect(total.result[0]?.value[1]).toBe('2');

    await expect(p.query('sum(')).rejects.toThrow(/parse error/);
  });

  it('stores the histogram exemplar and returns it from query_exemplars', async () => {
    const p = prom!;
    await p.waitForTargetsUp(30_000);
    const now = Math.floor(Date.now() / 1000);
    const series = await waitFor(
      async () => {
        const data = await p.queryExemplars('harness_task_duration_seconds_bucket', now - 600, now + 600);
        return data.length > 0 && data;
      },
      { timeoutMs: 10_000, message: 'exemplars for harness_task_duration_seconds_bucket' },
    );
    const exemplars = series.flatMap((s) => s.exemplars.map((e) => ({ ...e, series: s.seriesLabels })));
    const ours = exemplars.find((e) => e.labels.trace_id === TRACE_ID);
    expect(ours).toBeDefined();
    expect(ours!.labels).toEqual({ trace_id: TRACE_ID, span_id: SPAN_ID });
    expect(Number(ours!.value)).toBe(0.3);
    expect(ours!.series).toMatchObject({ __name__: 'harness_task_duration_seconds_bucket', le: '0.5', task_kind: 'demo' });

    // A range query works too (the data is at most a few seconds old).
    const range = await p.queryRange('harness_tasks_total', now - 60, now + 5, 1);
    expect(range.resultType).toBe('matrix');
    expect(range.result.length).toBe(1);
  });

  it('promtool check metrics accepts the text-format rendering and flags a bad metric', async () => {
    // `check metrics` lints only text format 0.0.4 (stdin): render the same definitions with a text-format registry.
    const text = new Registry();
    defineMetrics(text, false);
    const rendered = await text.metrics();
    expect(rendered).not.toContain('# EOF');
    expect(rendered).toContain('harness_tasks_total{task_kind="demo"} 2');
    const ok = promtool(['check', 'metrics'], { input: rendered });
    expect(ok, `${ok.stdout}${ok.stderr}`).toMatchObject({ code: 0 });

    const bad = new Registry();
    new Gauge({ name: 'harness_open_tasks_total', help: 'Open tasks', registers: [bad] }).set(1);
    const res = promtool(['check', 'metrics'], { input: await bad.metrics() });
    expect(res.code).not.toBe(0);
    expect(`${res.stdout}${res.stderr}`).toMatch(/_total/);
  });

  it('documents a prom-client gotcha: rendering OpenMetrics strips _total from the counter object itself', async () => {
    const reg = new Registry<OpenMetricsContentType>();
    reg.setContentType(Registry.OPENMETRICS_CONTENT_TYPE);
    const counter = new Counter({ name: 'gotcha_things_total', help: 'x', registers: [reg] });
    counter.inc();
    expect(await reg.metrics()).toContain('gotcha_things_total 1');
    // The metric object was renamed in place; a text registry sharing it would now print `gotcha_things` (no _total).
    expect((counter as unknown as { name: string }).name).toBe('gotcha_things');
    const text = new Registry();
    text.registerMetric(counter);
    expect(await text.metrics()).toContain('gotcha_things 1');
  });

  it('generates a config that promtool check config accepts (rules, alertmanager, extra scrape config)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'prom-config-'));
    try {
      const rules = join(dir, 'rules.yml');
      writeFileSync(
        rules,
        'groups:\n  - name: t\n    rules:\n      - alert: Down\n        expr: up == 0\n        for: 1m\n',
      );
      const config = join(dir, 'prometheus.yml');
      writeFileSync(
        config,
        prometheusConfig({
          targets: ['127.0.0.1:1', '127.0.0.1:2'],
          metricsPath: '/custom/metrics',
          ruleFiles: [rules],
          evaluationInterval: '2s',
          alertmanagerUrl: 'http://127.0.0.1:9093',
          extraScrapeConfig: "  - job_name: extra\n    static_configs:\n      - targets: ['127.0.0.1:3']\n",
        }),
      );
      const res = promtool(['check', 'config', config]);
      expect(res, `${res.stdout}${res.stderr}`).toMatchObject({ code: 0 });
      expect(promtool(['check', 'rules', rules]).code).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
