// A minimal bearer-token check for the /api routes (stand-in until the shared auth hook of the task API is wired):
// `Authorization: Bearer <token>`, compared in constant time; 401 with a JSON error otherwise. Tokens are never
// accepted in the URL, so they stay out of access logs and browser history.

import { createHash, timingSafeEqual } from 'node:crypto';
import type { preHandlerHookHandler } from 'fastify';

const digest = (s: string) => createHash('sha256').update(s).digest();

export function bearerAuth(token: string): preHandlerHookHandler {
  const expected = digest(token);
  return (request, reply, done) => {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(request.headers.authorization ?? '');
    if (m && timingSafeEqual(digest(m[1]!), expected)) return done();
    void reply.status(401).header('www-authenticate', 'Bearer').send({ error: 'Unauthorized', message: 'a valid bearer token is required' });
  };
}
