// Test support: a real Prometheus per test file, scraping given 127.0.0.1 targets, plus a `promtool` wrapper. The
// binaries are selectable (support/peers.ts): $PROMETHEUS_BIN / $PROMTOOL_BIN, else the Go-built 3.x of
// test/peers/build.sh when built, else Debian's /usr/bin ones (2.42). Prometheus gets a temp dir (config + TSDB), a free loopback port and exemplar storage.
// Note: /-/ready answers within ~0.1 s, but the first scrape lands ~6 s after start (fixed service-discovery delay),
// so start one Prometheus per file (beforeAll) and `waitForTargetsUp()` before querying.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startPeer } from './child.js';
import { peerBinary } from './peers.js';
import { freePort, waitFor } from './poll.js';

export const PROMETHEUS_BIN = peerBinary('prometheus', '/usr/bin/prometheus');
export const PROMTOOL_BIN = peerBinary('promtool', '/usr/bin/promtool');


export interface PromQueryData {
  resultType: string;
  result: any[];
}

export interface PrometheusTarget {
  labels: Record<string, string>;
  discoveredLabels: Record<string, string>;
  scrapePool: string;
  scrapeUrl: string;
  health: 'up' | 'down' | 'unknown';
  lastError: string;
  lastScrape: string;
  lastScrapeDuration: number;
  [key: string]: unknown;
}

export interface PrometheusExemplarSeries {
  seriesLabels: Record<string, string>;
  exemplars: { labels: Record<string, string>; value: string; timestamp: number }[];
}

export interface PrometheusHandle {
  /** Base URL, e.g. http://127.0.0.1:PORT */
  url: string;
  /** Instant query (/api/v1/query); throws with Prometheus' error text unless status is 'success'. */
  query(expr: string, timeSec?: number): Promise<PromQueryData>;
  /** Range query (/api/v1/query_range). */
  queryRange(expr: string, startSec: number, endSec: number, stepSec?: number): Promise<PromQueryData>;
  /** /api/v1/query_exemplars; returns the `data` array (one entry per series with exemplars). */
  queryExemplars(expr: string, startSec: number, endSec: number): Promise<PrometheusExemplarSeries[]>;
  /** /api/v1/targets activeTargets. */
  targets(): Promise<PrometheusTarget[]>;
  /** Resolves once every configured target has health 'up' (default timeout 30 s). */
  waitForTargetsUp(timeoutMs?: number): Promise<void>;
  /** Any API GET under /api/v1 (e.g. 'rules', 'alerts'); returns `data`. */
  api<T = unknown>(path: string, params?: Record<string, string>): Promise<T>;
  /** Kill Prometheus and remove the temp dir. Safe to call twice. */
  close(): Promise<void>;
  /** Prometheus' stdout+stderr so far (for failure messages). */
  logs(): string;
  /** Temp dir holding prometheus.yml and the TSDB. */
  dir: string;
}

export interface StartPrometheusOptions {
  /** Scrape targets as host:port. */
  targets: string[];
  /** Default '/metrics'. */
  metricsPath?: string;
  /** Default '1s'. */
  scrapeInterval?: string;
  /** Absolute paths of rule files. */
  ruleFiles?: string[];
  /** Default: same as scrapeInterval. */
  evaluationInterval?: string;
  /** e.g. http://127.0.0.1:9093 */
  alertmanagerUrl?: string;
  /** Raw YAML appended as further items under `scrape_configs:` (each starting with `  - job_name: ...`). */
  extraScrapeConfig?: string;
  /** Job name of the generated scrape config (default 'bridge'). */
  jobName?: string;
  /** Deadline for /-/ready (default 20 s). */
  readyTimeoutMs?: number;
}

const q = (s: string): string => JSON.stringify(s); // JSON strings are valid YAML double-quoted scalars

export function prometheusConfig(opts: StartPrometheusOptions): string {
  const scrapeInterval = opts.scrapeInterval ?? '1s';
  const lines = [
    'global:',
    `  scrape_interval: ${scrapeInterval}`,
    `  scrape_timeout: ${scrapeInterval}`,
    `  evaluation_interval: ${opts.evaluationInterval ?? scrapeInterval}`,
  ];
  if (opts.ruleFiles?.length) lines.push('rule_files:', ...opts.ruleFiles.map((f) => `  - ${q(f)}`));
  if (opts.alertmanagerUrl) {
    const am = new URL(opts.alertmanagerUrl);
    lines.push(
      'alerting:',
      '  alertmanagers:',
      `    - scheme: ${am.protocol.replace(':', '')}`,
      ...(am.pathname && am.pathname !== '/' ? [`      path_prefix: ${q(am.pathname)}`] : []),
      '      static_configs:',
      `        - targets: [${q(am.host)}]`,
    );
  }
  lines.push(
    'scrape_configs:',
    `  - job_name: ${q(opts.jobName ?? 'bridge')}`,
    `    metrics_path: ${q(opts.metricsPath ?? '/metrics')}`,
    '    static_configs:',
    `      - targets: [${opts.targets.map(q).join(', ')}]`,
  );
  if (opts.extraScrapeConfig) lines.push(opts.extraScrapeConfig.replace(/\s+$/, ''));
  return `${lines.join('\n')}\n`;
}

export async function startPrometheus(opts: StartPrometheusOptions): Promise<PrometheusHandle> {
  if (!existsSync(PROMETHEUS_BIN)) throw new Error(`${PROMETHEUS_BIN} not found (test/peers/build.sh, or apt-get install -y prometheus)`);
  const dir = await mkdtemp(join(tmpdir(), 'prom-test-'));
  const configPath = join(dir, 'prometheus.yml');
  await writeFile(configPath, prometheusConfig(opts));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;

  const peer = await startPeer({
    name: 'prometheus',
    bin: PROMETHEUS_BIN,
    args: [
      `--config.file=${configPath}`,
      `--web.listen-address=127.0.0.1:${port}`,
      `--storage.tsdb.path=${join(dir, 'data')}`,
      '--enable-feature=exemplar-storage',
      '--web.enable-lifecycle',
      '--log.level=info',
    ],
    ready: async () => (await fetch(`${url}/-/ready`)).ok,
    readyTimeoutMs: opts.readyTimeoutMs ?? 20_000,
    intervalMs: 50,
    readyMessage: `${url}/-/ready`,
    cleanup: () => rm(dir, { recursive: true, force: true }),
  });

  const get = async (path: string, params: Record<string, string> = {}): Promise<unknown> => {
    const qs = new URLSearchParams(params).toString();
    const res = await fetch(`${url}/api/v1/${path.replace(/^\/+/, '')}${qs ? `?${qs}` : ''}`);
    const text = await res.text();
    let body: { status?: string; data?: unknown; error?: string; errorType?: string };
    try {
      body = JSON.parse(text) as typeof body;
    } catch {
      throw new Error(`Prometheus ${path} answered ${res.status} with non-JSON: ${text.slice(0, 300)}`);
    }
    if (body.status !== 'success') {
      throw new Error(`Prometheus ${path} ${JSON.stringify(params)} failed (${res.status} ${body.errorType ?? ''}): ${body.error ?? text}`);
    }
    return body.data;
  };

  const targets = async (): Promise<PrometheusTarget[]> =>
    ((await get('targets', { state: 'active' })) as { activeTargets: PrometheusTarget[] }).activeTargets;

  return {
    url,
    dir,
    query: async (expr, timeSec) =>
      (await get('query', { query: expr, ...(timeSec !== undefined ? { time: String(timeSec) } : {}) })) as PromQueryData,
    queryRange: async (expr, startSec, endSec, stepSec = 1) =>
      (await get('query_range', {
        query: expr,
        start: String(startSec),
        end: String(endSec),
        step: String(stepSec),
      })) as PromQueryData,
    queryExemplars: async (expr, startSec, endSec) =>
      ((await get('query_exemplars', { query: expr, start: String(startSec), end: String(endSec) })) ??
        []) as PrometheusExemplarSeries[],
    targets,
    waitForTargetsUp: async (timeoutMs = 30_000) => {
      let last: PrometheusTarget[] = [];
      try {
        await waitFor(
          async () => {
            const exit = peer.exit();
            if (exit) throw new Error(`prometheus exited (${JSON.stringify(exit)})`);
            last = await targets();
            return last.length > 0 && last.every((t) => t.health === 'up');
          },
          { timeoutMs, intervalMs: 200 },
        );
      } catch (err) {
        const summary = last.map((t) => `${t.scrapeUrl}: ${t.health}${t.lastError ? ` (${t.lastError})` : ''}`);
        throw new Error(
          `targets not all up after ${timeoutMs} ms: ${summary.join('; ') || 'no targets'}` +
            `${err instanceof Error && !summary.length ? ` — ${err.message}` : ''}\n--- prometheus output (tail) ---\n${peer.output().slice(-3000)}`,
        );
      }
    },
    api: async <T = unknown>(path: string, params?: Record<string, string>) => (await get(path, params)) as T,
    close: peer.close,
    logs: peer.output,
  };
}

export interface PromtoolResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs PROMTOOL_BIN synchronously; `input` goes to stdin (e.g. `check metrics` reads the exposition there). */
export function promtool(args: string[], opts: { input?: string; cwd?: string } = {}): PromtoolResult {
  const res = spawnSync(PROMTOOL_BIN, args, {
    input: opts.input ?? '',
    encoding: 'utf8',
    timeout: 60_000,
    ...(opts.cwd ? { cwd: opts.cwd } : {}),
  });
  if (res.error) return { code: 127, stdout: res.stdout ?? '', stderr: `${res.stderr ?? ''}${res.error.message}` };
  return { code: res.status ?? 1, stdout: res.stdout ?? '', stderr: res.stderr ?? '' };
}
