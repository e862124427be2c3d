// Test support: the stack most end-to-end tests stand up — the demo Mastra in process, a bridge watching it (listening
// on a free 127.0.0.1 port), an OTLP receiver taking its spans, optionally a demo workload — and its teardown in the
// right order (workload, bridge, Mastra, receiver).
import type { Mastra } from '@mastra/core';
import pino, { type Logger } from 'pino';
import { type CreateDemoMastraOptions, createDemoMastra, shutdownDemoMastra } from '../../demo/app.js';
import { type Workload, type WorkloadOptions, startWorkload } from '../../demo/workload.js';
import { type BridgeHandle, type StartBridgeOptions, startBridge } from '../../src/bridge.js';
import type { ConfigInput } from '../../src/config.js';
import { type OtlpReceiver, startOtlpReceiver } from './otlp-receiver.js';

export interface DemoStackOptions {
  mastra?: CreateDemoMastraOptions;
  /** Bridge configuration; `otel` is merged over the receiver's endpoint and a 100 ms batch delay. */
  config?: ConfigInput;
  /** Default true: an OTLP receiver takes the spans. False: no receiver, `otel.tracesExporter: none`. */
  exportSpans?: boolean;
  mode?: StartBridgeOptions['mode'];
  logger?: Logger;
  /** Started once the bridge is ready. */
  workload?: WorkloadOptions;
}

export interface DemoStack {
  mastra: Mastra;
  bridge: BridgeHandle;
  /** The bridge's base URL. */
  base: string;
  receiver: OtlpReceiver | undefined;
  workload: Workload | undefined;
  close(): Promise<void>;
}

export async function startDemoStack(opts: DemoStackOptions = {}): Promise<DemoStack> {
  const exportSpans = opts.exportSpans ?? true;
  const receiver = exportSpans ? await startOtlpReceiver() : undefined;
  const mastra = createDemoMastra(opts.mastra);
  const otel = receiver ? { tracesEndpoint: receiver.tracesUrl, batch: { scheduledDelayMs: 100 } } : { tracesExporter: 'none' as const };
  const config: ConfigInput = { metrics: { defaultMetrics: false }, ...opts.config, otel: { ...otel, ...(opts.config?.otel as object | undefined) } };
  const bridge = startBridge({ mastra, logger: opts.logger ?? pino({ level: 'silent' }), config, ...(opts.mode ? { mode: opts.mode } : {}) });
  const base = await bridge.app.listen({ host: '127.0.0.1', port: 0 });
  await bridge.whenReady();
  const workload = opts.workload ? startWorkload(mastra, opts.workload) : undefined;
  return {
    mastra,
    bridge,
    base,
    receiver,
    workload,
    async close() {
      await workload?.stop();
      await bridge.close();
      await shutdownDemoMastra(mastra);
      await receiver?.close();
    },
  };
}
