// Test support: the /api/events route alone, without Mastra — a bare fastify app on 127.0.0.1 serving a hub the test
// publishes synthetic events to, with the metrics the route counts drops in; and a raw TCP client that sends its
// request and never reads a byte (an SSE client library would read), for the slow-client cases.
import { type Socket, connect } from 'node:net';
import Fastify, { type FastifyInstance } from 'fastify';
import { EventHub, type HubOptions } from '../../src/event-hub.js';
import { type EventsRouteHandle, type EventsRouteOptions, registerEventsRoute } from '../../src/http/events.js';
import { BridgeMetrics } from '../../src/metrics.js';
import { parseExposition, total } from './metrics-text.js';

export interface EventsRoute {
  app: FastifyInstance;
  hub: EventHub;
  metrics: BridgeMetrics;
  route: EventsRouteHandle;
  /** e.g. http://127.0.0.1:PORT (no trailing slash) */
  base: string;
  /** `mastra_task_bridge_sse_dropped_clients_total{reason}` as the route's metrics render it. */
  dropped(reason: string): Promise<number>;
}

export async function startEventsRoute(opts: { hub: HubOptions; route: Omit<EventsRouteOptions, 'hub' | 'metrics'> }): Promise<EventsRoute> {
  const app = Fastify();
  const hub = new EventHub(opts.hub);
  const metrics: BridgeMetrics = new BridgeMetrics({ version: 'test', defaultMetrics: false, sseClients: () => route.clients() });
  const route = registerEventsRoute(app, { hub, metrics, ...opts.route });
  const base = await app.listen({ host: '127.0.0.1', port: 0 });
  return {
    app,
    hub,
    metrics,
    route,
    base,
    dropped: async (reason) =>
      total(parseExposition((await metrics.render(undefined)).body), 'mastra_task_bridge_sse_dropped_clients_total', { reason }),
  };
}

/** GET /api/events over a raw socket that never reads; `closed()` once the server has closed it. */
export function neverReadingClient(base: string): { socket: Socket; closed(): boolean } {
  const url = new URL(base);
  const socket = connect({ host: url.hostname, port: Number(url.port) });
  socket.pause();
  let closed = false;
  socket.on('close', () => (closed = true));
  socket.on('error', () => undefined);
  socket.write(`GET /api/events HTTP/1.1\r\nHost: ${url.host}\r\nAccept: text/event-stream\r\n\r\n`);
  return { socket, closed: () => closed };
}
