// The task API: `GET /api/tasks/:id` and `GET /api/tasks` proxy the source's getTask/listTasks (in-process Mastra or
// a remote Mastra server), as a fastify plugin.
//
// Owns: query and id validation (400 naming the field and the reason), the perPage cap, a deadline on every upstream
// lookup (504 past it; 502 when Mastra fails), the short-TTL lookup cache, the per-client rate limit
// (@fastify/rate-limit), and the response shape: the stored record minus what redaction removes, dates as ISO
// strings, the true status (`timed_out` included), and the task's span ids when the bridge knows them. Response
// schemas on every status, so the serializer drops anything not declared. Must not: authenticate (auth.ts does, for
// every /api/* path), or format errors other than upstream ones (app.ts has the one error handler).

import rateLimit from '@fastify/rate-limit';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest, FastifySchemaValidationError } from 'fastify';
import type { BridgeConfig } from '../config.js';
import { TASK_STATUSES, type TaskRecord, type TaskStatus, finalStatusOf } from '../events.js';
import type { BridgeMetrics } from '../metrics.js';
import { redactTask } from '../redact.js';
import type { TaskSpanIds } from '../span-index.js';
import { SourceError, type TaskFilter, type TaskPage, type TaskQuery, type TaskSource } from '../sources/types.js';
import { LookupCache } from './lookup-cache.js';
import { LogThrottle } from '../log-throttle.js';
import { errorSchema } from './error-schema.js';

export interface TasksApiOptions {
  source: Pick<TaskSource, 'kind' | 'getTask' | 'listTasks'>;
  config: BridgeConfig['api'];
  metrics: BridgeMetrics;
  /** What the bridge knows of a task's span. */
  spans?: { lookup(task: { id: string; runId: string }): TaskSpanIds | undefined };
}

export const DEFAULT_PER_PAGE = 20;
/** Deepest page a client may ask for: beyond it a storage's OFFSET scan costs more than any dashboard needs. */
export const MAX_PAGE = 100_000;

const DATE_COLUMNS = ['createdAt', 'startedAt', 'suspendedAt', 'completedAt'] as const;
const FILTERS = ['agentId', 'runId', 'threadId', 'resourceId', 'toolName', 'toolCallId'] as const;
type DateColumn = (typeof DATE_COLUMNS)[number];

interface ListQuery extends TaskFilter {
  status?: TaskStatus[];
  fromDate?: string;
  toDate?: string;
  dateFilterBy?: DateColumn;
  orderBy?: DateColumn;
  orderDirection?: 'asc' | 'desc';
  page?: number;
  perPage?: number;
}

// Ids and filter values: printable, bounded. Mastra's own ids are UUIDs; other characters are allowed in filters
// (agent ids and tool names are the app's), control characters are not.
const filterString = { type: 'string', minLength: 1, maxLength: 256, pattern: '^[^\\u0000-\\u001f\\u007f]+$' } as const;
const taskId = { type: 'string', minLength: 1, maxLength: 128, pattern: '^[A-Za-z0-9][A-Za-z0-9._:-]*$' } as const;

const listQuerySchema = {
  type: 'object',
  properties: {
    // Fastify's Ajv coerces a single value to a one-element array; `status=a,b` is split before validation.
    status: { type: 'array', items: { type: 'string', enum: TASK_STATUSES }, minItems: 1, maxItems: TASK_STATUSES.length },
    ...Object.fromEntries(FILTERS.map((f) => [f, filterString])),
    fromDate: { type: 'string', format: 'date-time' },
    toDate: { type: 'string', format: 'date-time' },
    dateFilterBy: { type: 'string', enum: DATE_COLUMNS },
    orderBy: { type: 'string', enum: DATE_COLUMNS },
    orderDirection: { type: 'string', enum: ['asc', 'desc'] },
    page: { type: 'integer', minimum: 0, maximum: MAX_PAGE },
    // Values above api.maxPerPage are capped, not refused; the bound here only keeps the number sane.
    perPage: { type: 'integer', minimum: 1, maximum: 1_000_000 },
  },
} as const;
const KNOWN_PARAMS: ReadonlySet<string> = new Set(Object.keys(listQuerySchema.properties));

const str = { type: 'string' } as const;
const taskSchema = {
  type: 'object',
  properties: {
    id: str,
    status: { type: 'string', enum: TASK_STATUSES },
    toolName: str,
    toolCallId: str,
    agentId: str,
    runId: str,
    threadId: str,
    resourceId: str,
    createdAt: str,
    startedAt: str,
    suspendedAt: str,
    completedAt: str,
    retryCount: { type: 'number' },
    maxRetries: { type: 'number' },
    timeoutMs: { type: 'number' },
    error: { type: 'object', properties: { message: str, stack: str }, required: ['message'] },
    args: {},
    result: {},
    suspendPayload: {},
    redacted: { type: 'array', items: str },
    truncated: { type: 'array', items: str },
    traceId: str,
    spanId: str,
  },
  required: ['id', 'status', 'toolName', 'toolCallId', 'agentId', 'runId', 'redacted', 'truncated'],
} as const;
const listSchema = {
  type: 'object',
  properties: {
    tasks: { type: 'array', items: taskSchema },
    total: { type: 'integer' },
    page: { type: 'integer' },
    perPage: { type: 'integer' },
    hasMore: { type: 'boolean' },
  },
  required: ['tasks', 'total', 'page', 'perPage', 'hasMore'],
} as const;
const errorResponses = { 400: errorSchema, 401: errorSchema, 404: errorSchema, 429: errorSchema, 502: errorSchema, 504: errorSchema };

export interface ShownTask {
  [key: string]: unknown;
  id: string;
  runId: string;
  status: TaskStatus;
  redacted: string[];
  truncated: string[];
}

interface ShownPage {
  tasks: ShownTask[];
  total: number;
}

function badRequest(message: string): Error {
  return Object.assign(new Error(message), { statusCode: 400 });
}

/** `querystring/status must be one of: …`: the field by name (not its JSON pointer) and the reason. */
function formatValidation(errors: FastifySchemaValidationError[], dataVar: string): Error {
  const e = errors[0];
  if (!e) return badRequest(`${dataVar} is invalid`);
  const field = (e.instancePath.split('/')[1] ?? '') || String((e.params as { missingProperty?: string }).missingProperty ?? '');
  const allowed = (e.params as { allowedValues?: unknown[] }).allowedValues;
  const reason = allowed ? `must be one of: ${allowed.join(', ')}` : e.keyword === 'pattern' ? 'contains characters that are not allowed' : e.message;
  return badRequest(`${dataVar}${field ? `/${field}` : ''} ${reason}`);
}

/**
 * The order of a merged page: by `col` in `dir`, tasks without a value last whatever the direction (a task not yet
 * completed has no completedAt), then by id so equal times have one order.
 */
export function byColumn(col: DateColumn, dir: 'asc' | 'desc'): (a: TaskRecord, b: TaskRecord) => number {
  const sign = dir === 'asc' ? 1 : -1;
  return (a, b) => {
    const x = a[col];
    const y = b[col];
    if (x === undefined || y === undefined) return x === y ? (a.id < b.id ? -1 : a.id > b.id ? 1 : 0) : x === undefined ? 1 : -1;
    return sign * (x - y) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
  };
}

function iso(ms: number | undefined): string | undefined {
  // Date's range is ±8.64e15 ms; beyond it toISOString throws.
  return ms !== undefined && Number.isFinite(ms) && Math.abs(ms) <= 8.64e15 ? new Date(ms).toISOString() : undefined;
}

/** Run a lookup under a deadline, whether or not the source honours the signal (in-process getTask does not). */
function withDeadline<T>(timeoutMs: number, run: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const signal = AbortSignal.timeout(timeoutMs);
  return new Promise<T>((resolve, reject) => {
    const expired = () => reject(new SourceError(`Mastra did not answer within ${timeoutMs} ms`, 'timeout'));
    signal.addEventListener('abort', expired, { once: true });
    run(signal)
      .then(resolve, reject)
      .finally(() => signal.removeEventListener('abort', expired));
  });
}

const UPSTREAM: Record<SourceError['kind'], { status: 502 | 504; error: string; message: (ms: number) => string }> = {
  timeout: { status: 504, error: 'Gateway timeout', message: (ms) => `Mastra did not answer within ${ms} ms` },
  unavailable: { status: 502, error: 'Bad gateway', message: () => 'Mastra is unavailable' },
  unauthorized: { status: 502, error: 'Bad gateway', message: () => "Mastra rejected the bridge's credentials" },
  bad_response: { status: 502, error: 'Bad gateway', message: () => 'Mastra answered with something the bridge could not read' },
};

export const tasksApi: FastifyPluginAsync<TasksApiOptions> = async (app, opts) => {
  const { source, config, metrics, spans } = opts;
  // The cache holds answers already redacted (payloads are dropped before they are kept) and without span ids (added
  // per request: they change when a task ends).
  const cache = new LookupCache<ShownTask | null | ShownPage>(config.cache.ttlMs, config.cache.maxEntries, Date.now, config.cache.maxBytes);
  // At most maxUpstreamConcurrency lookups on Mastra at once, whatever the clients vary (filters defeat the cache);
  // the others wait for a slot within their deadline (504 past it).
  let inFlight = 0;
  const waiting: (() => void)[] = [];
  const slot = (signal: AbortSignal): Promise<void> => {
    if (inFlight < config.maxUpstreamConcurrency) {
      inFlight++;
      return Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => {
      const go = (): void => {
        signal.removeEventListener('abort', abort);
        inFlight++;
        resolve();
      };
      const abort = (): void => {
        const i = waiting.indexOf(go);
        if (i >= 0) waiting.splice(i, 1);
        reject(new SourceError(`Mastra did not answer within ${config.upstreamTimeoutMs} ms`, 'timeout'));
      };
      signal.addEventListener('abort', abort, { once: true });
      waiting.push(go);
    });
  };
  const release = (): void => {
    inFlight--;
    waiting.shift()?.();
  };
  const upstreamFailureLog = new LogThrottle();

  if (config.rateLimit.max > 0) {
    await app.register(rateLimit, {
      max: config.rateLimit.max,
      timeWindow: config.rateLimit.timeWindowMs,
      onExceeded: () => metrics.apiRateLimitedRequest(),
      errorResponseBuilder: (_request, context) =>
        Object.assign(new Error(`at most ${context.max} requests per ${context.after} per client; retry after the Retry-After header`), {
          statusCode: context.statusCode,
        }),
    });
  }
  app.addHook('onResponse', (request, reply, done) => {
    metrics.apiRequest(request.routeOptions.url ?? '', reply.statusCode);
    done();
  });

  function lookup<T extends ShownTask | null | ShownPage>(key: string, load: (signal: AbortSignal) => Promise<T>): Promise<T> {
    const { value, hit } = cache.get(key, () =>
      withDeadline(config.upstreamTimeoutMs, async (signal) => {
        await slot(signal);
        try {
          return await load(signal);
        } finally {
          release();
        }
      }),
    );
    metrics.apiCacheLookup(hit ? 'hit' : 'miss');
    return value as Promise<T>;
  }

  /** Answers an upstream failure (502/504, a fixed message: no upstream detail, no stack); rethrows anything else. */
  function upstreamFailed(request: FastifyRequest, reply: FastifyReply, error: unknown): FastifyReply {
    if (!(error instanceof SourceError)) throw error;
    const u = UPSTREAM[error.kind];
    // An outage fails every request: log the first few, then one in a hundred.
    if (upstreamFailureLog.take()) {
      request.log.warn({ kind: error.kind, detail: error.message, failures: upstreamFailureLog.count }, 'task API lookup on Mastra failed');
    }
    return reply.code(u.status).send({ error: u.error, message: u.message(config.upstreamTimeoutMs) });
  }

  /** The record as the API shows it, minus span ids. */
  function shown(record: TaskRecord): ShownTask {
    const r = redactTask(record, config.redaction);
    const out: ShownTask = {
      id: record.id,
      status: finalStatusOf(record) ?? record.status,
      toolName: record.toolName,
      toolCallId: record.toolCallId,
      agentId: record.agentId,
      runId: record.runId,
      // Filled last so they read last.
      redacted: [],
      truncated: [],
    };
    if (record.threadId !== undefined) out.threadId = record.threadId;
    if (record.resourceId !== undefined) out.resourceId = record.resourceId;
    for (const f of DATE_COLUMNS) {
      const d = iso(record[f]);
      if (d !== undefined) out[f] = d;
    }
    for (const f of ['retryCount', 'maxRetries', 'timeoutMs'] as const) if (record[f] !== undefined) out[f] = record[f];
    if (r.error) out.error = r.error;
    for (const f of ['args', 'result', 'suspendPayload'] as const) if (r[f] !== undefined) out[f] = r[f];
    out.redacted = r.redacted;
    out.truncated = r.truncated;
    return out;
  }

  function withSpan(task: ShownTask): ShownTask {
    const ids = spans?.lookup({ id: task.id, runId: task.runId });
    if (!ids) return task;
    return ids.traceId ? { ...task, traceId: ids.traceId, spanId: ids.spanId } : { ...task, spanId: ids.spanId };
  }

  app.get<{ Params: { id: string } }>(
    '/api/tasks/:id',
    {
      schema: { params: { type: 'object', properties: { id: taskId }, required: ['id'] }, response: { 200: taskSchema, ...errorResponses } },
      schemaErrorFormatter: formatValidation,
    },
    async (request, reply) => {
      const { id } = request.params;
      let task: ShownTask | null;
      try {
        task = await lookup(`task\u0000${id}`, async (signal) => {
          const record = await source.getTask(id, signal);
          return record && shown(record);
        });
      } catch (error) {
        return upstreamFailed(request, reply, error);
      }
      if (!task) return reply.code(404).send({ error: 'Not found', message: `Mastra has no background task ${id}` });
      return withSpan(task);
    },
  );

  app.get<{ Querystring: ListQuery }>(
    '/api/tasks',
    {
      schema: { querystring: listQuerySchema, response: { 200: listSchema, ...errorResponses } },
      schemaErrorFormatter: formatValidation,
      // Fastify's Ajv silently drops unknown properties; a misspelt filter must not silently match everything.
      preValidation: (request, _reply, done) => {
        const query = request.query as Record<string, unknown>;
        for (const key of Object.keys(query)) {
          if (!KNOWN_PARAMS.has(key)) return done(badRequest(`querystring/${key.slice(0, 64)} is not a parameter of this route`));
        }
        if (typeof query.status === 'string' && query.status.includes(',')) query.status = query.status.split(',');
        done();
      },
    },
    async (request, reply) => {
      const q = request.query;
      const page = q.page ?? 0;
      const perPage = Math.min(q.perPage ?? DEFAULT_PER_PAGE, config.maxPerPage);
      const statuses = q.status ? [...new Set(q.status)].sort() : [];
      // Ajv's date-time format admits what Date cannot read (a leap second `23:59:60Z`, an offset `+01`): Mastra would
      // answer 500 (remote) or nothing (in process). Refuse them here.
      for (const f of ['fromDate', 'toDate'] as const) {
        if (q[f] !== undefined && Number.isNaN(Date.parse(q[f]))) throw badRequest(`querystring/${f} is not a date-time this server can read (use e.g. 2025-01-31T12:00:00Z)`);
      }
      if (q.fromDate && q.toDate && Date.parse(q.toDate) < Date.parse(q.fromDate)) throw badRequest('querystring/toDate must not be before fromDate');
      if (source.kind === 'remote' && statuses.length > 1 && page > 0) {
        // A Mastra server filters on one status per request; the bridge merges page 0 of each, not deeper pages.
        throw badRequest('querystring/status: a remote Mastra filters on one status at a time; with several statuses only page 0 is available');
      }
      const query: TaskQuery = { orderBy: q.orderBy ?? 'createdAt', orderDirection: q.orderDirection ?? 'desc', page, perPage };
      if (statuses.length > 0) query.status = statuses.length === 1 ? statuses[0] : statuses;
      for (const f of FILTERS) if (q[f] !== undefined) query[f] = q[f];
      if (q.fromDate) query.fromDate = new Date(q.fromDate);
      if (q.toDate) query.toDate = new Date(q.toDate);
      if (q.dateFilterBy) query.dateFilterBy = q.dateFilterBy;

      let result: ShownPage;
      try {
        result = await lookup(`list\u0000${JSON.stringify(query)}`, async (signal) => {
          const found: TaskPage = await source.listTasks(query, signal);
          let tasks = found.tasks;
          if (source.kind === 'remote' && statuses.length > 1) {
            // Several statuses from a remote Mastra arrive as one page per status: merge in the asked order (also when
            // the union fits one page: it came grouped by status), keep a page.
            tasks = [...tasks].sort(byColumn(query.orderBy!, query.orderDirection ?? 'desc')).slice(0, perPage);
          }
          if (found.invalid > 0) request.log.warn({ invalid: found.invalid }, 'Mastra returned task records the bridge could not read; left out');
          return { tasks: tasks.map(shown), total: found.total };
        });
      } catch (error) {
        return upstreamFailed(request, reply, error);
      }
      return { tasks: result.tasks.map(withSpan), total: result.total, page, perPage, hasMore: (page + 1) * perPage < result.total };
    },
  );
};
