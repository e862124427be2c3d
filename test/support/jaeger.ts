// Test support: a real Jaeger v2 (built from its Go module by test/peers/build.sh) on the shipped config/jaeger.yaml,
// every listener moved to a free 127.0.0.1 port through the file's JAEGER_* variables, in-memory storage; and a small
// client of Jaeger's own query API (the JSON API its UI uses: /api/traces/<id>, /api/traces?service=&tags=).
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { startPeer } from './child.js';
import { missingPeer, peerBinary } from './peers.js';
import { freePort } from './poll.js';

export const JAEGER_BIN = peerBinary('jaeger');
export const JAEGER_CONFIG = resolve(import.meta.dirname, '../../config/jaeger.yaml');

/** A span as Jaeger's query API returns it (times in microseconds). */
export interface JaegerSpan {
  traceID: string;
  spanID: string;
  operationName: string;
  references: { refType: 'CHILD_OF' | 'FOLLOWS_FROM'; traceID: string; spanID: string }[];
  startTime: number;
  duration: number;
  tags: { key: string; type: string; value: unknown }[];
  logs: { timestamp: number; fields: { key: string; value: unknown }[] }[];
  processID: string;
  warnings: string[] | null;
}
export interface JaegerTrace {
  traceID: string;
  spans: JaegerSpan[];
  processes: Record<string, { serviceName: string; tags: { key: string; value: unknown }[] }>;
}

export interface JaegerHandle {
  /** OTLP/HTTP base URL (exporters append /v1/traces), e.g. http://127.0.0.1:PORT */
  otlpUrl: string;
  /** Query API and UI base URL. */
  queryUrl: string;
  /** GET /api/traces/<traceId>; undefined when Jaeger has no such trace. */
  trace(traceId: string): Promise<JaegerTrace | undefined>;
  /** GET /api/traces?service=&tags= over the last hour. */
  search(service: string, tags: Record<string, string>, limit?: number): Promise<JaegerTrace[]>;
  /** GET /api/services. */
  services(): Promise<string[]>;
  logs(): string;
  close(): Promise<void>;
}

/** A span's tag value, or undefined. */
export const tag = (span: JaegerSpan, key: string): unknown => span.tags.find((t) => t.key === key)?.value;
/** The service name of a span within its trace. */
export const serviceOf = (trace: JaegerTrace, span: JaegerSpan): string | undefined => trace.processes[span.processID]?.serviceName;
/** The CHILD_OF parent span id, or undefined for a root. */
export const parentOf = (span: JaegerSpan): string | undefined => span.references.find((r) => r.refType === 'CHILD_OF')?.spanID;

export async function startJaeger(): Promise<JaegerHandle> {
  if (!existsSync(JAEGER_BIN)) throw missingPeer('jaeger', JAEGER_BIN);
  const [otlpHttp, otlpGrpc, queryHttp, queryGrpc, health] = await Promise.all([freePort(), freePort(), freePort(), freePort(), freePort()]);
  const queryUrl = `http://127.0.0.1:${queryHttp}`;
  const peer = await startPeer({
    name: 'jaeger',
    bin: JAEGER_BIN,
    args: ['--config', JAEGER_CONFIG],
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      JAEGER_OTLP_HTTP_ENDPOINT: `127.0.0.1:${otlpHttp}`,
      JAEGER_OTLP_GRPC_ENDPOINT: `127.0.0.1:${otlpGrpc}`,
      JAEGER_QUERY_HTTP_ENDPOINT: `127.0.0.1:${queryHttp}`,
      JAEGER_QUERY_GRPC_ENDPOINT: `127.0.0.1:${queryGrpc}`,
      JAEGER_HEALTH_ENDPOINT: `127.0.0.1:${health}`,
      JAEGER_LOG_LEVEL: 'warn',
      // Jaeger's query service traces itself to an OTLP collector at localhost:4317 by default: not here.
      OTEL_TRACES_EXPORTER: 'none',
    },
    // Health 200 means the pipeline (OTLP receiver included) runs; the query API answering means the UI side does.
    ready: async () => {
      const [h, q] = await Promise.all([fetch(`http://127.0.0.1:${health}/status`), fetch(`${queryUrl}/api/services`)]);
      return h.ok && q.ok;
    },
    readyTimeoutMs: 30_000,
    intervalMs: 100,
    readyMessage: 'jaeger healthy and its query API up',
  });

  const getJson = async <T>(path: string): Promise<{ status: number; body: T }> => {
    const res = await fetch(`${queryUrl}${path}`);
    const text = await res.text();
    try {
      return { status: res.status, body: JSON.parse(text) as T };
    } catch {
      throw new Error(`jaeger ${path} answered ${res.status} with non-JSON: ${text.slice(0, 300)}`);
    }
  };

  return {
    otlpUrl: `http://127.0.0.1:${otlpHttp}`,
    queryUrl,
    async trace(traceId) {
      const { status, body } = await getJson<{ data: JaegerTrace[] | null; errors?: unknown }>(`/api/traces/${traceId}`);
      if (status === 404) return undefined;
      if (status !== 200) throw new Error(`jaeger /api/traces/${traceId}: ${status} ${JSON.stringify(body)}`);
      return body.data?.[0];
    },
    async search(service, tags, limit = 1000) {
      const nowUs = Date.now() * 1000;
      const qs = new URLSearchParams({
        service,
        tags: JSON.stringify(tags),
        limit: String(limit),
        start: String(nowUs - 3_600_000_000),
        end: String(nowUs + 60_000_000),
      });
      const { status, body } = await getJson<{ data: JaegerTrace[] | null }>(`/api/traces?${qs}`);
      if (status !== 200) throw new Error(`jaeger /api/traces?${qs}: ${status} ${JSON.stringify(body)}`);
      return body.data ?? [];
    },
    async services() {
      const { body } = await getJson<{ data: string[] | null }>('/api/services');
      return body.data ?? [];
    },
    logs: peer.output,
    close: peer.close,
  };
}
