// Bearer-token auth for the bridge's HTTP routes.
//
// Owns: checking `Authorization: Bearer <token>` in constant time, the 401 answer, which paths need which tokens
// (`/api/*` the API tokens, `/metrics` the metrics token; `/healthz`, `/readyz` and `/` stay open), the anonymous-API
// rule, the limit on failed tokens, and the start-up notice. Must not: know about tasks or metrics content.
//
// Anonymous API: with no API token, `/api/*` is served only to clients connecting from a loopback address (the
// two-command demo on localhost, a sidecar, a reverse proxy on the host), unless `api.allowAnonymous` says otherwise;
// others get 403 naming the two ways out. The task API shows stored tasks and the board's feed shows what runs:
// open to a whole network only when the operator says so, as exporters with sensitive endpoints do (Prometheus's
// admin API is off unless enabled).
//
// Failed tokens: an address that sent `maxFailures` wrong tokens within a window gets 429 for the rest of it, without
// a token comparison (a guessing script gains nothing from speed); failures are logged at most once a minute per
// process with the count since the last line, and counted.
//
// Tokens are compared as SHA-256 digests with crypto.timingSafeEqual: equal-length buffers whatever the candidate's
// length, and every configured token is compared (no early exit), so timing reveals neither a token's length nor
// which one matched.

import { createHash, timingSafeEqual } from 'node:crypto';
import { isIP } from 'node:net';
import type { FastifyInstance, FastifyReply, FastifyRequest, onRequestHookHandler } from 'fastify';

export interface AuthOptions {
  /** Tokens accepted on /api/*; empty: the API is open to loopback clients (to everyone with allowAnonymous). */
  apiTokens: readonly string[];
  /** Tokens accepted on /metrics; empty: /metrics is open. */
  metricsTokens: readonly string[];
  /** With no API token, serve /api/* to non-loopback clients too. Default false. */
  allowAnonymous?: boolean;
  /** Wrong tokens per client address per window before 429 (0: no limit). Default 10 per minute. */
  failureLimit?: { max: number; timeWindowMs: number };
  /** Called per rejected request: `rejected` (401) or `rate_limited` (429 after too many failures). */
  onFailure?: (result: 'rejected' | 'rate_limited') => void;
}

const REALM = 'mastra-task-bridge';

function digest(s: string): Buffer {
  return createHash('sha256').update(s, 'utf8').digest();
}

/** A predicate over an Authorization header value: true when it carries one of `tokens` as a Bearer token. */
export function bearerMatcher(tokens: readonly string[]): (authorization: string | undefined) => boolean {
  const digests = tokens.map(digest);
  return (authorization) => {
    if (typeof authorization !== 'string') return false;
    const m = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(authorization);
    if (!m) return false;
    const candidate = digest(m[1]!);
    let ok = false;
    for (const d of digests) ok = timingSafeEqual(candidate, d) || ok;
    return ok;
  };
}

function unauthorized(reply: FastifyReply, message: string): FastifyReply {
  return reply
    .code(401)
    .header('www-authenticate', `Bearer realm="${REALM}"`)
    .header('cache-control', 'no-store')
    .send({ error: 'Unauthorized', message });
}

/**
 * An onRequest/preHandler hook requiring one of `tokens` (reusable on any route, e.g. an SSE route). With no tokens it
 * lets everything through.
 */
export function requireBearer(tokens: readonly string[], what = 'this route'): onRequestHookHandler {
  const matches = bearerMatcher(tokens);
  return function bearerHook(request, reply, done) {
    if (tokens.length === 0 || matches(request.headers.authorization)) return done();
    void unauthorized(reply, `${what} needs an Authorization: Bearer <token> header with a valid token`);
  };
}

/** True for paths under /api, by the matched route pattern when there is one, else by the raw path. */
export function isApiPath(request: FastifyRequest): boolean {
  return [request.routeOptions.url, request.url].some((p) => p !== undefined && (p === '/api' || p.startsWith('/api/') || p.startsWith('/api?')));
}

/**
 * Registers the auth hook on the root instance, so every route (including ones other plugins add later, and unknown
 * /api paths, which get 401 rather than revealing what exists) is covered, plus the open-API warning at listen time.
 */
export function registerAuth(app: FastifyInstance, options: AuthOptions): void {
  const apiMatches = bearerMatcher(options.apiTokens);
  const metricsMatches = bearerMatcher(options.metricsTokens);
  const limit = options.failureLimit ?? { max: 10, timeWindowMs: 60_000 };
  const failures = new Map<string, { start: number; count: number }>();
  let unlogged = 0;
  let loggedAt = Number.NEGATIVE_INFINITY;

  const failed = (request: FastifyRequest): void => {
    options.onFailure?.('rejected');
    unlogged++;
    const now = Date.now();
    if (now - loggedAt >= 60_000) {
      request.log.warn({ client: request.ip, failures: unlogged }, 'requests with a missing or wrong bearer token (logged at most once a minute)');
      loggedAt = now;
      unlogged = 0;
    }
    if (limit.max <= 0) return;
    let w = failures.get(request.ip);
    if (w === undefined || now - w.start >= limit.timeWindowMs) {
      failures.delete(request.ip);
      // Bounded: past 10,000 addresses the oldest windows go first.
      while (failures.size >= 10_000) failures.delete(failures.keys().next().value as string);
      failures.set(request.ip, (w = { start: now, count: 0 }));
    }
    w.count++;
  };
  /** Seconds the address must wait, or 0. */
  const blocked = (request: FastifyRequest): number => {
    if (limit.max <= 0) return 0;
    const w = failures.get(request.ip);
    if (w === undefined || w.count < limit.max) return 0;
    const left = w.start + limit.timeWindowMs - Date.now();
    return left > 0 ? Math.ceil(left / 1000) : 0;
  };

  const check = (
    request: FastifyRequest,
    reply: FastifyReply,
    done: () => void,
    tokens: readonly string[],
    matches: (a: string | undefined) => boolean,
    what: string,
  ): void => {
    if (tokens.length === 0) return done();
    const wait = blocked(request);
    if (wait > 0) {
      options.onFailure?.('rate_limited');
      void reply
        .code(429)
        .header('retry-after', String(wait))
        .send({ error: 'Too many requests', message: `too many requests with a wrong token from this address; retry in ${wait} s` });
      return;
    }
    if (matches(request.headers.authorization)) return done();
    failed(request);
    void unauthorized(reply, `${what} needs an Authorization: Bearer <token> header with a valid token`);
  };

  app.addHook('onRequest', (request, reply, done) => {
    if (isApiPath(request)) {
      if (options.apiTokens.length === 0 && !options.allowAnonymous && !isLoopback(request.socket.remoteAddress ?? '')) {
        void reply
          .code(403)
          .header('cache-control', 'no-store')
          .send({
            error: 'Forbidden',
            message: 'the task API is served without a token only to loopback clients: set BRIDGE_API_TOKEN (api.tokens), or BRIDGE_API_ALLOW_ANONYMOUS=true (api.allowAnonymous)',
          });
        return;
      }
      return check(request, reply, done, options.apiTokens, apiMatches, 'the task API');
    }
    if (request.routeOptions.url === '/metrics') return check(request, reply, done, options.metricsTokens, metricsMatches, '/metrics');
    done();
  });
  app.addHook('onListen', (done) => {
    if (options.apiTokens.length === 0) {
      // A unix socket path (a string) is not network-reachable.
      const exposed = app.addresses().flatMap((a) => (typeof a === 'string' || isLoopback(a.address) ? [] : [a.address]));
      if (exposed.length > 0 && options.allowAnonymous) {
        app.log.warn(
          { addresses: exposed },
          'the task API (/api/*) is open to anyone who can reach this address (api.allowAnonymous): set BRIDGE_API_TOKEN (or api.tokens), or listen on 127.0.0.1',
        );
      } else if (exposed.length > 0) {
        app.log.info(
          { addresses: exposed },
          'the task API (/api/*) and the board feed answer only loopback clients without a token: set BRIDGE_API_TOKEN (or api.tokens) to serve others',
        );
      }
    }
    done();
  });
}

export function isLoopback(address: string): boolean {
  if (address === 'localhost') return true;
  const v = isIP(address);
  if (v === 4) return address.startsWith('127.');
  if (v === 6) return address === '::1' || /^::ffff:127\./i.test(address);
  return false;
}
