// Source over a remote Mastra server: the unfiltered SSE stream `{prefix}/background-tasks/stream` and the REST
// lookups `{prefix}/background-tasks[/:id]` and `{prefix}/observability/traces…`.
//
// Owns: HTTP, SSE framing (eventsource-parser, not a hand-written parser), reconnects with capped exponential
// backoff and equal jitter (half the delay fixed, half random), and classifying why a connection ended into a bounded reason. Must not: parse event JSON
// (events.ts does) or keep task state.
// Mastra's stream sends no ids, no retry hints and no heartbeats: silence is normal, and an idle body cut by a
// timeout is an ordinary reconnect.
//
// The upstream is not trusted to be well behaved (a proxy, a login page, a wrong prefix, a hostile server):
// - redirects are never followed (one could lead to another origin, with our token, or serve its JSON as ours);
// - a REST answer is read as a stream and abandoned past `maxResponseBytes` of decoded bytes (fetch inflates gzip
//   lazily, so a gzip bomb costs at most the cap), and refused at once when its content-length says it is larger;
// - a 200 on the stream that is not `text/event-stream` is a failed attempt, not a connection (readiness unchanged);
// - the backoff resets only after a connection proved healthy (it delivered a frame, or stayed open `healthyAfterMs`),
//   so a server that accepts and hangs up at once is retried with growing delays, not in a storm.

import { createParser } from 'eventsource-parser';
import type { Logger } from 'pino';
import { type TaskRecord, parseTaskRecord } from '../events.js';
import { type RefusedAnswer, SourceError, type SourceSink, type SpanRef, type TaskPage, type TaskQuery, type TaskSource } from './types.js';
import { sleepUnlessAborted } from '../sleep.js';
import { MAX_TRACES_PER_RUN, RunSpanFinder, type StoredSpan } from './mastra-traces.js';
import { LogThrottle } from '../log-throttle.js';

export interface RemoteSourceOptions {
  baseUrl: string;
  apiPrefix?: string;
  token?: string | undefined;
  maxFrameBytes?: number;
  logger?: Logger;
  /** Backoff between reconnects: min(maxMs, initialMs * 2^attempt) with equal jitter (between half of it and all of it). */
  backoff?: { initialMs: number; maxMs: number };
  /** Timeout of each REST lookup, and of waiting for the stream's response headers. */
  requestTimeoutMs?: number;
  /** Decoded bytes a REST answer may have; past it the lookup fails (`too_large`). */
  maxResponseBytes?: number;
  /** A connection open this long (or one that delivered a frame) counts as healthy: the backoff starts over. */
  healthyAfterMs?: number;
  fetch?: typeof fetch;
  random?: () => number;
  now?: () => number;
}

const DEFAULT_BACKOFF = { initialMs: 250, maxMs: 30_000 };
export const DEFAULT_MAX_RESPONSE_BYTES = 8 * 1024 * 1024;

export class RemoteSource implements TaskSource {
  readonly kind = 'remote' as const;
  readonly description: string;
  private readonly base: string;
  private readonly headers: Record<string, string>;
  private readonly fetch: typeof fetch;
  private readonly backoff: { initialMs: number; maxMs: number };
  private readonly timeoutMs: number;
  private readonly maxFrameBytes: number;
  private readonly random: () => number;
  private readonly now: () => number;
  private readonly maxResponseBytes: number;
  private readonly healthyAfterMs: number;
  private authWarned = false;
  private readonly refusedLog = new LogThrottle();

  constructor(private readonly options: RemoteSourceOptions) {
    const url = new URL(options.baseUrl);
    const prefix = (options.apiPrefix ?? '/api').replace(/\/+$/, '');
    this.base = `${url.origin}${url.pathname.replace(/\/+$/, '')}${prefix}`;
    // Never put credentials in a description: it goes to logs and the landing page.
    this.description = `Mastra server ${url.origin}${url.pathname.replace(/\/+$/, '')}${prefix}`;
    this.headers = options.token ? { authorization: `Bearer ${options.token}` } : {};
    this.fetch = options.fetch ?? globalThis.fetch;
    this.backoff = options.backoff ?? DEFAULT_BACKOFF;
    this.timeoutMs = options.requestTimeoutMs ?? 10_000;
    this.maxFrameBytes = options.maxFrameBytes ?? 1024 * 1024;
    this.random = options.random ?? Math.random;
    this.now = options.now ?? Date.now;
    this.maxResponseBytes = options.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES;
    this.healthyAfterMs = options.healthyAfterMs ?? 10_000;
  }

  async run(sink: SourceSink, signal: AbortSignal): Promise<void> {
    let attempt = 0;
    while (!signal.aborted) {
      const { reason, error, wasConnected, healthy } = await this.streamOnce(sink, signal);
      if (signal.aborted) {
        if (wasConnected) sink.disconnected('stopped', undefined, true);
        return;
      }
      sink.disconnected(reason, error, wasConnected);
      // Not merely connected: a server that answers and hangs up at once must not reset the backoff each time.
      if (healthy) attempt = 0;
      // Bad credentials will not fix themselves quickly: retry at the cap, never in a tight loop.
      const delay = reason === 'unauthorized' ? this.backoff.maxMs : this.delayFor(attempt++);
      this.options.logger?.debug({ reason, healthy: healthy === true, delayMs: delay }, 'stream attempt ended; reconnecting after the backoff');
      await sleepUnlessAborted(delay, signal);
    }
  }

  private delayFor(attempt: number): number {
    const cap = Math.min(this.backoff.maxMs, this.backoff.initialMs * 2 ** Math.min(attempt, 30));
    return Math.round(cap / 2 + (this.random() * cap) / 2);
  }

  private async streamOnce(
    sink: SourceSink,
    signal: AbortSignal,
  ): Promise<{ reason: string; error?: unknown; wasConnected: boolean; healthy?: boolean }> {
    let wasConnected = false;
    let framed = false;
    let connectedAt = 0;
    const healthy = () => framed || this.now() - connectedAt >= this.healthyAfterMs;
    const headersTimeout = new AbortController();
    const timer = setTimeout(() => headersTimeout.abort(new Error('timed out waiting for response headers')), this.timeoutMs);
    try {
      const response = await this.fetch(`${this.base}/background-tasks/stream`, {
        headers: { accept: 'text/event-stream', ...this.headers },
        signal: AbortSignal.any([signal, headersTimeout.signal]),
        redirect: 'manual',
      });
      clearTimeout(timer);
      if (response.status >= 300 && response.status < 400) {
        await response.body?.cancel().catch(() => undefined);
        return { reason: 'redirect', error: new Error(`HTTP ${response.status} redirect to ${redirectTarget(response)} (not followed)`), wasConnected };
      }
      if (response.status === 401 || response.status === 403) {
        await response.body?.cancel().catch(() => undefined);
        if (!this.authWarned) {
          this.authWarned = true;
          this.options.logger?.error(
            { status: response.status, url: `${this.description}/background-tasks/stream` },
            'Mastra rejected the bridge credentials: set MASTRA_TOKEN to a valid token (sent as Authorization: Bearer); retrying at the backoff cap',
          );
        }
        return { reason: 'unauthorized', wasConnected };
      }
      if (!response.ok || !response.body) {
        await response.body?.cancel().catch(() => undefined);
        return { reason: response.status >= 500 ? 'http_5xx' : 'http_4xx', error: new Error(`HTTP ${response.status}`), wasConnected };
      }
      // A login page or an SPA fallback (a wrong MASTRA_API_PREFIX) answers 200 text/html: not a connection.
      const type = response.headers.get('content-type') ?? '';
      if (!/^\s*text\/event-stream\s*(;|$)/i.test(type)) {
        await response.body.cancel().catch(() => undefined);
        return { reason: 'not_event_stream', error: new Error(`HTTP ${response.status} with content-type ${JSON.stringify(type.slice(0, 100))}, not text/event-stream`), wasConnected };
      }
      this.authWarned = false;
      wasConnected = true;
      connectedAt = this.now();
      sink.connected();
      const framer = new SseFramer(
        this.maxFrameBytes,
        (data) => {
          framed = true;
          sink.frame(data);
        },
        () => sink.dropped('oversized', `SSE frame larger than ${this.maxFrameBytes} bytes`),
      );
      const decoder = new TextDecoder();
      for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
        framer.feed(decoder.decode(chunk, { stream: true }));
      }
      return { reason: 'eof', wasConnected, healthy: healthy() };
    } catch (error) {
      clearTimeout(timer);
      return { reason: classify(error, headersTimeout.signal.aborted), error, wasConnected, healthy: wasConnected && healthy() };
    }
  }

  /** A refused answer: logged sparingly here (the first few, then one in a hundred), counted by the caller. */
  private refuse(message: string, refused: RefusedAnswer, path: string): SourceError {
    if (this.refusedLog.take()) {
      this.options.logger?.warn({ refused, path: path.split('?')[0], refusedSoFar: this.refusedLog.count }, `refused an answer from Mastra: ${message}`);
    }
    return new SourceError(message, 'bad_response', { refused });
  }

  /**
   * The body as JSON, reading at most `maxResponseBytes` decoded bytes: the content-length (when given) is checked
   * first, then the decoded stream is counted as it arrives and cancelled past the cap, so neither a huge body nor a
   * gzip bomb is ever held whole.
   */
  private async readJson(response: Response, path: string): Promise<unknown> {
    const max = this.maxResponseBytes;
    const declared = Number(response.headers.get('content-length') ?? NaN);
    if (Number.isFinite(declared) && declared > max) {
      await response.body?.cancel().catch(() => undefined);
      throw this.refuse(`${path.split('?')[0]} answered ${declared} bytes (content-length), over source.maxResponseBytes ${max}`, 'too_large', path);
    }
    if (!response.body) return JSON.parse('');
    const reader = response.body.getReader();
    const chunks: Uint8Array[] = [];
    let size = 0;
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      size += value.byteLength;
      if (size > max) {
        await reader.cancel().catch(() => undefined);
        throw this.refuse(`${path.split('?')[0]} answered more than source.maxResponseBytes (${max}) decoded bytes`, 'too_large', path);
      }
      chunks.push(value);
    }
    const bytes = new Uint8Array(size);
    let at = 0;
    for (const c of chunks) {
      bytes.set(c, at);
      at += c.byteLength;
    }
    return JSON.parse(new TextDecoder().decode(bytes));
  }

  private async request(path: string, signal?: AbortSignal): Promise<{ status: number; body: unknown }> {
    const signals = [AbortSignal.timeout(this.timeoutMs)];
    if (signal) signals.push(signal);
    let response: Response;
    try {
      response = await this.fetch(`${this.base}${path}`, {
        headers: { accept: 'application/json', ...this.headers },
        signal: AbortSignal.any(signals),
        redirect: 'manual',
      });
    } catch (error) {
      const timeout = (error as Error).name === 'TimeoutError' || (error as Error).name === 'AbortError';
      throw new SourceError(timeout ? `Mastra did not answer ${path} in time` : `Mastra unreachable: ${(error as Error).message}`, timeout ? 'timeout' : 'unavailable', { cause: error });
    }
    if (response.status === 401 || response.status === 403) {
      await response.body?.cancel().catch(() => undefined);
      throw new SourceError(`Mastra rejected the credentials (HTTP ${response.status})`, 'unauthorized');
    }
    if (response.status >= 300 && response.status < 400) {
      await response.body?.cancel().catch(() => undefined);
      throw this.refuse(`${path.split('?')[0]} answered HTTP ${response.status}, a redirect to ${redirectTarget(response)} (not followed)`, 'redirect', path);
    }
    let body: unknown;
    try {
      body = await this.readJson(response, path);
    } catch (error) {
      if (error instanceof SourceError) throw error;
      // The deadline covers the body too: headers in time, then a stalled body, is a timeout, not a bad answer.
      if ((error as Error).name === 'TimeoutError' || (error as Error).name === 'AbortError') {
        throw new SourceError(`Mastra did not finish answering ${path} in time`, 'timeout', { cause: error });
      }
      if (response.status === 404) return { status: 404, body: undefined };
      throw new SourceError(`Mastra answered ${path} with HTTP ${response.status} and no JSON`, response.status >= 500 ? 'unavailable' : 'bad_response', { cause: error });
    }
    if (response.status >= 500) throw new SourceError(`Mastra answered ${path} with HTTP ${response.status}`, 'unavailable');
    return { status: response.status, body };
  }

  async getTask(taskId: string, signal?: AbortSignal): Promise<TaskRecord | null> {
    const { status, body } = await this.request(`/background-tasks/${encodeURIComponent(taskId)}`, signal);
    if (status === 404) return null;
    if (status !== 200) throw new SourceError(`getTask: HTTP ${status}`, 'bad_response');
    const parsed = parseTaskRecord(body);
    if (!parsed.ok) throw new SourceError(`getTask returned an invalid record: ${parsed.detail}`, 'bad_response');
    // Another task's record would put its fields (and its status) on this task's span and API answer.
    if (parsed.value.id !== taskId) throw this.refuse('getTask answered a record for another task id', 'wrong_id', `/background-tasks/${taskId}`);
    return parsed.value;
  }

  async listTasks(query: TaskQuery, signal?: AbortSignal): Promise<TaskPage> {
    // The server filters on one status per request; several statuses are several requests, merged.
    const statuses = Array.isArray(query.status) ? query.status : [query.status];
    if (statuses.length > 1 && (query.page ?? 0) > 0) {
      throw new SourceError('a remote Mastra filters on one status at a time; page through one status per query', 'bad_response');
    }
    const out: TaskPage = { tasks: [], total: 0, invalid: 0 };
    for (const status of statuses) {
      const params = new URLSearchParams();
      for (const [k, v] of Object.entries({ ...query, status })) {
        if (v === undefined) continue;
        params.set(k, v instanceof Date ? v.toISOString() : String(v));
      }
      const { status: code, body } = await this.request(`/background-tasks?${params}`, signal);
      if (code !== 200 || typeof body !== 'object' || body === null || !Array.isArray((body as { tasks?: unknown }).tasks)) {
        throw new SourceError(`listTasks: unexpected answer (HTTP ${code})`, 'bad_response');
      }
      const { tasks, total } = body as { tasks: unknown[]; total?: unknown };
      for (const t of tasks) {
        const parsed = parseTaskRecord(t);
        if (parsed.ok) out.tasks.push(parsed.value);
        else out.invalid++;
      }
      out.total += typeof total === 'number' ? total : tasks.length;
    }
    return out;
  }

  /** Stored-trace reads over the observability routes, shared per run (see RunSpanFinder). */
  private readonly spanFinder = new RunSpanFinder({
    runTraceIds: (runId, signal) => this.runTraceIds(runId, signal),
    traceSpans: async (traceId, signal) => {
      const trace = await this.request(`/observability/traces/${encodeURIComponent(traceId)}`, signal).catch(() => undefined);
      const spans = (trace?.body as { spans?: unknown } | undefined)?.spans;
      return Array.isArray(spans) ? (spans as StoredSpan[]) : undefined;
    },
    recentRoots: (from, to, limit, signal) => this.recentRoots(from, to, limit, signal),
  });

  findToolCallSpan(runId: string, toolCallId: string, signal?: AbortSignal, startedAt?: number): Promise<SpanRef | null | undefined> {
    return this.spanFinder.find(runId, toolCallId, signal, startedAt);
  }

  /**
   * Root spans started in [from, to], newest first (Mastra's default order), from the light listing: no input or
   * output, the run id in `metadata.runId`. undefined when the server has no such route or filter (older Mastra, no
   * observability storage): the per-run list is used. Throws on a failed request.
   */
  private async recentRoots(from: Date, to: Date, limit: number, signal?: AbortSignal): Promise<StoredSpan[] | undefined> {
    const query = new URLSearchParams({
      startedAt: JSON.stringify({ start: from.toISOString(), end: to.toISOString() }),
      page: '0',
      perPage: String(limit),
    });
    const { status, body } = await this.request(`/observability/traces/light?${query}`, signal);
    // No such route or filter here: asked by runId from now on. Any other error is this request's alone.
    if (status === 400 || status === 404 || status === 405 || status === 501) return undefined;
    if (status >= 400) throw new SourceError(`listing recent traces: HTTP ${status}`, 'bad_response');
    const spans = (body as { spans?: unknown } | undefined)?.spans;
    if (!Array.isArray(spans)) return undefined;
    return spans as StoredSpan[];
  }

  /** The run's trace ids; [] when not stored (yet); undefined when the server stores no traces at all. */
  private async runTraceIds(runId: string, signal?: AbortSignal): Promise<string[] | undefined> {
    const list = await this.request(`/observability/traces?${new URLSearchParams({ runId, page: '0', perPage: String(MAX_TRACES_PER_RUN) })}`, signal).catch((e: unknown) => {
      if (e instanceof SourceError && e.kind === 'unauthorized') throw e;
      return { status: 0, body: undefined };
    });
    // No observability storage on the server: the route answers an error. Auto placement falls back.
    if (list.status >= 400 || list.status === 0) {
      return list.status >= 400 ? undefined : [];
    }
    const roots = (list.body as { spans?: { traceId?: unknown }[] } | undefined)?.spans ?? [];
    return [...new Set(roots.map((r) => r.traceId).filter((t): t is string => typeof t === 'string'))];
  }
}


const LF = 10;
const CR = 13;

/**
 * SSE text (in chunks, split anywhere) → the `data` of each event, through eventsource-parser (CRLF, CR, multi-line
 * data, comments, BOM). `[DONE]` is not an event. An event over the limit (in UTF-16 units here; parseFrame checks the
 * exact UTF-8 bytes of the rest) is reported once through `oversized` and
 * skipped whole, up to the blank line that ends it, without buffering it: its later lines must not parse as events of
 * their own (a multi-line event's remaining `data:` lines would otherwise each count as a second, invalid frame).
 */
export class SseFramer {
  private readonly parser: ReturnType<typeof createParser>;
  private discarding = false;
  /** While discarding: the text so far ended a line (the next terminator ends the event). */
  private atLineStart = false;
  /** While discarding: the text so far ended in CR (a leading LF completes that CRLF). */
  private afterCr = false;
  private exceeded = false;
  /** The last character fed so far (a CR's meaning depends on the one before it). */
  private lastChar = 0;

  constructor(maxFrameBytes: number, onData: (data: string) => void, private readonly oversized: () => void) {
    this.parser = createParser({
      onEvent: (event) => {
        // An event that arrived whole within one chunk never fills the parser's buffer: same verdict, same count.
        if (event.data.length > maxFrameBytes) oversized();
        else if (event.data !== '[DONE]') onData(event.data);
      },
      onError: (error) => {
        if ((error as { type?: string }).type === 'max-buffer-size-exceeded') this.exceeded = true;
      },
      // Headroom for the `data: ` prefixes of a multi-line frame; parseFrame enforces the exact limit.
      maxBufferSize: maxFrameBytes + 4096,
    });
  }

  feed(text: string): void {
    if (text === '') return; // a chunk holding only part of a multi-byte character decodes to nothing yet
    if (this.discarding) {
      const next = this.skip(text);
      if (text !== '') this.lastChar = text.charCodeAt(text.length - 1);
      if (next < 0) return;
      this.discarding = false;
      this.parser.reset({ consume: false });
      text = text.slice(next);
      if (text === '') return;
    }
    this.parser.feed(text);
    const before = text.length >= 2 ? text.charCodeAt(text.length - 2) : this.lastChar;
    this.lastChar = text.charCodeAt(text.length - 1);
    if (this.exceeded) {
      // The parser has dispatched every event that ended in this text and dropped the one over the limit (a
      // trailing CR it holds back, waiting to see whether a LF follows).
      this.exceeded = false;
      this.oversized();
      const last = this.lastChar;
      if (last === CR && (before === LF || before === CR)) {
        this.parser.reset({ consume: false }); // that CR is the blank line: the event is over
        return;
      }
      this.discarding = true;
      this.atLineStart = last === LF || last === CR;
      this.afterCr = last === CR;
    }
  }

  /** Index just past the blank line that ends the discarded event, or -1 if `text` does not reach it. */
  private skip(text: string): number {
    let i = 0;
    const n = text.length;
    while (i < n) {
      let c = text.charCodeAt(i);
      if (this.afterCr) {
        this.afterCr = false;
        if (c === LF) {
          i++;
          continue;
        }
      }
      if (this.atLineStart && (c === LF || c === CR)) {
        i++;
        if (c === CR) {
          if (i === n) this.afterCr = true; // a LF may follow in the next chunk: the parser takes it as a blank line
          else if (text.charCodeAt(i) === LF) i++;
        }
        return i;
      }
      // Skip to the end of this line.
      let j = i;
      while (j < n && (c = text.charCodeAt(j)) !== LF && c !== CR) j++;
      if (j === n) {
        this.atLineStart = false;
        return -1;
      }
      this.atLineStart = true;
      this.afterCr = c === CR;
      i = j + 1;
    }
    return -1;
  }
}

/** Where a redirect pointed, origin only (a path or query may carry a token). */
function redirectTarget(response: Response): string {
  const location = response.headers.get('location');
  if (!location) return '(no location)';
  try {
    return new URL(location, response.url || 'http://invalid/').origin;
  } catch {
    return '(invalid location)';
  }
}

/** A bounded reason token for why a stream attempt ended (used as a metric label). */
function classify(error: unknown, headersTimedOut: boolean): string {
  if (headersTimedOut) return 'timeout';
  const e = error as { name?: string; code?: string; cause?: { code?: string; name?: string } };
  const code = e?.cause?.code ?? e?.code ?? '';
  if (code === 'ECONNREFUSED') return 'refused';
  if (code === 'ECONNRESET' || code === 'UND_ERR_SOCKET' || code === 'EPIPE') return 'reset';
  if (code === 'UND_ERR_BODY_TIMEOUT' || code === 'UND_ERR_HEADERS_TIMEOUT' || e?.name === 'TimeoutError') return 'timeout';
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return 'dns';
  if (e?.name === 'AbortError') return 'aborted';
  return 'error';
}
