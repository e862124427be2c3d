// The `api` config section: tokens from the environment (a comma-separated list), validation that names the variable
// without echoing the secret, per-tool redaction overrides, and --check-config never printing a token.
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, ConfigSchema, loadConfig } from '../src/config.js';

const cwd = mkdtempSync(join(tmpdir(), 'bridge-api-config-'));

describe('api configuration', () => {
  it('is closed to payloads and open to clients by default', () => {
    expect(ConfigSchema.parse({}).api).toEqual({
      tokens: [],
      allowAnonymous: false,
      failedAuthLimit: { max: 10, timeWindowMs: 60000 },
      metricsToken: '',
      maxPerPage: 100,
      upstreamTimeoutMs: 5000,
      maxUpstreamConcurrency: 8,
      cache: { ttlMs: 1000, maxEntries: 1000, maxBytes: 33554432 },
      rateLimit: { max: 600, timeWindowMs: 60000 },
      redaction: { args: false, result: false, suspendPayload: false, errorStack: false, errorMessage: 'scrub', maxBytes: 4096, tools: {} },
    });
  });

  it('reads BRIDGE_API_TOKEN as a comma-separated list and BRIDGE_METRICS_TOKEN as one token', () => {
    const c = loadConfig({ cwd, env: { BRIDGE_API_TOKEN: ' first-token-aaaaaaaaaa, second-token-bbbbbbbbb ,', BRIDGE_METRICS_TOKEN: 'metrics-token-cccccccc' } });
    expect(c.api.tokens).toEqual(['first-token-aaaaaaaaaa', 'second-token-bbbbbbbbb']);
    expect(c.api.metricsToken).toBe('metrics-token-cccccccc');
  });

  it('refuses short tokens, naming the variable and not the value', () => {
    let error: unknown;
    try {
      loadConfig({ cwd, env: { BRIDGE_API_TOKEN: 'longenough-token-xxxxx,short1', BRIDGE_METRICS_TOKEN: 'short2' } });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const problems = (error as ConfigError).problems.join('\n');
    expect(problems).toContain('api.tokens.1 (from BRIDGE_API_TOKEN): tokens must be at least 16 characters');
    expect(problems).toContain('api.metricsToken (from BRIDGE_METRICS_TOKEN)');
    expect(problems).not.toMatch(/short1|short2/);
  });

  it('keeps per-tool redaction overrides sparse (unset keys inherit the section) and validates them', () => {
    const r = ConfigSchema.parse({ api: { redaction: { result: true, tools: { charge_card: { args: true } } } } }).api.redaction;
    expect(r.tools).toEqual({ charge_card: { args: true } });
    expect(ConfigSchema.safeParse({ api: { redaction: { tools: { t: { argz: true } } } } }).success).toBe(false);
    expect(ConfigSchema.safeParse({ api: { redaction: { tools: { t: { maxBytes: 1 } } } } }).success).toBe(false);
  });

  it('--check-config never prints a token', () => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', 'src/main.ts', '--check-config'], {
      encoding: 'utf8',
      env: { PATH: process.env.PATH, HOME: process.env.HOME, BRIDGE_API_TOKEN: 'api-secret-value-123456', BRIDGE_METRICS_TOKEN: 'metrics-secret-value-1234' },
      timeout: 30_000,
    });
    expect(r.status).toBe(0);
    expect(r.stdout).not.toMatch(/secret-value/);
    expect(JSON.parse(r.stdout).api).toMatchObject({ tokens: ['<set>'], metricsToken: '<set>' });
  });
});
