// The fastify app factory: builds the app and never listens (main.ts and startBridge() do). Tests use app.inject().
//
// Routes: `/` the task board (with the landing page's links), `/board.js` its script, `/api/events` (SSE, see
// events.ts), the task API plugin (tasks.ts) under `/api`, `/metrics` (OpenMetrics or text by Accept), `/healthz`
// (the process serves), `/readyz` (503 with a JSON reason until the source is connected and its initial sync
// applied). Bearer auth (auth.ts) guards `/api/*` (and `/metrics` with a metrics token). One error handler: clients
// get a JSON error, never a stack.

import { STATUS_CODES } from 'node:http';
import Fastify, { type FastifyBaseLogger, type FastifyInstance, LogController } from 'fastify';
import type { Logger } from 'pino';
import type { EventHub } from '../event-hub.js';
import type { BridgeMetrics } from '../metrics.js';
import { type AuthOptions, registerAuth } from './auth.js';
import { BOARD_CSP, boardPage, boardScript } from './board.js';
import { registerEventsRoute } from './events.js';
import { type TasksApiOptions, tasksApi } from './tasks.js';
import { errorSchema } from './error-schema.js';
import type { BridgeStatus } from '../status.js';

export interface AppDeps {
  metrics: BridgeMetrics;
  status: () => BridgeStatus;
  logger?: Logger;
  /** `/api/events` and the live board; without it `/` shows the landing part only. */
  events?: {
    hub: EventHub;
    heartbeatMs: number;
    maxClientBufferBytes: number;
    maxClients: number;
    connectLimit?: { max: number; timeWindowMs: number };
    openingDrainMs?: number;
  };
  board?: { traceUrlTemplate: string };
  /** Bearer tokens for /api/* and /metrics; none: both open. */
  auth?: AuthOptions;
  /** The task API (/api/tasks); absent: not served. */
  tasks?: TasksApiOptions;
}

const readySchema = {
  type: 'object',
  properties: {
    status: { type: 'string', enum: ['ready', 'not_ready'] },
    reason: { type: 'string' },
    connected: { type: 'boolean' },
    synced: { type: 'boolean' },
    sources: {
      type: 'array',
      items: {
        type: 'object',
        properties: { source: { type: 'string' }, connected: { type: 'boolean' }, synced: { type: 'boolean' }, reason: { type: 'string' } },
        required: ['source', 'connected', 'synced'],
      },
    },
  },
  required: ['status', 'connected', 'synced'],
} as const;

/** Open connections the server accepts (events.maxClients streams, scrapes, API calls and the board share them). */
export const MAX_CONNECTIONS = 1024;

export function buildApp(deps: AppDeps): FastifyInstance {
  const app = Fastify({
    loggerInstance: deps.logger?.child({ component: 'http' }) as FastifyBaseLogger | undefined,
    // Prometheus scrapes every few seconds: request logs would drown everything else.
    logController: new LogController({ disableRequestLogging: true }),
    // Every route is small; anything bigger is a mistake or an attack.
    bodyLimit: 16 * 1024,
    // Task ids are up to 128 characters (the route's schema); fastify's default of 100 answered 414 before it.
    routerOptions: { maxParamLength: 256 },
    // Node's default (300 s) lets a client hold a connection open by sending its request slowly; every request here
    // is a GET without a body. (An answer may stream for longer: /api/events is not bound by this.)
    requestTimeout: 30_000,
  });

  // A bound on sockets: past it the server refuses new connections instead of running out of descriptors.
  app.server.maxConnections = MAX_CONNECTIONS;

  app.setErrorHandler((error: { statusCode?: number; message: string; validation?: unknown }, request, reply) => {
    const status = error.statusCode && error.statusCode >= 400 && error.statusCode < 600 ? error.statusCode : 500;
    if (status >= 500) request.log.error({ err: error }, 'request failed');
    const name = status === 400 ? 'Bad request' : (STATUS_CODES[status] ?? 'Bad request');
    void reply.status(status).send(status >= 500 ? { error: 'Internal error' } : { error: name, message: error.message });
  });
  app.setNotFoundHandler((request, reply) => {
    void reply.status(404).send({ error: 'Not found', message: `${request.method} ${request.url.split('?')[0]} is not a route of this bridge; see /` });
  });

  // Browser hardening on every answer: no MIME sniffing, no referrer (a token never leaks through it), no framing.
  // The board page adds its Content-Security-Policy.
  app.addHook('onSend', (_request, reply, payload, done) => {
    void reply.header('x-content-type-options', 'nosniff').header('referrer-policy', 'no-referrer').header('x-frame-options', 'DENY');
    done(null, payload);
  });

  registerAuth(app, { onFailure: (result) => deps.metrics.authFailed(result), ...(deps.auth ?? { apiTokens: [], metricsTokens: [] }) });
  if (deps.tasks) void app.register(tasksApi, deps.tasks);

  const boardOptions = {
    traceUrlTemplate: deps.board?.traceUrlTemplate ?? '',
    heartbeatSeconds: (deps.events?.heartbeatMs ?? 15_000) / 1000,
    eventsEnabled: deps.events !== undefined,
  };
  app.get('/', { schema: { response: { 200: { type: 'string' } } } }, async (_req, reply) => {
    return reply
      .type('text/html; charset=utf-8')
      .header('cache-control', 'no-store')
      .header('content-security-policy', BOARD_CSP)
      .send(boardPage(deps.status(), boardOptions));
  });
  app.get('/board.js', { schema: { response: { 200: { type: 'string' } } } }, async (_req, reply) => {
    return reply.type('text/javascript; charset=utf-8').header('cache-control', 'no-cache').send(boardScript());
  });
  if (deps.events) registerEventsRoute(app, { ...deps.events, metrics: deps.metrics });

  app.get('/metrics', { schema: { response: { 200: { type: 'string' }, 500: errorSchema } } }, async (request, reply) => {
    const { contentType, body } = await deps.metrics.render(request.headers.accept);
    return reply.type(contentType).send(body);
  });

  app.get(
    '/healthz',
    { schema: { response: { 200: { type: 'object', properties: { status: { type: 'string' } }, required: ['status'] } } } },
    async () => ({ status: 'ok' }),
  );

  app.get('/readyz', { schema: { response: { 200: readySchema, 503: readySchema } } }, async (_req, reply) => {
    const s = deps.status();
    const ready = s.connected && s.synced;
    const body: Record<string, unknown> = { status: ready ? 'ready' : 'not_ready', connected: s.connected, synced: s.synced };
    if (!ready) body.reason = s.reason ?? (s.connected ? 'initial sync with Mastra not finished' : 'not connected to the Mastra background-task stream');
    if (s.sources) body.sources = s.sources;
    return reply.status(ready ? 200 : 503).send(body);
  });

  return app;
}
