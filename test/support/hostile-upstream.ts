// Test support: a Mastra API that misbehaves on purpose, one mode at a time, for the upstream half of "hostile and
// heavy inputs". It serves the three routes the bridge uses (`/api/background-tasks/stream`, `/api/background-tasks`,
// `/api/background-tasks/:id`) over a store the test edits, and can instead answer with:
// - stream: a 200 text/html page (a login page, an SPA fallback), a redirect to another origin, or a proper SSE
//   stream that ends at once (a server that accepts and hangs up);
// - getTask: a huge body (no content-length), a gzip bomb (a small compressed body that inflates past any sane cap), a
//   huge content-length it never delivers, a redirect to another origin, or another task's record.
// The other origin (`other`) is a second server that counts every request it gets: a redirect followed shows there.
// Bodies are generated as they are sent (never built whole here), so the test process measures the bridge, not us.
import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createGzip } from 'node:zlib';

export type StreamMode = 'sse' | 'html' | 'redirect' | 'hangup' | 'hangup-after-frame';
export type LookupMode = 'ok' | 'huge' | 'gzip-bomb' | 'huge-length' | 'redirect' | 'wrong-id';

export interface StoredTask {
  id: string;
  status: 'pending' | 'running' | 'suspended' | 'completed' | 'failed' | 'cancelled' | 'timed_out';
  toolName: string;
  toolCallId: string;
  agentId: string;
  runId: string;
  createdAt?: string;
  startedAt?: string;
  completedAt?: string;
  [extra: string]: unknown;
}

export function storedTask(id: string, status: StoredTask['status'], extra: Partial<StoredTask> = {}): StoredTask {
  return { id, status, toolName: 'research_topic', toolCallId: `call-${id}`, agentId: 'research-agent', runId: `run-${id}`, ...extra };
}

/** The stream frame of a stored task's event (`running`, `completed`, …) as Mastra sends it. */
export function frameFor(type: 'running' | 'completed' | 'failed', t: StoredTask): string {
  const payload = { taskId: t.id, toolName: t.toolName, toolCallId: t.toolCallId, agentId: t.agentId, runId: t.runId };
  const extra = type === 'running' ? { startedAt: t.startedAt, args: {} } : type === 'completed' ? { completedAt: t.completedAt, result: {} } : { completedAt: t.completedAt, error: { message: 'boom' } };
  return `data: ${JSON.stringify({ type: `background-task-${type}`, payload: { ...payload, ...extra } })}\n\n`;
}

export class HostileUpstream {
  streamMode: StreamMode = 'sse';
  lookupMode: LookupMode = 'ok';
  /** Decoded size of `huge` and `gzip-bomb` bodies. */
  hugeBytes = 64 * 1024 * 1024;
  readonly records = new Map<string, StoredTask>();
  readonly listQueries: URLSearchParams[] = [];
  streamRequests = 0;
  lookupRequests = 0;
  /** Bytes the huge bodies actually put on the wire (compressed for the bomb). */
  hugeBytesSent = 0;
  url = '';
  readonly other = new OtherOrigin();
  private readonly server: Server;
  private readonly streams = new Set<ServerResponse>();

  constructor() {
    this.server = createServer((req, res) => void this.handle(req, res).catch(() => res.destroy()));
  }

  async start(): Promise<this> {
    await this.other.start();
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  /** Send raw SSE text to every open stream. */
  broadcast(text: string): void {
    for (const res of this.streams) res.write(text);
  }

  /** End every open stream (the bridge reconnects and meets whatever `streamMode` is now). */
  endStreams(): void {
    for (const res of this.streams) res.end();
    this.streams.clear();
  }

  get openStreams(): number {
    return this.streams.size;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    await this.other.close();
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://x');
    if (url.pathname === '/api/background-tasks/stream') return this.stream(res);
    if (url.pathname === '/api/background-tasks') return this.list(url.searchParams, res);
    const m = /^\/api\/background-tasks\/([^/]+)$/.exec(url.pathname);
    if (m) return this.lookup(decodeURIComponent(m[1]!), res);
    json(res, 404, { error: 'not found' });
  }

  private stream(res: ServerResponse): void {
    this.streamRequests++;
    switch (this.streamMode) {
      case 'html':
        res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end('<!doctype html><title>Sign in</title><form>…</form>');
        return;
      case 'redirect':
        res.writeHead(302, { location: `${this.other.url}/api/background-tasks/stream` }).end();
        return;
      case 'hangup':
        res.writeHead(200, { 'content-type': 'text/event-stream' }).end();
        return;
      case 'hangup-after-frame':
        res.writeHead(200, { 'content-type': 'text/event-stream' }).end(': hello\n\ndata: {"not":"an event"}\n\n');
        return;
      case 'sse':
        res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
        res.flushHeaders();
        // Mastra's connect snapshot: one running frame per stored running task.
        for (const t of this.records.values()) if (t.status === 'running') res.write(frameFor('running', t));
        this.streams.add(res);
        res.once('close', () => this.streams.delete(res));
    }
  }

  private list(q: URLSearchParams, res: ServerResponse): void {
    this.listQueries.push(q);
    const status = q.get('status');
    const by = q.get('dateFilterBy') as 'completedAt' | null;
    const from = q.get('fromDate');
    const order = (q.get('orderBy') ?? 'createdAt') as 'completedAt' | 'createdAt';
    let tasks = [...this.records.values()].filter((t) => !status || t.status === status);
    if (by && from) tasks = tasks.filter((t) => t[by] !== undefined && Date.parse(t[by]!) >= Date.parse(from));
    const key = (t: StoredTask) => Date.parse((t[order] as string | undefined) ?? '1970-01-01T00:00:00Z');
    tasks.sort((a, b) => key(a) - key(b));
    if (q.get('orderDirection') === 'desc') tasks.reverse();
    const perPage = Number(q.get('perPage') ?? 100);
    const page = Number(q.get('page') ?? 0);
    json(res, 200, { tasks: tasks.slice(page * perPage, (page + 1) * perPage), total: tasks.length });
  }

  private async lookup(id: string, res: ServerResponse): Promise<void> {
    this.lookupRequests++;
    const record = this.records.get(id) ?? storedTask(id, 'completed');
    switch (this.lookupMode) {
      case 'ok':
        if (this.records.has(id)) json(res, 200, record);
        else json(res, 404, { error: 'Background task not found' });
        return;
      case 'wrong-id':
        json(res, 200, { ...record, id: `${id}-someone-else`, threadId: 'their-thread' });
        return;
      case 'redirect':
        res.writeHead(302, { location: `${this.other.url}/api/background-tasks/${encodeURIComponent(id)}` }).end();
        return;
      case 'huge-length':
        // Claims ten gigabytes, sends a few bytes, then holds the connection.
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(10 * 1024 ** 3) });
        res.write(JSON.stringify(record).slice(0, -1));
        return;
      case 'huge':
      case 'gzip-bomb': {
        const bomb = this.lookupMode === 'gzip-bomb';
        res.writeHead(200, { 'content-type': 'application/json', ...(bomb ? { 'content-encoding': 'gzip' } : {}) });
        const sink = bomb ? createGzip({ level: 9 }) : undefined;
        if (sink) {
          sink.on('data', (c: Buffer) => {
            this.hugeBytesSent += c.length;
            if (!res.write(c)) sink.pause();
          });
          res.on('drain', () => sink.resume());
          sink.on('end', () => res.end());
        }
        const out = (text: string) => {
          if (sink) return sink.write(text);
          this.hugeBytesSent += text.length;
          return res.write(text);
        };
        const waitDrain = () => new Promise<void>((resolve) => (sink ?? res).once('drain', resolve));
        let closed = false;
        const gone = new Promise<void>((resolve) =>
          res.once('close', () => {
            closed = true;
            sink?.destroy();
            resolve();
          }),
        );
        const head = JSON.stringify({ ...record, args: { blob: '' } }).replace(/""}}$/, '"');
        out(head);
        const chunk = 'a'.repeat(64 * 1024);
        for (let sent = 0; sent < this.hugeBytes && !closed; sent += chunk.length) {
          if (!out(chunk)) await Promise.race([waitDrain(), gone]);
        }
        if (closed) return;
        out('"}}');
        if (sink) sink.end();
        else res.end();
      }
    }
  }
}

/** The origin a redirect points at: it serves plausible JSON and counts every request. */
class OtherOrigin {
  hits = 0;
  url = '';
  private readonly server = createServer((req, res) => {
    this.hits++;
    const id = decodeURIComponent((req.url ?? '').split('/').pop() ?? '');
    if ((req.url ?? '').includes('/stream')) {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      return;
    }
    json(res, 200, storedTask(id, 'completed', { threadId: 'foreign-thread', createdAt: new Date().toISOString() }));
  });

  async start(): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
}
