// A collector answering `503` with `Retry-After: 0`: the SDK's exporter retries at once — and, unguarded, hands
// setTimeout a delay of -1 ms, which Node >= 23 reports as a TimeoutNegativeWarning on every retry. The bridge's
// exporter wiring (telemetry.ts guardNegativeRetryAfter) turns that delay into 0. Real HTTP on 127.0.0.1, both
// protocols.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { BasicTracerProvider, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createTracing, guardNegativeRetryAfter } from '../src/telemetry.js';

/** Answers the first `busy` requests 503 + Retry-After: 0, then 200. */
function collector(): { server: Server; url: () => string; requests: () => number; reset(busy: number): void } {
  let requests = 0;
  let busy = 0;
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      requests++;
      if (busy > 0) {
        busy--;
        res.writeHead(503, { 'retry-after': '0' }).end();
      } else {
        res.writeHead(200, { 'content-type': req.headers['content-type'] ?? 'application/json' }).end();
      }
    });
  });
  return {
    server,
    url: () => `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/traces`,
    requests: () => requests,
    reset(n) {
      requests = 0;
      busy = n;
    },
  };
}

const warnings: Error[] = [];
const onWarning = (w: Error): void => void warnings.push(w);
const negativeTimeoutWarnings = () => warnings.filter((w) => w.name === 'TimeoutNegativeWarning');
// Node added TimeoutNegativeWarning in 23: on older versions the unguarded case below cannot show it.
const nodeWarnsOnNegativeTimeouts = Number(process.versions.node.split('.')[0]) >= 23;

describe('Retry-After: 0 from the collector', () => {
  const c = collector();
  beforeAll(async () => {
    await new Promise<void>((resolve) => c.server.listen(0, '127.0.0.1', resolve));
    process.on('warning', onWarning);
  });
  afterEach(() => void (warnings.length = 0));
  afterAll(async () => {
    process.removeListener('warning', onWarning);
    await new Promise((resolve) => c.server.close(resolve));
  });

  for (const protocol of ['http/protobuf', 'http/json'] as const) {
    it(`${protocol}: the bridge's exporter retries at once, delivers the span and Node prints no warning`, async () => {
      c.reset(2);
      const outcomes: string[] = [];
      const tracing = createTracing(
        {
          serviceName: 'test',
          serviceVersion: '0',
          tracesUrl: c.url(),
          protocol,
          batch: { maxQueueSize: 10, maxExportBatchSize: 10, scheduledDelayMillis: 10, exportTimeoutMillis: 10_000 },
        },
        (outcome) => outcomes.push(outcome),
      );
      expect(tracing.retryAfterGuarded).toBe(true);
      tracing.tracer.startSpan('task').end();
      await tracing.forceFlush();
      await tracing.shutdown();
      expect(c.requests()).toBe(3); // two 503s, then accepted
      expect(outcomes).toEqual(['exported']);
      // Warnings are emitted on the next tick.
      await new Promise((resolve) => setImmediate(resolve));
      expect(negativeTimeoutWarnings()).toEqual([]);
    });
  }

  it('the unguarded SDK exporter (the reason for the guard) retries with a negative delay', async () => {
    c.reset(1);
    const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(new OTLPTraceExporter({ url: c.url() }))] });
    provider.getTracer('t').startSpan('task').end();
    await provider.forceFlush();
    await provider.shutdown();
    expect(c.requests()).toBe(2);
    await new Promise((resolve) => setImmediate(resolve));
    // If this fails on Node >= 23, the SDK fixed its Retry-After parsing and the guard can go.
    expect(negativeTimeoutWarnings().length > 0).toBe(nodeWarnsOnNegativeTimeouts);
  });

  it('the guard changes nothing on an exporter of another shape, and says so', () => {
    expect(guardNegativeRetryAfter({})).toBe(false);
    expect(guardNegativeRetryAfter({ _delegate: { _transport: {} } })).toBe(false);
  });
});
