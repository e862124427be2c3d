// Every fact a user relies on is written once and checked against the code: the README's metric table against
// METRIC_NAMES, its environment table against ENV_VARS, its file table against src/, and config/bridge.yaml against
// the schema's keys.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { ConfigSchema, ENV_VARS } from '../src/config.js';
import { BridgeMetrics, METRIC_NAMES } from '../src/metrics.js';
import { panelQueries } from './support/grafana.js';

const readme = readFileSync('README.md', 'utf8');

/** First-column backticked names of the markdown table rows under the heading `## {title}`. */
function tableNames(title: string): string[] {
  const section = readme.split(/^## /m).find((s) => s.startsWith(`${title}\n`));
  if (!section) throw new Error(`README has no "## ${title}" section`);
  return [...section.matchAll(/^\| `([^`]+)` \|/gm)].map((m) => m[1]!);
}

function keys(obj: unknown, prefix = ''): string[] {
  if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) return [prefix];
  return Object.entries(obj).flatMap(([k, v]) => keys(v, prefix ? `${prefix}.${k}` : k));
}

describe('documentation matches the code', () => {
  it('README metric table lists exactly the metrics defined in src/metrics.ts', () => {
    expect(tableNames('Metrics').sort()).toEqual([...METRIC_NAMES].sort());
  });

  it('README metric table gives each metric its real type and label names', async () => {
    const section = readme.split(/^## /m).find((s) => s.startsWith('Metrics\n'))!;
    const documented = new Map(
      [...section.matchAll(/^\| `([^`]+)` \| (\w+) \|([^|]*)\|/gm)].map((m) => [m[1]!, { type: m[2]!, labels: m[3]!.split(',').map((l) => l.trim()).filter(Boolean).sort() }]),
    );
    const metrics = new BridgeMetrics({ version: 'docs', defaultMetrics: false });
    const real = (await metrics.registry.getMetricsAsJSON()).filter((m) => (METRIC_NAMES as readonly string[]).includes(m.name));
    expect(real.map((m) => m.name).sort()).toEqual([...METRIC_NAMES].sort());
    for (const m of real) {
      const metric = metrics.registry.getSingleMetric(m.name) as unknown as { labelNames?: string[] };
      expect(documented.get(m.name), m.name).toEqual({ type: String(m.type), labels: [...(metric.labelNames ?? [])].sort() });
    }
  });

  it('README file table names every room in src/ (a file, or its folder) and only rooms that exist', () => {
    const start = readme.indexOf('| file | owns |');
    const rows = readme.slice(start, readme.indexOf('\n\n', start)).split('\n').slice(2);
    const named = rows.flatMap((r) => [...(r.split(' | ')[0] ?? '').matchAll(/`([^`]+)`/g)].map((m) => m[1]!));
    const files = (dir: string): string[] =>
      readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? files(`${dir}/${e.name}`) : e.name.endsWith('.ts') ? [`${dir}/${e.name}`] : []));
    const rooms = files('src');
    expect(rooms.filter((f) => !named.some((n) => n === f || (n.endsWith('/') && f.startsWith(n))))).toEqual([]);
    for (const n of named) expect(existsSync(n), `${n} exists`).toBe(true);
    // A folder row names each of its files in its text.
    for (const r of rows.filter((x) => /^\| `src\/[a-z-]+\/`/.test(x))) {
      const folder = /^\| `([^`]+)`/.exec(r)![1]!;
      for (const f of rooms.filter((x) => x.startsWith(folder))) expect(r, f).toContain(`\`${f.slice(folder.length)}\``);
    }
  });

  it('README environment table lists exactly ENV_VARS, with the config path each overrides', () => {
    const rows = [...readme.matchAll(/^\| `([A-Z_]+)` \| `([a-zA-Z.]+)` \|/gm)].map((m) => `${m[1]} → ${m[2]}`);
    expect(rows.sort()).toEqual(ENV_VARS.map((v) => `${v.name} → ${v.path}`).sort());
  });

  it('config/bridge.yaml shows every configuration key, at its default', () => {
    const file = parse(readFileSync('config/bridge.yaml', 'utf8'));
    const defaults = ConfigSchema.parse({});
    expect(keys(file).sort()).toEqual(keys(defaults).sort());
    expect(file).toEqual(defaults);
  });

  it('config/bridge.yaml names the environment variable of every key it can be set by', () => {
    const text = readFileSync('config/bridge.yaml', 'utf8');
    for (const v of ENV_VARS) expect(text, v.name).toContain(v.name);
  });
});

describe('metric names in dashboards, rules and the README exist', () => {
  const ruleFiles = readdirSync('config/rules').filter((f) => f.endsWith('.rules.yml'));
  const rules = ruleFiles.flatMap(
    (f) => (parse(readFileSync(`config/rules/${f}`, 'utf8')) as { groups: { rules: { record?: string; expr: string }[] }[] }).groups.flatMap((g) => g.rules),
  );
  const recorded = new Set(rules.flatMap((r) => (r.record ? [r.record] : [])));
  // Types from the README table (itself checked against METRIC_NAMES above): histograms are queried by their series.
  const histograms = [...readme.matchAll(/^\| `([^`]+)` \| histogram \|/gm)].map((m) => m[1]!);
  const known = new Set<string>([...METRIC_NAMES, ...histograms.flatMap((h) => ['_bucket', '_sum', '_count'].map((s) => h + s))]);

  /** Identifiers that name a bridge metric or a recording rule over one (`level:metric:operations`). */
  const names = (text: string): string[] => [...new Set(text.match(/[a-zA-Z_:][a-zA-Z0-9_:]*/g) ?? [])].filter((n) => n.includes('mastra_'));
  const unknown = (n: string): boolean => (n.includes(':') ? !recorded.has(n) : !known.has(n));

  it('the checker sees histogram series and recording rules', () => {
    expect(histograms).toContain('mastra_background_task_duration_seconds');
    expect(recorded.has('agent_id:mastra_background_task_errors:ratio_rate5m')).toBe(true);
    expect(unknown('mastra_background_task_duration_seconds_bucket')).toBe(false);
    expect(unknown('mastra_background_task_finished')).toBe(true);
    expect(unknown('mastra_task_bridge_spans_total_bucket')).toBe(true);
  });

  it('every metric a dashboard panel queries is defined', () => {
    const used = panelQueries().flatMap((q) => names(q.expr).map((n) => `${n} (${q.dashboard} / ${q.panel})`));
    expect(used.length).toBeGreaterThan(30);
    expect(used.filter((u) => unknown(u.split(' ')[0]!))).toEqual([]);
  });

  it('every metric a rule uses is defined (or recorded by a rule)', () => {
    const used = rules.flatMap((r) => names(r.expr));
    expect(used.length).toBeGreaterThan(20);
    expect(used.filter(unknown)).toEqual([]);
  });

  it('every metric the README names is defined (or recorded by a rule), README rows included', () => {
    expect(names(readme).filter((n) => unknown(n.replace(/…$/, '')))).toEqual([]);
  });

  it('every defined metric is used by a dashboard or a rule', () => {
    const used = new Set([...panelQueries().flatMap((q) => names(q.expr)), ...rules.flatMap((r) => names(r.expr))]);
    const base = (n: string) => n.replace(/_(bucket|sum|count)$/, '');
    const covered = new Set([...used].map((n) => (known.has(n) && !METRIC_NAMES.includes(n as never) ? base(n) : n)));
    expect(METRIC_NAMES.filter((m) => !covered.has(m))).toEqual([]);
  });
});
