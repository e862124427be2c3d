// The board page and its script through app.inject: the shell the script fills (tables, connection state), the
// landing facts and links, the page config embedded safely in a <script> element, and the static script itself.
import { describe, expect, it } from 'vitest';
import { buildApp } from '../src/http/app.js';
import type { BridgeStatus } from '../src/status.js';
import { EventHub } from '../src/event-hub.js';
import { BridgeMetrics } from '../src/metrics.js';

const status: BridgeStatus = { mode: 'remote', source: 'http://mastra:4111/api', version: '0.1.0', connected: true, synced: true, openTasks: 0, tracesExported: true };

function app(traceUrlTemplate: string) {
  return buildApp({
    metrics: new BridgeMetrics({ version: '0.1.0', defaultMetrics: false }),
    status: () => status,
    events: { hub: new EventHub({ bufferSize: 10, recentFinished: 10 }), heartbeatMs: 15_000, maxClientBufferBytes: 65536, maxClients: 5 },
    board: { traceUrlTemplate },
  });
}

describe('board page', () => {
  it('serves the board shell with the landing facts, links and the script', async () => {
    const res = await app('http://jaeger:16686/trace/{traceId}').inject('/');
    expect(res.statusCode).toBe(200);
    for (const id of ['open-tasks', 'finished-tasks', 'tool-failures', 'conn', 'token-form']) expect(res.body).toContain(`id="${id}"`);
    for (const link of ['/metrics', '/healthz', '/readyz', '/api/events']) expect(res.body).toContain(`href="${link}"`);
    expect(res.body).toContain('<script src="/board.js" defer></script>');
    expect(res.body).not.toContain('Demo mode');
    const config = JSON.parse(/<script id="board-config" type="application\/json">(.*?)<\/script>/.exec(res.body)![1]!);
    expect(config).toEqual({ eventsUrl: '/api/events', traceUrlTemplate: 'http://jaeger:16686/trace/{traceId}', heartbeatSeconds: 15, failureWindowMinutes: 5 });
  });

  it('embeds the page config so it cannot close its script element', async () => {
    const res = await app('http://x/</script><script>alert(1)</script>{traceId}').inject('/');
    expect(res.body).not.toContain('</script><script>alert');
    expect(res.body).toContain('\\u003c/script\\u003e');
  });

  it('serves the script as JavaScript', async () => {
    const res = await app('').inject('/board.js');
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe('text/javascript; charset=utf-8');
    expect(res.body).toContain("fetch(cfg.eventsUrl");
    expect(res.body).not.toContain('innerHTML');
  });
});
