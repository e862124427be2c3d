// The upstream half of "hostile and heavy inputs": a whole bridge against a Mastra API that misbehaves on purpose
// (test/support/hostile-upstream.ts). For each case: the bridge keeps serving, memory stays bounded (heap after GC,
// loose bounds), and every drop is counted where an operator looks for it.
import { lstatSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type BridgeHandle, startBridge } from '../src/bridge.js';
import { RemoteSource } from '../src/sources/remote.js';
import type { SourceSink } from '../src/sources/types.js';
import { HostileUpstream, type LookupMode, frameFor, storedTask } from './support/hostile-upstream.js';
import { heapAfterGc } from './support/heap.js';
import { scrape, total } from './support/metrics-text.js';
import { waitFor } from './support/poll.js';

const silent = pino({ level: 'silent' });
const MiB = 1024 * 1024;

type Line = { level: number; msg: string; [k: string]: unknown };
function capture(level = 'info'): { logger: pino.Logger; lines: Line[] } {
  const lines: Line[] = [];
  return { lines, logger: pino({ level }, { write: (l: string) => void lines.push(JSON.parse(l) as Line) }) };
}

function bridgeFor(url: string, extra: { logger?: pino.Logger; config?: Record<string, unknown> } = {}): BridgeHandle {
  return startBridge({
    logger: extra.logger ?? silent,
    config: {
      source: { mastraUrl: url, reconnect: { initialMs: 20, maxMs: 200 } },
      otel: { tracesExporter: 'none' },
      metrics: { defaultMetrics: false },
      ...extra.config,
    },
  });
}

const iso = (ms: number) => new Date(ms).toISOString();

async function healthy(bridge: BridgeHandle): Promise<void> {
  expect((await bridge.app.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);
  expect((await bridge.app.inject({ method: 'GET', url: '/metrics' })).statusCode).toBe(200);
}

describe('hostile REST answers to task lookups: refused unread, counted, memory flat', () => {
  let up: HostileUpstream;
  let bridge: BridgeHandle;
  let n = 0;

  beforeAll(async () => {
    up = await new HostileUpstream().start();
    bridge = bridgeFor(up.url);
    await bridge.whenReady(20_000);
  }, 30_000);
  afterAll(async () => {
    await bridge?.close();
    await up?.close();
  });

  /** Four tasks run and complete on the stream while getTask answers in `mode`; resolves once all four are counted. */
  async function fourTasks(mode: LookupMode): Promise<string[]> {
    up.lookupMode = mode;
    const ids: string[] = [];
    for (let i = 0; i < 4; i++) {
      const t = storedTask(`${mode}-${n++}`, 'completed', { startedAt: iso(Date.now() - 1000), completedAt: iso(Date.now()) });
      ids.push(t.id);
      up.broadcast(frameFor('running', t) + frameFor('completed', t));
    }
    return ids;
  }

  const finished = async () => total(await scrape(bridge.app), 'mastra_background_task_finished_total');
  const failures = async (reason: string) => total(await scrape(bridge.app), 'mastra_task_bridge_enrichment_failures_total', { reason });

  for (const mode of ['huge', 'gzip-bomb', 'huge-length'] as const) {
    it(`getTask answering ${mode}: each lookup fails as too_large, the tasks are still counted, the heap stays flat`, async () => {
      const before = heapAfterGc();
      const done = await finished();
      const refused = await failures('too_large');
      await fourTasks(mode);
      await waitFor(async () => (await finished()) === done + 4 && (await failures('too_large')) === refused + 4, {
        timeoutMs: 30_000,
        message: 'four tasks counted, four lookups refused as too_large',
      });
      // Four 64 MiB records held (the cache keeps them) would be 256 MiB and more; the cap is 8 MiB a lookup.
      expect(heapAfterGc() - before).toBeLessThan(32 * MiB);
      expect(await failures('error')).toBe(0);
      await healthy(bridge);
    }, 60_000);
  }

  it('a huge body is abandoned after the cap, not read to its end', () => {
    // Three modes × four lookups ran; only `huge` counts plain bytes. Reading them whole would send 4 × 64 MiB.
    expect(up.hugeBytesSent).toBeGreaterThan(0);
    expect(up.hugeBytesSent).toBeLessThan(4 * 40 * MiB);
  });

  it('the task API answers 502 for a task whose record is too large, and keeps answering', async () => {
    up.lookupMode = 'huge';
    const res = await bridge.app.inject({ method: 'GET', url: '/api/tasks/api-huge' });
    expect(res.statusCode).toBe(502);
    up.lookupMode = 'ok';
    up.records.set('api-ok', storedTask('api-ok', 'completed', { completedAt: iso(Date.now()) }));
    expect((await bridge.app.inject({ method: 'GET', url: '/api/tasks/api-ok' })).statusCode).toBe(200);
  });

  it('a getTask redirect to another origin is not followed: counted as redirect, the other origin never asked', async () => {
    const refused = await failures('redirect');
    const done = await finished();
    await fourTasks('redirect');
    await waitFor(async () => (await finished()) === done + 4 && (await failures('redirect')) === refused + 4, {
      message: 'four lookups refused as redirects',
    });
    const api = await bridge.app.inject({ method: 'GET', url: '/api/tasks/redirected' });
    expect(api.statusCode).toBe(502);
    expect(api.body).not.toContain('foreign-thread');
    expect(up.other.hits).toBe(0);
  });

  it('a getTask answer for another task id is refused: counted as wrong_id, never served', async () => {
    const refused = await failures('wrong_id');
    const done = await finished();
    await fourTasks('wrong-id');
    await waitFor(async () => (await finished()) === done + 4 && (await failures('wrong_id')) === refused + 4, {
      message: 'four lookups refused as wrong_id',
    });
    const api = await bridge.app.inject({ method: 'GET', url: '/api/tasks/mine' });
    expect(api.statusCode).toBe(502);
    expect(api.body).not.toContain('their-thread');
    await healthy(bridge);
  });
});

describe('a stream answer that is not an event stream', () => {
  let up: HostileUpstream;
  let bridge: BridgeHandle | undefined;
  beforeAll(async () => {
    up = await new HostileUpstream().start();
  });
  afterEach(async () => {
    await bridge?.close();
    bridge = undefined;
  });
  afterAll(async () => up?.close());

  it('200 text/html (a login page, a wrong prefix): a failed attempt, never a connection; counted, logged sparingly', async () => {
    up.streamMode = 'html';
    const { logger, lines } = capture();
    bridge = bridgeFor(up.url, { logger, config: { source: { mastraUrl: up.url, reconnect: { initialMs: 5, maxMs: 20 } } } });
    const reconnects = async () => total(await scrape(bridge!.app), 'mastra_task_bridge_source_reconnects_total', { reason: 'not_event_stream' });
    await waitFor(async () => (await reconnects()) >= 10, { message: 'ten not_event_stream attempts' });
    const counted = await reconnects();
    const s = await scrape(bridge.app);
    expect(total(s, 'mastra_task_bridge_source_up')).toBe(0);
    expect(total(s, 'mastra_task_bridge_source_reconnects_total', { reason: 'eof' })).toBe(0);
    const ready = await bridge.app.inject({ method: 'GET', url: '/readyz' });
    expect(ready.statusCode).toBe(503);
    expect(ready.json().reason).toContain('not_event_stream');
    // Never connected (so /readyz never flapped), and one warning per twenty attempts at most.
    expect(lines.filter((l) => l.msg === 'connected to the background-task stream')).toHaveLength(0);
    const warned = lines.filter((l) => l.level >= 40);
    expect(warned.length).toBeGreaterThanOrEqual(1);
    expect(warned.length).toBeLessThanOrEqual(1 + Math.floor(counted / 20) + 1);
    await healthy(bridge);
  });

  it('a redirect of the stream to another origin is not followed: counted as redirect', async () => {
    up.streamMode = 'redirect';
    bridge = bridgeFor(up.url, { config: { source: { mastraUrl: up.url, reconnect: { initialMs: 5, maxMs: 20 } } } });
    await waitFor(async () => total(await scrape(bridge!.app), 'mastra_task_bridge_source_reconnects_total', { reason: 'redirect' }) >= 3, {
      message: 'three redirect attempts',
    });
    expect(up.other.hits).toBe(0);
    expect(total(await scrape(bridge.app), 'mastra_task_bridge_source_up')).toBe(0);
    await healthy(bridge);
  });
});

describe('the backoff starts over only after a healthy connection', () => {
  let up: HostileUpstream;
  beforeAll(async () => {
    up = await new HostileUpstream().start();
  });
  afterAll(async () => up?.close());

  /** The first `count` backoff delays of a RemoteSource against the upstream, with jitter pinned to its maximum. */
  async function delays(count: number): Promise<number[]> {
    const { logger, lines } = capture('debug');
    const source = new RemoteSource({ baseUrl: up.url, logger, backoff: { initialMs: 1, maxMs: 64 }, random: () => 1, healthyAfterMs: 60_000 });
    const abort = new AbortController();
    const sink: SourceSink = { chunk() {}, frame() {}, dropped() {}, connected() {}, disconnected() {} };
    const run = source.run(sink, abort.signal);
    const found = await waitFor(
      () => {
        const d = lines.filter((l) => l.msg.startsWith('stream attempt ended')).map((l) => l.delayMs as number);
        return d.length >= count && d.slice(0, count);
      },
      { message: `${count} reconnects` },
    );
    abort.abort();
    await run;
    return found;
  }

  it('a server that accepts the stream and hangs up at once is retried with growing delays', async () => {
    up.streamMode = 'hangup';
    expect(await delays(8)).toEqual([1, 2, 4, 8, 16, 32, 64, 64]);
  });

  it('a connection that delivered a frame was healthy: the next delay is the initial one again', async () => {
    up.streamMode = 'hangup-after-frame';
    expect(await delays(4)).toEqual([1, 1, 1, 1]);
  });
});

describe('a completedAt far in the future never disables backfill', () => {
  let up: HostileUpstream;
  let dir: string;
  let bridge: BridgeHandle | undefined;
  beforeAll(async () => {
    up = await new HostileUpstream().start();
    dir = mkdtempSync(join(tmpdir(), 'hostile-cp-'));
  });
  afterAll(async () => {
    await bridge?.close();
    await up?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('a task dated 2999: counted, kept out of the checkpoint watermark and the scan cursor; later tasks are still found', async () => {
    const checkpointFile = join(dir, 'cp.jsonl');
    const config = { state: { checkpointFile }, reconcile: { intervalSeconds: 1 }, enrichment: { enabled: false } };
    bridge = bridgeFor(up.url, { config });
    await bridge.whenReady(20_000);
    const future = storedTask('future', 'completed', { startedAt: iso(Date.now() - 1000), completedAt: '2999-01-01T00:00:00.000Z' });
    const normal = storedTask('normal', 'completed', { startedAt: iso(Date.now() - 1000), completedAt: iso(Date.now()) });
    up.records.set(future.id, future);
    up.records.set(normal.id, normal);
    up.broadcast(frameFor('running', future) + frameFor('completed', future) + frameFor('running', normal) + frameFor('completed', normal));
    const s = () => scrape(bridge!.app);
    await waitFor(async () => total(await s(), 'mastra_task_bridge_future_timestamps_total', { where: 'reconcile' }) >= 1, {
      message: 'a reconcile pass read the future-dated record',
    });
    // A task that ends unseen after that pass (stored only) must still be found by a later pass.
    up.records.set('gap', storedTask('gap', 'completed', { startedAt: iso(Date.now() - 500), completedAt: iso(Date.now()) }));
    await waitFor(async () => total(await s(), 'mastra_background_task_finished_total') === 3, { timeoutMs: 15_000, message: 'the gap task found' });
    // Counts come at once; the checkpoint records a task when its span is written, which may wait on placement.
    await bridge.idle();
    const m = await s();
    expect(total(m, 'mastra_task_bridge_future_timestamps_total', { where: 'checkpoint' })).toBe(1);
    expect(total(m, 'mastra_task_bridge_future_timestamps_total', { where: 'reconcile' })).toBe(1); // once per task
    expect(total(m, 'mastra_task_bridge_reconciled_total', { status: 'completed' })).toBe(1);
    await bridge.close();
    bridge = undefined;
    const header = JSON.parse(readFileSync(checkpointFile, 'utf8').split('\n')[0]!) as { watermark: number };
    expect(header.watermark).toBeLessThanOrEqual(Date.now());
    expect(lstatSync(checkpointFile).mode & 0o777).toBe(0o600);

    // A task ends while the bridge is down: the restart backfills it (from the real watermark, not from 2999).
    up.records.set('down', storedTask('down', 'completed', { startedAt: iso(Date.now() - 500), completedAt: iso(Date.now()) }));
    const scansBefore = up.listQueries.length;
    bridge = bridgeFor(up.url, { config });
    await bridge.whenReady(20_000);
    await waitFor(async () => total(await s(), 'mastra_background_task_finished_total') === 1, { message: 'the down task backfilled' });
    const scans = up.listQueries.slice(scansBefore).filter((q) => q.get('dateFilterBy') === 'completedAt');
    expect(scans.length).toBeGreaterThanOrEqual(1);
    expect(Date.parse(scans[0]!.get('fromDate')!)).toBeLessThanOrEqual(Date.now());
    await bridge.idle();
    expect(total(await s(), 'mastra_background_task_finished_total')).toBe(1); // future, normal, gap: not again
    await healthy(bridge);
  }, 60_000);
});
