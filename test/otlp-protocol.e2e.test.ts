// OTEL_EXPORTER_OTLP_TRACES_PROTOCOL on the wire: the same task, exported by a bridge configured from the environment
// (loadConfig, as the CLI does) with http/protobuf and with http/json, reaches a real OTLP receiver in that encoding
// and decodes to the same span.
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
  const received = new Map<string, { contentTypes: string[]; span: ReceivedSpan }>();

  beforeAll(async () => {
    receiver = await startOtlpReceiver();
    mastra = createDemoMastra({ observability: false });
    for (const protocol of ['http/protobuf', 'http/json'] as const) {
      const config = loadConfig({
        env: { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: protocol, BRIDGE_LOG_LEVEL: 'silent' },
        cwd: '/nonexistent', // no config/bridge.yaml: the environment alone
      });
      expect(config.otel.protocol).toBe(protocol);
      const bridge = startBridge({ mastra, logger: silent, config: { ...config, metrics: { ...config.metrics, defaultMetrics: false } } });
      try {
        await bridge.whenReady(10_000);
        receiver.reset();
        const { taskId } = await runScenario(mastra, 'complete', { threadId: `thread-${protocol}` });
        await bridge.idle();
        await bridge.tracing.forceFlush();
        const spans = await receiver.waitForSpans(1, 20_000);
        const span = spans.find((s) => s.attributes['mastra.background_task.id'] === taskId);
        if (!span) throw new Error(`no span for ${taskId} over ${protocol}`);
        received.set(protocol, { contentTypes: receiver.requests().map((r) => r.contentType), span });
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
});
