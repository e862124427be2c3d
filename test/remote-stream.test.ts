// The remote source's edges: a scripted SSE server sends malformed frames (bad JSON, unknown type, missing fields,
// 5 MB payloads, frames split across chunks, CRLF, multi-line data, comments, [DONE]), fails with 5xx and drops the
// connection; and a real Mastra server with SimpleAuth is given a wrong token, then the right one.
import { mkdtempSync, rmSync } from 'node:fs';
import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type BridgeHandle, startBridge } from '../src/bridge.js';
import { startDemoProcess, type DemoProcess } from './support/demo-process.js';
import { heapAfterGc } from './support/heap.js';
import { scrape, total } from './support/metrics-text.js';
import { freePort, waitFor } from './support/poll.js';

const silent = pino({ level: 'silent' });

function task(id: string) {
  return { taskId: id, toolName: 'research_topic', toolCallId: `call-${id}`, agentId: 'research-agent', runId: `run-${id}` };
}
const at = (offsetMs: number) => new Date(Date.UTC(2026, 10, 25, 10, 0, 0) + offsetMs).toISOString();
const frame = (event: unknown) => `data: ${JSON.stringify(event)}\n\n`;

type Script = (res: ServerResponse, connection: number) => Promise<void>;

/** A scripted upstream: `/api/background-tasks/stream` runs the script of the n-th connection; lookups find nothing. */
class ScriptedServer {
  server: Server;
  connections = 0;
  constructor(private readonly scripts: Script[]) {
    this.server = createServer((req, res) => void this.handle(req, res));
  }
  async listen(): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }
  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '').split('?')[0]!;
    if (path === '/api/background-tasks/stream') {
      const script = this.scripts[Math.min(this.connections, this.scripts.length - 1)]!;
      this.connections++;
      await script(res, this.connections).catch(() => res.destroy());
      return;
    }
    if (path === '/api/background-tasks') {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ tasks: [], total: 0 }));
      return;
    }
    res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ error: 'not found' }));
  }
  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

const sseHeaders = { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' };
const write = (res: ServerResponse, text: string) =>
  new Promise<void>((resolve, reject) => res.write(text, (err) => (err ? reject(err) : resolve())));
const tick = () => new Promise((resolve) => setTimeout(resolve, 5));
const hold = (res: ServerResponse) => new Promise<void>((resolve) => res.once('close', resolve));

function bridgeFor(url: string, extra: Record<string, unknown> = {}): BridgeHandle {
  return startBridge({
    logger: silent,
    config: {
      source: { mastraUrl: url, reconnect: { initialMs: 20, maxMs: 200 } },
      otel: { tracesExporter: 'none' },
      metrics: { defaultMetrics: false },
      enrichment: { enabled: false },
      ...extra,
    },
  });
}

describe('malformed upstream frames are counted as invalid and the bridge keeps going', () => {
  const OVERSIZED = 12;
  const FIVE_MB = 5 * 1024 * 1024;
  let upstream: ScriptedServer;
  let bridge: BridgeHandle;
  let heapGrowth = 0;

  beforeAll(async () => {
    upstream = new ScriptedServer([
      async (res) => {
        res.writeHead(200, sseHeaders);
        await write(res, ': a comment line, ignored\n\n');
        await write(res, 'data: {not json\n\n');
        await write(res, frame({ type: 'background-task-exploded', payload: task('x') }));
        await write(res, frame({ type: 'background-task-running', payload: { toolName: 'research_topic', startedAt: at(0) } }));
        // Five-megabyte frames, each written in 64 KiB chunks: dropped one by one without being buffered.
        const chunk = 'a'.repeat(64 * 1024);
        for (let i = 0; i < OVERSIZED; i++) {
          await write(res, `data: {"type":"background-task-running","payload":{"taskId":"big-${i}","blob":"`);
          for (let sent = 0; sent < FIVE_MB; sent += chunk.length) await write(res, chunk);
          await write(res, '"}}\n\n');
        }
        // A valid frame split across three chunks, with CRLF line endings.
        const running = `data: ${JSON.stringify({ type: 'background-task-running', payload: { ...task('a'), startedAt: at(0), args: {} } })}\r\n\r\n`;
        await write(res, running.slice(0, 17));
        await tick();
        await write(res, running.slice(17, 60));
        await tick();
        await write(res, running.slice(60));
        // A multi-line data field (the lines join with \n, still one JSON document).
        const output = JSON.stringify({ type: 'background-task-output', payload: { ...task('a'), payload: { type: 'tool-output', payload: { output: 1 } } } });
        const cut = output.indexOf(',"payload"') + 1; // between two members: the joining \n is JSON whitespace
        await write(res, `data: ${output.slice(0, cut)}\ndata: ${output.slice(cut)}\n\n`);
        await write(res, frame({ type: 'background-task-completed', payload: { ...task('a'), completedAt: at(1500), result: {} } }));
        await write(res, 'data: [DONE]\n\n');
        res.end();
      },
      async (res) => {
        res.writeHead(200, sseHeaders);
        await write(res, frame({ type: 'background-task-running', payload: { ...task('b'), startedAt: at(2000), args: {} } }));
        await write(res, frame({ type: 'background-task-failed', payload: { ...task('b'), completedAt: at(2500), error: { message: 'boom' } } }));
        await hold(res);
      },
    ]);
    const url = await upstream.listen();
    const before = heapAfterGc();
    bridge = bridgeFor(url);
    await waitFor(async () => total(await scrape(bridge.app), 'mastra_background_task_finished_total') === 2, {
      timeoutMs: 60_000,
      message: 'both valid tasks finished',
    });
    heapGrowth = heapAfterGc() - before;
  }, 90_000);

  afterAll(async () => {
    await bridge?.close();
    await upstream?.close();
  });

  it('counts each bad frame as invalid, once', async () => {
    const s = await scrape(bridge.app);
    // not JSON + unknown type + missing fields + every oversized frame
    expect(total(s, 'mastra_task_bridge_events_total', { result: 'invalid' })).toBe(3 + OVERSIZED);
    expect(total(s, 'mastra_task_bridge_events_total', { event: 'unknown', result: 'invalid' })).toBe(2 + OVERSIZED);
    expect(total(s, 'mastra_task_bridge_events_total', { event: 'running', result: 'invalid' })).toBe(1);
  });

  it('parses valid frames around them: split across chunks, CRLF, multi-line data; [DONE] is not an event', async () => {
    const s = await scrape(bridge.app);
    expect(total(s, 'mastra_background_task_started_total')).toBe(2);
    expect(total(s, 'mastra_background_task_output_chunks_total')).toBe(1);
    expect(total(s, 'mastra_background_task_finished_total', { status: 'completed' })).toBe(1);
    expect(total(s, 'mastra_background_task_finished_total', { status: 'failed' })).toBe(1);
  });

  it('reconnects after the server ends the stream, and stays serving', async () => {
    const s = await scrape(bridge.app);
    expect(total(s, 'mastra_task_bridge_source_reconnects_total', { reason: 'eof' })).toBeGreaterThanOrEqual(1);
    expect(total(s, 'mastra_task_bridge_source_up')).toBe(1);
    expect((await bridge.app.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);
  });

  it(`keeps memory bounded: ${OVERSIZED} × 5 MB frames leave the heap within a few MB`, () => {
    // Buffering them would hold 60 MB; the parser keeps at most one frame limit (1 MiB) at a time.
    expect(heapGrowth).toBeLessThan(16 * 1024 * 1024);
  });
});

describe('connection failures: every kind of end is a counted reconnect, never a crash', () => {
  let upstream: ScriptedServer;
  let bridge: BridgeHandle | undefined;
  afterEach(async () => {
    await bridge?.close();
    await upstream?.close();
  });

  it('reconnects after 5xx answers and a connection reset mid-stream, then applies events', async () => {
    upstream = new ScriptedServer([
      async (res) => void res.writeHead(503, { 'content-type': 'text/plain' }).end('starting'),
      async (res) => {
        res.writeHead(200, sseHeaders);
        await write(res, frame({ type: 'background-task-running', payload: { ...task('c'), startedAt: at(0), args: {} } }));
        res.socket?.resetAndDestroy();
      },
      async (res) => {
        res.writeHead(200, sseHeaders);
        await write(res, frame({ type: 'background-task-completed', payload: { ...task('c'), completedAt: at(900), result: {} } }));
        await hold(res);
      },
    ]);
    bridge = bridgeFor(await upstream.listen());
    await waitFor(async () => total(await scrape(bridge!.app), 'mastra_background_task_finished_total', { status: 'completed' }) === 1, {
      timeoutMs: 20_000,
      message: 'the task finished across three connections',
    });
    const s = await scrape(bridge.app);
    expect(total(s, 'mastra_task_bridge_source_reconnects_total', { reason: 'http_5xx' })).toBeGreaterThanOrEqual(1);
    expect(total(s, 'mastra_task_bridge_source_reconnects_total', { reason: 'reset' })).toBeGreaterThanOrEqual(1);
    expect(total(s, 'mastra_background_task_started_total')).toBe(1);
    expect(upstream.connections).toBe(3);
  });

  it('a MASTRA_URL where nothing listens: refused attempts are counted, and logged once rather than per retry', async () => {
    const lines: { level: number; msg: string; reason?: string }[] = [];
    const logger = pino({ level: 'info' }, { write: (l: string) => void lines.push(JSON.parse(l)) });
    const url = `http://127.0.0.1:${await freePort()}`;
    bridge = startBridge({
      logger,
      config: {
        source: { mastraUrl: url, reconnect: { initialMs: 5, maxMs: 20 } },
        otel: { tracesExporter: 'none' },
        metrics: { defaultMetrics: false },
        enrichment: { enabled: false },
      },
    });
    await waitFor(async () => total(await scrape(bridge!.app), 'mastra_task_bridge_source_reconnects_total', { reason: 'refused' }) >= 10, {
      message: 'ten refused attempts',
    });
    const refused = total(await scrape(bridge.app), 'mastra_task_bridge_source_reconnects_total', { reason: 'refused' });
    const warned = lines.filter((l) => l.msg.startsWith('cannot connect to the background-task stream'));
    expect(warned.length).toBeGreaterThanOrEqual(1);
    expect(warned.length).toBeLessThanOrEqual(1 + Math.floor(refused / 20));
    expect(warned[0]).toMatchObject({ level: 40, reason: 'refused' });
    const ready = await bridge.app.inject({ method: 'GET', url: '/readyz' });
    expect(ready.statusCode).toBe(503);
    expect(ready.json().reason).toContain('refused');
  });

  it('a stream that answers no headers times out and is retried', async () => {
    upstream = new ScriptedServer([async () => new Promise<void>(() => undefined)]);
    const url = await upstream.listen();
    bridge = bridgeFor(url, { source: { mastraUrl: url, requestTimeoutMs: 200, reconnect: { initialMs: 20, maxMs: 100 } } });
    await waitFor(async () => total(await scrape(bridge!.app), 'mastra_task_bridge_source_reconnects_total', { reason: 'timeout' }) >= 2, {
      message: 'header timeouts counted',
    });
    expect((await bridge.app.inject({ method: 'GET', url: '/readyz' })).statusCode).toBe(503);
  });
});

describe('auth against a real Mastra server with SimpleAuth', () => {
  let dir: string;
  let demo: DemoProcess;
  let bridge: BridgeHandle | undefined;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'bridge-auth-'));
    demo = await startDemoProcess({
      port: await freePort(),
      storageUrl: `file:${join(dir, 'mastra.db')}`,
      env: { DEMO_TOKEN: 'right-token', DEMO_RATE: '4', DEMO_MIX: 'complete=1' },
    });
  }, 90_000);
  afterEach(async () => {
    await bridge?.close();
    bridge = undefined;
  });
  afterAll(async () => {
    await demo?.kill();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('a wrong token: one clear log line, source_up 0, /readyz 503, no crash, retried at the cap', async () => {
    const lines: { level: number; msg: string }[] = [];
    const logger = pino({ level: 'info' }, { write: (l: string) => void lines.push(JSON.parse(l)) });
    bridge = startBridge({
      logger,
      config: {
        source: { mastraUrl: demo.url, token: 'wrong-token', reconnect: { initialMs: 20, maxMs: 100 } },
        otel: { tracesExporter: 'none' },
        metrics: { defaultMetrics: false },
      },
    });
    await waitFor(async () => total(await scrape(bridge!.app), 'mastra_task_bridge_source_reconnects_total', { reason: 'unauthorized' }) >= 4, {
      message: 'several rejected attempts',
    });
    const s = await scrape(bridge.app);
    expect(total(s, 'mastra_task_bridge_source_up')).toBe(0);
    const ready = await bridge.app.inject({ method: 'GET', url: '/readyz' });
    expect(ready.statusCode).toBe(503);
    expect(ready.json().reason).toContain('unauthorized');
    const credentialLines = lines.filter((l) => /credentials/.test(l.msg));
    expect(credentialLines).toHaveLength(1);
    expect(credentialLines[0]!.level).toBe(50); // error
    expect(credentialLines[0]!.msg).toContain('MASTRA_TOKEN');
    expect(JSON.stringify(lines)).not.toContain('wrong-token');
    expect((await bridge.app.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);
  });

  it('the right token: connected, ready, and counting tasks', async () => {
    bridge = startBridge({
      logger: silent,
      config: {
        source: { mastraUrl: demo.url, token: 'right-token', reconnect: { initialMs: 20, maxMs: 100 } },
        otel: { tracesExporter: 'none' },
        metrics: { defaultMetrics: false },
      },
    });
    await bridge.whenReady(20_000);
    await waitFor(async () => total(await scrape(bridge!.app), 'mastra_background_task_finished_total', { status: 'completed' }) >= 2, {
      timeoutMs: 30_000,
      message: 'tasks counted through the authenticated stream',
    });
    expect(total(await scrape(bridge.app), 'mastra_task_bridge_source_up')).toBe(1);
  });
});
