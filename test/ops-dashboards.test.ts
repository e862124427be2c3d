// Every Grafana panel query, run for real: a real Prometheus (shipped rules loaded, exemplar storage on) scrapes a
// bridge that watches the demo Mastra server over HTTP (as in docker-compose.yml) with a live workload, standing
// long-running and suspended tasks, and one refused connection before the server is up (so reconnects have a
// series). Each panel's PromQL, with the template variables substituted as Grafana would, must return data; each
// exemplar panel must return exemplars whose trace ids are spans the bridge exported; every variable query must
// return values; and every shipped rule must evaluate without error, recording rules with data.
import { readdirSync } from 'node:fs';
import { resolve } from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type BridgeHandle, startBridge } from '../src/bridge.js';
import { DEMO_AGENT_IDS, DEMO_TOOL_NAMES } from '../demo/app.js';
import { type DemoServer, startDemoServer } from '../demo/server.js';
import { RemoteSource } from '../src/sources/remote.js';
import { dashboardVariables, panelQueries, substitute } from './support/grafana.js';
import { type OtlpReceiver, startOtlpReceiver } from './support/otlp-receiver.js';
import { freePort, waitFor } from './support/poll.js';
import { type PrometheusHandle, startPrometheus } from './support/prometheus.js';
import { PROMETHEUS, describeWith } from './support/system.js';

const RULE_FILES = readdirSync('config/rules').filter((f) => f.endsWith('.rules.yml')).map((f) => resolve('config/rules', f));
const silent = pino({ level: 'silent' });

// What Grafana substitutes for its built-in variables with a 1 s scrape interval and a short time range.
const BUILTINS = { __rate_interval: '10s', __interval: '2s', __range: '2m', datasource: 'prometheus' };
const RANGE_SECONDS = 180; // covers the whole run

describeWith([PROMETHEUS], 'Grafana dashboards against a real Prometheus scraping a live bridge', () => {
  let receiver: OtlpReceiver;
  let demo: DemoServer | undefined;
  let bridge: BridgeHandle;
  let prom: PrometheusHandle;
  let instance: string;

  beforeAll(async () => {
    receiver = await startOtlpReceiver();
    const demoPort = await freePort();
    bridge = startBridge({
      source: new RemoteSource({ baseUrl: `http://127.0.0.1:${demoPort}`, backoff: { initialMs: 100, maxMs: 400 }, logger: silent }),
      logger: silent,
      config: {
        reconcile: { intervalSeconds: 1 },
        otel: { tracesEndpoint: receiver.tracesUrl, batch: { scheduledDelayMs: 100 } },
      },
    });
    const address = await bridge.app.listen({ host: '127.0.0.1', port: 0 });
    instance = address.replace('http://', '');
    // Prometheus first, so its ~6 s service-discovery delay overlaps the rest.
    prom = await startPrometheus({ targets: [instance], jobName: 'mastra-task-bridge', ruleFiles: RULE_FILES });
    // The demo server is not up yet: the bridge's first connection attempts are refused (a reconnect series).
    await waitFor(async () => /mastra_task_bridge_source_reconnects_total\{[^}]*reason="refused"/.test((await bridge.app.inject({ url: '/metrics' })).body), {
      message: 'a refused connection counted',
    });
    demo = await startDemoServer({
      port: demoPort,
      host: '127.0.0.1',
      rate: 6,
      order: 'interleaved', // every status and every agent's resume within seconds, on every run
      longTasks: 1,
      longTaskMs: 120_000,
      suspendedTasks: 2,
      logger: false,
      onWorkloadError: () => undefined,
    });
    await bridge.whenReady();
    await prom.waitForTargetsUp(30_000);
    // Enough traffic that every final status, resumes, exemplars and both rates exist.
    await waitFor(
      async () => {
        const statuses = await prom.query('sum by (status) (mastra_background_task_finished_total) > 0');
        const resumed = await prom.query('sum(mastra_background_task_suspended_seconds_count) > 0');
        const rated = await prom.query('sum(rate(mastra_background_task_finished_total{status="cancelled"}[10s])) > 0');
        // The selected-agent check needs a resume of that agent's approve_refund seen by Prometheus.
        const agentResumed = await prom.query(`sum(increase(mastra_background_task_suspended_seconds_count{agent_id="${DEMO_AGENT_IDS[0]}", tool_name="${DEMO_TOOL_NAMES.suspend}"}[3m])) > 0`);
        return statuses.result.length === 4 && resumed.result.length > 0 && rated.result.length > 0 && agentResumed.result.length > 0;
      },
      { timeoutMs: 45_000, intervalMs: 500, message: 'every final status, a resume and a rate in Prometheus' },
    );
  }, 90_000);

  afterAll(async () => {
    await demo?.workload?.stop();
    await bridge?.close();
    await demo?.close();
    await prom?.close();
    await receiver?.close();
  });

  async function runPanelQuery(expr: string, instant: boolean): Promise<number[]> {
    const end = Date.now() / 1000;
    const data = instant ? await prom.query(expr, end) : await prom.queryRange(expr, end - RANGE_SECONDS, end, 2);
    const values: string[] = instant ? data.result.map((r) => r.value[1]) : data.result.flatMap((r) => r.values.map((v: [number, string]) => v[1]));
    return values.map(Number).filter((v) => Number.isFinite(v));
  }

  /** label_values(selector, label) the way Grafana runs it: the series API, then the label's distinct values. */
  async function variableValues(query: string, vars: Record<string, string>): Promise<string[]> {
    const m = /^label_values\((.*),\s*(\w+)\)$/.exec(query.trim());
    if (!m) throw new Error(`unsupported variable query: ${query}`);
    const series = await prom.api<Record<string, string>[]>('series', { 'match[]': substitute(m[1]!, vars), start: String(Date.now() / 1000 - 300) });
    return [...new Set(series.map((s) => s[m[2]!]).filter((v): v is string => v !== undefined))].sort();
  }

  it('every template variable query returns values', async () => {
    const vars = dashboardVariables().filter((v) => v.type === 'query');
    expect(vars.map((v) => `${v.dashboard}/${v.name}`).sort()).toEqual([
      'mastra-task-bridge-health/instance',
      'mastra-tasks-drilldown/agent_id',
      'mastra-tasks-drilldown/tool_name',
    ]);
    for (const v of vars) {
      const values = await variableValues(v.query, { ...BUILTINS, agent_id: '.*' });
      expect(values.length, `${v.dashboard}/${v.name}: ${v.query}`).toBeGreaterThan(0);
    }
    expect(await variableValues('label_values(mastra_task_bridge_source_up, instance)', {})).toEqual([instance]);
    expect(await variableValues('label_values(mastra_background_task_started_total, agent_id)', {})).toEqual([...DEMO_AGENT_IDS].sort());
  });

  it('every panel query returns data with the variables at "All"', async () => {
    const queries = panelQueries();
    expect(queries.length).toBeGreaterThan(30);
    const empty: string[] = [];
    for (const q of queries) {
      const expr = substitute(q.expr, { ...BUILTINS, agent_id: '.*', tool_name: '.*', instance: '.*' });
      const values = await waitFor(async () => ((await runPanelQuery(expr, q.instant)).length > 0 ? runPanelQuery(expr, q.instant) : undefined), {
        timeoutMs: 5_000,
        intervalMs: 500,
      }).catch(() => []);
      if (values.length === 0) empty.push(`${q.dashboard} / ${q.panel} / ${q.refId}: ${expr}`);
    }
    expect(empty, 'panels without data').toEqual([]);
  });

  it('the drill-down and health panels return data for one agent, two tools and one instance selected', async () => {
    const agent = DEMO_AGENT_IDS[0]!; // the agent of the standing long-running and suspended tasks
    const tools = await variableValues('label_values(mastra_background_task_started_total{agent_id=~"$agent_id"}, tool_name)', { agent_id: agent });
    expect(tools).toEqual(expect.arrayContaining([DEMO_TOOL_NAMES.suspend, DEMO_TOOL_NAMES.cancel]));
    // A multi-value selection, formatted the way Grafana formats it for a regex matcher.
    const vars = { ...BUILTINS, agent_id: agent, tool_name: `(${DEMO_TOOL_NAMES.suspend}|${DEMO_TOOL_NAMES.cancel})`, instance };
    const empty: string[] = [];
    for (const q of panelQueries().filter((x) => x.dashboard !== 'mastra-tasks-overview')) {
      const expr = substitute(q.expr, vars);
      const values = await waitFor(async () => ((await runPanelQuery(expr, q.instant)).length > 0 ? true : undefined), { timeoutMs: 5_000, intervalMs: 500 }).catch(() => false);
      if (!values) empty.push(`${q.dashboard} / ${q.panel} / ${q.refId}: ${expr}`);
    }
    expect(empty, 'panels without data').toEqual([]);
  });

  it('every exemplar panel returns exemplars whose trace ids are exported spans', async () => {
    const exemplarQueries = panelQueries().filter((q) => q.exemplar);
    expect(exemplarQueries.length).toBeGreaterThanOrEqual(3);
    await bridge.tracing.forceFlush();
    for (const q of exemplarQueries) {
      const expr = substitute(q.expr, { ...BUILTINS, agent_id: '.*', tool_name: '.*' });
      const series = await waitFor(
        async () => {
          const r = await prom.queryExemplars(expr, Date.now() / 1000 - 300, Date.now() / 1000 + 5);
          return r.some((s) => s.exemplars.length > 0) ? r : undefined;
        },
        { timeoutMs: 10_000, message: `exemplars for ${q.dashboard} / ${q.panel}` },
      );
      await bridge.tracing.forceFlush();
      const exported = new Set(receiver.spans().map((s) => s.traceId));
      const traceIds = series.flatMap((s) => s.exemplars.map((e) => e.labels.trace_id ?? ''));
      expect(traceIds.length).toBeGreaterThan(0);
      for (const id of traceIds) expect(exported.has(id), `exemplar trace ${id} (${q.panel}) was exported`).toBe(true);
    }
  });

  it('every shipped rule evaluates without error on live data, and every recording rule has data', async () => {
    type RuleState = { name: string; type: 'recording' | 'alerting'; health: string; lastError?: string };
    const groups = await waitFor(
      async () => {
        const data = await prom.api<{ groups: { rules: RuleState[] }[] }>('rules');
        const all = data.groups.flatMap((g) => g.rules);
        return all.length > 0 && all.every((r) => r.health !== 'unknown') ? all : undefined;
      },
      { timeoutMs: 10_000, message: 'every rule evaluated once' },
    );
    for (const r of groups) expect(`${r.name}: ${r.health} ${r.lastError ?? ''}`.trim()).toBe(`${r.name}: ok`);
    const recorded = [...new Set(groups.filter((r) => r.type === 'recording').map((r) => r.name))];
    expect(recorded.length).toBeGreaterThan(10);
    for (const name of recorded) {
      const result = await waitFor(async () => ((await prom.query(name)).result.length > 0 ? true : undefined), { timeoutMs: 10_000, message: `data for ${name}` }).catch(() => false);
      expect(result, `${name} has data`).toBe(true);
    }
  });
});
