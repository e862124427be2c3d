// The operations kit, checked offline with the real tools: promtool (config, rules, rule unit tests), amtool,
// docker-compose (config -q plus what the stack promises: pinned images, healthchecks, only UI ports), the
// Dockerfile's shape, the dashboards' wiring (datasources, exemplar links, alert links) and the generated typecheck
// file being current. The dashboards' PromQL against live data is test/ops-dashboards.test.ts; alert delivery is
// test/ops-alerts.test.ts.
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import pkg from '../package.json' with { type: 'json' };
import { GENERATED_FILE, readDashboards, renderDashboardTypes } from './support/dashboard-types.js';
import { AMTOOL_BIN } from './support/alertmanager.js';
import { panelQueries } from './support/grafana.js';
import { JAEGER_BIN } from './support/jaeger.js';
import { withTraffic } from './support/metrics-text.js';
import { peerVersion } from './support/peers.js';
import { promtool } from './support/prometheus.js';
import { AMTOOL, DOCKER_COMPOSE, JAEGER, PROMTOOL, describeWith, itWith } from './support/system.js';

const RULES_DIR = 'config/rules';
const ruleFiles = readdirSync(RULES_DIR).filter((f) => f.endsWith('.rules.yml')).map((f) => join(RULES_DIR, f));
const testFiles = readdirSync(RULES_DIR).filter((f) => /test.*\.ya?ml$/.test(f)).map((f) => join(RULES_DIR, f));

interface Rule {
  alert?: string;
  record?: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}
const rules: Rule[] = ruleFiles.flatMap((f) => (parse(readFileSync(f, 'utf8')) as { groups: { rules: Rule[] }[] }).groups.flatMap((g) => g.rules));
const alerts = rules.filter((r) => r.alert);

function run(cmd: string, args: string[]): { code: number; out: string } {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 60_000 });
  return { code: r.status ?? 1, out: `${r.stdout ?? ''}${r.stderr ?? ''}${r.error ? r.error.message : ''}` };
}

describe('Prometheus configuration and rules (promtool)', () => {
  itWith([PROMTOOL], 'promtool check config accepts config/prometheus.yml and the rule files it loads', () => {
    const r = promtool(['check', 'config', 'config/prometheus.yml']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toContain(`${ruleFiles.length} rule files found`);
  });

  itWith([PROMTOOL], 'promtool check rules accepts every rule file', () => {
    const r = promtool(['check', 'rules', ...ruleFiles]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
  });

  itWith([PROMTOOL], 'promtool test rules passes every rule unit test file', () => {
    expect(testFiles.length).toBeGreaterThan(0);
    const r = promtool(['test', 'rules', ...testFiles.map((f) => relative(RULES_DIR, f))], { cwd: RULES_DIR });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).not.toMatch(/FAILED/);
  });

  itWith([PROMTOOL], "promtool check metrics accepts the bridge's text rendering", async () => {
    const { body } = await withTraffic().render('text/plain');
    const r = promtool(['check', 'metrics'], { input: body });
    expect(r.stderr + r.stdout).toBe('');
    expect(r.code).toBe(0);
  });

  it('every alert has a severity, summary, description and a dashboard_url of a shipped dashboard', () => {
    const uids = new Set(readDashboards().map((d) => d.json.uid));
    expect(alerts.length).toBeGreaterThanOrEqual(10);
    for (const a of alerts) {
      expect(['page', 'ticket'], a.alert).toContain(a.labels?.severity);
      expect(a.annotations?.summary, a.alert).toBeTruthy();
      expect(a.annotations?.description, a.alert).toBeTruthy();
      const url = a.annotations?.dashboard_url ?? '';
      const uid = /\/d\/([^/?]+)/.exec(url)?.[1];
      expect(uid && uids.has(uid), `${a.alert}: dashboard_url ${url} names a dashboard in grafana/dashboards`).toBe(true);
    }
  });

  it('the unit tests show every alert both firing and staying silent', () => {
    const firing = new Set<string>();
    const silent = new Set<string>();
    for (const f of testFiles) {
      const doc = parse(readFileSync(f, 'utf8')) as { tests: { alert_rule_test?: { alertname: string; exp_alerts?: unknown[] }[] }[] };
      for (const t of doc.tests) {
        for (const a of t.alert_rule_test ?? []) (a.exp_alerts?.length ? firing : silent).add(a.alertname);
      }
    }
    for (const a of alerts) {
      expect(firing.has(a.alert!), `${a.alert} is tested firing`).toBe(true);
      expect(silent.has(a.alert!), `${a.alert} is tested silent`).toBe(true);
    }
  });

  it('the issue\'s alerts exist: failure burn rate with a volume guard, timeouts, stuck, source down, stalled, data loss', () => {
    const byName = new Map(alerts.map((a) => [a.alert!, a]));
    const fast = byName.get('MastraBackgroundTaskErrorBudgetFastBurn');
    expect(fast?.labels?.severity).toBe('page');
    expect(fast?.expr).toMatch(/ratio_rate1h[\s\S]*ratio_rate5m[\s\S]*slo_min_volume/);
    expect(byName.get('MastraBackgroundTaskErrorBudgetSlowBurn')?.expr).toMatch(/ratio_rate6h[\s\S]*ratio_rate30m/);
    expect(byName.get('MastraBackgroundTaskTimeoutsRising')?.expr).toContain('timeouts');
    expect(byName.get('MastraBackgroundTaskOverdue')?.expr).toContain('mastra_background_tasks_overdue');
    expect(byName.get('MastraBackgroundTaskSuspendedTooLong')?.expr).toContain('suspended_age_limit');
    expect(byName.get('MastraTaskBridgeSourceDown')?.expr).toContain('mastra_task_bridge_source_up');
    expect(byName.get('MastraTaskBridgeStreamStalled')?.expr).toContain('mastra_task_bridge_last_event_timestamp_seconds');
    expect(byName.get('MastraTaskBridgeInvalidEvents')?.expr).toContain('result="invalid"');
    expect(byName.get('MastraTaskBridgeEnrichmentFailing')?.expr).toContain('mastra_task_bridge_enrichment_failures_total');
    expect(byName.get('MastraTaskBridgeSpanExportFailing')?.expr).toContain('result=~"failed|queue_full"');
    // (failed + timed_out) / finished: the error numerator never includes cancelled.
    for (const r of rules.filter((x) => x.record?.includes('_errors:'))) {
      expect(r.expr).toMatch(/status=~"failed\|timed_out"/);
    }
  });
});

describeWith([AMTOOL], 'Alertmanager configuration', () => {
  it('amtool check-config accepts config/alertmanager.yml', () => {
    const r = run(AMTOOL_BIN, ['check-config', 'config/alertmanager.yml']);
    expect(r.code, r.out).toBe(0);
  });
});

describe('Jaeger configuration', () => {
  itWith([JAEGER], 'jaeger validate accepts config/jaeger.yaml (the Jaeger v2 the tests run, on the file docker-compose mounts)', () => {
    const r = run(JAEGER_BIN, ['validate', '--config', 'config/jaeger.yaml']);
    expect(r.code, r.out).toBe(0);
  });

  it('listens, by default, where docker-compose expects it; only addresses are variables', () => {
    const text = readFileSync('config/jaeger.yaml', 'utf8');
    const defaults = Object.fromEntries([...text.matchAll(/\$\{env:(JAEGER_[A-Z_]+):-([^}]+)\}/g)].map((m) => [m[1], m[2]]));
    expect(defaults).toEqual({
      JAEGER_LOG_LEVEL: 'info',
      JAEGER_QUERY_HTTP_ENDPOINT: '0.0.0.0:16686',
      JAEGER_QUERY_GRPC_ENDPOINT: '0.0.0.0:16685',
      JAEGER_HEALTH_ENDPOINT: '0.0.0.0:13133',
      JAEGER_OTLP_HTTP_ENDPOINT: '0.0.0.0:4318',
      JAEGER_OTLP_GRPC_ENDPOINT: '0.0.0.0:4317',
    });
    const config = parse(text) as { service: { pipelines: { traces: { receivers: string[] } } }; extensions: { jaeger_storage: { backends: Record<string, Record<string, unknown>> } } };
    expect(config.service.pipelines.traces.receivers).toEqual(['otlp']);
    expect(Object.values(config.extensions.jaeger_storage.backends).map((b) => Object.keys(b))).toEqual([['memory']]);
  });
});

describeWith([DOCKER_COMPOSE], 'docker-compose.yml', () => {
  const compose = run('docker-compose', ['-f', 'docker-compose.yml', 'config']);
  // docker-compose 1.29 prints ports as 'ip:published:target/proto' and volumes as 'source:target:mode'.
  const resolved = parse(compose.out) as {
    services: Record<string, { image?: string; build?: { target?: string }; healthcheck?: { test?: string[] }; ports?: string[]; environment?: Record<string, string>; volumes?: string[]; command?: string[]; depends_on?: Record<string, { condition: string }> }>;
  };

  it('docker-compose config -q accepts it', () => {
    const r = run('docker-compose', ['-f', 'docker-compose.yml', 'config', '-q']);
    expect(r.code, r.out).toBe(0);
  });

  it('has the seven services, each with a pinned image and a healthcheck', () => {
    expect(Object.keys(resolved.services).sort()).toEqual(['alertmanager', 'bridge', 'grafana', 'jaeger', 'mastra-demo', 'postgres', 'prometheus']);
    for (const [name, s] of Object.entries(resolved.services)) {
      // PostgreSQL versions are major.minor (15.10): that is its full pin.
      expect(s.image, name).toMatch(name === 'postgres' ? /^postgres:\d+\.\d+$/ : /^[a-z0-9./-]+:(v?\d+\.\d+\.\d+)$/);
      expect(s.healthcheck?.test?.length, `${name} healthcheck`).toBeGreaterThan(0);
    }
    expect(resolved.services['mastra-demo']?.build?.target).toBe('mastra-demo');
    expect(resolved.services.bridge?.build?.target).toBe('bridge');
    expect(resolved.services.bridge?.image?.endsWith(`:${pkg.version}`)).toBe(true);
  });

  it('pins Prometheus, Alertmanager and Jaeger to the versions the tests build and run (test/peers/*/go.mod)', () => {
    // Prometheus 3.x is the Go module v0.3xx.y (v0.316.0 = 3.16.0); Jaeger v2 2.N.0 is the module v1.(63+N).0.
    const [, major, minor, patch] = /^v0\.(\d)(\d{2})\.(\d+)$/.exec(peerVersion('prometheus')) ?? [];
    expect(resolved.services.prometheus?.image).toBe(`prom/prometheus:v${major}.${Number(minor)}.${patch}`);
    expect(resolved.services.alertmanager?.image).toBe(`prom/alertmanager:${peerVersion('alertmanager')}`);
    const jaegerMinor = Number(peerVersion('jaeger').split('.')[1]) - 63;
    expect(resolved.services.jaeger?.image).toBe(`jaegertracing/jaeger:2.${jaegerMinor}.0`);
  });

  it('publishes only UI ports, on 127.0.0.1', () => {
    const published = Object.entries(resolved.services).flatMap(([name, s]) => (s.ports ?? []).map((p) => `${name}:${p.split(':').slice(0, 2).join(':')}`));
    expect(published.sort()).toEqual(['alertmanager:127.0.0.1:9093', 'bridge:127.0.0.1:9469', 'grafana:127.0.0.1:3000', 'jaeger:127.0.0.1:16686', 'prometheus:127.0.0.1:9090']);
  });

  it('wires the bridge to the demo server, Jaeger over OTLP and a checkpoint volume; Prometheus stores exemplars', () => {
    const bridge = resolved.services.bridge!;
    // Discovery: every replica of the demo service, on the PostgreSQL store they share.
    expect(bridge.environment?.MASTRA_URL).toBe('dns+http://mastra-demo:4111');
    expect((resolved.services['mastra-demo'] as { deploy?: { replicas?: number } }).deploy?.replicas).toBe(2);
    expect(resolved.services['mastra-demo']?.environment?.DEMO_STORAGE_URL).toMatch(/^postgresql:\/\/[^@]+@postgres:5432\//);
    expect(resolved.services['mastra-demo']?.environment?.DEMO_REPLICA).toBe('true');
    expect(bridge.environment?.OTEL_EXPORTER_OTLP_ENDPOINT).toBe('http://jaeger:4318');
    // The board's trace links open the Jaeger UI where the browser reaches it: the port published on localhost.
    const jaegerUi = (resolved.services.jaeger?.ports ?? []).map((p) => p.split(':')).find((p) => p[2]?.startsWith('16686'))?.[1];
    expect(bridge.environment?.BRIDGE_TRACE_URL_TEMPLATE).toBe(`http://localhost:${jaegerUi}/trace/{traceId}`);
    const checkpoint = bridge.environment?.BRIDGE_CHECKPOINT_FILE ?? '';
    const volumeMounts = (bridge.volumes ?? []).map((v) => v.split(':')).filter(([source]) => !source!.startsWith('/'));
    expect(volumeMounts.some(([, target]) => checkpoint.startsWith(`${target}/`)), 'checkpoint file on a named volume').toBe(true);
    expect(resolved.services['mastra-demo']?.environment?.OTEL_EXPORTER_OTLP_ENDPOINT).toBe('http://jaeger:4318');
    const jaeger = resolved.services.jaeger!;
    expect(new Map((jaeger.volumes ?? []).map((v) => [v.split(':')[1], v.split(':')[0]])).get('/etc/jaeger/config.yaml')).toBe(resolve('config/jaeger.yaml'));
    expect(jaeger.command).toEqual(['--config', '/etc/jaeger/config.yaml']);
    const prom = resolved.services.prometheus!;
    expect(prom.command).toContain('--enable-feature=exemplar-storage');
    const mounts = new Map((prom.volumes ?? []).map((v) => [v.split(':')[1], v.split(':')[0]]));
    expect(mounts.get('/etc/prometheus/prometheus.yml')).toBe(resolve('config/prometheus.yml'));
    expect(mounts.get('/etc/prometheus/rules')).toBe(resolve('config/rules'));
    // prometheus.yml scrapes the bridge service by the job name the rules and dashboards select.
    const promConfig = parse(readFileSync('config/prometheus.yml', 'utf8')) as { scrape_configs: { job_name: string; static_configs: { targets: string[] }[] }[]; alerting: { alertmanagers: { static_configs: { targets: string[] }[] }[] } };
    const job = promConfig.scrape_configs.find((j) => j.job_name === 'mastra-task-bridge');
    expect(job?.static_configs[0]?.targets).toEqual(['bridge:9469']);
    expect(promConfig.alerting.alertmanagers[0]?.static_configs[0]?.targets).toEqual(['alertmanager:9093']);
    const grafana = resolved.services.grafana!;
    expect(grafana.environment?.GF_AUTH_ANONYMOUS_ENABLED).toBe('true');
    expect(grafana.environment?.GF_AUTH_ANONYMOUS_ORG_ROLE).toBe('Viewer');
  });

});

describe('the Dockerfile', () => {
  it('the Dockerfile is multi-stage, runs as a non-root user with a /healthz healthcheck, and builds the demo target', () => {
    const text = readFileSync('Dockerfile', 'utf8');
    const stages = [...text.matchAll(/^FROM \S+ AS (\S+)$/gm)].map((m) => m[1]);
    expect(stages).toEqual(['build', 'prod-deps', 'mastra-demo', 'bridge']);
    const bridgeStage = text.slice(text.indexOf('AS bridge'));
    expect(bridgeStage).toMatch(/^USER node$/m);
    expect(bridgeStage).toMatch(/HEALTHCHECK[\s\S]*\/healthz/);
    expect(bridgeStage).toContain('COPY --from=prod-deps');
    // The image holds what the npm package ships and the bridge reads at runtime (package.json "files"): dist/, the
    // board's assets/ and the config.
    const copied = [...bridgeStage.matchAll(/^COPY (?:--from=\S+ )?(\S+) /gm)].map((m) => m[1]!.replace(/^\/app\//, ''));
    for (const entry of (pkg as { files: string[] }).files.filter((f) => f !== 'README.md')) {
      expect(copied.some((c) => c === entry || c.startsWith(`${entry}/`)), `bridge stage copies ${entry}`).toBe(true);
    }
    const demoStage = text.slice(text.indexOf('AS mastra-demo'), text.indexOf('AS bridge'));
    expect(demoStage).toMatch(/^USER node$/m);
    expect(demoStage).toContain('CMD ["node", "dist-demo/server.js"]');
    // dist-demo/server.js exists only if the build stage compiles demo/ with tsconfig.demo.json (outDir dist-demo).
    const demoBuild = JSON.parse(readFileSync('tsconfig.demo.json', 'utf8')) as { include: string[]; compilerOptions: { outDir: string } };
    expect(demoBuild.include).toEqual(['demo']);
    expect(demoBuild.compilerOptions.outDir).toBe('dist-demo');
    expect(text).toContain('npm run build:demo');
    expect(text).toMatch(/^COPY demo \.\/demo$/m);
    // The shipped build (dist/, package.json "files") holds no demo: tsconfig.build.json compiles src/ only.
    expect((JSON.parse(readFileSync('tsconfig.build.json', 'utf8')) as { include: string[] }).include).toEqual(['src']);
    expect(readFileSync('.dockerignore', 'utf8')).toMatch(/^node_modules$/m);
  });

  it('the bridge image needs only production dependencies: what src/main.ts loads in remote mode is in "dependencies"', () => {
    const deps = new Set(Object.keys(pkg.dependencies));
    const seen = new Set<string>();
    const packages = new Set<string>();
    const visit = (file: string): void => {
      if (seen.has(file)) return;
      seen.add(file);
      const text = readFileSync(file, 'utf8');
      const specs = [
        ...[...text.matchAll(/^(?:import|export)\s+(?!type\b)[^;]*?\sfrom\s+'([^']+)'/gm)].map((m) => m[1]!),
        ...[...text.matchAll(/^import\s+'([^']+)'/gm)].map((m) => m[1]!),
        ...[...text.matchAll(/await import\('([^']+)'\)/g)].map((m) => m[1]!),
      ];
      for (const spec of specs) {
        if (spec.startsWith('node:')) continue;
        if (spec.startsWith('.')) {
          visit(resolve(dirname(file), spec.replace(/\.js$/, '.ts')));
        } else {
          packages.add(spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]!);
        }
      }
    };
    visit(resolve('src/main.ts'));
    expect(seen.size).toBeGreaterThan(5);
    for (const p of packages) expect(deps.has(p), `${p} is a production dependency`).toBe(true);
  });
});

describe('Grafana provisioning and dashboards', () => {
  const datasources = (parse(readFileSync('grafana/provisioning/datasources/datasources.yml', 'utf8')) as { datasources: { uid: string; type: string; url: string; jsonData?: { exemplarTraceIdDestinations?: { name: string; datasourceUid: string }[] } }[] }).datasources;

  it('provisions Prometheus with exemplar trace ids linked to the Jaeger datasource', () => {
    const prom = datasources.find((d) => d.type === 'prometheus');
    const jaeger = datasources.find((d) => d.type === 'jaeger');
    expect(prom?.url).toBe('http://prometheus:9090');
    expect(jaeger?.url).toBe('http://jaeger:16686');
    expect(prom?.jsonData?.exemplarTraceIdDestinations).toEqual([{ name: 'trace_id', datasourceUid: jaeger?.uid }]);
  });

  it('the dashboard provider loads the directory docker-compose mounts the dashboards at', () => {
    const provider = (parse(readFileSync('grafana/provisioning/dashboards/dashboards.yml', 'utf8')) as { providers: { options: { path: string } }[] }).providers[0];
    const composeText = readFileSync('docker-compose.yml', 'utf8');
    expect(composeText).toContain(`./grafana/dashboards:${provider?.options.path}:ro`);
  });

  it('has the overview, drill-down and bridge health dashboards, with template variables and exemplar duration panels', () => {
    const dashboards = readDashboards();
    expect(dashboards.map((d) => d.json.uid).sort()).toEqual(['mastra-task-bridge-health', 'mastra-tasks-drilldown', 'mastra-tasks-overview']);
    const text = (uid: string) => JSON.stringify(dashboards.find((d) => d.json.uid === uid)?.json);
    expect(text('mastra-tasks-drilldown')).toContain('"name":"agent_id"');
    expect(text('mastra-tasks-drilldown')).toContain('"name":"tool_name"');
    const queries = panelQueries();
    for (const uid of ['mastra-tasks-overview', 'mastra-tasks-drilldown']) {
      const exemplar = queries.filter((q) => q.dashboard === uid && q.exemplar);
      expect(exemplar.length, uid).toBeGreaterThan(0);
      for (const q of exemplar) expect(q.expr).toContain('mastra_background_task_duration_seconds_bucket');
    }
    // Every panel query uses the provisioned Prometheus through the datasource variable.
    for (const d of dashboards) {
      const refs = [...JSON.stringify(d.json).matchAll(/"datasource":\{"type":"(\w+)","uid":"([^"]*)"\}/g)].map((m) => `${m[1]}:${m[2]}`);
      expect(new Set(refs), d.json.uid).toEqual(new Set(['prometheus:${datasource}', 'grafana:-- Grafana --']));
    }
  });

  it(`${GENERATED_FILE} (typechecked by npm run typecheck) is current: npm run gen:dashboard-types`, () => {
    expect(readFileSync(GENERATED_FILE, 'utf8')).toBe(renderDashboardTypes(readDashboards()));
  });
});
