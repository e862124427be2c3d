// OTEL_EXPORTER_OTLP_TRACES_PROTOCOL on the wire: the same task, exported by a bridge configured from the environment
// (loadConfig, as the CLI does) with http/protobuf and with http/json, reaches a real OTLP receiver in that encoding
// and decodes to the same span. OTEL_EXPORTER_OTLP_HEADERS and OTEL_RESOURCE_ATTRIBUTES, which the README says are
// honoured, reach the collector too.
import type { Mastra } from '@mastra/core';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBridge } from '../src/bridge.js';
import { loadConfig } from '../src/config.js';
import { createDemoMastra, shutdownDemoMastra } from '../src/demo/app.js';
import { runScenario } from '../src/demo/workload.js';
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
