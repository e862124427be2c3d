// Test support: a real OTLP/HTTP trace receiver on 127.0.0.1 (random free port).
// Decodes ExportTraceServiceRequest with protobufjs using the official opentelemetry-proto v1.4.0 .proto files
// shipped in @elastic/mockotlpserver. Accepts http/protobuf and http/json, optionally gzip-compressed, and answers
// like a collector: 200 with an empty ExportTraceServiceResponse in the request's encoding.
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { gunzipSync, inflateSync } from 'node:zlib';
import protobuf from 'protobufjs';
import { waitFor } from './poll.js';

export interface ReceivedSpan {
  /** 32 lowercase hex characters. */
  traceId: string;
  /** 16 lowercase hex characters. */
  spanId: string;
  /** '' when the span is a root span. */
  parentSpanId: string;
  name: string;
  /** OTLP SpanKind enum number (0 unspecified, 1 internal, 2 server, 3 client, 4 producer, 5 consumer). */
  kind: number;
  startTimeUnixNano: bigint;
  endTimeUnixNano: bigint;
  /** AnyValue flattened: string | number | boolean | unknown[] | Uint8Array | Record (kvlist); int64 beyond 2^53 stays bigint. */
  attributes: Record<string, unknown>;
  events: { name: string; timeUnixNano: bigint; attributes: Record<string, unknown> }[];
  links: { traceId: string; spanId: string; attributes: Record<string, unknown> }[];
  /** 0 unset, 1 ok, 2 error. */
  status: { code: number; message: string };
  resource: Record<string, unknown>;
  scope: { name: string; version: string };
}

export interface ReceivedRequest {
  /** Media type without parameters, e.g. 'application/x-protobuf' or 'application/json'. */
  contentType: string;
  /** Content-Encoding header value, '' when absent. */
  encoding: string;
  /** Spans in the request ('0' when the body could not be decoded). */
  spanCount: number;
  /** HTTP status the receiver answered with. */
  status: number;
  path: string;
  headers: IncomingHttpHeaders;
  /** Decode error text when the request was rejected with 400. */
  error?: string;
}

export interface FailOptions {
  /** Send a `Retry-After` header (seconds). `0` makes the OTel JS exporters retry immediately. */
  retryAfterSec?: number;
}

export interface OtlpReceiver {
  /** Base URL, e.g. http://127.0.0.1:PORT. */
  url: string;
  /** `${url}/v1/traces` */
  tracesUrl: string;
  /** Every span accepted so far (copies, in arrival order). */
  spans(): ReceivedSpan[];
  /** Every request received so far, including failed/rejected ones. */
  requests(): ReceivedRequest[];
  /** Resolves with all spans once at least `n` have arrived (default timeout 10 s). */
  waitForSpans(n: number, timeoutMs?: number): Promise<ReceivedSpan[]>;
  /** Answer the next `count` POST /v1/traces requests with `status` (default 503) without accepting their spans. */
  failNext(count: number, status?: number, opts?: FailOptions): void;
  /** Forget received spans/requests and pending failures. */
  reset(): void;
  close(): Promise<void>;
}

// ---------------------------------------------------------------------------------------------------------------
// Proto loading (official files, resolved relative to the mockotlpserver package root).

const require = createRequire(import.meta.url);
const PROTO_ROOT_DIR = dirname(require.resolve('@elastic/mockotlpserver/package.json'));
const TRACE_SERVICE_PROTO = 'opentelemetry/proto/collector/trace/v1/trace_service.proto';

function loadProtoRoot(): protobuf.Root {
  const root = new protobuf.Root();
  // The .proto files import each other by paths relative to the repository root ("opentelemetry/proto/..."),
  // so resolve every import against the package root rather than the importing file's folder.
  root.resolvePath = (_origin: string, target: string): string =>
    target.startsWith('/') ? target : resolve(PROTO_ROOT_DIR, target);
  root.loadSync(join(PROTO_ROOT_DIR, TRACE_SERVICE_PROTO));
  root.resolveAll();
  return root;
}

let cachedTypes: { request: protobuf.Type; response: protobuf.Type } | undefined;
function protoTypes(): { request: protobuf.Type; response: protobuf.Type } {
  if (!cachedTypes) {
    const root = loadProtoRoot();
    cachedTypes = {
      request: root.lookupType('opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest'),
      response: root.lookupType('opentelemetry.proto.collector.trace.v1.ExportTraceServiceResponse'),
    };
  }
  return cachedTypes;
}

// ---------------------------------------------------------------------------------------------------------------
// Decoding.

/** Shape of `ExportTraceServiceRequest` after `toObject({ longs: String, enums: Number, defaults, arrays })`. */
interface PbAnyValue {
  stringValue?: string;
  boolValue?: boolean;
  intValue?: string;
  doubleValue?: number;
  arrayValue?: { values?: PbAnyValue[] };
  kvlistValue?: { values?: PbKeyValue[] };
  bytesValue?: Uint8Array;
}
interface PbKeyValue {
  key: string;
  value?: PbAnyValue;
}
interface PbSpan {
  traceId: Uint8Array;
  spanId: Uint8Array;
  parentSpanId: Uint8Array;
  name: string;
  kind: number;
  startTimeUnixNano: string;
  endTimeUnixNano: string;
  attributes: PbKeyValue[];
  events: { timeUnixNano: string; name: string; attributes: PbKeyValue[] }[];
  links: { traceId: Uint8Array; spanId: Uint8Array; attributes: PbKeyValue[] }[];
  status?: { code: number; message: string };
}
interface PbRequest {
  resourceSpans: {
    resource?: { attributes: PbKeyValue[] };
    scopeSpans: { scope?: { name: string; version: string }; spans: PbSpan[] }[];
  }[];
}

const TO_OBJECT: protobuf.IConversionOptions = { longs: String, enums: Number, defaults: true, arrays: true };

function anyValue(v: PbAnyValue | undefined): unknown {
  if (!v) return undefined;
  if (v.stringValue !== undefined) return v.stringValue;
  if (v.boolValue !== undefined) return v.boolValue;
  if (v.intValue !== undefined) {
    const big = BigInt(v.intValue);
    return big <= BigInt(Number.MAX_SAFE_INTEGER) && big >= BigInt(Number.MIN_SAFE_INTEGER) ? Number(big) : big;
  }
  if (v.doubleValue !== undefined) return v.doubleValue;
  if (v.arrayValue !== undefined) return (v.arrayValue.values ?? []).map(anyValue);
  if (v.kvlistValue !== undefined) return attributes(v.kvlistValue.values ?? []);
  if (v.bytesValue !== undefined) return new Uint8Array(v.bytesValue);
  return undefined;
}

function attributes(kvs: PbKeyValue[] | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const kv of kvs ?? []) out[kv.key] = anyValue(kv.value);
  return out;
}

const hex = (bytes: Uint8Array | undefined): string => (bytes ? Buffer.from(bytes).toString('hex') : '');

function flatten(message: protobuf.Message): ReceivedSpan[] {
  const { request } = protoTypes();
  const req = request.toObject(message, TO_OBJECT) as PbRequest;
  const out: ReceivedSpan[] = [];
  for (const rs of req.resourceSpans) {
    const resource = attributes(rs.resource?.attributes);
    for (const ss of rs.scopeSpans) {
      const scope = { name: ss.scope?.name ?? '', version: ss.scope?.version ?? '' };
      for (const s of ss.spans) {
        out.push({
          traceId: hex(s.traceId),
          spanId: hex(s.spanId),
          parentSpanId: hex(s.parentSpanId),
          name: s.name,
          kind: s.kind,
          startTimeUnixNano: BigInt(s.startTimeUnixNano),
          endTimeUnixNano: BigInt(s.endTimeUnixNano),
          attributes: attributes(s.attributes),
          events: s.events.map((e) => ({
            name: e.name,
            timeUnixNano: BigInt(e.timeUnixNano),
            attributes: attributes(e.attributes),
          })),
          links: s.links.map((l) => ({ traceId: hex(l.traceId), spanId: hex(l.spanId), attributes: attributes(l.attributes) })),
          status: { code: s.status?.code ?? 0, message: s.status?.message ?? '' },
          resource: { ...resource },
          scope: { ...scope },
        });
      }
    }
  }
  return out;
}

/**
 * OTLP/JSON differs from the canonical proto3 JSON mapping: traceId/spanId/parentSpanId (and link ids) are
 * lowercase hex strings, not base64. Everything else (bytesValue base64, int64 as string or number, enums as
 * integers or names, lowerCamelCase keys) is what protobufjs' fromObject understands. Replace the ids with
 * bytes before fromObject, rejecting anything that is not hex of the right length (a collector answers 400).
 */
function hexIdToBytes(value: unknown, field: string, bytes: number, allowEmpty: boolean): Uint8Array {
  if (value === undefined || value === null || value === '') {
    if (allowEmpty) return new Uint8Array(0);
    throw new Error(`${field} is missing`);
  }
  if (typeof value !== 'string' || !/^[0-9a-fA-F]*$/.test(value) || value.length !== bytes * 2) {
    throw new Error(`${field} must be ${bytes * 2} hex characters in OTLP/JSON, got ${JSON.stringify(value)}`);
  }
  return new Uint8Array(Buffer.from(value, 'hex'));
}

type JsonObject = Record<string, unknown>;
const objects = (v: unknown): JsonObject[] =>
  Array.isArray(v) ? v.filter((x): x is JsonObject => typeof x === 'object' && x !== null) : [];

function fixJsonIds(body: unknown): unknown {
  if (typeof body !== 'object' || body === null) throw new Error('OTLP/JSON body must be an object');
  for (const rs of objects((body as JsonObject).resourceSpans)) {
    for (const ss of objects(rs.scopeSpans)) {
      for (const span of objects(ss.spans)) {
        span.traceId = hexIdToBytes(span.traceId, 'traceId', 16, false);
        span.spanId = hexIdToBytes(span.spanId, 'spanId', 8, false);
        span.parentSpanId = hexIdToBytes(span.parentSpanId, 'parentSpanId', 8, true);
        for (const link of objects(span.links)) {
          link.traceId = hexIdToBytes(link.traceId, 'links.traceId', 16, false);
          link.spanId = hexIdToBytes(link.spanId, 'links.spanId', 8, false);
        }
      }
    }
  }
  return body;
}

function decodeBody(contentType: string, body: Buffer): ReceivedSpan[] {
  const { request } = protoTypes();
  if (contentType === 'application/x-protobuf') return flatten(request.decode(body));
  const json: unknown = JSON.parse(body.toString('utf8'));
  // (Type.verify() is not usable here: it rejects the int64-as-string timestamps that OTLP/JSON requires.)
  return flatten(request.fromObject(fixJsonIds(json) as Record<string, unknown>));
}

function emptyResponse(contentType: string): Buffer {
  if (contentType === 'application/json') return Buffer.from('{}');
  const { response } = protoTypes();
  return Buffer.from(response.encode(response.create({})).finish());
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolveBody, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolveBody(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

// ---------------------------------------------------------------------------------------------------------------
// Server.

export async function startOtlpReceiver(): Promise<OtlpReceiver> {
  protoTypes(); // fail fast if the .proto files cannot be loaded
  let received: ReceivedSpan[] = [];
  let requestLog: ReceivedRequest[] = [];
  let failures: { remaining: number; status: number; retryAfterSec?: number } = { remaining: 0, status: 503 };

  const send = (res: ServerResponse, status: number, contentType: string, body: Buffer | string): void => {
    res.writeHead(status, { 'Content-Type': contentType, 'Content-Length': Buffer.byteLength(body) });
    res.end(body);
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    if (path !== '/v1/traces') return send(res, 404, 'text/plain', '404 page not found');
    if (req.method !== 'POST') return send(res, 405, 'text/plain', 'method not allowed');
    const contentType = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
    const encoding = (req.headers['content-encoding'] ?? '').trim().toLowerCase();
    const entry: ReceivedRequest = { contentType, encoding, spanCount: 0, status: 200, path, headers: req.headers };
    requestLog.push(entry);
    const raw = await readBody(req);

    if (contentType !== 'application/x-protobuf' && contentType !== 'application/json') {
      entry.status = 415;
      return send(res, 415, 'text/plain', `unsupported content type ${JSON.stringify(contentType)}`);
    }
    const respondType = contentType;
    let spans: ReceivedSpan[];
    try {
      const body =
        encoding === 'gzip' ? gunzipSync(raw) : encoding === 'deflate' ? inflateSync(raw) : encoding === '' || encoding === 'identity' ? raw : undefined;
      if (!body) {
        entry.status = 415;
        return send(res, 415, 'text/plain', `unsupported content encoding ${JSON.stringify(encoding)}`);
      }
      spans = decodeBody(contentType, body);
    } catch (err) {
      entry.status = 400;
      entry.error = err instanceof Error ? err.message : String(err);
      return send(res, 400, 'text/plain', entry.error);
    }
    entry.spanCount = spans.length;

    if (failures.remaining > 0) {
      failures.remaining--;
      entry.status = failures.status;
      if (failures.retryAfterSec !== undefined) res.setHeader('Retry-After', String(failures.retryAfterSec));
      return send(res, failures.status, 'text/plain', `simulated failure (status ${failures.status})`);
    }
    received.push(...spans);
    return send(res, 200, respondType, emptyResponse(respondType));
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) send(res, 500, 'text/plain', String(err));
      else res.destroy();
    });
  });
  await new Promise<void>((resolveListen, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolveListen());
  });
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('OTLP receiver has no TCP address');
  const url = `http://127.0.0.1:${address.port}`;

  const cloneSpan = (s: ReceivedSpan): ReceivedSpan => ({
    ...s,
    attributes: { ...s.attributes },
    events: s.events.map((e) => ({ ...e, attributes: { ...e.attributes } })),
    links: s.links.map((l) => ({ ...l, attributes: { ...l.attributes } })),
    status: { ...s.status },
    resource: { ...s.resource },
    scope: { ...s.scope },
  });

  return {
    url,
    tracesUrl: `${url}/v1/traces`,
    spans: () => received.map(cloneSpan),
    requests: () => requestLog.map((r) => ({ ...r })),
    waitForSpans: async (n, timeoutMs = 10_000) => {
      try {
        return await waitFor(() => received.length >= n && received.map(cloneSpan), { timeoutMs, intervalMs: 25 });
      } catch {
        const log = requestLog.map((r) => ({ status: r.status, spans: r.spanCount, error: r.error }));
        throw new Error(
          `timed out after ${timeoutMs} ms waiting for ${n} span(s) at ${url}/v1/traces: have ${received.length}; ` +
            `requests: ${JSON.stringify(log)}; names: ${JSON.stringify(received.map((s) => s.name))}`,
        );
      }
    },
    failNext: (count, status = 503, opts = {}) => {
      failures = { remaining: count, status, ...(opts.retryAfterSec !== undefined ? { retryAfterSec: opts.retryAfterSec } : {}) };
    },
    reset: () => {
      received = [];
      requestLog = [];
      failures = { remaining: 0, status: 503 };
    },
    close: () =>
      new Promise<void>((resolveClose, reject) => {
        server.closeAllConnections();
        server.close((err) => (err ? reject(err) : resolveClose()));
      }),
  };
}
