// /api/events under a heavy opening (issue 10, must fix 4): a snapshot of many open tasks is serialised once per hub
// state and shared by every client, a client that never reads it is dropped as slow once its opening has not drained
// in time (it used to be kept, holding the whole snapshot, forever), and connects per client address are limited.
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EventHub, type TaskView } from '../src/event-hub.js';
import { type EventsRoute, neverReadingClient, startEventsRoute } from './support/events-route.js';
import { waitFor } from './support/poll.js';

/** A client that reads everything but keeps only a count and the last bytes (an SSE parser would spend the whole
 * event loop on a 15 MB frame, and the server shares this process). */
function rawReader(base: URL): { bytes(): number; tail(): string; close(): void } {
  let bytes = 0;
  let tail = '';
  const s = connect({ host: base.hostname, port: Number(base.port) });
  s.setEncoding('latin1');
  s.on('data', (chunk: string) => {
    bytes += chunk.length;
    tail = (tail + chunk).slice(-4096);
  });
  s.on('error', () => undefined);
  s.write(`GET /api/events HTTP/1.1\r\nHost: ${base.host}\r\n\r\n`);
  return { bytes: () => bytes, tail: () => tail, close: () => s.destroy() };
}

function view(i: number): TaskView {
  return {
    taskId: `task-${i}`,
    toolName: `tool_${i % 7}`,
    toolCallId: `call-${i}`,
    agentId: `agent-${i % 3}`,
    runId: `run-${i}-${'r'.repeat(300)}`,
    status: 'running',
    outputCount: 0,
    startedAt: 1_790_000_000_000 + i,
  };
}

describe('EventHub snapshot serialisation', () => {
  it('serialises one snapshot per hub state and filter, shared as one buffer, however many clients connect', () => {
    const hub = new EventHub({ bufferSize: 100, recentFinished: 10 });
    for (let i = 0; i < 2000; i++) hub.publish({ type: 'started', at: i, task: view(i) });
    const subs = Array.from({ length: 20 }, () => hub.subscribe({}, undefined, () => undefined));
    expect(hub.stats().snapshotSerialisations).toBe(1);
    const frame = subs[0]!.opening.frames[0]!;
    for (const s of subs) expect(s.opening.frames[0]).toBe(frame);
    expect(hub.frameBytes(frame)).toBe(hub.frameBytes(subs[19]!.opening.frames[0]!));
    // Another filter is another frame; a change of state makes a new one (with the newer id).
    hub.subscribe({ agentId: 'agent-1' }, undefined, () => undefined);
    expect(hub.stats().snapshotSerialisations).toBe(2);
    hub.publish({ type: 'finished', at: 9, task: { ...view(5), status: 'completed' } });
    const after = hub.subscribe({}, undefined, () => undefined).opening.frames[0]!;
    expect(hub.stats().snapshotSerialisations).toBe(3);
    expect(after).not.toBe(frame);
    const openIds = (f: string): string[] => (JSON.parse(f.split('\ndata: ')[1]!) as { tasks: TaskView[] }).tasks.map((t) => t.taskId);
    expect(openIds(after)).not.toContain('task-5');
    hub.forget('task-6');
    expect(openIds(hub.subscribe({}, undefined, () => undefined).opening.frames[0]!)).not.toContain('task-6');
  });
});

describe('/api/events with a large opening snapshot', () => {
  const CAP = 64 * 1024;
  let events: EventsRoute;
  let hub: EventHub;
  let base: URL;

  beforeAll(async () => {
    events = await startEventsRoute({
      hub: { bufferSize: 100, recentFinished: 10 },
      route: {
        heartbeatMs: 60_000,
        maxClientBufferBytes: CAP,
        maxClients: 50,
        connectLimit: { max: 8, timeWindowMs: 600_000 },
        // Long enough for a reading client on a busy machine to take 15 MB.
        openingDrainMs: 5_000,
      },
    });
    ({ hub } = events);
    base = new URL(events.base);
    // About 15 MB of snapshot: far more than the kernel's socket buffers on loopback.
    for (let i = 0; i < 40_000; i++) hub.publish({ type: 'started', at: i, task: view(i) });
  });
  afterAll(async () => {
    await events?.app.close();
  });

  it('drops clients that never read their opening, keeps one that reads it, and serialises it once', async () => {
    const before = hub.stats().snapshotSerialisations;
    const reader = rawReader(base);
    const stalled = Array.from({ length: 4 }, () => neverReadingClient(events.base));
    await waitFor(async () => (await events.dropped('slow')) === 4, { timeoutMs: 20_000, message: 'the four stalled clients dropped as slow' });
    const snapshotBytes = hub.stats().snapshotBytes;
    await waitFor(() => reader.bytes() > snapshotBytes, { timeoutMs: 20_000, message: 'reader got the snapshot' });
    expect(events.route.clients()).toBe(1);
    // One serialisation for five connects to an unchanged hub.
    expect(hub.stats().snapshotSerialisations - before).toBe(1);
    for (const s of stalled) s.socket.resume();
    await waitFor(() => stalled.every((s) => s.closed()), { timeoutMs: 20_000, message: 'the bridge closed the stalled connections' });
    // The reader stays: it drained its opening, and live events reach it.
    hub.publish({ type: 'output', at: 1, task: view(1) });
    await waitFor(() => reader.tail().includes('event: output'), { message: 'a live event after the opening' });
    reader.close();
  });

  it('limits connects per client address with 429 and Retry-After (counted)', async () => {
    // Five connects were used above; the limit is 8 per window.
    await waitFor(() => events.route.clients() === 0, { message: 'earlier clients gone' });
    const statuses: number[] = [];
    let retryAfter: string | null = null;
    for (let i = 0; i < 5; i++) {
      const res = await fetch(`${base.origin}/api/events?event=finished&taskId=none`, { signal: AbortSignal.timeout(10_000) });
      statuses.push(res.status);
      if (res.status === 429) retryAfter = res.headers.get('retry-after');
      await res.body?.cancel();
    }
    expect(statuses).toEqual([200, 200, 200, 429, 429]);
    expect(Number(retryAfter)).toBeGreaterThan(0);
    expect(await events.dropped('rate_limited')).toBe(2);
  });
});
