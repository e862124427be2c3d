// GET /api/events over real HTTP. With a real Mastra and the demo workload: the snapshot and events carry the
// enriched task (true status, thread, resource, trace id); a client that disconnects and resumes with Last-Event-ID
// ends up with exactly the events a client that never disconnected saw — nothing lost, nothing repeated — filtered or
// not. Without Mastra (the route on a bare app fed synthetic events): a client that never reads is dropped once the
// bytes queued for it pass the cap (counted), never holding more than the cap plus one frame, while a reading client
// gets everything; plus heartbeats, 400 on bad filters, 503 past the client cap, a bearer token, and a clean close.
import Fastify from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BridgeHandle } from '../src/bridge.js';
import type { BridgeEvent, EventHub, TaskView } from '../src/event-hub.js';
import { registerAuth } from '../src/http/auth.js';
import { type EventsRouteHandle, registerEventsRoute } from '../src/http/events.js';
import { type EventsRoute, neverReadingClient, startEventsRoute } from './support/events-route.js';
import { scrape, total } from './support/metrics-text.js';
import type { OtlpReceiver } from './support/otlp-receiver.js';
import { waitFor } from './support/poll.js';
import { type SseClient, connectSse, seq } from './support/sse.js';
import { type DemoStack, startDemoStack } from './support/stack.js';

describe('/api/events on a bridge watching a real Mastra', () => {
  let receiver: OtlpReceiver;
  let bridge: BridgeHandle;
  let base: string;
  let stack: DemoStack | undefined;

  beforeAll(async () => {
    // every status within a few seconds
    stack = await startDemoStack({ config: { events: { bufferSize: 5000 } }, workload: { ratePerSecond: 8, order: 'interleaved' } });
    ({ bridge, base } = stack);
    receiver = stack.receiver!;
  });
  afterAll(async () => {
    await stack?.close();
  });

  it('sends enriched events: true status, thread, resource and the exported span’s trace id', async () => {
    const c = await connectSse(`${base}/api/events`);
    expect(c.status).toBe(200);
    expect((await waitFor(() => c.frames[0])).event).toBe('snapshot');
    const finished = await waitFor(
      () => {
        const f = c.events().map((e) => (e.data as BridgeEvent).task).filter((t) => t.completedAt !== undefined);
        return ['completed', 'failed', 'timed_out', 'cancelled'].every((s) => f.some((t) => t.status === s)) && f;
      },
      { timeoutMs: 30_000, message: 'a finished task of every status' },
    );
    c.close();
    for (const t of finished) {
      expect(t.threadId, t.taskId).toMatch(/^workload-/);
      expect(t.resourceId, t.taskId).toMatch(/^demo-user-/);
      expect(t.traceId).toMatch(/^[0-9a-f]{32}$/);
      expect(t.durationMs).toBeGreaterThanOrEqual(0);
      if (t.status === 'timed_out') expect(t.errorType).toBe('timed_out');
      if (t.status === 'failed') expect(t.errorType).toBe('Error');
    }
    await bridge.tracing.forceFlush();
    const some = finished.slice(0, 5);
    await waitFor(() => some.every((t) => new Set(receiver.spans().map((s) => `${s.traceId}/${s.spanId}`)).has(`${t.traceId}/${t.spanId}`)), {
      message: 'the spans the events name were exported',
    });
    // Never payload contents: no args, results, output chunks or error messages.
    const text = JSON.stringify(c.frames);
    for (const secret of ['finding 1 about', 'declined by the issuer', 'amountCents', 'log line']) expect(text).not.toContain(secret);
  });

  async function resumeMatchesReference(query: string): Promise<number> {
    const reference = await connectSse(`${base}/api/events${query}`);
    const client = await connectSse(`${base}/api/events${query}`);
    await waitFor(() => client.events().length >= 5, { timeoutMs: 20_000, message: 'first events' });
    client.close();
    const firstPart = client.frames.slice();
    const resumeFrom = firstPart.at(-1)!.id!;
    // Let the bridge move on while the client is away.
    const missedUntil = seq(reference.lastId()) + 1;
    await waitFor(() => reference.events().filter((e) => seq(e.id) > missedUntil).length >= 10, { timeoutMs: 20_000, message: 'events while away' });
    const resumed = await connectSse(`${base}/api/events${query}`, { 'last-event-id': resumeFrom });
    const target = seq(reference.lastId()) + 1;
    await waitFor(() => resumed.events().some((e) => seq(e.id) >= target), { timeoutMs: 20_000, message: 'resumed client caught up' });
    resumed.close();
    reference.close();
    expect(resumed.frames.some((f) => f.event === 'snapshot')).toBe(false);
    const start = Math.max(seq(reference.frames[0]!.id), seq(firstPart[0]!.id));
    const end = Math.min(seq(resumed.lastId()), seq(reference.lastId()));
    const inRange = (frames: SseClient['frames']) => frames.filter((f) => f.event !== 'snapshot' && seq(f.id) > start && seq(f.id) <= end).map((f) => f.id);
    const got = [...inRange(firstPart), ...inRange(resumed.frames)];
    const want = inRange(reference.frames);
    expect(got).toEqual(want);
    expect(new Set(got).size).toBe(got.length);
    return want.length;
  }

  it('resuming with Last-Event-ID loses nothing and repeats nothing', async () => {
    const n = await resumeMatchesReference('');
    expect(n).toBeGreaterThanOrEqual(10); // the waits above guarantee at least the 10 events sent while away
  });

  it('resumes a filtered stream the same way', async () => {
    const n = await resumeMatchesReference('?agentId=billing-agent&event=started,suspended,resumed,finished');
    expect(n).toBeGreaterThanOrEqual(10);
  });

  it('answers a resume it cannot honour with a reset snapshot of the open tasks', async () => {
    const c = await connectSse(`${base}/api/events`, { 'last-event-id': 'otherbridge-5' });
    const snap = await waitFor(() => c.frames.find((f) => f.event === 'snapshot'));
    c.close();
    expect(snap.data).toMatchObject({ reason: 'reset', detail: expect.stringMatching(/another bridge process/) });
    expect(c.comments.some((m) => m.startsWith('cannot resume'))).toBe(true);
    expect(snap.id).toMatch(/^[0-9a-z]+-\d+$/);
  });

  it('rejects bad filters with 400 and counts connected clients', async () => {
    for (const q of ['?agentID=x', '?event=exploded', '?status=queued', '?taskId=a&taskId=b']) {
      const res = await fetch(`${base}/api/events${q}`);
      expect(res.status, q).toBe(400);
      expect(((await res.json()) as { error: string }).error).toBe('Bad request');
    }
    // Clients closed by earlier tests are gone only once the server has seen the close.
    await waitFor(async () => total(await scrape(bridge.app), 'mastra_task_bridge_sse_clients') === 0, { message: 'earlier clients gone' });
    const c = await connectSse(`${base}/api/events?event=finished`);
    expect(total(await scrape(bridge.app), 'mastra_task_bridge_sse_clients')).toBe(1);
    c.close();
    await waitFor(async () => total(await scrape(bridge.app), 'mastra_task_bridge_sse_clients') === 0, { message: 'client gone' });
  });
});

describe('/api/events flow control, heartbeat, limits and auth (synthetic events)', () => {
  const CAP = 256 * 1024;
  let events: EventsRoute;
  let hub: EventHub;
  let route: EventsRouteHandle;
  let base: string;
  let n = 0;

  const publish = (count: number) => {
    for (let i = 0; i < count; i++, n++) {
      const task: TaskView = {
        taskId: `task-${n}`,
        toolName: 'research_topic',
        toolCallId: `call-${n}`,
        agentId: 'research-agent',
        runId: `run-${n}-${'x'.repeat(200)}`,
        status: 'running',
        outputCount: n,
        startedAt: 1_700_000_000_000 + n,
      };
      hub.publish({ type: 'output', at: task.startedAt!, task });
    }
  };

  beforeAll(async () => {
    events = await startEventsRoute({
      hub: { bufferSize: 1000, recentFinished: 10 },
      route: { heartbeatMs: 100, maxClientBufferBytes: CAP, maxClients: 3 },
    });
    ({ hub, route, base } = events);
  });
  afterAll(async () => {
    await events?.app.close();
  });

  it('drops a client that never reads once its queued bytes pass the cap, and never holds more than cap + one frame', async () => {
    const reader = await connectSse(`${base}/api/events`);
    const stalled = neverReadingClient(base);
    await waitFor(() => route.clients() === 2, { message: 'both clients connected' });

    // A burst: far more than the kernel's socket buffers plus the cap, in small steps so a reading client keeps up.
    const before = n;
    let bytes = 0;
    const frameBytes = Buffer.byteLength(JSON.stringify({ type: 'output', at: 0, task: {} })) + 400;
    while (route.stats().dropped === 0 && n - before < 200_000) {
      publish(20);
      bytes += 20 * frameBytes;
      await new Promise((r) => setImmediate(r));
    }
    const published = n - before;
    const { peakClientBufferedBytes, largestFrameBytes, dropped } = route.stats();
    expect(dropped).toBe(1);
    expect(await events.dropped('slow')).toBe(1);
    expect(peakClientBufferedBytes).toBeGreaterThan(CAP);
    expect(peakClientBufferedBytes).toBeLessThanOrEqual(CAP + largestFrameBytes);
    expect(route.clients()).toBe(1);
    // Reading what the kernel holds now ends in EOF: the bridge closed the connection.
    stalled.socket.resume();
    await waitFor(stalled.closed, { message: 'the bridge closed the stalled connection' });

    // The reading client got every event of the burst, in order.
    await waitFor(() => reader.events().length >= published, { timeoutMs: 20_000, message: 'reader caught up' });
    const seqs = reader.events().map((e) => seq(e.id));
    expect(seqs).toEqual(Array.from({ length: published }, (_, i) => seqs[0]! + i));
    reader.close();
    console.log(
      `never-reading client: dropped after ${published} events (~${(bytes / 1e6).toFixed(1)} MB published); ` +
        `peak queued for one client ${peakClientBufferedBytes} B, cap ${CAP} B, largest frame ${largestFrameBytes} B; hub ring ${hub.oldestSeq}..${n}`,
    );
  });

  it('sends a heartbeat comment while idle', async () => {
    const c = await connectSse(`${base}/api/events?event=finished`);
    await waitFor(() => c.comments.filter((m) => m === 'ping').length >= 2, { message: 'two pings' });
    c.close();
  });

  it('refuses clients past maxClients with 503 (counted)', async () => {
    await waitFor(() => route.clients() === 0, { message: 'earlier clients gone' });
    const clients = await Promise.all([0, 1, 2].map(() => connectSse(`${base}/api/events`)));
    const res = await fetch(`${base}/api/events`);
    expect(res.status).toBe(503);
    expect(await events.dropped('max_clients')).toBe(1);
    for (const c of clients) c.close();
    await waitFor(() => route.clients() === 0, { message: 'clients gone' });
  });

  it('sits behind the bridge’s /api bearer auth, and closing the app ends open streams', async () => {
    const authed = Fastify();
    registerAuth(authed, { apiTokens: ['s3cret-token-0123456789'], metricsTokens: [] });
    registerEventsRoute(authed, { hub, metrics: events.metrics, heartbeatMs: 15_000, maxClientBufferBytes: CAP, maxClients: 5 });
    const url = await authed.listen({ host: '127.0.0.1', port: 0 });
    expect((await fetch(`${url}/api/events`)).status).toBe(401);
    expect((await fetch(`${url}/api/events`, { headers: { authorization: 'Bearer wrong' } })).status).toBe(401);
    const c = await connectSse(`${url}/api/events`, { authorization: 'Bearer s3cret-token-0123456789' });
    expect(c.status).toBe(200);
    await waitFor(() => c.frames.find((f) => f.event === 'snapshot'));
    await authed.close();
    await waitFor(() => c.ended, { message: 'stream ended by close' });
  });
});
