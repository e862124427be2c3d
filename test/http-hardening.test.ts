// The HTTP side against hostile and unlucky clients (issue 10, should-fix items), through app.inject with a recording
// source (what reaches Mastra is what matters here): the anonymous API only on loopback unless allowed, wrong tokens
// limited and logged sparingly, browser headers (CSP the page's own style satisfies), dates the schema admits but Date
// cannot read, 128-character ids, and one order for merged remote pages.
import { createHash } from 'node:crypto';
import { Writable } from 'node:stream';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { ConfigSchema, type ConfigInput } from '../src/config.js';
import type { TaskRecord } from '../src/events.js';
import { buildApp } from '../src/http/app.js';
import { LookupCache } from '../src/http/lookup-cache.js';
import { byColumn } from '../src/http/tasks.js';
import { BridgeMetrics } from '../src/metrics.js';
import type { TaskQuery } from '../src/sources/types.js';
import { scrape, total } from './support/metrics-text.js';
import { waitFor } from './support/poll.js';

const TOKEN = 'hardening-token-0123456789';

function record(id: string, status: TaskRecord['status'], createdAt: number, completedAt?: number): TaskRecord {
  const r: TaskRecord = { id, status, toolName: 't', toolCallId: `c-${id}`, agentId: 'a', runId: `r-${id}`, createdAt };
  if (completedAt !== undefined) r.completedAt = completedAt;
  return r;
}

function appWith(
  opts: { api?: NonNullable<ConfigInput['api']>; kind?: 'remote' | 'in-process'; records?: TaskRecord[]; lines?: string[]; gate?: Promise<void> } = {},
) {
  const config = ConfigSchema.parse({ api: { cache: { ttlMs: 0 }, ...opts.api } }).api;
  const metrics = new BridgeMetrics({ version: 't', defaultMetrics: false });
  const calls: { getTask: string[]; listTasks: TaskQuery[] } = { getTask: [], listTasks: [] };
  const records = opts.records ?? [];
  const logger = pino(
    { level: 'info' },
    new Writable({
      write(chunk, _enc, cb) {
        opts.lines?.push(String(chunk));
        cb();
      },
    }),
  );
  const app = buildApp({
    metrics,
    logger,
    status: () => ({ mode: 'remote', source: 's', version: 't', connected: true, synced: true, openTasks: 0, tracesExported: false }),
    auth: { apiTokens: config.tokens, metricsTokens: [], allowAnonymous: config.allowAnonymous, failureLimit: config.failedAuthLimit },
    tasks: {
      source: {
        kind: opts.kind ?? 'in-process',
        getTask: async (id: string) => {
          calls.getTask.push(id);
          return records.find((r) => r.id === id) ?? null;
        },
        // A remote Mastra filters one status per request: the source answers one group per status, in that order.
        listTasks: async (q: TaskQuery) => {
          calls.listTasks.push(q);
          await opts.gate;
          const statuses = q.status === undefined ? undefined : Array.isArray(q.status) ? q.status : [q.status];
          const tasks = statuses ? statuses.flatMap((s) => records.filter((r) => r.status === s)) : records;
          return { tasks, total: tasks.length, invalid: 0 };
        },
      },
      config,
      metrics,
    },
  });
  return { app, metrics, calls };
}

describe('anonymous API', () => {
  it('answers loopback clients only unless api.allowAnonymous, and a token opens it to everyone', async () => {
    const { app } = appWith();
    expect((await app.inject({ url: '/api/tasks', remoteAddress: '127.0.0.1' })).statusCode).toBe(200);
    expect((await app.inject({ url: '/api/tasks', remoteAddress: '::1' })).statusCode).toBe(200);
    const far = await app.inject({ url: '/api/tasks', remoteAddress: '10.1.2.3' });
    expect(far.statusCode).toBe(403);
    expect(far.json().message).toContain('BRIDGE_API_TOKEN');
    expect((await app.inject({ url: '/api/events', remoteAddress: '192.168.1.9' })).statusCode).toBe(403);
    // The rest of the bridge stays open, as before.
    expect((await app.inject({ url: '/metrics', remoteAddress: '10.1.2.3' })).statusCode).toBe(200);
    expect((await app.inject({ url: '/', remoteAddress: '10.1.2.3' })).statusCode).toBe(200);

    const open = appWith({ api: { allowAnonymous: true } }).app;
    expect((await open.inject({ url: '/api/tasks', remoteAddress: '10.1.2.3' })).statusCode).toBe(200);
    const tokened = appWith({ api: { tokens: [TOKEN] } }).app;
    expect((await tokened.inject({ url: '/api/tasks', remoteAddress: '10.1.2.3', headers: { authorization: `Bearer ${TOKEN}` } })).statusCode).toBe(200);
    expect((await tokened.inject({ url: '/api/tasks', remoteAddress: '127.0.0.1' })).statusCode).toBe(401);
  });

  it('reads BRIDGE_API_ALLOW_ANONYMOUS as a boolean', () => {
    expect(ConfigSchema.parse({ api: { allowAnonymous: 'true' } }).api.allowAnonymous).toBe(true);
    expect(() => ConfigSchema.parse({ api: { allowAnonymous: 'yes' } })).toThrow();
  });
});

describe('wrong tokens', () => {
  it('are limited per address (429 without a check, even for the right token) and logged at most once a minute', async () => {
    const lines: string[] = [];
    const { app, metrics } = appWith({ api: { tokens: [TOKEN], failedAuthLimit: { max: 5, timeWindowMs: 60_000 } }, lines });
    for (let i = 0; i < 5; i++) {
      expect((await app.inject({ url: '/api/tasks', remoteAddress: '10.0.0.7', headers: { authorization: `Bearer guess-${i}` } })).statusCode).toBe(401);
    }
    const blocked = await app.inject({ url: '/api/tasks', remoteAddress: '10.0.0.7', headers: { authorization: `Bearer ${TOKEN}` } });
    expect(blocked.statusCode).toBe(429);
    expect(Number(blocked.headers['retry-after'])).toBeGreaterThan(0);
    // Another address is not affected.
    expect((await app.inject({ url: '/api/tasks', remoteAddress: '10.0.0.8', headers: { authorization: `Bearer ${TOKEN}` } })).statusCode).toBe(200);
    const body = await scrape(app);
    expect(total(body, 'mastra_task_bridge_auth_failures_total', { result: 'rejected' })).toBe(5);
    expect(total(body, 'mastra_task_bridge_auth_failures_total', { result: 'rate_limited' })).toBe(1);
    expect(lines.filter((l) => l.includes('wrong bearer token'))).toHaveLength(1);
  });
});

describe('browser headers', () => {
  it('serves the board with a CSP its own inline style satisfies, and nosniff, no referrer, no framing everywhere', async () => {
    const { app } = appWith();
    const page = await app.inject({ url: '/' });
    const csp = String(page.headers['content-security-policy']);
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).toContain("script-src 'self'");
    const style = /<style>([\s\S]*?)<\/style>/.exec(page.body)![1]!;
    expect(csp).toContain(`'sha256-${createHash('sha256').update(style).digest('base64')}'`);
    expect(page.body).not.toMatch(/<script>(?!\s*<\/script>)/); // no inline script to allow
    for (const url of ['/', '/board.js', '/metrics', '/healthz', '/api/tasks', '/nope']) {
      const res = await app.inject({ url });
      expect(res.headers['x-content-type-options'], url).toBe('nosniff');
      expect(res.headers['referrer-policy'], url).toBe('no-referrer');
      expect(res.headers['x-frame-options'], url).toBe('DENY');
    }
  });
});

describe('task API inputs', () => {
  it('answers 400 for dates the schema admits but Date cannot read, without asking Mastra', async () => {
    for (const kind of ['remote', 'in-process'] as const) {
      const { app, calls } = appWith({ kind });
      for (const d of ['2025-06-30T23:59:60Z', '2025-01-01T00:00:00+01']) {
        const res = await app.inject({ url: `/api/tasks?fromDate=${encodeURIComponent(d)}` });
        expect(res.statusCode, `${kind} ${d}`).toBe(400);
        expect(res.json().message).toContain('fromDate');
        expect((await app.inject({ url: `/api/tasks?toDate=${encodeURIComponent(d)}` })).statusCode).toBe(400);
      }
      expect(calls.listTasks).toHaveLength(0);
      expect((await app.inject({ url: '/api/tasks?fromDate=2025-01-01T00:00:00%2B01:00' })).statusCode).toBe(200);
    }
  });

  it('takes ids up to the schema’s 128 characters (fastify’s default param limit answered 414 past 100)', async () => {
    const { app, calls } = appWith();
    expect((await app.inject({ url: `/api/tasks/${'a'.repeat(128)}` })).statusCode).toBe(404);
    expect(calls.getTask).toEqual(['a'.repeat(128)]);
    expect((await app.inject({ url: `/api/tasks/${'a'.repeat(129)}` })).statusCode).toBe(400);
  });

  it('merges several statuses from a remote Mastra in the asked order even when they fit one page', async () => {
    const records = [
      record('c1', 'completed', 10, 110),
      record('c2', 'completed', 40, 140),
      record('f1', 'failed', 30, 130),
      record('f2', 'failed', 20, 120),
    ];
    const { app } = appWith({ kind: 'remote', records });
    const desc = (await app.inject({ url: '/api/tasks?status=completed,failed' })).json().tasks.map((t: { id: string }) => t.id);
    expect(desc).toEqual(['c2', 'f1', 'f2', 'c1']);
    const asc = (await app.inject({ url: '/api/tasks?status=completed,failed&orderBy=completedAt&orderDirection=asc' })).json().tasks.map((t: { id: string }) => t.id);
    expect(asc).toEqual(['c1', 'f2', 'f1', 'c2']);
  });

  it('orders tasks without the ordering date last in both directions', () => {
    const rs = [record('open', 'running', 5), record('old', 'completed', 1, 100), record('new', 'completed', 2, 200)];
    expect([...rs].sort(byColumn('completedAt', 'desc')).map((r) => r.id)).toEqual(['new', 'old', 'open']);
    expect([...rs].sort(byColumn('completedAt', 'asc')).map((r) => r.id)).toEqual(['old', 'new', 'open']);
  });
});

describe('protecting Mastra', () => {
  it('keeps at most api.maxUpstreamConcurrency lookups in flight however clients vary their filters', async () => {
    let open!: () => void;
    const gate = new Promise<void>((r) => (open = r));
    const { app, calls } = appWith({ api: { maxUpstreamConcurrency: 3, rateLimit: { max: 0 } }, gate });
    const answers = Array.from({ length: 12 }, (_, i) => app.inject({ url: `/api/tasks?agentId=agent-${i}` }));
    await waitFor(() => calls.listTasks.length >= 3, { message: 'three lookups in flight' });
    // Every request has reached its handler (they are injected at once); none got past the three slots.
    for (let i = 0; i < 10; i++) await new Promise((r) => setImmediate(r));
    expect(calls.listTasks).toHaveLength(3);
    open();
    const codes = (await Promise.all(answers)).map((r) => r.statusCode);
    expect(codes).toEqual(Array(12).fill(200));
    expect(calls.listTasks).toHaveLength(12);
  });

  it('bounds the lookup cache by bytes as well as entries', async () => {
    const cache = new LookupCache<string>(60_000, 1000, Date.now, 1000);
    for (let i = 0; i < 10; i++) await cache.get(`k${i}`, async () => 'x'.repeat(300)).value;
    expect(cache.bytes).toBeLessThanOrEqual(1000);
    expect(cache.size).toBe(3);
    await cache.get('huge', async () => 'y'.repeat(5000)).value;
    expect(cache.get('huge', async () => 'again').hit).toBe(false);
    expect(cache.bytes).toBeLessThanOrEqual(1000);
  });
});
