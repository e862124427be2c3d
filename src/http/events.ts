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
// without bound; so a client never holds more than the cap plus one frame (or its opening burst: one snapshot, or a
// replay of at most the hub's buffer). Clients past `maxClients` get 503 (counted as `max_clients`).
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
}

export function registerEventsRoute(app: FastifyInstance, opts: EventsRouteOptions): EventsRouteHandle {
  const clients = new Set<Client>();
  let peak = 0;
  let largestFrame = 0;
  let dropped = 0;
  let heartbeat: NodeJS.Timeout | undefined;

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

  const send = (c: Client, frame: string, opening = false): void => {
    if (c.closed) return;
    // Bytes written but not yet taken by the kernel: what this client costs the bridge in memory.
    if (!opening && c.raw.writableLength > opts.maxClientBufferBytes) {
      dropped++;
      opts.metrics.sseClientDropped('slow');
      close(c);
      c.raw.destroy();
      return;
    }
    c.raw.write(frame);
    const bytes = Buffer.byteLength(frame);
    if (bytes > largestFrame) largestFrame = bytes;
    if (c.raw.writableLength > peak) peak = c.raw.writableLength;
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
      schema: { response: { 200: { type: 'string' }, 400: errorSchema, 503: errorSchema } },
    },
    async (request, reply) => {
      const parsed = parseEventsQuery(request.query as Record<string, unknown>);
      if (!parsed.ok) return reply.status(400).send({ error: 'Bad request', message: parsed.message });
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
      });
      raw.socket?.setNoDelay(true);
      const c: Client = { raw, closed: false, unsubscribe: () => undefined };
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
      for (const frame of sub.opening.frames) send(c, frame, true);
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
