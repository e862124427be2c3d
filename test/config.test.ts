// Configuration: defaults, file + environment precedence, the standard OTEL_* variables, and a bad file or bad
// environment making the real CLI exit 1 with every problem listed.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import pino from 'pino';
import { startBridge } from '../src/bridge.js';
import { ConfigError, loadConfig, sourceServers, tracesUrl } from '../src/config.js';
import { createDemoMastra, shutdownDemoMastra } from '../demo/app.js';

const dir = mkdtempSync(join(tmpdir(), 'bridge-config-'));
function file(name: string, text: string): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}

function cli(args: string[], env: Record<string, string> = {}) {
  return spawnSync(process.execPath, ['--import', 'tsx', 'src/main.ts', ...args], {
    encoding: 'utf8',
    env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env },
    timeout: 30_000,
  });
}

describe('loadConfig', () => {
  it('has working defaults with no file and no environment', () => {
    const c = loadConfig({ env: {}, cwd: dir });
    expect(c.http).toEqual({ host: '0.0.0.0', port: 9469 });
    expect(c.otel.serviceName).toBe('mastra-task-bridge');
    expect(c.source.mastraUrl).toBe('');
    expect(c.traces.parent).toBe('auto');
    expect(tracesUrl(c)).toBeUndefined();
  });

  it('MASTRA_URL takes one URL as before, a comma-separated list, or dns+http:// names; source.servers adds more', () => {
    expect(sourceServers(loadConfig({ env: { MASTRA_URL: 'http://mastra:4111' }, cwd: dir }))).toEqual(['http://mastra:4111']);
    const f = file('servers.yaml', 'source:\n  servers:\n    - http://c:4111\n    - http://a:4111\n');
    const c = loadConfig({ file: f, env: { MASTRA_URL: 'http://a:4111, http://b:4111 ,dns+http://mastra.svc:4111/base' } });
    expect(sourceServers(c)).toEqual(['http://a:4111', 'http://b:4111', 'dns+http://mastra.svc:4111/base', 'http://c:4111']);
    expect(c.source.discovery.refreshSeconds).toBe(30);
    try {
      loadConfig({ env: { MASTRA_URL: 'http://a:4111,ftp://b,not a url' }, cwd: dir });
      expect.unreachable();
    } catch (e) {
      const text = (e as ConfigError).problems.join('\n');
      expect(text).toContain('source.mastraUrl (from MASTRA_URL)');
      expect(text).toContain('"ftp://b"');
      expect(text).toContain('"not a url"');
      expect(text).not.toContain('"http://a:4111"');
    }
  });

  it('lets the environment override the file', () => {
    const f = file('a.yaml', 'http:\n  port: 1234\n  host: 127.0.0.1\notel:\n  serviceName: from-file\n');
    const c = loadConfig({ file: f, env: { BRIDGE_PORT: '9999', OTEL_SERVICE_NAME: 'from-env' } });
    expect(c.http).toEqual({ host: '127.0.0.1', port: 9999 });
    expect(c.otel.serviceName).toBe('from-env');
  });

  it('follows the OTLP endpoint rules of the OTel spec', () => {
    expect(tracesUrl(loadConfig({ env: { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318/' }, cwd: dir }))).toBe('http://collector:4318/v1/traces');
    expect(
      tracesUrl(loadConfig({ env: { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://t:4318/custom' }, cwd: dir })),
    ).toBe('http://t:4318/custom');
    expect(tracesUrl(loadConfig({ env: { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_TRACES_EXPORTER: 'none' }, cwd: dir }))).toBeUndefined();
    expect(tracesUrl(loadConfig({ env: { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_SDK_DISABLED: 'true' }, cwd: dir }))).toBeUndefined();
    const proto = loadConfig({ env: { OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json', OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'http/protobuf' }, cwd: dir });
    expect(proto.otel.protocol).toBe('http/protobuf');
    expect(loadConfig({ env: { OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json' }, cwd: dir }).otel.protocol).toBe('http/json');
  });

  it('lists every problem at once, saying where each came from', () => {
    const f = file('bad.yaml', 'http:\n  port: 70000\ntraces:\n  parent: sideways\n  recordArgs: "yes"\nnonsense: 1\nmetrics:\n  durationBuckets: [1, 0.5]\n');
    let error: unknown;
    try {
      loadConfig({ file: f, env: { BRIDGE_LOG_LEVEL: 'loud', OTEL_EXPORTER_OTLP_ENDPOINT: 'not a url', OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' } });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const problems = (error as ConfigError).problems.join('\n');
    expect(problems).toContain('http.port (in');
    expect(problems).toContain('traces.parent (in');
    expect(problems).toContain('traces.recordArgs (in');
    expect(problems).toMatch(/nonsense/);
    expect(problems).toContain('metrics.durationBuckets');
    expect(problems).toContain('log.level (from BRIDGE_LOG_LEVEL)');
    expect(problems).toContain('otel.endpoint (from OTEL_EXPORTER_OTLP_ENDPOINT)');
    expect(problems).toContain('otel.protocol (from OTEL_EXPORTER_OTLP_PROTOCOL)');
    expect((error as ConfigError).problems.length).toBeGreaterThanOrEqual(8);
  });

  it('never turns an empty, blank, boolean or list value into a number', () => {
    const problemsOf = (f: string | undefined, env: Record<string, string>): string[] => {
      try {
        loadConfig({ ...(f ? { file: f } : {}), env, cwd: dir });
      } catch (e) {
        return (e as ConfigError).problems;
      }
      return [];
    };
    // `port:` with no value is YAML null: before, it became port 0 (a random port) without a word.
    const f = file('empty-values.yaml', 'http:\n  port:\nevents:\n  maxClients: []\ndemo:\n  ratePerSecond: true\n');
    const fromFile = problemsOf(f, {}).join('\n');
    expect(fromFile).toContain('http.port (in');
    expect(fromFile).toContain('events.maxClients (in');
    expect(fromFile).toContain('demo.ratePerSecond (in');
    // (An empty variable counts as unset, as the OTel spec has it for OTEL_*; a blank one is an error.)
    expect(loadConfig({ env: { BRIDGE_PORT: '' }, cwd: dir }).http.port).toBe(9469);
    for (const bad of [' ', 'abc', '12abc', '0x10']) {
      expect(problemsOf(undefined, { BRIDGE_PORT: bad }).join('\n'), JSON.stringify(bad)).toContain('http.port (from BRIDGE_PORT)');
    }
    // Decimal strings from the environment still work, surrounding spaces allowed.
    expect(loadConfig({ env: { BRIDGE_PORT: ' 9470 ', BRIDGE_DEMO_RATE: '0.5' }, cwd: dir })).toMatchObject({ http: { port: 9470 }, demo: { ratePerSecond: 0.5 } });
  });

  it('library use: a bad config given in code throws a ConfigError listing every problem; loadConfig() output is accepted', async () => {
    const mastra = createDemoMastra();
    let error: unknown;
    try {
      startBridge({ mastra, logger: pino({ level: 'silent' }), config: { http: { port: -1 }, traces: { parent: 'sideways' } } as never });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).problems.join('\n')).toMatch(/http\.port[\s\S]*traces\.parent|traces\.parent[\s\S]*http\.port/);
    const bridge = startBridge({ mastra, logger: pino({ level: 'silent' }), config: loadConfig({ env: { BRIDGE_PORT: '9999' }, cwd: dir }) });
    await bridge.whenReady();
    await bridge.close();
    await shutdownDemoMastra(mastra);
  });

  it('reports a YAML syntax error and a missing explicit file', () => {
    expect(() => loadConfig({ file: file('broken.yaml', 'http: [unclosed\n'), env: {} })).toThrow(ConfigError);
    expect(() => loadConfig({ file: join(dir, 'missing.yaml'), env: {} })).toThrow(/missing\.yaml/);
  });

  it('accepts the shipped config/bridge.yaml unchanged', () => {
    const c = loadConfig({ file: 'config/bridge.yaml', env: {} });
    expect(c).toEqual(loadConfig({ env: {}, cwd: dir }));
  });
});

describe('CLI configuration errors', () => {
  it('exits 1 listing every problem of a bad file and bad environment', () => {
    const f = file('cli-bad.yaml', 'http:\n  port: -1\ntracker:\n  maxOpenTasks: 0\n');
    const r = cli(['--config', f], { BRIDGE_PORT: 'abc', OTEL_TRACES_EXPORTER: 'zipkin' });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('invalid configuration');
    expect(r.stderr).toContain('http.port (from BRIDGE_PORT)');
    expect(r.stderr).toContain('tracker.maxOpenTasks (in');
    expect(r.stderr).toContain('otel.tracesExporter (from OTEL_TRACES_EXPORTER)');
    expect(r.stderr).not.toMatch(/at .*\.ts:\d+/); // a message, not a stack
  });

  it('exits 1 with one clear line when the checkpoint file is not a checkpoint', () => {
    const foreign = file('not-a-checkpoint.jsonl', '{"hello":"world"}\n');
    const r = cli([], { MASTRA_URL: 'http://127.0.0.1:9', BRIDGE_PORT: '0', BRIDGE_CHECKPOINT_FILE: foreign, BRIDGE_LOG_LEVEL: 'silent' });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('cannot start:');
    expect(r.stderr).toContain('is not a mastra-task-bridge checkpoint');
    expect(r.stderr).not.toMatch(/at .*\.ts:\d+/);
  });

  it('exits 1 on an unknown flag, 0 on --help and --check-config', () => {
    expect(cli(['--frobnicate']).status).toBe(1);
    const help = cli(['--help']);
    expect(help.status).toBe(0);
    expect(help.stdout).toContain('MASTRA_URL');
    const check = cli(['--check-config'], { MASTRA_TOKEN: 'secret-token-value' });
    expect(check.status).toBe(0);
    expect(check.stdout).not.toContain('secret-token-value');
  });
});
