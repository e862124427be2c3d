// `GET /api/events`: the event hub over Server-Sent Events, written straight to the socket (reply.hijack(), no extra
// dependency).
//
// Wire format, per frame: `id: <epoch>-<seq>`, `event: <snapshot|started|output|suspended|resumed|finished>`,
// `data: <json>`. A fresh connection starts with one `snapshot` frame (open tasks and recently finished ones, id = the
// newest event it reflects); a `Last-Event-ID` header (or `?lastEventId=`) resumes with exactly the events after it
// while they are buffered, else a `snapshot` with reason `reset` replaces the client's state. A `: ping` comment every
// `heartbeatMs`.
//
// Memory per client is bounded: before each write the bytes the socket still holds for the client are checked, and a
// client holding more than `maxClientBufferBytes` is dropped (socket destroyed, counted as `slow`) instead of queued
// without bound; so a client never holds more than the cap plus one frame. The opening (one snapshot, or a replay of
// at most the hub's buffer) may be larger than the cap: it is allowed on top of the cap until the socket drains, and a
// client that has not drained it within `openingDrainMs` is dropped as slow (100 clients that never read kept a 4.3 MB
// snapshot each before). A snapshot frame is one Buffer shared by every client that gets it (the hub serialises it
// once per state), so a burst of connects costs one serialisation, not one per client. Clients past `maxClients` get
// 503 (counted as `max_clients`); an address past `connectLimit` connects per window gets 429 (`rate_limited`).
// Authentication is not done here: the app's root bearer hook (auth.ts) guards every /api path, this one included.

import type { ServerResponse } from 'node:http';
import type { FastifyInstance } from 'fastify';
import { BRIDGE_EVENT_TYPES, type BridgeEventType, type EventFilter, type EventHub, TASK_VIEW_STATUSES, type TaskViewStatus } from '../event-hub.js';
import type { BridgeMetrics } from '../metrics.js';
import { errorSchema } from './error-schema.js';

export interface EventsRouteOptions {
  hub: EventHub;
  metrics: Pick<BridgeMetrics, 'sseClientDropped'>;
  heartbeatMs: number;
  maxClientBufferBytes: number;
  maxClients: number;
  /** Connects per client address per window (429 past it); max 0: no limit. Default 60 a minute. */
  connectLimit?: { max: number; timeWindowMs: number };
  /** How long a client may take to drain an opening larger than its buffer cap before it is dropped as slow. */
  openingDrainMs?: number;
}

export interface EventsRouteHandle {
  /** Clients connected now. */
  clients(): number;
  /** The most bytes the bridge ever held queued for one client (the bound the cap enforces), and the largest frame. */
  stats(): { peakClientBufferedBytes: number; largestFrameBytes: number; dropped: number };
}

const STRING_FILTERS = ['agentId', 'runId', 'threadId', 'resourceId', 'taskId', 'toolName'] as const;
const KNOWN_PARAMS: ReadonlySet<string> = new Set([...STRING_FILTERS, 'event', 'status', 'lastEventId']);
const MAX_FILTER_LENGTH = 512;

export type ParsedQuery = { ok: true; filter: EventFilter; lastEventId?: string } | { ok: false; message: string };

function list<T extends string>(name: string, raw: string, allowed: readonly T[]): Set<T> | string {
  const out = new Set<T>();
  for (const part of raw.split(',')) {
    const v = part.trim();
    if (!(allowed as readonly string[]).includes(v)) return `${name} must be a comma-separated list of ${allowed.join(', ')}`;
    out.add(v as T);
  }
  return out;
}

/** Validate the query: unknown parameters, repeated or empty values, and unknown event types or statuses are errors. */
export function parseEventsQuery(query: Record<string, unknown>): ParsedQuery {
  const filter: EventFilter = {};
  let lastEventId: string | undefined;
  for (const [key, value] of Object.entries(query)) {
    if (!KNOWN_PARAMS.has(key)) return { ok: false, message: `unknown parameter ${JSON.stringify(key.slice(0, 64))}; filters: ${[...KNOWN_PARAMS].join(', ')}` };
    if (typeof value !== 'string') return { ok: false, message: `${key} must be given once` };
    if (value === '' || value.length > MAX_FILTER_LENGTH) return { ok: false, message: `${key} must be 1 to ${MAX_FILTER_LENGTH} characters` };
    if (key === 'event') {
      const types = list<BridgeEventType>('event', value, BRIDGE_EVENT_TYPES);
      if (typeof types === 'string') return { ok: false, message: types };
      filter.types = types;
    } else if (key === 'status') {
      const statuses = list<TaskViewStatus>('status', value, TASK_VIEW_STATUSES);
      if (typeof statuses === 'string') return { ok: false, message: statuses };
      filter.statuses = statuses;
    } else if (key === 'lastEventId') {
      lastEventId = value;
    } else {
      filter[key as (typeof STRING_FILTERS)[number]] = value;
    }
  }
  return lastEventId === undefined ? { ok: true, filter } : { ok: true, filter, lastEventId };
}

interface Client {
  raw: ServerResponse;
  closed: boolean;
  unsubscribe: () => void;
  /** Bytes of the opening still allowed on top of the cap, until the socket first drains. */
  allowance: number;
}

/** Fixed-window connect counts per client address, bounded: stale windows are pruned, and past 10,000 addresses the oldest go. */
class ConnectLimiter {
  private readonly windows = new Map<string, { start: number; count: number }>();
  constructor(
    private readonly max: number,
    private readonly windowMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** 0 when the connect is allowed, else the seconds until the address's window ends. */
  take(address: string): number {
    if (this.max <= 0) return 0;
    const t = this.now();
    let w = this.windows.get(address);
    if (w === undefined || t - w.start >= this.windowMs) {
      if (w !== undefined) this.windows.delete(address);
      if (this.windows.size >= 10_000) {
        for (const [k, v] of this.windows) if (t - v.start >= this.windowMs) this.windows.delete(k);
        while (this.windows.size >= 10_000) this.windows.delete(this.windows.keys().next().value as string);
      }
      w = { start: t, count: 0 };
      this.windows.set(address, w);
    }
    if (w.count >= this.max) return Math.max(1, Math.ceil((w.start + this.windowMs - t) / 1000));
    w.count++;
    return 0;
  }
}

export function registerEventsRoute(app: FastifyInstance, opts: EventsRouteOptions): EventsRouteHandle {
  const clients = new Set<Client>();
  let peak = 0;
  let largestFrame = 0;
  let dropped = 0;
  let heartbeat: NodeJS.Timeout | undefined;
  const limit = opts.connectLimit ?? { max: 60, timeWindowMs: 60_000 };
  const limiter = new ConnectLimiter(limit.max, limit.timeWindowMs);
  const openingDrainMs = opts.openingDrainMs ?? 10_000;

  const close = (c: Client): void => {
    if (c.closed) return;
    c.closed = true;
    c.unsubscribe();
    clients.delete(c);
    if (clients.size === 0 && heartbeat) {
      clearInterval(heartbeat);
      heartbeat = undefined;
    }
  };

  const dropSlow = (c: Client): void => {
    if (c.closed) return;
    dropped++;
    opts.metrics.sseClientDropped('slow');
    close(c);
    c.raw.destroy();
  };

  const send = (c: Client, frame: string | Buffer, opening = false): void => {
    if (c.closed) return;
    // Bytes written but not yet taken by the kernel: what this client costs the bridge in memory.
    if (!opening && c.raw.writableLength > opts.maxClientBufferBytes + c.allowance) {
      dropSlow(c);
      return;
    }
    c.raw.write(frame);
    const bytes = typeof frame === 'string' ? Buffer.byteLength(frame) : frame.length;
    if (bytes > largestFrame) largestFrame = bytes;
    if (!opening && c.raw.writableLength > peak) peak = c.raw.writableLength;
  };

  app.addHook('preClose', (done) => {
    for (const c of [...clients]) {
      close(c);
      c.raw.end();
    }
    done();
  });

  app.get(
    '/api/events',
    {
      schema: { response: { 200: { type: 'string' }, 400: errorSchema, 429: errorSchema, 503: errorSchema } },
    },
    async (request, reply) => {
      const parsed = parseEventsQuery(request.query as Record<string, unknown>);
      if (!parsed.ok) return reply.status(400).send({ error: 'Bad request', message: parsed.message });
      const wait = limiter.take(request.ip);
      if (wait > 0) {
        opts.metrics.sseClientDropped('rate_limited');
        return reply
          .status(429)
          .header('retry-after', String(wait))
          .send({ error: 'Too many requests', message: `at most ${limit.max} connects to /api/events per ${limit.timeWindowMs / 1000} s per client` });
      }
      if (clients.size >= opts.maxClients) {
        dropped++;
        opts.metrics.sseClientDropped('max_clients');
        return reply.status(503).header('retry-after', '10').send({ error: 'Too many clients', message: `at most ${opts.maxClients} clients of /api/events` });
      }
      const header = request.headers['last-event-id'];
      const lastEventId = (typeof header === 'string' ? header : undefined) ?? parsed.lastEventId;

      reply.hijack();
      const raw = reply.raw;
      raw.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-cache, no-transform',
        connection: 'keep-alive',
        // nginx and similar proxies buffer responses unless told not to.
        'x-accel-buffering': 'no',
        'x-content-type-options': 'nosniff',
      });
      raw.socket?.setNoDelay(true);
      const c: Client = { raw, closed: false, unsubscribe: () => undefined, allowance: 0 };
      const sub = opts.hub.subscribe(parsed.filter, lastEventId, (frame) => send(c, frame));
      c.unsubscribe = sub.unsubscribe;
      clients.add(c);
      raw.on('close', () => close(c));
      raw.on('error', () => close(c));
      // EventSource clients reconnect after `retry` ms; the board's own client does the same.
      send(c, 'retry: 2000\n\n', true);
      if (sub.opening.kind === 'snapshot' && sub.opening.reason === 'reset') {
        send(c, `: cannot resume from ${JSON.stringify(lastEventId)} (${sub.opening.detail}); state reset\n\n`, true);
      }
      for (const frame of sub.opening.frames) send(c, sub.opening.kind === 'snapshot' ? opts.hub.frameBytes(frame) : frame, true);
      // Backpressure on the opening: it may exceed the cap until the socket drains once, within openingDrainMs.
      if (raw.writableLength > opts.maxClientBufferBytes) {
        c.allowance = raw.writableLength;
        const timer = setTimeout(() => {
          if (raw.writableLength > opts.maxClientBufferBytes) dropSlow(c);
          else c.allowance = 0;
        }, openingDrainMs);
        timer.unref();
        raw.once('drain', () => {
          clearTimeout(timer);
          c.allowance = 0;
        });
        raw.once('close', () => clearTimeout(timer));
      }
      heartbeat ??= setInterval(() => {
        for (const x of [...clients]) send(x, ': ping\n\n');
      }, opts.heartbeatMs).unref();
    },
  );

  return {
    clients: () => clients.size,
    stats: () => ({ peakClientBufferedBytes: peak, largestFrameBytes: largestFrame, dropped }),
  };
}
