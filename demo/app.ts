/**
 * A real, self-contained Mastra app for demos and tests: three agents driven by a scripted model
 * (no network) and background tools that cover every background-task lifecycle.
 *
 *   research_topic    completes after a few output chunks (ctx.writer.write)
 *   charge_card       fails with PaymentDeclinedError
 *   provision_cluster runs long but honours its abortSignal -> times out when called with a small
 *                     `_background.timeoutMs`
 *   tail_logs         emits output until it is cancelled (abortSignal), bounded by maxRunMs
 *   approve_refund    suspends (ctx.agent.suspend) and completes after manager.resume(id, data)
 *
 * Every agent carries every tool; each has a "natural" home (see DEMO_AGENTS).
 */
import { Mastra } from '@mastra/core';
import { Agent } from '@mastra/core/agent';
import type { BackgroundTaskManagerConfig } from '@mastra/core/background-tasks';
import { ConsoleLogger, type IMastraLogger } from '@mastra/core/logger';
import { InMemoryStore, type MastraCompositeStore } from '@mastra/core/storage';
import { createTool } from '@mastra/core/tools';
import type { ObservabilityExporter } from '@mastra/core/observability';
import { MastraStorageExporter, Observability, SamplingStrategyType } from '@mastra/observability';
import { z } from 'zod';
import { createScriptedModel } from './model.js';

export const DEMO_AGENT_IDS = ['research-agent', 'billing-agent', 'ops-agent'] as const;
export type DemoAgentId = (typeof DEMO_AGENT_IDS)[number];

export const DEMO_TOOL_NAMES = {
  complete: 'research_topic',
  fail: 'charge_card',
  timeout: 'provision_cluster',
  cancel: 'tail_logs',
  suspend: 'approve_refund',
} as const;

/** Thrown by `charge_card`: the stored task error carries this name in its stack / message. */
export class PaymentDeclinedError extends Error {
  static {
    // On the prototype (not a class field) so the stack header, captured in super(), shows the name.
    Object.defineProperty(this.prototype, 'name', { value: 'PaymentDeclinedError', writable: true, configurable: true });
  }
  constructor(
    message: string,
    readonly code = 'card_declined',
  ) {
    super(message);
  }
}

/** Default durations of the demo tools (ms). Kept short so tests are fast; args may override per call. */
export interface DemoTimings {
  /** research_topic: delay before each output chunk. */
  completeStepMs: number;
  /** research_topic: number of output chunks. */
  completeChunks: number;
  /** charge_card: delay before throwing. */
  failAfterMs: number;
  /** provision_cluster: how long the work would take if never aborted. */
  timeoutWorkMs: number;
  /** tail_logs: interval between output chunks. */
  cancelTickMs: number;
  /** tail_logs: safety bound; it completes on its own after this long if never cancelled. */
  cancelMaxRunMs: number;
  /** approve_refund: delay before suspending, and again after resume before completing. */
  suspendStepMs: number;
}

export const DEFAULT_TIMINGS: DemoTimings = {
  completeStepMs: 30,
  completeChunks: 3,
  failAfterMs: 50,
  timeoutWorkMs: 30_000,
  cancelTickMs: 50,
  cancelMaxRunMs: 120_000,
  suspendStepMs: 20,
};

export interface DemoObservabilityOptions {
  /** Service name on Mastra's spans. Default 'mastra-task-bridge-demo'. */
  serviceName?: string;
  /** How long the storage exporter buffers spans before writing them. Default 100 ms (Mastra's default is 5 s). */
  maxBatchWaitMs?: number;
  /** More exporters, after the storage exporter (e.g. `@mastra/otel-exporter`'s OtelExporter). Default none. */
  exporters?: ObservabilityExporter[];
}

/** Mastra's `server` config (e.g. `{ auth: new SimpleAuth(...) }`), as the Mastra constructor takes it. */
export type DemoServerConfig = NonNullable<NonNullable<ConstructorParameters<typeof Mastra>[0]>['server']>;

export interface CreateDemoMastraOptions {
  /** Store Mastra's own traces (MastraStorageExporter into the app's storage, sampling always). Default false. */
  observability?: boolean | DemoObservabilityOptions;
  /** A Mastra storage instance (e.g. LibSQLStore). Default: a fresh InMemoryStore. */
  storage?: unknown;
  /** Mastra's logger. Default: createQuietLogger() (warnings and errors, minus expected task failures). `false` disables logging. */
  logger?: false | IMastraLogger;
  /** Merged over `{ enabled: true }`. */
  backgroundTasks?: Partial<BackgroundTaskManagerConfig>;
  /** Tool durations, merged over DEFAULT_TIMINGS. */
  timings?: Partial<DemoTimings>;
  /** Mastra's `server` config, used when the app is served over HTTP (e.g. `auth`). Default none. */
  server?: DemoServerConfig;
  /** Mastra's pubsub (e.g. a UnixSocketPubSub shared by replicas on one host). Default Mastra's in-process one. */
  pubsub?: unknown;
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(abortError(signal));
      return;
    }
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, Math.max(0, ms));
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(abortError(signal));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

function abortError(signal: AbortSignal | undefined): Error {
  const reason: unknown = signal?.reason;
  if (reason instanceof Error) return reason;
  const err = new Error(typeof reason === 'string' ? reason : 'Aborted');
  err.name = 'AbortError';
  return err;
}

const optionalMs = z.number().int().min(0).max(3_600_000).optional();

function createDemoTools(t: DemoTimings) {
  const researchTopic = createTool({
    id: DEMO_TOOL_NAMES.complete,
    description: 'Researches a topic in the background and streams partial findings.',
    inputSchema: z.object({
      topic: z.string().default('observability'),
      chunks: z.number().int().min(0).max(1000).optional(),
      stepMs: optionalMs,
    }),
    background: { enabled: true },
    execute: async (input, ctx) => {
      const chunks = input.chunks ?? t.completeChunks;
      const stepMs = input.stepMs ?? t.completeStepMs;
      const findings: string[] = [];
      for (let i = 1; i <= chunks; i++) {
        await sleep(stepMs, ctx.abortSignal);
        const finding = `finding ${i} about ${input.topic}`;
        findings.push(finding);
        await ctx.writer?.write({ progress: i / chunks, step: i, of: chunks, finding });
      }
      return { topic: input.topic, findings };
    },
  });

  const chargeCard = createTool({
    id: DEMO_TOOL_NAMES.fail,
    description: 'Charges a card in the background. The demo card is always declined.',
    inputSchema: z.object({
      amountCents: z.number().int().min(0).default(4200),
      delayMs: optionalMs,
    }),
    background: { enabled: true },
    execute: async (input, ctx) => {
      await ctx.writer?.write({ stage: 'authorizing', amountCents: input.amountCents });
      await sleep(input.delayMs ?? t.failAfterMs, ctx.abortSignal);
      throw new PaymentDeclinedError(`Payment of ${input.amountCents} cents was declined by the issuer`);
    },
  });

  const provisionCluster = createTool({
    id: DEMO_TOOL_NAMES.timeout,
    description: 'Provisions a cluster; slow. Honours cancellation and timeouts.',
    inputSchema: z.object({
      nodes: z.number().int().min(1).max(100).default(3),
      workMs: optionalMs,
    }),
    background: { enabled: true },
    execute: async (input, ctx) => {
      await ctx.writer?.write({ stage: 'provisioning', nodes: input.nodes });
      await sleep(input.workMs ?? t.timeoutWorkMs, ctx.abortSignal);
      return { nodes: input.nodes, ready: true };
    },
  });

  const tailLogs = createTool({
    id: DEMO_TOOL_NAMES.cancel,
    description: 'Tails a log stream until cancelled.',
    inputSchema: z.object({
      service: z.string().default('api'),
      tickMs: optionalMs,
      maxRunMs: optionalMs,
    }),
    background: { enabled: true },
    execute: async (input, ctx) => {
      const tickMs = Math.max(1, input.tickMs ?? t.cancelTickMs);
      const deadline = Date.now() + (input.maxRunMs ?? t.cancelMaxRunMs);
      let lines = 0;
      while (Date.now() < deadline) {
        await sleep(tickMs, ctx.abortSignal);
        lines++;
        await ctx.writer?.write({ service: input.service, line: `log line ${lines}` });
      }
      return { service: input.service, lines };
    },
  });

  const approveRefund = createTool({
    id: DEMO_TOOL_NAMES.suspend,
    description: 'Prepares a refund and waits for a human approval (suspend/resume).',
    inputSchema: z.object({
      amountCents: z.number().int().min(0).default(1500),
      stepMs: optionalMs,
    }),
    background: { enabled: true },
    execute: async (input, ctx) => {
      const stepMs = input.stepMs ?? t.suspendStepMs;
      const resumeData: unknown = ctx.agent?.resumeData ?? ctx.resumeData;
      if (resumeData === undefined) {
        await sleep(stepMs, ctx.abortSignal);
        await ctx.writer?.write({ stage: 'awaiting-approval', amountCents: input.amountCents });
        const suspend = ctx.agent?.suspend ?? ctx.suspend;
        if (!suspend) throw new Error('approve_refund: suspend is not available in this context');
        await suspend({ reason: 'refund needs approval', amountCents: input.amountCents });
        return undefined;
      }
      await sleep(stepMs, ctx.abortSignal);
      const approved =
        typeof resumeData === 'object' && resumeData !== null && 'approved' in resumeData
          ? Boolean((resumeData as { approved: unknown }).approved)
          : true;
      return { amountCents: input.amountCents, approved, refunded: approved };
    },
  });

  return {
    [DEMO_TOOL_NAMES.complete]: researchTopic,
    [DEMO_TOOL_NAMES.fail]: chargeCard,
    [DEMO_TOOL_NAMES.timeout]: provisionCluster,
    [DEMO_TOOL_NAMES.cancel]: tailLogs,
    [DEMO_TOOL_NAMES.suspend]: approveRefund,
  };
}

const QUIET_PATTERNS: readonly RegExp[] = [
  // expected outcomes of failing / timed-out demo tools, logged with a stack by the task workflow
  /__background-task/,
  // the demo agents run without a Memory instance but pass thread/resource so tasks carry them
  /No memory is configured but resourceId and threadId were passed/,
  // one-time notices from the storage exporter on stores without the logs / metrics domains (LibSQL)
  /does not support batch creating (logs|metrics)/,
];

/**
 * Mastra's ConsoleLogger at level 'warn', minus the errors the background-task workflow logs for
 * every failing / timed-out task ("[WORKFLOW] Error executing step workflow.__background-task...",
 * with a stack): those outcomes are expected in the demo and are visible in the task records anyway;
 * and minus the "No memory is configured" warning (deliberate: the demo has no Memory).
 */
export function createQuietLogger(level: 'debug' | 'info' | 'warn' | 'error' = 'warn'): IMastraLogger {
  return new ConsoleLogger({
    name: 'mastra-demo',
    level,
    filter: (ctx) => !QUIET_PATTERNS.some((re) => re.test(ctx.message)),
  });
}

const AGENT_INSTRUCTIONS: Record<DemoAgentId, string> = {
  'research-agent': 'You research topics. Use research_topic for long-running research.',
  'billing-agent': 'You handle payments and refunds with charge_card and approve_refund.',
  'ops-agent': 'You operate infrastructure with provision_cluster and tail_logs.',
};

/**
 * Builds the demo Mastra app. Sets MASTRA_TELEMETRY_DISABLED=true (Mastra's feature-usage
 * telemetry would otherwise post to PostHog), so the app makes no network calls.
 */
export function createDemoMastra(opts: CreateDemoMastraOptions = {}): Mastra {
  process.env['MASTRA_TELEMETRY_DISABLED'] = 'true';

  const timings: DemoTimings = { ...DEFAULT_TIMINGS, ...opts.timings };
  const tools = createDemoTools(timings);
  const model = createScriptedModel();
  const agents: Record<string, Agent> = {};
  for (const id of DEMO_AGENT_IDS) {
    agents[id] = new Agent({
      id,
      name: id,
      instructions: AGENT_INSTRUCTIONS[id],
      model,
      tools,
    });
  }

  const storage = (opts.storage as MastraCompositeStore | undefined) ?? new InMemoryStore();
  const logger: false | IMastraLogger = opts.logger === undefined ? createQuietLogger() : opts.logger;

  let observability: Observability | undefined;
  if (opts.observability) {
    const o: DemoObservabilityOptions = opts.observability === true ? {} : opts.observability;
    observability = new Observability({
      configs: {
        default: {
          serviceName: o.serviceName ?? 'mastra-task-bridge-demo',
          sampling: { type: SamplingStrategyType.ALWAYS },
          exporters: [new MastraStorageExporter({ maxBatchWaitMs: o.maxBatchWaitMs ?? 100 }), ...(o.exporters ?? [])],
          // traces only: do not dual-write Mastra's log records into observability storage
          logging: { enabled: false },
        },
      },
    });
  }

  return new Mastra({
    agents,
    storage,
    logger,
    ...(observability ? { observability } : {}),
    ...(opts.server ? { server: opts.server } : {}),
    ...(opts.pubsub ? { pubsub: opts.pubsub as never } : {}),
    backgroundTasks: { ...opts.backgroundTasks, enabled: opts.backgroundTasks?.enabled ?? true },
  });
}

/**
 * Shuts the app down without losing buffered spans. `mastra.shutdown()` closes storage BEFORE it
 * shuts observability down (Mastra 1.71), so spans still in the exporter's buffer fail to write
 * ("CLIENT_CLOSED" with LibSQL). Order here: background tasks, flush spans, then the rest.
 */
export async function shutdownDemoMastra(mastra: Mastra, opts: { drainTimeoutMs?: number } = {}): Promise<void> {
  const deadline = Date.now() + (opts.drainTimeoutMs ?? 5_000);
  await mastra.backgroundTaskManager?.shutdown({ deadline }).catch(() => undefined);
  await mastra.observability.flush().catch(() => undefined);
  await mastra.shutdown({ drainTimeout: Math.max(0, deadline - Date.now()) });
}
