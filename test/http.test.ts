// The HTTP app through app.inject: landing page, metrics negotiation, health, readiness with a JSON reason, and one
// JSON error shape (never a stack) for unknown routes.
import { describe, expect, it } from 'vitest';
import { buildApp } from '../src/http/app.js';
import type { BridgeStatus } from '../src/status.js';
import { BridgeMetrics } from '../src/metrics.js';

function app(status: Partial<BridgeStatus> = {}) {
  const s: BridgeStatus = { mode: 'demo', source: 'in-process Mastra', version: '0.1.0', connected: true, synced: true, openTasks: 3, tracesExported: false, ...status };
  return buildApp({ metrics: new BridgeMetrics({ version: '0.1.0', defaultMetrics: false }), status: () => s });
}

describe('HTTP app', () => {
  it('serves a landing page that links every endpoint and says demo mode plainly', async () => {
    const res = await app().inject('/');
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toContain('text/html');
    for (const link of ['/metrics', '/healthz', '/readyz']) expect(res.body).toContain(`href="${link}"`);
    expect(res.body).toContain('Demo mode');
    expect((await app({ mode: 'remote' }).inject('/')).body).not.toContain('Demo mode');
  });

  it('escapes what it shows', async () => {
    const res = await app({ source: '<script>alert(1)</script>' }).inject('/');
    expect(res.body).not.toContain('<script>alert');
    expect(res.body).toContain('&lt;script&gt;');
  });

  it('serves text metrics by default and OpenMetrics when asked', async () => {
    const a = app();
    const text = await a.inject('/metrics');
    expect(text.headers['content-type']).toBe('text/plain; version=0.0.4; charset=utf-8');
    expect(text.body).toContain('mastra_task_bridge_build_info{version="0.1.0"');
    const om = await a.inject({ url: '/metrics', headers: { accept: 'application/openmetrics-text; version=1.0.0' } });
    expect(om.headers['content-type']).toContain('application/openmetrics-text');
    expect(om.body).toMatch(/# EOF\n$/);
  });

  it('answers /healthz while the process serves', async () => {
    const res = await app({ connected: false, synced: false }).inject('/healthz');
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ status: 'ok' });
  });

  it('answers /readyz 503 with a reason until connected and synced, then 200', async () => {
    const down = await app({ connected: false, synced: false, reason: 'disconnected: refused' }).inject('/readyz');
    expect(down.statusCode).toBe(503);
    expect(down.json()).toEqual({ status: 'not_ready', connected: false, synced: false, reason: 'disconnected: refused' });
    const syncing = await app({ connected: true, synced: false }).inject('/readyz');
    expect(syncing.statusCode).toBe(503);
    expect(syncing.json().reason).toMatch(/sync/);
    const ready = await app().inject('/readyz');
    expect(ready.statusCode).toBe(200);
    expect(ready.json()).toEqual({ status: 'ready', connected: true, synced: true });
  });

  it('answers unknown routes with a JSON 404', async () => {
    const res = await app().inject('/nope?x=1');
    expect(res.statusCode).toBe(404);
    expect(res.json()).toEqual({ error: 'Not found', message: 'GET /nope is not a route of this bridge; see /' });
  });
});
