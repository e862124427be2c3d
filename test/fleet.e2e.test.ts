// A fleet of real Mastra server processes (demo/server.ts) on one real PostgreSQL store (a private cluster this file
// starts), agent runs sent round-robin over HTTP, one bridge following every replica:
// - separate pubsubs (Mastra's default): each stream carries its replica's tasks; nearly every task must arrive live;
// - one shared pubsub (UnixSocketPubSub): every event arrives on both streams; nothing may be counted twice;
// - a replica SIGKILLed and restarted mid-workload;
// - a replica added while the bridge runs, found by DNS discovery (resolver injected: see that test);
// - replicas on separate stores, one of them with its stream cut: its store is reconciled on its own;
// - reconciliation load: listTasks calls per pass with 1 and 3 replicas on one store.
import { createServer, request, type Server } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type BridgeHandle, startBridge } from '../src/bridge.js';
import { systemResolver } from '../src/fleet.js';
import { type DemoProcess, dispatchTask, startDemoProcess } from './support/demo-process.js';
import { type StoredTask, TERMINAL, finishedByStatus, listAllTasks, spansByTask, terminalCounts } from './support/ground-truth.js';
import { scrape, total } from './support/metrics-text.js';
import { type OtlpReceiver, startOtlpReceiver } from './support/otlp-receiver.js';
import { freePort, waitFor } from './support/poll.js';
import { type PostgresCluster, postgresBinDir, startPostgres } from './support/postgres.js';

const silent = pino({ level: 'silent' });
const sorted = (o: Record<string, number>) => JSON.stringify(Object.fromEntries(Object.entries(o).sort(([a], [b]) => a.localeCompare(b))));
const havePostgres = postgresBinDir() !== undefined;
if (!havePostgres && process.env.CI) throw new Error('PostgreSQL is not installed (.ci/run installs Debian\'s postgresql)');

/** Output chunks each dispatched task writes (the demo tools are deterministic): research 4, charge 1, provision 1. */
const WORK: { tool: Parameters<typeof dispatchTask>[1]; args: Record<string, unknown>; outputs: number }[] = [
  { tool: 'research_topic', args: { topic: 'fleet', chunks: 4, stepMs: 40 }, outputs: 4 },
  { tool: 'charge_card', args: { amountCents: 100, delayMs: 60 }, outputs: 1 },
  { tool: 'research_topic', args: { topic: 'fleet', chunks: 2, stepMs: 80 }, outputs: 2 },
  { tool: 'provision_cluster', args: { nodes: 1, _background: { timeoutMs: 150 } }, outputs: 1 },
];

/** Sends `n` agent runs round-robin to `urls` (a load balancer's way), a few at a time. */
async function roundRobin(urls: string[], n: number, offset = 0): Promise<number> {
  let outputs = 0;
  for (let i = 0; i < n; i += 4) {
    await Promise.all(
      Array.from({ length: Math.min(4, n - i) }, (_, k) => {
        const j = i + k + offset;
        const w = WORK[j % WORK.length]!;
        outputs += w.outputs;
        return dispatchTask(urls[j % urls.length]!, w.tool, { args: w.args, thread: `fleet-${j}`, agentId: 'research-agent' });
      }),
    );
  }
  return outputs;
}

function fleetBridge(servers: string, receiver: OtlpReceiver, extra: Record<string, unknown> = {}, resolve?: (h: string) => Promise<string[]>): BridgeHandle {
  return startBridge({
    logger: silent,
    ...(resolve ? { resolve } : {}),
    config: {
      source: { mastraUrl: servers, reconnect: { initialMs: 50, maxMs: 500 }, requestTimeoutMs: 5_000, discovery: { refreshSeconds: 1 } },
      otel: { tracesEndpoint: receiver.tracesUrl, batch: { scheduledDelayMs: 50 } },
      metrics: { defaultMetrics: false },
      // Long enough that a pass is rare during the workload: a task must reach the bridge through its stream.
      reconcile: { intervalSeconds: 30, overlapSeconds: 5 },
      ...extra,
    },
  });
}

/** Every stored task ended (nothing running or pending). */
async function settled(url: string, atLeast: number): Promise<StoredTask[]> {
  return waitFor(
    async () => {
      const all = await listAllTasks(url);
      return all.length >= atLeast && all.every((t) => TERMINAL.has(t.status)) ? all : undefined;
    },
    { timeoutMs: 90_000, intervalMs: 250, message: `${atLeast} tasks stored, all ended` },
  );
}

/** Waits until the bridge's finished counts equal the stored truth and every ended task has a span; returns its spans. */
async function agreed(bridge: BridgeHandle, receiver: OtlpReceiver, tasks: StoredTask[]) {
  const want = terminalCounts(tasks);
  await waitFor(async () => sorted(finishedByStatus(await scrape(bridge.app))) === sorted(want), {
    timeoutMs: 45_000,
    message: `finished_total == ${JSON.stringify(want)}`,
  });
  await bridge.tracing.forceFlush();
  const ids = new Set(tasks.map((t) => t.id));
  await waitFor(() => tasks.every((t) => spansByTask(receiver.spans()).has(t.id)), { timeoutMs: 20_000, message: 'a span for every task' });
  return new Map([...spansByTask(receiver.spans())].filter(([id]) => ids.has(id)));
}

describe.skipIf(!havePostgres)('a Mastra fleet on PostgreSQL', () => {
  let pg: PostgresCluster;
  let receiver: OtlpReceiver;
  let dir: string;
  const demos: DemoProcess[] = [];
  const bridges: BridgeHandle[] = [];

  beforeAll(async () => {
    pg = await startPostgres();
    receiver = await startOtlpReceiver();
    dir = mkdtempSync(join(tmpdir(), 'bridge-fleet-'));
  }, 120_000);

  afterAll(async () => {
    for (const b of bridges) await b.close().catch(() => undefined);
    for (const d of demos) await d.kill('SIGKILL').catch(() => undefined);
    await receiver?.close();
    pg?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  async function replica(storageUrl: string, env: Record<string, string> = {}, host?: string, port?: number): Promise<DemoProcess> {
    const d = await startDemoProcess({
      port: port ?? (await freePort()),
      ...(host ? { host } : {}),
      storageUrl,
      env: { DEMO_RATE: '0', DEMO_REPLICA: 'true', ...env },
      startTimeoutMs: 90_000,
    });
    demos.push(d);
    return d;
  }

  async function stop(...ds: DemoProcess[]): Promise<void> {
    for (const d of ds) await d.kill();
  }

  it('separate pubsubs, runs sent round-robin: counts equal the stored truth, one span per task, >= 95% live', async () => {
    const db = pg.createDatabase('separate');
    const a = await replica(db);
    const b = await replica(db);
    const bridge = fleetBridge(`${a.url},${b.url}`, receiver);
    bridges.push(bridge);
    await bridge.whenReady(20_000);
    await waitFor(() => bridge.status().sources?.every((s) => s.connected && s.synced), { message: 'both replicas connected' });

    const outputs = await roundRobin([a.url, b.url], 40);
    const tasks = await settled(a.url, 40);
    expect(tasks).toHaveLength(40);
    const spans = await agreed(bridge, receiver, tasks);
    for (const [id, s] of spans) expect(s, `spans of ${id}`).toHaveLength(1);
    const live = [...spans.values()].filter((s) => s[0]!.attributes['mastra.background_task.origin'] === 'event').length;
    console.log(`[fleet] separate pubsubs: ${live}/${tasks.length} tasks live (${((100 * live) / tasks.length).toFixed(1)}%)`);
    expect(live / tasks.length).toBeGreaterThanOrEqual(0.95);
    const samples = await scrape(bridge.app);
    expect(total(samples, 'mastra_background_task_started_total')).toBe(40);
    expect(total(samples, 'mastra_background_task_output_chunks_total')).toBe(outputs);
    for (const d of [a, b]) expect(total(samples, 'mastra_task_bridge_source_up', { source: new URL(d.url).host })).toBe(1);
    await stop(a, b);
  }, 240_000);

  it('one shared pubsub (every event on both streams): nothing counted twice, output chunks included', async () => {
    const db = pg.createDatabase('shared');
    const socket = join(dir, 'pubsub.sock');
    const a = await replica(db, { DEMO_PUBSUB_SOCKET: socket });
    const b = await replica(db, { DEMO_PUBSUB_SOCKET: socket });
    const bridge = fleetBridge(`${a.url},${b.url}`, receiver);
    bridges.push(bridge);
    await bridge.whenReady(20_000);
    await waitFor(() => bridge.status().sources?.every((s) => s.connected && s.synced), { message: 'both replicas connected' });

    const outputs = await roundRobin([a.url, b.url], 24);
    const tasks = await settled(a.url, 24);
    const spans = await agreed(bridge, receiver, tasks);
    for (const [id, s] of spans) expect(s, `spans of ${id}`).toHaveLength(1);
    const samples = await scrape(bridge.app);
    expect(total(samples, 'mastra_background_task_started_total')).toBe(24);
    expect(total(samples, 'mastra_background_task_output_chunks_total')).toBe(outputs);
    // The repeats were there, and were recognised: the second copy of every terminal event at least.
    expect(total(samples, 'mastra_task_bridge_events_total', { result: 'duplicate' })).toBeGreaterThanOrEqual(24);
    const live = [...spans.values()].filter((s) => s[0]!.attributes['mastra.background_task.origin'] === 'event').length;
    console.log(`[fleet] shared pubsub: ${live}/${tasks.length} live; duplicates recognised: ${total(samples, 'mastra_task_bridge_events_total', { result: 'duplicate' })}`);
    expect(live).toBe(tasks.length);
    await stop(a, b);
  }, 240_000);

  it('a replica SIGKILLed and restarted during the workload: it shows as down by itself, and counts stay exact', async () => {
    const db = pg.createDatabase('killed');
    const a = await replica(db);
    const bPort = await freePort();
    const b = await replica(db, {}, undefined, bPort);
    const bridge = fleetBridge(`${a.url},${b.url}`, receiver, { reconcile: { intervalSeconds: 1, overlapSeconds: 5 } });
    bridges.push(bridge);
    await bridge.whenReady(20_000);
    const bKey = `127.0.0.1:${bPort}`;
    await roundRobin([a.url, b.url], 12);
    const killedAt = Date.now();
    await b.kill('SIGKILL');
    await waitFor(async () => total(await scrape(bridge.app), 'mastra_task_bridge_source_up', { source: bKey }) === 0, { message: 'the killed replica is down' });
    // One of two down: still ready (the other is followed, the shared store reconciled), and /readyz says which.
    const ready = await bridge.app.inject({ url: '/readyz' });
    expect(ready.statusCode).toBe(200);
    const body = ready.json() as { sources: { source: string; connected: boolean }[] };
    expect(body.sources.find((s) => s.source === bKey)?.connected).toBe(false);
    expect(total(await scrape(bridge.app), 'mastra_task_bridge_source_up', { source: new URL(a.url).host })).toBe(1);
    const board = (await bridge.app.inject({ url: '/' })).body;
    expect(board).toContain(`Server ${bKey}`);
    expect(board).toContain(`Server ${new URL(a.url).host}</td><td class="ok">connected`);
    await roundRobin([a.url], 8, 12); // the load balancer sends everything to the survivor meanwhile
    const b2 = await replica(db, {}, undefined, bPort);
    await waitFor(async () => total(await scrape(bridge.app), 'mastra_task_bridge_source_up', { source: bKey }) === 1, { message: 'the restarted replica is followed again' });
    await roundRobin([a.url, b2.url], 8, 20);
    // Tasks in flight on the killed replica stay `running` in storage (replicas share the store, so restart recovery
    // is off): the bridge must show exactly those as running, and every ended task once.
    const tasks = await waitFor(
      async () => {
        const all = await listAllTasks(a.url);
        // Everything dispatched after the kill ran on a live replica and ends; what is left unfinished is the killed
        // replica's orphans (created before the kill, seconds ago: a live replica's tasks take well under a second).
        return all.length >= 28 && all.every((t) => t.status !== 'pending' && (TERMINAL.has(t.status) || new Date(t.createdAt).getTime() < killedAt)) ? all : undefined;
      },
      { timeoutMs: 90_000, intervalMs: 250, message: 'workload ended' },
    );
    const ended = tasks.filter((t) => TERMINAL.has(t.status));
    const spans = await agreed(bridge, receiver, ended);
    for (const [id, s] of spans) expect(s, `spans of ${id}`).toHaveLength(1);
    const stillRunning = tasks.filter((t) => t.status === 'running').map((t) => t.id).sort();
    await waitFor(async () => total(await scrape(bridge.app), 'mastra_background_tasks', { status: 'running' }) === stillRunning.length, {
      timeoutMs: 20_000,
      message: `open as stored: ${JSON.stringify(stillRunning)}`,
    });
    expect([...bridge.tracker.openTasks()].map((t) => t.taskId).sort()).toEqual(stillRunning);
    expect(total(await scrape(bridge.app), 'mastra_task_bridge_source_reconnects_total', { source: bKey })).toBeGreaterThanOrEqual(1);
    await stop(a, b2);
  }, 300_000);

  it('DNS discovery: a replica added while the bridge runs is followed; a replica gone is dropped', async () => {
    // What is real here: two demo server processes on the same port of two loopback addresses (127.0.0.1 and
    // 127.0.0.2), found through the bridge's discovery path (URL building, add/drop, sessions, metrics). What is not:
    // the name lookup itself, which is the injected resolver below (no DNS server runs here); the real resolver is
    // Node's dns.lookup, checked against `localhost` in the next test.
    const db = pg.createDatabase('discovery');
    const port = await freePort();
    const a = await replica(db, {}, '127.0.0.1', port);
    let addresses = ['127.0.0.1'];
    const asked: string[] = [];
    const bridge = fleetBridge(`dns+http://mastra.fleet.test:${port}`, receiver, {}, async (name) => {
      asked.push(name);
      return addresses;
    });
    bridges.push(bridge);
    await bridge.whenReady(20_000);
    expect(asked[0]).toBe('mastra.fleet.test');
    expect(bridge.status().sources?.map((s) => s.source)).toEqual([`127.0.0.1:${port}`]);
    await roundRobin([a.url], 4);

    const b = await replica(db, {}, '127.0.0.2', port);
    addresses = ['127.0.0.1', '127.0.0.2'];
    await waitFor(() => bridge.status().sources?.find((s) => s.source === `127.0.0.2:${port}`)?.synced, { timeoutMs: 20_000, message: 'the new replica is found and followed' });
    await roundRobin([a.url, b.url], 8, 4);
    const tasks = await settled(a.url, 12);
    const spans = await agreed(bridge, receiver, tasks);
    for (const [id, s] of spans) expect(s, `spans of ${id}`).toHaveLength(1);
    const live = [...spans.values()].filter((s) => s[0]!.attributes['mastra.background_task.origin'] === 'event').length;
    expect(live / tasks.length).toBeGreaterThanOrEqual(0.9);
    expect(total(await scrape(bridge.app), 'mastra_task_bridge_source_up', { source: `127.0.0.2:${port}` })).toBe(1);

    addresses = ['127.0.0.1'];
    await waitFor(async () => !(await bridge.app.inject({ url: '/metrics' })).body.includes(`127.0.0.2:${port}`), { timeoutMs: 20_000, message: 'the gone replica is dropped' });
    expect(bridge.status().sources?.map((s) => s.source)).toEqual([`127.0.0.1:${port}`]);
    await stop(a, b);
  }, 240_000);

  it('the real resolver (Node dns.lookup) returns every address of a name: localhost', async () => {
    const addresses = await systemResolver('localhost');
    expect(addresses).toContain('127.0.0.1');
  });

  it('replicas on separate stores: each store is reconciled (tasks only its store knows are found and counted once)', async () => {
    const a = await replica(pg.createDatabase('store_a'));
    const b = await replica(pg.createDatabase('store_b'));
    const pa = await countingProxy(a.url);
    const pb = await countingProxy(b.url);
    const bridge = fleetBridge(`${pa.url},${pb.url}`, receiver, { reconcile: { intervalSeconds: 1, overlapSeconds: 5 } });
    bridges.push(bridge);
    await waitFor(() => bridge.status().sources?.every((s) => s.connected && s.synced), { timeoutMs: 20_000, message: 'both followed' });
    // Give each store a task so they can be told apart, then let the bridge place them.
    await roundRobin([a.url, b.url], 2);
    await settled(a.url, 1);
    await settled(b.url, 1);
    await waitFor(
      async () => {
        await bridge.reconcileNow();
        return bridge.fleet.groups().length === 2;
      },
      { timeoutMs: 20_000, message: 'two store groups' },
    );
    // b's stream goes silent (its REST routes still answer): its tasks can only be found in its own store.
    pb.blockStream();
    await roundRobin([a.url, b.url], 12, 2);
    const ta = await settled(a.url, 7);
    const tb = await settled(b.url, 7);
    const spans = await agreed(bridge, receiver, [...ta, ...tb]);
    for (const [id, s] of spans) expect(s, `spans of ${id}`).toHaveLength(1);
    const late = tb.slice(1).map((t) => spans.get(t.id)![0]!.attributes['mastra.background_task.origin']);
    expect(late.every((o) => o === 'reconciled')).toBe(true);
    await bridge.close();
    await pa.close();
    await pb.close();
    await stop(a, b);
  }, 240_000);

  it('reconciliation load: listTasks calls per pass do not grow with the number of replicas on one store', async () => {
    const db = pg.createDatabase('load');
    const rs = [await replica(db), await replica(db), await replica(db)];
    await roundRobin(rs.map((r) => r.url), 6);
    await settled(rs[0]!.url, 6);
    const perPass: Record<number, number> = {};
    for (const n of [1, 3]) {
      const proxies = await Promise.all(rs.slice(0, n).map((r) => countingProxy(r.url)));
      const bridge = fleetBridge(proxies.map((p) => p.url).join(','), receiver, { reconcile: { intervalSeconds: 3600 } });
      bridges.push(bridge);
      await bridge.whenReady(20_000);
      await waitFor(() => (bridge.status().sources ?? [{ synced: bridge.status().synced }]).every((s) => s.synced), { message: 'all synced' });
      await bridge.reconcileNow(); // settles store groups
      const before = proxies.reduce((s, p) => s + p.listCalls, 0);
      await bridge.reconcileNow();
      perPass[n] = proxies.reduce((s, p) => s + p.listCalls, 0) - before;
      await bridge.close();
      for (const p of proxies) await p.close();
    }
    console.log(`[fleet] listTasks calls per reconciliation pass: 1 replica ${perPass[1]}, 3 replicas ${perPass[3]}`);
    expect(perPass[1]).toBeGreaterThan(0);
    expect(perPass[3]).toBe(perPass[1]);
    await stop(...rs);
  }, 240_000);
});

/** An HTTP proxy in front of one replica that counts listTasks requests (GET /api/background-tasks?…). */
async function countingProxy(target: string): Promise<{ url: string; listCalls: number; blockStream(): void; close(): Promise<void> }> {
  const t = new URL(target);
  const state = { listCalls: 0, blocked: false };
  const streams = new Set<import('node:http').ServerResponse>();
  const server: Server = createServer((req, res) => {
    if (req.method === 'GET' && /^\/api\/background-tasks(\?|$)/.test(req.url ?? '')) state.listCalls++;
    if ((req.url ?? '').startsWith('/api/background-tasks/stream')) {
      if (state.blocked) {
        res.writeHead(503).end();
        return;
      }
      streams.add(res);
      res.on('close', () => streams.delete(res));
    }
    const up = request({ host: t.hostname, port: t.port, path: req.url, method: req.method, headers: req.headers }, (r) => {
      res.writeHead(r.statusCode ?? 502, r.headers);
      res.flushHeaders(); // an idle SSE stream sends no byte: its headers must not wait for one
      r.pipe(res);
    });
    up.on('error', () => res.destroy());
    req.pipe(up);
    res.on('close', () => up.destroy());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  return {
    url: `http://127.0.0.1:${port}`,
    get listCalls() {
      return state.listCalls;
    },
    /** From now on the stream answers 503 and open streams are cut (the REST routes still answer). */
    blockStream() {
      state.blocked = true;
      for (const r of streams) r.destroy();
    },
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
