// Bearer-token auth for the bridge's HTTP routes.
//
// Owns: checking `Authorization: Bearer <token>` in constant time, the 401 answer, which paths need which tokens
// (`/api/*` the API tokens, `/metrics` the metrics token; `/healthz`, `/readyz` and `/` stay open), and the start-up
// warning when the API is open on a non-loopback address. Must not: know about tasks or metrics content.
//
// Tokens are compared as SHA-256 digests with crypto.timingSafeEqual: equal-length buffers whatever the candidate's
// length, and every configured token is compared (no early exit), so timing reveals neither a token's length nor
// which one matched.

import { createHash, timingSafeEqual } from 'node:crypto';
import { isIP } from 'node:net';
import type { FastifyInstance, FastifyReply, FastifyRequest, onRequestHookHandler } from 'fastify';

export interface AuthOptions {
  /** Tokens accepted on /api/*; empty: the API is open. */
  apiTokens: readonly string[];
  /** Tokens accepted on /metrics; empty: /metrics is open. */
  metricsTokens: readonly string[];
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
  const api = requireBearer(options.apiTokens, 'the task API');
  const metrics = requireBearer(options.metricsTokens, '/metrics');
  app.addHook('onRequest', (request, reply, done) => {
    if (isApiPath(request)) return api.call(app, request, reply, done);
    if (request.routeOptions.url === '/metrics') return metrics.call(app, request, reply, done);
    done();
  });
  app.addHook('onListen', (done) => {
    if (options.apiTokens.length === 0) {
      // A unix socket path (a string) is not network-reachable.
      const exposed = app.addresses().flatMap((a) => (typeof a === 'string' || isLoopback(a.address) ? [] : [a.address]));
      if (exposed.length > 0) {
        app.log.warn(
          { addresses: exposed },
          'the task API (/api/*) is open to anyone who can reach this address: set BRIDGE_API_TOKEN (or api.tokens), or listen on 127.0.0.1',
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
