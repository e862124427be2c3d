// The task API in process, through app.inject, against a real Mastra (demo agents, mock model) that ran every
// lifecycle. Ground truth is Mastra itself (manager.getTask/listTasks). Covers: records with the true status and the
// bridge's span ids, 404, filters and pagination, the perPage cap, a table of malformed queries and ids (400 naming
// the field), redaction by default and when allowed, bearer auth on /api/* and /metrics, the open-API warning, the
// lookup cache and the rate limit, and the counters for all of them.
import { Writable } from 'node:stream';
import type { Mastra } from '@mastra/core';
import type { BackgroundTask } from '@mastra/core/background-tasks';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type BridgeHandle, startBridge } from '../src/bridge.js';
import { ConfigSchema, type ConfigInput } from '../src/config.js';
import { DEMO_TOOL_NAMES, createDemoMastra, shutdownDemoMastra } from '../demo/app.js';
import { toolInstruction } from '../demo/model.js';
import { EXPECTED_STATUS, type Scenario, type ScenarioResult, runScenario } from '../demo/workload.js';
import { buildApp } from '../src/http/app.js';
import { BridgeMetrics } from '../src/metrics.js';
import { InProcessSource } from '../src/sources/in-process.js';
import { runTraceId, taskSpanId } from '../src/span-ids.js';
import { MALFORMED } from './support/api-cases.js';
import { scrape, total } from './support/metrics-text.js';
import { waitFor } from './support/poll.js';

const silent = pino({ level: 'silent' });
const TOKEN = 'test-token-0123456789abcdef';
const METRICS_TOKEN = 'metrics-token-0123456789';
const SCENARIOS: Scenario[] = ['complete', 'fail', 'timeout', 'cancel', 'suspend_resume', 'complete'];

/** A bare app serving the task API over the same real Mastra, with its own api config. */
function apiApp(mastra: Mastra, api: NonNullable<ConfigInput['api']> = {}, logger = silent) {
  const config = ConfigSchema.parse({ api }).api;
  const metrics = new BridgeMetrics({ version: 't', defaultMetrics: false });
  const app = buildApp({
    metrics,
    logger,
    status: () => ({ mode: 'in-process', source: 's', version: 't', connected: true, synced: true, openTasks: 0, tracesExported: false }),
    auth: {
      apiTokens: config.tokens,
      metricsTokens: config.metricsToken ? [config.metricsToken] : [],
      allowAnonymous: config.allowAnonymous,
      failureLimit: config.failedAuthLimit,
    },
    tasks: { source: new InProcessSource(mastra), config, metrics },
  });
  return { app, metrics };
}

describe('task API over an in-process Mastra', () => {
  let mastra: Mastra;
  let bridge: BridgeHandle;
  let runs: ScenarioResult[];
  let suspended: BackgroundTask;
  let stored: BackgroundTask[];

  beforeAll(async () => {
    mastra = createDemoMastra({ observability: false });
    bridge = startBridge({ mastra, logger: silent, config: { traces: { parent: 'run' }, api: { cache: { ttlMs: 0 }, rateLimit: { max: 0 } } } });
    await bridge.whenReady();
    runs = [];
    for (let i = 0; i < SCENARIOS.length; i += 2) {
      runs.push(
        ...(await Promise.all(
          SCENARIOS.slice(i, i + 2).map((s, j) => runScenario(mastra, s, { threadId: `api-thread-${i + j}`, resourceId: i + j === 5 ? 'other-user' : 'api-user' })),
        )),
      );
    }
    // One task left suspended (never resumed): the only state in which Mastra keeps a suspendPayload.
    const out = await mastra.getAgentById('billing-agent').stream(toolInstruction(DEMO_TOOL_NAMES.suspend, { amountCents: 777 }), {
      memory: { thread: 'api-suspended', resource: 'api-user' },
    });
    void (async () => {
      for await (const _ of out.fullStream) void _;
    })().catch(() => undefined);
    const manager = mastra.backgroundTaskManager!;
    suspended = await waitFor(async () => (await manager.listTasks({ status: 'suspended' })).tasks[0], { message: 'a suspended task' });
    await waitFor(() => bridge.tracker.get(suspended.id)?.phase === 'suspended', { message: 'the bridge sees the suspension' });
    await bridge.idle();
    stored = (await manager.listTasks({})).tasks;
  });

  afterAll(async () => {
    await bridge?.close();
    if (mastra) await shutdownDemoMastra(mastra);
  });

  it('answers each task as Mastra stores it, with its true status and the span ids the bridge wrote', async () => {
    for (const run of runs) {
      const res = await bridge.app.inject(`/api/tasks/${run.taskId}`);
      expect(res.statusCode).toBe(200);
      const body = res.json();
      const truth = (await mastra.backgroundTaskManager!.getTask(run.taskId))!;
      expect(body).toMatchObject({
        id: truth.id,
        status: EXPECTED_STATUS[run.scenario],
        toolName: truth.toolName,
        toolCallId: truth.toolCallId,
        agentId: truth.agentId,
        runId: truth.runId,
        threadId: truth.threadId,
        resourceId: truth.resourceId,
        createdAt: truth.createdAt.toISOString(),
        completedAt: truth.completedAt!.toISOString(),
        retryCount: truth.retryCount,
        maxRetries: truth.maxRetries,
        timeoutMs: truth.timeoutMs,
        // parent mode `run`: the run's derived trace; the span id derived from the task id.
        traceId: runTraceId(truth.runId),
        spanId: taskSpanId(truth.id),
      });
      // Redacted by default: no payloads, no stack; the error message stays.
      for (const f of ['args', 'result', 'suspendPayload']) expect(body, f).not.toHaveProperty(f);
      expect(body.redacted).toContain('args');
      if (truth.result !== undefined) expect(body.redacted).toContain('result');
      if (truth.error) {
        expect(body.error).toEqual({ message: truth.error.message });
        if (truth.error.stack) expect(body.redacted).toContain('error.stack');
      }
    }
    expect(runs.find((r) => r.scenario === 'timeout')).toBeDefined();
  });

  it('gives an open task its derived span ids and hides its suspendPayload', async () => {
    const body = (await bridge.app.inject(`/api/tasks/${suspended.id}`)).json();
    expect(body).toMatchObject({ status: 'suspended', traceId: runTraceId(suspended.runId), spanId: taskSpanId(suspended.id) });
    expect(body).not.toHaveProperty('suspendPayload');
    expect(body.redacted).toEqual(['args', 'suspendPayload']);
  });

  it('answers 404 for an id Mastra does not know', async () => {
    const res = await bridge.app.inject('/api/tasks/00000000-0000-4000-8000-000000000000');
    expect(res.statusCode).toBe(404);
    expect(res.json()).toEqual({ error: 'Not found', message: 'Mastra has no background task 00000000-0000-4000-8000-000000000000' });
  });

  const ids = (res: { json(): { tasks: { id: string }[] } }) => res.json().tasks.map((t) => t.id).sort();
  const truthIds = (pred: (t: BackgroundTask) => boolean) => stored.filter(pred).map((t) => t.id).sort();

  it.each([
    { q: 'status=failed', pred: (t: BackgroundTask) => t.status === 'failed' },
    { q: 'status=completed&status=timed_out', pred: (t: BackgroundTask) => t.status === 'completed' || t.status === 'timed_out' },
    { q: 'status=cancelled,suspended', pred: (t: BackgroundTask) => t.status === 'cancelled' || t.status === 'suspended' },
    { q: 'agentId=billing-agent', pred: (t: BackgroundTask) => t.agentId === 'billing-agent' },
    { q: 'toolName=research_topic', pred: (t: BackgroundTask) => t.toolName === 'research_topic' },
    { q: 'threadId=api-thread-1', pred: (t: BackgroundTask) => t.threadId === 'api-thread-1' },
    { q: 'resourceId=other-user', pred: (t: BackgroundTask) => t.resourceId === 'other-user' },
    { q: 'agentId=ops-agent&status=timed_out', pred: (t: BackgroundTask) => t.agentId === 'ops-agent' && t.status === 'timed_out' },
  ])('filters by $q exactly as Mastra does', async ({ q, pred }) => {
    const res = await bridge.app.inject(`/api/tasks?${q}&perPage=100`);
    expect(res.statusCode).toBe(200);
    const expected = truthIds(pred);
    expect(expected.length).toBeGreaterThan(0);
    expect(ids(res)).toEqual(expected);
    expect(res.json()).toMatchObject({ total: expected.length, page: 0, perPage: 100, hasMore: false });
  });

  it('filters by runId and by a date range', async () => {
    const run = runs[2]!;
    expect(ids(await bridge.app.inject(`/api/tasks?runId=${run.runId}`))).toEqual([run.taskId]);
    const byCreation = [...stored].sort((a, b) => a.createdAt.getTime() - b.createdAt.getTime());
    const from = byCreation[3]!.createdAt.toISOString();
    const res = await bridge.app.inject(`/api/tasks?fromDate=${from}&toDate=${new Date(Date.now() + 60_000).toISOString()}&perPage=100`);
    expect(ids(res)).toEqual(truthIds((t) => t.createdAt.toISOString() >= from));
  });

  it('pages through every task once, newest first by default, and in the asked order', async () => {
    const seen: string[] = [];
    let page = 0;
    for (;;) {
      const body = (await bridge.app.inject(`/api/tasks?perPage=2&page=${page}`)).json();
      expect(body.total).toBe(stored.length);
      expect(body.perPage).toBe(2);
      expect(body.page).toBe(page);
      seen.push(...body.tasks.map((t: { createdAt: string }) => t.createdAt));
      if (!body.hasMore) break;
      page++;
    }
    expect(seen).toHaveLength(stored.length);
    expect(seen).toEqual([...seen].sort().reverse());
    const asc = (await bridge.app.inject('/api/tasks?perPage=100&orderBy=createdAt&orderDirection=asc')).json();
    expect(asc.tasks.map((t: { createdAt: string }) => t.createdAt)).toEqual([...seen].reverse());
    expect((await bridge.app.inject(`/api/tasks?page=${page + 5}`)).json()).toMatchObject({ tasks: [], total: stored.length, hasMore: false });
  });

  it('caps perPage at api.maxPerPage', async () => {
    expect((await bridge.app.inject('/api/tasks?perPage=5000')).json().perPage).toBe(100);
    const { app } = apiApp(mastra, { maxPerPage: 3 });
    const body = (await app.inject('/api/tasks?perPage=50')).json();
    expect(body).toMatchObject({ perPage: 3, total: stored.length, hasMore: true });
    expect(body.tasks).toHaveLength(3);
  });

  it(`refuses ${MALFORMED.length} malformed queries and ids with a 400 naming the field`, async () => {
    expect(MALFORMED.length).toBeGreaterThanOrEqual(20);
    for (const c of MALFORMED) {
      const res = await bridge.app.inject(c.url);
      expect(res.statusCode, c.url).toBe(400);
      const body = res.json();
      expect(body.error, c.url).toBe('Bad request');
      expect(body.message, c.url).toContain(c.field);
      expect(body.message, c.url).toMatch(c.reason);
      expect(res.body, c.url).not.toMatch(/\n\s+at /);
    }
  });

  it('shows payloads only where the config allows them, truncated to the budget', async () => {
    const { app } = apiApp(mastra, {
      redaction: { result: true, maxBytes: 64, tools: { charge_card: { args: true, errorStack: true, maxBytes: 1024 }, approve_refund: { suspendPayload: true } } },
    });
    const fail = runs.find((r) => r.scenario === 'fail')!;
    const truth = (await mastra.backgroundTaskManager!.getTask(fail.taskId))!;
    const failed = (await app.inject(`/api/tasks/${fail.taskId}`)).json();
    expect(failed.args).toEqual(truth.args);
    expect(failed.error.message).toBe(truth.error!.message);
    expect(failed.error.stack).toMatch(/^\w*Error: Payment/);
    expect(Buffer.byteLength(failed.error.stack)).toBeLessThanOrEqual(1024);
    expect(truth.error!.stack!.startsWith(failed.error.stack.replace(/…$/, ''))).toBe(true);
    expect(failed.truncated).toEqual(Buffer.byteLength(truth.error!.stack!) > 1024 ? ['error.stack'] : []);
    expect(failed.redacted).toEqual([]);

    const complete = runs.find((r) => r.scenario === 'complete')!;
    const done = (await app.inject(`/api/tasks/${complete.taskId}`)).json();
    expect(done).not.toHaveProperty('args');
    expect(done.redacted).toEqual(['args']);
    const result = (await mastra.backgroundTaskManager!.getTask(complete.taskId))!.result;
    if (JSON.stringify(result).length > 64) {
      expect(done.truncated).toEqual(['result']);
      expect(Buffer.byteLength(done.result)).toBeLessThanOrEqual(64);
      expect(JSON.stringify(result).startsWith(done.result.slice(0, -1))).toBe(true);
    } else {
      expect(done.result).toEqual(result);
    }

    const susp = (await app.inject(`/api/tasks/${suspended.id}`)).json();
    expect(susp.suspendPayload).toEqual((await mastra.backgroundTaskManager!.getTask(suspended.id))!.suspendPayload);
    expect(susp.suspendPayload).toBeDefined();
  });

  describe('auth', () => {
    it('requires a valid bearer token on every /api/* route, and nowhere else without a metrics token', async () => {
      // Thirty wrong tokens from one address: the failed-token limit (test/http-hardening.test.ts) is off here.
      const { app, metrics } = apiApp(mastra, { tokens: [TOKEN, 'second-token-for-rotation'], failedAuthLimit: { max: 0 } });
      const id = runs[0]!.taskId;
      for (const headers of [{}, { authorization: 'Bearer wrong-token-0123456789' }, { authorization: `Basic ${TOKEN}` }, { authorization: TOKEN }, { authorization: `Bearer ${TOKEN}x` }, { authorization: 'Bearer' }]) {
        for (const url of ['/api/tasks', `/api/tasks/${id}`, '/api/tasks?status=bogus', '/api/not-a-route', '/api']) {
          const res = await app.inject({ url, headers });
          expect(res.statusCode, `${url} ${JSON.stringify(headers)}`).toBe(401);
          expect(res.headers['www-authenticate']).toBe('Bearer realm="mastra-task-bridge"');
          expect(res.json().error).toBe('Unauthorized');
        }
      }
      expect((await app.inject({ url: `/api/tasks/${id}`, headers: { authorization: `Bearer ${TOKEN}` } })).statusCode).toBe(200);
      expect((await app.inject({ url: '/api/tasks', headers: { authorization: 'bearer   second-token-for-rotation' } })).statusCode).toBe(200);
      expect((await app.inject({ url: '/api/not-a-route', headers: { authorization: `Bearer ${TOKEN}` } })).statusCode).toBe(404);
      for (const url of ['/metrics', '/healthz', '/readyz', '/']) expect((await app.inject(url)).statusCode, url).toBe(200);
      // Counted per route of the task API (an unknown /api path has no route to count under).
      const samples = await scrape(app);
      expect(total(samples, 'mastra_task_bridge_api_requests_total', { route: '/api/tasks', code: '401' })).toBe(12);
      expect(total(samples, 'mastra_task_bridge_api_requests_total', { route: '/api/tasks/:id', code: '401' })).toBe(6);
      void metrics;
    });

    it('protects /metrics with the metrics token only, leaving the probes open', async () => {
      const { app } = apiApp(mastra, { metricsToken: METRICS_TOKEN });
      expect((await app.inject('/metrics')).statusCode).toBe(401);
      expect((await app.inject({ url: '/metrics', headers: { authorization: `Bearer ${TOKEN}` } })).statusCode).toBe(401);
      expect((await app.inject({ url: '/metrics', headers: { authorization: `Bearer ${METRICS_TOKEN}` } })).statusCode).toBe(200);
      for (const url of ['/healthz', '/readyz', '/api/tasks']) expect((await app.inject(url)).statusCode, url).toBe(200);
    });

    it('warns at start when the API is open on a non-loopback address (api.allowAnonymous), only then', async () => {
      const warnings = async (host: string, api: NonNullable<ConfigInput['api']>) => {
        const lines: string[] = [];
        const logger = pino({ level: 'warn' }, new Writable({ write: (c, _e, cb) => (lines.push(String(c)), cb()) }));
        const { app } = apiApp(mastra, api, logger);
        await app.listen({ host, port: 0 });
        await app.close();
        return lines.filter((l) => l.includes('task API (/api/*) is open'));
      };
      // Without a token and without allowAnonymous, non-loopback clients get 403: nothing is open, no warning.
      expect(await warnings('0.0.0.0', {})).toHaveLength(0);
      expect(await warnings('0.0.0.0', { allowAnonymous: true })).toHaveLength(1);
      expect(await warnings('127.0.0.1', { allowAnonymous: true })).toHaveLength(0);
      expect(await warnings('0.0.0.0', { tokens: [TOKEN], allowAnonymous: true })).toHaveLength(0);
    });
  });

  describe('protecting Mastra', () => {
    it('answers identical lookups from a short-TTL cache (and shares one in flight), counted', async () => {
      const { app } = apiApp(mastra, { cache: { ttlMs: 60_000 }, rateLimit: { max: 0 } });
      const id = runs[1]!.taskId;
      const [a, b] = await Promise.all([app.inject(`/api/tasks/${id}`), app.inject(`/api/tasks/${id}`)]);
      expect(a.json()).toEqual(b.json());
      await app.inject(`/api/tasks/${id}`);
      await app.inject('/api/tasks?status=failed');
      await app.inject('/api/tasks?status=failed');
      await app.inject('/api/tasks?status=completed');
      const samples = await scrape(app);
      expect(total(samples, 'mastra_task_bridge_api_cache_total', { result: 'miss' })).toBe(3);
      expect(total(samples, 'mastra_task_bridge_api_cache_total', { result: 'hit' })).toBe(3);

      const off = apiApp(mastra, { cache: { ttlMs: 0 } }).app;
      await off.inject(`/api/tasks/${id}`);
      await off.inject(`/api/tasks/${id}`);
      expect(total(await scrape(off), 'mastra_task_bridge_api_cache_total', { result: 'miss' })).toBe(2);
    });

    it('limits each client to api.rateLimit.max requests per window with a 429, counted', async () => {
      const { app } = apiApp(mastra, { rateLimit: { max: 3, timeWindowMs: 60_000 }, allowAnonymous: true });
      const codes = [];
      for (let i = 0; i < 5; i++) codes.push((await app.inject('/api/tasks')).statusCode);
      expect(codes).toEqual([200, 200, 200, 429, 429]);
      const res = await app.inject('/api/tasks');
      expect(res.json()).toEqual({ error: 'Too Many Requests', message: expect.stringMatching(/at most 3 requests per 1 minute/) });
      expect(Number(res.headers['retry-after'])).toBeGreaterThan(0);
      // Another client address has its own budget; /metrics is never limited.
      expect((await app.inject({ url: '/api/tasks', remoteAddress: '10.0.0.2' })).statusCode).toBe(200);
      for (let i = 0; i < 5; i++) expect((await app.inject('/metrics')).statusCode).toBe(200);
      const samples = await scrape(app);
      expect(total(samples, 'mastra_task_bridge_api_rate_limited_total')).toBe(3);
      expect(total(samples, 'mastra_task_bridge_api_requests_total', { route: '/api/tasks', code: '429' })).toBe(3);
      expect(total(samples, 'mastra_task_bridge_api_requests_total', { route: '/api/tasks', code: '200' })).toBe(4);
    });

    it('counts every answer of the bridge by route and code', async () => {
      const samples = await scrape(bridge.app);
      expect(total(samples, 'mastra_task_bridge_api_requests_total', { route: '/api/tasks/:id', code: '200' })).toBeGreaterThanOrEqual(SCENARIOS.length + 1);
      expect(total(samples, 'mastra_task_bridge_api_requests_total', { route: '/api/tasks/:id', code: '404' })).toBe(1);
      expect(total(samples, 'mastra_task_bridge_api_requests_total', { code: '400' })).toBe(MALFORMED.length);
    });
  });
});
