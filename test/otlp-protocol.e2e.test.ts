// OTEL_EXPORTER_OTLP_TRACES_PROTOCOL on the wire: the same task, exported by a bridge configured from the environment
// (loadConfig, as the CLI does) with http/protobuf and with http/json, reaches a real OTLP receiver in that encoding
// and decodes to the same span. OTEL_EXPORTER_OTLP_HEADERS and OTEL_RESOURCE_ATTRIBUTES, which the README says are
// honoured, reach the collector too.
import { type AddressInfo, type Socket, createServer } from 'node:net';
import type { Mastra } from '@mastra/core';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBridge } from '../src/bridge.js';
import { loadConfig } from '../src/config.js';
import { createDemoMastra, shutdownDemoMastra } from '../demo/app.js';
import { dispatchQuickTask, runScenario } from '../demo/workload.js';
import { scrape, total } from './support/metrics-text.js';
import { waitFor } from './support/poll.js';
import { type OtlpReceiver, type ReceivedSpan, startOtlpReceiver } from './support/otlp-receiver.js';

const silent = pino({ level: 'silent' });

describe('the OTLP protocol chosen by the environment is the one on the wire', () => {
  let receiver: OtlpReceiver;
  let mastra: Mastra;
  const received = new Map<string, { contentTypes: string[]; span: ReceivedSpan; headers: Record<string, unknown>[] }>();
  // Read from process.env by the OTLP exporter and the resource detector when the bridge builds them.
  const STANDARD = { OTEL_EXPORTER_OTLP_HEADERS: 'x-collector-key=test-key-1', OTEL_RESOURCE_ATTRIBUTES: 'deployment.environment.name=protocol-test' };

  beforeAll(async () => {
    receiver = await startOtlpReceiver();
    mastra = createDemoMastra({ observability: false });
    for (const protocol of ['http/protobuf', 'http/json'] as const) {
      const config = loadConfig({
        env: { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: protocol, BRIDGE_LOG_LEVEL: 'silent' },
        cwd: '/nonexistent', // no config/bridge.yaml: the environment alone
      });
      expect(config.otel.protocol).toBe(protocol);
      Object.assign(process.env, STANDARD);
      let bridge: ReturnType<typeof startBridge>;
      try {
        bridge = startBridge({ mastra, logger: silent, config: { ...config, metrics: { ...config.metrics, defaultMetrics: false } } });
      } finally {
        for (const k of Object.keys(STANDARD)) delete process.env[k];
      }
      try {
        await bridge.whenReady(10_000);
        receiver.reset();
        const { taskId } = await runScenario(mastra, 'complete', { threadId: `thread-${protocol}` });
        await bridge.idle();
        await bridge.tracing.forceFlush();
        const spans = await receiver.waitForSpans(1, 20_000);
        const span = spans.find((s) => s.attributes['mastra.background_task.id'] === taskId);
        if (!span) throw new Error(`no span for ${taskId} over ${protocol}`);
        received.set(protocol, { contentTypes: receiver.requests().map((r) => r.contentType), span, headers: receiver.requests().map((r) => r.headers) });
      } finally {
        await bridge.close();
      }
    }
  }, 90_000);

  afterAll(async () => {
    if (mastra) await shutdownDemoMastra(mastra);
    await receiver?.close();
  });

  it('http/protobuf sends application/x-protobuf, http/json sends application/json', () => {
    expect(new Set(received.get('http/protobuf')!.contentTypes)).toEqual(new Set(['application/x-protobuf']));
    expect(new Set(received.get('http/json')!.contentTypes)).toEqual(new Set(['application/json']));
  });

  it('both decode to the same span contract', () => {
    const shape = (s: ReceivedSpan) => ({
      name: s.name,
      kind: s.kind,
      status: s.status,
      attributeKeys: Object.keys(s.attributes).sort(),
      operation: s.attributes['gen_ai.operation.name'],
      status_attr: s.attributes['mastra.background_task.status'],
    });
    const proto = received.get('http/protobuf')!.span;
    const json = received.get('http/json')!.span;
    expect(shape(json)).toEqual(shape(proto));
    expect(shape(proto)).toMatchObject({ name: 'background_task research_topic', kind: 1, operation: 'execute_tool', status_attr: 'completed' });
  });

  it('OTEL_EXPORTER_OTLP_HEADERS and OTEL_RESOURCE_ATTRIBUTES reach the collector', () => {
    for (const protocol of ['http/protobuf', 'http/json']) {
      const r = received.get(protocol)!;
      expect(r.headers.every((h) => h['x-collector-key'] === 'test-key-1'), protocol).toBe(true);
      expect(r.span.resource).toMatchObject({ 'deployment.environment.name': 'protocol-test', 'service.name': 'mastra-task-bridge' });
    }
  });
});

describe('a collector slower than the task rate', () => {
  it('spans the batch queue cannot hold are counted as queue_full, and every task is still counted', async () => {
    // A collector that accepts connections and never answers: exports hang, the queue fills.
    const sockets = new Set<Socket>();
    const stalled = createServer((s) => void sockets.add(s));
    await new Promise<void>((resolve) => stalled.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(stalled.address() as AddressInfo).port}/v1/traces`;
    const mastra = createDemoMastra({ observability: false });
    const bridge = startBridge({
      mastra,
      logger: silent,
      config: {
        otel: { tracesEndpoint: url, batch: { maxQueueSize: 4, maxExportBatchSize: 2, scheduledDelayMs: 10, exportTimeoutMs: 60_000 } },
        metrics: { defaultMetrics: false },
      },
    });
    const TASKS = 12;
    try {
      await bridge.whenReady(10_000);
      const handles = await Promise.all(Array.from({ length: TASKS }, () => dispatchQuickTask(mastra, { durationMs: 1 })));
      await Promise.all(handles.map((h) => h.wait()));
      await waitFor(async () => total(await scrape(bridge.app), 'mastra_background_task_finished_total') === TASKS, { message: 'every task counted' });
      // A task is counted at once; its span follows once placed (which may wait on a trace lookup).
      await bridge.idle();
      const s = await scrape(bridge.app);
      // At most the queue (4) and one batch in flight (2) are held; the rest were dropped, and counted.
      expect(total(s, 'mastra_task_bridge_spans_total', { result: 'queue_full' })).toBeGreaterThanOrEqual(TASKS - 4 - 2);
      expect(total(s, 'mastra_task_bridge_spans_total', { result: 'exported' })).toBe(0);
    } finally {
      for (const s of sockets) s.destroy();
      stalled.close();
      await Promise.race([bridge.close(), new Promise((r) => setTimeout(r, 5_000))]);
      await shutdownDemoMastra(mastra);
    }
  }, 60_000);
});
