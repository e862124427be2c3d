// The task API over HTTP: a real Mastra server (the demo app on @mastra/hono, LibSQL file storage, SimpleAuth) and a
// bridge with the remote source. Ground truth is the Mastra server's own routes. Covers: records with the true status
// and span ids, 404, filters (several statuses merged from one request per status), pagination, the malformed table,
// redaction, the bridge's own auth; 502 with the upstream stopped (closed port), rejecting the bridge's token, or
// gone mid-run; 504 with the upstream stalled (a socket that accepts and never answers).
import { mkdtempSync, rmSync } from 'node:fs';
import { type Server, type Socket, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type BridgeHandle, startBridge } from '../src/bridge.js';
import type { ConfigInput } from '../src/config.js';
import { type DemoServer, startDemoServer } from '../demo/server.js';
import { EXPECTED_STATUS, type Scenario, type ScenarioResult, runScenario } from '../demo/workload.js';
import { RemoteSource } from '../src/sources/remote.js';
import { runTraceId, taskSpanId } from '../src/span-ids.js';
import { MALFORMED } from './support/api-cases.js';
import { scrape, total } from './support/metrics-text.js';
import { freePort, waitFor } from './support/poll.js';

const silent = pino({ level: 'silent' });
const MASTRA_TOKEN = 'mastra-secret-token-42';
const BRIDGE_TOKEN = 'bridge-token-0123456789abcdef';
const auth = { authorization: `Bearer ${BRIDGE_TOKEN}` };
const SCENARIOS: Scenario[] = ['complete', 'fail', 'timeout', 'cancel', 'suspend_resume', 'complete'];

interface StoredTask {
  id: string;
  status: string;
  agentId: string;
  toolName: string;
  runId: string;
  threadId?: string;
  resourceId?: string;
  createdAt: string;
  completedAt?: string;
}

function remoteBridge(baseUrl: string, api: NonNullable<ConfigInput['api']> = {}, token = MASTRA_TOKEN): BridgeHandle {
  return startBridge({
    source: new RemoteSource({ baseUrl, token, logger: silent, backoff: { initialMs: 50, maxMs: 1000 } }),
    logger: silent,
    config: { traces: { parent: 'run' }, api: { tokens: [BRIDGE_TOKEN], cache: { ttlMs: 0 }, rateLimit: { max: 0 }, ...api } },
  });
}

describe('task API over a remote Mastra server', () => {
  let dir: string;
  let server: DemoServer;
  let bridge: BridgeHandle;
  let runs: ScenarioResult[];

  /** The Mastra server's own answer. */
  async function mastra<T>(path: string): Promise<T> {
    const res = await fetch(`${server.url}/api${path}`, { headers: { authorization: `Bearer ${MASTRA_TOKEN}` } });
    if (!res.ok) throw new Error(`${path}: HTTP ${res.status}`);
    return (await res.json()) as T;
  }
  const get = (url: string) => bridge.app.inject({ url, headers: auth });

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'bridge-api-remote-'));
    server = await startDemoServer({ port: 0, host: '127.0.0.1', storageUrl: `file:${join(dir, 'mastra.db')}`, token: MASTRA_TOKEN, rate: 0, suspendedTasks: 1 });
    bridge = remoteBridge(server.url);
    await bridge.whenReady();
    runs = [];
    for (let i = 0; i < SCENARIOS.length; i += 2) {
      runs.push(
        ...(await Promise.all(
          SCENARIOS.slice(i, i + 2).map((s, j) => runScenario(server.mastra, s, { threadId: `remote-thread-${i + j}`, resourceId: i + j === 5 ? 'other-user' : 'api-user' })),
        )),
      );
    }
    await waitFor(async () => (await mastra<{ tasks: StoredTask[] }>('/background-tasks?status=suspended')).tasks.length === 1, { message: 'the standing suspended task' });
    // The bridge has written every finished task's span (they arrive over SSE).
    await waitFor(async () => {
      await bridge.idle();
      for (const r of runs) if (!(await get(`/api/tasks/${r.taskId}`)).json().traceId) return false;
      return true;
    }, { timeoutMs: 20_000, message: 'span ids for every finished task' });
  });

  afterAll(async () => {
    await bridge?.close();
    await server?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('answers each task as the Mastra server stores it, with its true status and span ids', async () => {
    for (const run of runs) {
      const res = await get(`/api/tasks/${run.taskId}`);
      expect(res.statusCode).toBe(200);
      const truth = await mastra<StoredTask & Record<string, unknown>>(`/background-tasks/${run.taskId}`);
      const body = res.json();
      expect(body).toMatchObject({
        id: truth.id,
        status: EXPECTED_STATUS[run.scenario],
        agentId: truth.agentId,
        toolName: truth.toolName,
        runId: truth.runId,
        threadId: truth.threadId,
        resourceId: truth.resourceId,
        createdAt: new Date(truth.createdAt).toISOString(),
        completedAt: new Date(truth.completedAt!).toISOString(),
        traceId: runTraceId(truth.runId),
        spanId: taskSpanId(truth.id),
      });
      for (const f of ['args', 'result', 'suspendPayload']) expect(body, f).not.toHaveProperty(f);
      if ((truth.error as { stack?: string } | undefined)?.stack) expect(body.error).not.toHaveProperty('stack');
    }
  });

  it('answers 404 for an unknown id', async () => {
    const res = await get('/api/tasks/00000000-0000-4000-8000-000000000000');
    expect(res.statusCode).toBe(404);
    expect(res.json().error).toBe('Not found');
  });

  it.each([
    'status=failed',
    'status=timed_out',
    'status=suspended',
    'agentId=ops-agent',
    'toolName=charge_card',
    'threadId=remote-thread-3',
    'resourceId=other-user',
    'status=completed&agentId=research-agent',
  ])('filters by %s exactly as the Mastra server does', async (q) => {
    const truth = await mastra<{ tasks: StoredTask[]; total: number }>(`/background-tasks?${q}&perPage=100`);
    expect(truth.tasks.length).toBeGreaterThan(0);
    const body = (await get(`/api/tasks?${q}&perPage=100`)).json();
    expect(body.tasks.map((t: { id: string }) => t.id).sort()).toEqual(truth.tasks.map((t) => t.id).sort());
    expect(body.total).toBe(truth.total);
  });

  it('filters by runId and by date', async () => {
    const run = runs[1]!;
    expect((await get(`/api/tasks?runId=${run.runId}`)).json().tasks.map((t: { id: string }) => t.id)).toEqual([run.taskId]);
    const all = (await mastra<{ tasks: StoredTask[] }>('/background-tasks?perPage=100')).tasks;
    const from = [...all].sort((a, b) => a.createdAt.localeCompare(b.createdAt))[4]!.createdAt;
    const body = (await get(`/api/tasks?fromDate=${new Date(from).toISOString()}&perPage=100`)).json();
    expect(body.tasks.map((t: { id: string }) => t.id).sort()).toEqual(all.filter((t) => Date.parse(t.createdAt) >= Date.parse(from)).map((t) => t.id).sort());
  });

  it('merges several statuses (one upstream request each) into one page in the asked order', async () => {
    const completed = (await mastra<{ tasks: StoredTask[]; total: number }>('/background-tasks?status=completed&perPage=100'));
    const failed = (await mastra<{ tasks: StoredTask[]; total: number }>('/background-tasks?status=failed&perPage=100'));
    const union = [...completed.tasks, ...failed.tasks].sort((a, b) => Date.parse(b.createdAt) - Date.parse(a.createdAt));
    const body = (await get('/api/tasks?status=completed,failed&perPage=2')).json();
    expect(body).toMatchObject({ total: completed.total + failed.total, perPage: 2, page: 0, hasMore: true });
    // Newest first; two tasks created in the same millisecond may come in either order, so compare times, then ids.
    expect(body.tasks.map((t: { createdAt: string }) => Date.parse(t.createdAt))).toEqual(union.slice(0, 2).map((t) => Date.parse(t.createdAt)));
    const ids = body.tasks.map((t: { id: string }) => t.id);
    expect(new Set(ids).size).toBe(2);
    for (const id of ids) expect(union.map((t) => t.id)).toContain(id);
    const deeper = await get('/api/tasks?status=completed,failed&perPage=2&page=1');
    expect(deeper.statusCode).toBe(400);
    expect(deeper.json().message).toContain('querystring/status');
  });

  it('pages through every task once', async () => {
    const { total: all } = await mastra<{ total: number }>('/background-tasks?perPage=1');
    const seen = new Set<string>();
    for (let page = 0; ; page++) {
      const body = (await get(`/api/tasks?perPage=3&page=${page}`)).json();
      expect(body.total).toBe(all);
      for (const t of body.tasks) seen.add(t.id);
      if (!body.hasMore) break;
    }
    expect(seen.size).toBe(all);
  });

  it(`refuses the ${MALFORMED.length} malformed queries and ids with a 400 naming the field, before asking Mastra`, async () => {
    for (const c of MALFORMED) {
      const res = await get(c.url);
      expect(res.statusCode, c.url).toBe(400);
      expect(res.json().message, c.url).toContain(c.field);
      expect(res.json().message, c.url).toMatch(c.reason);
    }
    expect(total(await scrape(bridge.app), 'mastra_task_bridge_api_cache_total')).toBeGreaterThan(0);
  });

  it('requires the bridge token, not the Mastra one', async () => {
    expect((await bridge.app.inject('/api/tasks')).statusCode).toBe(401);
    expect((await bridge.app.inject({ url: '/api/tasks', headers: { authorization: `Bearer ${MASTRA_TOKEN}` } })).statusCode).toBe(401);
  });

  describe('upstream failures', () => {
    const id = '00000000-0000-4000-8000-000000000001';
    const expectGatewayError = async (b: BridgeHandle, code: 502 | 504, message: RegExp) => {
      for (const url of ['/api/tasks', `/api/tasks/${id}`, '/api/tasks?status=failed,completed']) {
        const res = await b.app.inject({ url, headers: auth });
        expect(res.statusCode, url).toBe(code);
        expect(res.json(), url).toEqual({ error: code === 502 ? 'Bad gateway' : 'Gateway timeout', message: expect.stringMatching(message) });
        expect(res.body).not.toMatch(/\bat \S+:\d+|ECONNREFUSED|127\.0\.0\.1|secret/);
      }
    };

    it('answers 502 when Mastra is stopped (nothing listens)', async () => {
      const b = remoteBridge(`http://127.0.0.1:${await freePort()}`);
      try {
        await expectGatewayError(b, 502, /^Mastra is unavailable$/);
        expect(total(await scrape(b.app), 'mastra_task_bridge_api_requests_total', { code: '502' })).toBe(3);
      } finally {
        await b.close();
      }
    });

    it("answers 502 when Mastra rejects the bridge's token", async () => {
      const b = remoteBridge(server.url, {}, 'not-the-mastra-token');
      try {
        await expectGatewayError(b, 502, /rejected the bridge's credentials/);
      } finally {
        await b.close();
      }
    });

    it.each([
      { how: 'accepts and never answers', answer: undefined },
      // Headers in time, then a body that never ends: the deadline covers the body too.
      { how: 'sends headers then stalls the body', answer: 'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"tasks":[' },
    ])('answers 504 when Mastra stalls ($how), after api.upstreamTimeoutMs', async ({ answer }) => {
      const sockets = new Set<Socket>();
      const stalled: Server = createServer((s) => {
        sockets.add(s);
        s.on('error', () => undefined);
        if (answer) s.once('data', () => s.write(answer));
      });
      await new Promise<void>((r) => stalled.listen(0, '127.0.0.1', r));
      const port = (stalled.address() as { port: number }).port;
      const b = remoteBridge(`http://127.0.0.1:${port}`, { upstreamTimeoutMs: 300 });
      try {
        await expectGatewayError(b, 504, /did not answer within 300 ms/);
        expect(total(await scrape(b.app), 'mastra_task_bridge_api_requests_total', { code: '504' })).toBe(3);
      } finally {
        await b.close();
        for (const s of sockets) s.destroy();
        await new Promise((r) => stalled.close(r));
      }
    });

    it('the remote source itself reports a stalled body as a timeout (not a bad answer)', async () => {
      const sockets = new Set<Socket>();
      const stalled = createServer((s) => {
        sockets.add(s);
        s.on('error', () => undefined);
        s.once('data', () => s.write('HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{'));
      });
      await new Promise<void>((r) => stalled.listen(0, '127.0.0.1', r));
      const source = new RemoteSource({ baseUrl: `http://127.0.0.1:${(stalled.address() as { port: number }).port}`, requestTimeoutMs: 300 });
      try {
        await expect(source.getTask(id)).rejects.toMatchObject({ kind: 'timeout' });
        await expect(source.listTasks({}, AbortSignal.timeout(200))).rejects.toMatchObject({ kind: 'timeout' });
      } finally {
        for (const s of sockets) s.destroy();
        await new Promise((r) => stalled.close(r));
      }
    });

    it('answers 502 once the Mastra server it was serving goes away', async () => {
      expect((await get('/api/tasks')).statusCode).toBe(200);
      await server.close();
      await expectGatewayError(bridge, 502, /^Mastra is unavailable$/);
    });
  });
});
