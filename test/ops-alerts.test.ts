// End to end: real Prometheus + real Alertmanager + the bridge on a real (in-process) Mastra with the demo workload.
// With a normal mix (10% of tasks fail or time out: twice the 5% error budget, under the 6x ticket threshold) the
// failure alerts stay silent while their volume guard is met;
// switched to a high failure mix (90%), MastraBackgroundTaskErrorBudgetFastBurn reaches a webhook on 127.0.0.1 through
// the shipped Alertmanager routing (receiver "page").
//
// How the test shortens time: it loads the SHIPPED rule files and Alertmanager config, rewritten only in their
// durations: every range window via WINDOWS (1h → 15s, 5m → 5s, ...), every `for:` from minutes to as many seconds,
// Alertmanager's group_wait/group_interval to 1s, and a webhook added to every receiver. Expressions, thresholds,
// the volume guard, labels, annotations and routes are the shipped ones.
import { readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Mastra } from '@mastra/core';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { type BridgeHandle, startBridge } from '../src/bridge.js';
import { createDemoMastra, DEMO_AGENT_IDS, shutdownDemoMastra } from '../demo/app.js';
import { type Workload, startWorkload } from '../demo/workload.js';
import { type AlertmanagerHandle, startAlertmanager, startWebhookReceiver, type WebhookReceiver } from './support/alertmanager.js';
import { waitFor } from './support/poll.js';
import { type PrometheusHandle, startPrometheus } from './support/prometheus.js';
import { type DemoStack, startDemoStack } from './support/stack.js';
import { ALERTMANAGER, PROMETHEUS, describeWith } from './support/system.js';

const FAST_BURN = 'MastraBackgroundTaskErrorBudgetFastBurn';
/**
 * 10% errors (fail + timeout), every lifecycle present. Not the demo's DEFAULT_MIX (20% errors, 4x the budget): over
 * the compressed windows (a few dozen tasks per agent) that mix measured up to 0.31 on a busy machine, over the 30%
 * slow-burn threshold (CI saw the ticket fire once). Real windows hold thousands of tasks; the windows here cannot.
 */
const NORMAL_MIX = { complete: 16, fail: 1, timeout: 1, cancel: 1, suspend_resume: 1 };
const SLOW_BURN = 'MastraBackgroundTaskErrorBudgetSlowBurn';

/** Production window → test window. A window missing here fails the test, so a new rule cannot slip through. */
// Ratios over a few seconds of a demo workload are noisy: the slow-burn windows stay longer so that 20% errors do not
// flicker over the 30% slow-burn threshold.
const WINDOWS: Record<string, string> = { '5m': '5s', '10m': '10s', '15m': '10s', '30m': '20s', '1h': '15s', '6h': '60s' };

function seconds(duration: string): number {
  const m = /^(\d+)([smh])$/.exec(duration);
  if (!m) throw new Error(`unsupported duration ${duration}`);
  return Number(m[1]) * { s: 1, m: 60, h: 3600 }[m[2] as 's' | 'm' | 'h'];
}

function shortenRules(text: string): string {
  const doc = parse(text) as { groups: { rules: { expr: string; for?: string }[] }[] };
  for (const group of doc.groups) {
    for (const rule of group.rules) {
      rule.expr = rule.expr.replace(/\[(\w+)\]/g, (_m, w: string) => {
        const short = WINDOWS[w];
        if (!short) throw new Error(`no test window for [${w}] in: ${rule.expr}`);
        return `[${short}]`;
      });
      if (rule.for) rule.for = `${seconds(rule.for) / 60}s`; // minutes become seconds
    }
  }
  return stringify(doc);
}

function shortenAlertmanager(text: string, webhookUrl: string): string {
  const doc = parse(text) as {
    route: Record<string, unknown> & { routes?: Record<string, unknown>[] };
    receivers: { name: string; webhook_configs?: unknown[] }[];
  };
  for (const route of [doc.route, ...(doc.route.routes ?? [])]) {
    for (const key of ['group_wait', 'group_interval']) route[key] = '1s';
    route.repeat_interval = '1m';
  }
  for (const r of doc.receivers) r.webhook_configs = [{ url: webhookUrl, send_resolved: true }];
  return stringify(doc);
}

describeWith([PROMETHEUS, ALERTMANAGER], 'failure alert end to end: Prometheus → Alertmanager → webhook', () => {
  let dir: string;
  let webhook: WebhookReceiver;
  let alertmanager: AlertmanagerHandle;
  let mastra: Mastra;
  let bridge: BridgeHandle;
  let workload: Workload | undefined;
  let prom: PrometheusHandle;
  let stack: DemoStack | undefined;

  const received = (alertname: string) =>
    webhook.messages.flatMap((m) => m.alerts.map((a) => ({ ...a, receiver: m.receiver }))).filter((a) => a.labels.alertname === alertname);

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ops-alerts-'));
    const ruleFiles: string[] = [];
    for (const f of readdirSync('config/rules').filter((x) => x.endsWith('.rules.yml'))) {
      const path = join(dir, f);
      await writeFile(path, shortenRules(readFileSync(join('config/rules', f), 'utf8')));
      ruleFiles.push(path);
    }
    webhook = await startWebhookReceiver();
    alertmanager = await startAlertmanager(shortenAlertmanager(readFileSync('config/alertmanager.yml', 'utf8'), webhook.url));

    // A normal mix, dealt in an even order so that no run depends on a lucky or unlucky draw.
    stack = await startDemoStack({ exportSpans: false, config: { metrics: { defaultMetrics: true } }, workload: { ratePerSecond: 8, order: 'interleaved', mix: NORMAL_MIX } });
    ({ mastra, bridge, workload } = stack);
    prom = await startPrometheus({
      targets: [stack.base.replace('http://', '')],
      jobName: 'mastra-task-bridge',
      ruleFiles,
      alertmanagerUrl: alertmanager.url,
    });
    await prom.waitForTargetsUp(30_000);
  }, 60_000);

  afterAll(async () => {
    await workload?.stop();
    await prom?.close();
    await stack?.close();
    await alertmanager?.close();
    await webhook?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('the rewrite keeps the shipped expressions apart from their windows', () => {
    const shipped = readFileSync('config/rules/mastra-background-tasks.rules.yml', 'utf8');
    const short = shortenRules(shipped);
    const fast = (t: string) => (parse(t) as { groups: { rules: { alert?: string; expr: string; for?: string }[] }[] }).groups.flatMap((g) => g.rules).find((r) => r.alert === FAST_BURN)!;
    expect(fast(short).expr).toBe(fast(shipped).expr);
    expect(fast(short).for).toBe('2s');
    expect(short).toContain('[15s]');
    expect(short).not.toMatch(/\[\d+[mh]\]/);
  });

  it('normal workload: the failure alerts stay silent while the volume guard is met', async () => {
    // Data, not absence, keeps the alert silent: every agent has a ratio and enough finished tasks.
    await waitFor(
      async () => {
        const guard = await prom.query('agent_id:mastra_background_task_finished:increase1h >= 10');
        const ratio = await prom.query('agent_id:mastra_background_task_errors:ratio_rate1h >= 0');
        return guard.result.length === DEMO_AGENT_IDS.length && ratio.result.length === DEMO_AGENT_IDS.length;
      },
      { timeoutMs: 40_000, intervalMs: 500, message: 'volume guard met and a failure ratio for every agent' },
    );
    // Watch 20 evaluations of the alert group (1 s each, longer than the 15 s long window).
    const evaluations = new Set<string>();
    let maxRatio = 0;
    const seen: string[] = []; // (waitFor treats a throw as "not yet", so violations are collected, then asserted)
    await waitFor(
      async () => {
        const alerts = await prom.query(`ALERTS{alertname=~"${FAST_BURN}|${SLOW_BURN}"}`);
        // The page must never even be pending; the ticket must never fire (a compressed window may briefly flicker).
        for (const a of alerts.result) {
          if (a.metric.alertname === FAST_BURN || a.metric.alertstate === 'firing') seen.push(`${a.metric.alertname} ${a.metric.alertstate} ${a.metric.agent_id}`);
        }
        const ratio = await prom.query('max(agent_id:mastra_background_task_errors:ratio_rate1h)');
        maxRatio = Math.max(maxRatio, Number(ratio.result[0]?.value[1] ?? 0));
        const groups = await prom.api<{ groups: { name: string; lastEvaluation: string }[] }>('rules', { type: 'alert' });
        const group = groups.groups.find((g) => g.name === 'mastra-background-tasks-alerts');
        if (group) evaluations.add(group.lastEvaluation);
        return evaluations.size >= 20;
      },
      { timeoutMs: 45_000, intervalMs: 500, message: '20 silent evaluations' },
    );
    console.log(`normal mix (10% errors): max error ratio over the 1h-equivalent window ${maxRatio.toFixed(3)}`);
    expect(seen, 'failure alerts pending or firing').toEqual([]);
    expect(maxRatio).toBeGreaterThan(0.05); // the mix does fail, just not fast enough to page
    expect(maxRatio).toBeLessThan(0.3); // the slow-burn threshold (6 x the 5% budget)
    expect(received(FAST_BURN)).toEqual([]);
    expect(received(SLOW_BURN)).toEqual([]);
  }, 90_000);

  it('high failure workload: the fast-burn page reaches the webhook with its labels and annotations', async () => {
    await workload?.stop();
    workload = startWorkload(mastra, {
      ratePerSecond: 8,
      order: 'interleaved',
      mix: { complete: 1, fail: 9, timeout: 0, cancel: 0, suspend_resume: 0 },
    });
    const page = await waitFor(() => received(FAST_BURN).find((a) => a.status === 'firing'), {
      timeoutMs: 60_000,
      intervalMs: 250,
      message: `${FAST_BURN} at the webhook`,
    });
    expect(page.receiver).toBe('page');
    expect(page.labels.severity).toBe('page');
    expect(DEMO_AGENT_IDS).toContain(page.labels.agent_id);
    expect(page.annotations.summary).toContain(`Agent ${page.labels.agent_id}`);
    expect(page.annotations.description).toMatch(/failed or timed out/);
    expect(page.annotations.dashboard_url).toContain(`/d/mastra-tasks-drilldown/`);
    expect(page.annotations.dashboard_url).toContain(`var-agent_id=${page.labels.agent_id}`);
  }, 90_000);
});
