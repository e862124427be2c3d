/**
 * The demo Mastra app (createDemoMastra) served over HTTP by Mastra's own server routes
 * (`@mastra/hono` MastraServer on a Hono app, served by `@hono/node-server`; routes under /api),
 * with a continuous workload of real agent runs and background tasks.
 *
 *   node --import tsx demo/server.ts      (or: npm run demo:server; built: npm run build:demo, node dist-demo/server.js)
 *
 * Environment (see demoServerOptionsFromEnv):
 *   DEMO_PORT                    default 4111 (0 = any free port)
 *   DEMO_HOST                    default 0.0.0.0
 *   DEMO_STORAGE_URL             LibSQL URL, e.g. file:./demo.db (durable), or a PostgreSQL URL
 *                                (postgresql://user:pass@host:5432/db, @mastra/pg); default in-memory
 *   DEMO_PUBSUB_SOCKET           a Unix socket path: replicas on one host share Mastra's pubsub through it
 *                                (UnixSocketPubSub; the first to start is the broker); default per process
 *   DEMO_REPLICA                 true: one of several replicas on one store, so Mastra's restart recovery
 *                                (which marks every stored running task failed) stays off
 *   DEMO_TOKEN                   when set, every /api route needs `Authorization: Bearer <t>` or `?apiKey=<t>`
 *   DEMO_RATE                    scenarios started per second, default 2; 0 = no workload
 *   DEMO_MAX_TASKS               stop starting scenarios after this many; default unlimited
 *   DEMO_MIX                     e.g. complete=6,fail=1,timeout=1,cancel=1,suspend_resume=1 (unlisted = 0)
 *   DEMO_ORDER                   random (default: each scenario drawn independently) | interleaved (the mix
 *                                dealt evenly per agent, so any DEMO_MAX_TASKS >= the mix's total runs each one)
 *   DEMO_LONG_TASKS              tail_logs tasks started once at boot and left running (never cancelled
 *                                by the workload) for DEMO_LONG_TASK_MS (default 240000); default 0
 *   DEMO_SUSPENDED_TASKS         approve_refund tasks started once at boot and left suspended; default 0
 *   DEMO_CONCURRENCY             Mastra backgroundTasks.globalConcurrency (default Mastra's: 10);
 *                                tasks beyond it wait as `pending`
 *   DEMO_SERVICE_NAME            service name of Mastra's spans, default mastra-demo
 *   OTEL_EXPORTER_OTLP_ENDPOINT  when set (or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT), Mastra's spans are also
 *                                exported over OTLP by @mastra/otel-exporter (e.g. http://localhost:4318)
 *   OTEL_EXPORTER_OTLP_PROTOCOL  http/protobuf (default) | http/json | grpc
 *
 * Mastra's traces are always stored in the app's storage (MastraStorageExporter), so
 * `GET /api/observability/traces?runId=` and `GET /api/observability/traces/:traceId` work.
 */
import { realpathSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { serve } from '@hono/node-server';
import type { Mastra } from '@mastra/core';
import type { IMastraLogger } from '@mastra/core/logger';
import { SimpleAuth } from '@mastra/core/server';
import type { MastraCompositeStore } from '@mastra/core/storage';
import { MastraServer } from '@mastra/hono';
import { UnixSocketPubSub } from '@mastra/core/events';
import { LibSQLStore } from '@mastra/libsql';
import { PostgresStore } from '@mastra/pg';
import { OtelExporter, type ExportProtocol } from '@mastra/otel-exporter';
import { Hono } from 'hono';
import {
  createDemoMastra,
  DEMO_AGENT_IDS,
  DEMO_TOOL_NAMES,
  shutdownDemoMastra,
  type DemoTimings,
} from './app.js';
import { toolInstruction } from './model.js';
import { SCENARIOS, startWorkload, type Scenario, type Workload } from './workload.js';

export interface DemoServerOptions {
  /** Default 4111. 0 picks a free port (see the returned `url`). */
  port?: number;
  /** Default '0.0.0.0'. */
  host?: string;
  /** LibSQL URL (e.g. 'file:./demo.db') or PostgreSQL URL (postgres[ql]://…): durable storage. Default: InMemoryStore. */
  storageUrl?: string;
  /** Share Mastra's pubsub with other replicas on this host through this Unix socket. */
  pubsubSocket?: string;
  /** One of several replicas on one store: no restart recovery (it would fail the other replicas' running tasks). */
  replica?: boolean;
  /** When set, Mastra's `server.auth` is a SimpleAuth accepting exactly this token. */
  token?: string;
  /** Base OTLP endpoint (e.g. 'http://localhost:4318'); when set, Mastra's spans are also exported over OTLP. */
  otlpEndpoint?: string;
  /** Default 'http/protobuf'. */
  otlpProtocol?: ExportProtocol;
  /** Extra OTLP request headers. */
  otlpHeaders?: Record<string, string>;
  /** Service name on Mastra's spans (stored and OTLP). Default 'mastra-demo'. */
  serviceName?: string;
  /** How long Mastra's storage exporter buffers spans before writing them. Default the demo's 100 ms (Mastra's is 5 s). */
  storageBatchWaitMs?: number;
  /** Scenarios started per second. Default 2; 0 = no workload. */
  rate?: number;
  /** Stop starting scenarios after this many. Default unlimited. */
  maxTasks?: number;
  /** Scenario weights. Default: the workload's DEFAULT_MIX. */
  mix?: Partial<Record<Scenario, number>>;
  /** How scenarios are drawn from the mix (see WorkloadOptions.order). Default 'random'. */
  order?: 'random' | 'interleaved';
  /** tail_logs tasks started once at boot and left running for `longTaskMs`. Default 0. */
  longTasks?: number;
  /** How long each long task runs. Default 240 000 ms (under Mastra's default 300 000 ms task timeout). */
  longTaskMs?: number;
  /** approve_refund tasks started once at boot and left suspended. Default 0. */
  suspendedTasks?: number;
  /** Mastra `backgroundTasks.globalConcurrency`. Default Mastra's (10). */
  concurrency?: number;
  /** Tool durations. Default the demo's DEFAULT_TIMINGS. */
  timings?: Partial<DemoTimings>;
  /** Mastra's logger. Default the demo's quiet logger (warnings and errors). */
  logger?: false | IMastraLogger;
  /** Called with workload scenario errors. Default: a one-line message on stderr. */
  onWorkloadError?: (err: unknown) => void;
}

export interface DemoServer {
  /** Base URL, e.g. http://127.0.0.1:4111 (routes under `${url}/api`). */
  url: string;
  port: number;
  mastra: Mastra;
  /** The running workload, when rate > 0. */
  workload: Workload | undefined;
  /** How long Mastra's background-task manager took to initialise (incl. restart recovery), ms. */
  initMs: number;
  /** Stops the workload, closes HTTP connections and shuts Mastra down (spans flushed). Idempotent. */
  close(): Promise<void>;
}

const DEFAULT_LONG_TASK_MS = 240_000;
const LONG_TASK_TICK_MS = 1_000;

const isPostgresUrl = (url: string): boolean => /^postgres(ql)?:\/\//.test(url);

function displayHost(host: string): string {
  if (host === '0.0.0.0' || host === '') return 'localhost';
  if (host === '::') return '[::1]';
  return host.includes(':') ? `[${host}]` : host;
}

function describeError(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Drains an agent stream in the background (the agent loop needs its stream consumed). */
function drain(stream: ReadableStream<unknown> | AsyncIterable<unknown>, onError: (err: unknown) => void): void {
  void (async () => {
    for await (const _chunk of stream as AsyncIterable<unknown>) void _chunk;
  })().catch(onError);
}

/** Starts `n` long-running tail_logs tasks and `m` approve_refund tasks that stay suspended. */
async function startStandingTasks(
  mastra: Mastra,
  opts: { longTasks: number; longTaskMs: number; suspendedTasks: number },
  onError: (err: unknown) => void,
): Promise<void> {
  const runs: Promise<void>[] = [];
  const start = async (i: number, prompt: string, thread: string): Promise<void> => {
    const agentId = DEMO_AGENT_IDS[i % DEMO_AGENT_IDS.length] ?? 'ops-agent';
    const output = await mastra.getAgentById(agentId).stream(prompt, { memory: { thread, resource: 'demo-user' } });
    drain(output.fullStream, onError);
  };
  for (let i = 0; i < opts.longTasks; i++) {
    const prompt = toolInstruction(DEMO_TOOL_NAMES.cancel, {
      service: `long-${i}`,
      tickMs: LONG_TASK_TICK_MS,
      maxRunMs: opts.longTaskMs,
      // keep Mastra's per-task timeout above the run time
      _background: { timeoutMs: opts.longTaskMs + 60_000 },
    });
    runs.push(start(i, prompt, `long-running-${i}`).catch(onError));
  }
  for (let i = 0; i < opts.suspendedTasks; i++) {
    const prompt = toolInstruction(DEMO_TOOL_NAMES.suspend, { amountCents: 1000 + i });
    runs.push(start(i, prompt, `awaiting-approval-${i}`).catch(onError));
  }
  await Promise.all(runs);
}

/** Starts the demo Mastra app on HTTP. Resolves once it listens (after Mastra's restart recovery). */
export async function startDemoServer(opts: DemoServerOptions = {}): Promise<DemoServer> {
  const host = opts.host ?? '0.0.0.0';
  const port = opts.port ?? 4111;
  const rate = opts.rate ?? 2;
  const onWorkloadError =
    opts.onWorkloadError ??
    ((err: unknown): void => {
      console.error(`[mastra-demo] scenario error: ${describeError(err)}`);
    });

  const storage: MastraCompositeStore | undefined = !opts.storageUrl
    ? undefined
    : isPostgresUrl(opts.storageUrl)
      ? (new PostgresStore({ id: 'mastra-demo', connectionString: opts.storageUrl }) as unknown as MastraCompositeStore)
      : (new LibSQLStore({ id: 'mastra-demo', url: opts.storageUrl }) as unknown as MastraCompositeStore);
  const pubsub = opts.pubsubSocket ? new UnixSocketPubSub(opts.pubsubSocket) : undefined;

  const exporters = opts.otlpEndpoint
    ? [
        new OtelExporter({
          provider: {
            custom: {
              endpoint: opts.otlpEndpoint,
              protocol: opts.otlpProtocol ?? 'http/protobuf',
              ...(opts.otlpHeaders ? { headers: opts.otlpHeaders } : {}),
            },
          },
          // traces only (Jaeger does not accept OTLP logs; the demo does not route logs to observability)
          signals: { traces: true, logs: false },
        }),
      ]
    : [];

  const mastra = createDemoMastra({
    ...(storage ? { storage } : {}),
    observability: {
      serviceName: opts.serviceName ?? 'mastra-demo',
      exporters,
      ...(opts.storageBatchWaitMs !== undefined ? { maxBatchWaitMs: opts.storageBatchWaitMs } : {}),
    },
    ...(opts.logger !== undefined ? { logger: opts.logger } : {}),
    ...(opts.timings ? { timings: opts.timings } : {}),
    ...(pubsub ? { pubsub } : {}),
    ...(opts.concurrency !== undefined || opts.replica
      ? {
          backgroundTasks: {
            ...(opts.concurrency !== undefined ? { globalConcurrency: opts.concurrency } : {}),
            ...(opts.replica ? { recoverStaleTasksOnStart: false } : {}),
          },
        }
      : {}),
    ...(opts.token
      ? {
          server: {
            auth: new SimpleAuth({
              tokens: { [opts.token]: { id: 'demo-operator', name: 'demo operator' } },
            }),
          },
        }
      : {}),
  });

  let httpServer: Server | undefined;
  let workload: Workload | undefined;
  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      await workload?.stop().catch(() => undefined);
      if (httpServer) {
        const server = httpServer;
        await new Promise<void>((done) => {
          server.close(() => done());
          // SSE streams never end on their own
          server.closeAllConnections();
        });
      }
      await shutdownDemoMastra(mastra).catch(() => undefined);
    })();
    return closing;
  };

  try {
    // Mastra starts the background-task manager (and its restart recovery: stale `running` tasks
    // -> failed / pending) in its constructor without awaiting it; init() returns that same promise.
    const initStarted = Date.now();
    await mastra.backgroundTaskManager?.init(mastra.pubsub);
    const initMs = Date.now() - initStarted;

    const app = new Hono();
    const mastraServer = new MastraServer({ app, mastra });
    await mastraServer.init();

    httpServer = await new Promise<Server>((resolveListen, rejectListen) => {
      const server = serve({ fetch: app.fetch, port, hostname: host }) as Server;
      server.once('listening', () => resolveListen(server));
      server.once('error', rejectListen);
    });
    const actualPort = (httpServer.address() as AddressInfo).port;
    const url = `http://${displayHost(host)}:${actualPort}`;

    await startStandingTasks(
      mastra,
      {
        longTasks: opts.longTasks ?? 0,
        longTaskMs: opts.longTaskMs ?? DEFAULT_LONG_TASK_MS,
        suspendedTasks: opts.suspendedTasks ?? 0,
      },
      onWorkloadError,
    );

    if (rate > 0 && opts.maxTasks !== 0) {
      let stopping = false;
      workload = startWorkload(mastra, {
        ratePerSecond: rate,
        ...(opts.mix ? { mix: opts.mix } : {}),
        ...(opts.order ? { order: opts.order } : {}),
        ...(opts.maxTasks !== undefined ? { maxScenarios: opts.maxTasks } : {}),
        stopTimeoutMs: 5_000,
        onError: (err) => {
          if (!stopping) onWorkloadError(err);
        },
      });
      const stopWorkload = workload.stop.bind(workload);
      workload.stop = () => {
        stopping = true;
        return stopWorkload();
      };
    }

    return { url, port: actualPort, mastra, workload, initMs, close };
  } catch (err) {
    await close();
    throw err;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Configuration from the environment.

/** Parses `complete=6,fail=1,...`; scenarios not listed get weight 0. Throws on unknown names or bad numbers. */
export function parseMix(text: string): Record<Scenario, number> {
  const mix = Object.fromEntries(SCENARIOS.map((s) => [s, 0])) as Record<Scenario, number>;
  for (const part of text.split(',')) {
    const item = part.trim();
    if (item === '') continue;
    const eq = item.indexOf('=');
    const name = (eq < 0 ? item : item.slice(0, eq)).trim();
    const weightText = eq < 0 ? '1' : item.slice(eq + 1).trim();
    if (!(SCENARIOS as readonly string[]).includes(name)) {
      throw new Error(`DEMO_MIX: unknown scenario '${name}' (known: ${SCENARIOS.join(', ')})`);
    }
    const weight = Number(weightText);
    if (weightText === '' || !Number.isFinite(weight) || weight < 0) {
      throw new Error(`DEMO_MIX: bad weight '${weightText}' for ${name}`);
    }
    mix[name as Scenario] = weight;
  }
  if (!SCENARIOS.some((s) => mix[s] > 0)) throw new Error(`DEMO_MIX: no scenario has a positive weight: '${text}'`);
  return mix;
}

function envNumber(env: NodeJS.ProcessEnv, name: string, opts: { integer?: boolean; min?: number } = {}): number | undefined {
  const raw = env[name]?.trim();
  if (raw === undefined || raw === '') return undefined;
  const value = Number(raw);
  if (!Number.isFinite(value) || (opts.integer && !Number.isInteger(value)) || value < (opts.min ?? 0)) {
    throw new Error(`${name}: expected ${opts.integer ? 'an integer' : 'a number'} >= ${opts.min ?? 0}, got '${raw}'`);
  }
  return value;
}

function envString(env: NodeJS.ProcessEnv, name: string): string | undefined {
  const raw = env[name]?.trim();
  return raw === undefined || raw === '' ? undefined : raw;
}

const PROTOCOLS: readonly ExportProtocol[] = ['http/protobuf', 'http/json', 'grpc'];

/** Reads DemoServerOptions from DEMO_* and OTEL_EXPORTER_OTLP_* variables. Throws on invalid values. */
export function demoServerOptionsFromEnv(env: NodeJS.ProcessEnv = process.env): DemoServerOptions {
  const opts: DemoServerOptions = {};
  const port = envNumber(env, 'DEMO_PORT', { integer: true });
  if (port !== undefined) {
    if (port > 65_535) throw new Error(`DEMO_PORT: out of range: ${port}`);
    opts.port = port;
  }
  const host = envString(env, 'DEMO_HOST');
  if (host) opts.host = host;
  const storageUrl = envString(env, 'DEMO_STORAGE_URL');
  if (storageUrl) opts.storageUrl = storageUrl;
  const pubsubSocket = envString(env, 'DEMO_PUBSUB_SOCKET');
  if (pubsubSocket) opts.pubsubSocket = pubsubSocket;
  const replica = envString(env, 'DEMO_REPLICA');
  if (replica) {
    if (replica !== 'true' && replica !== 'false') throw new Error(`DEMO_REPLICA: expected true or false, got '${replica}'`);
    opts.replica = replica === 'true';
  }
  const token = envString(env, 'DEMO_TOKEN');
  if (token) opts.token = token;
  const serviceName = envString(env, 'DEMO_SERVICE_NAME');
  if (serviceName) opts.serviceName = serviceName;

  const otlpEndpoint = envString(env, 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT') ?? envString(env, 'OTEL_EXPORTER_OTLP_ENDPOINT');
  if (otlpEndpoint) opts.otlpEndpoint = otlpEndpoint;
  const protocol = envString(env, 'OTEL_EXPORTER_OTLP_TRACES_PROTOCOL') ?? envString(env, 'OTEL_EXPORTER_OTLP_PROTOCOL');
  if (protocol) {
    if (!(PROTOCOLS as readonly string[]).includes(protocol)) {
      throw new Error(`OTEL_EXPORTER_OTLP_PROTOCOL: expected one of ${PROTOCOLS.join(', ')}, got '${protocol}'`);
    }
    opts.otlpProtocol = protocol as ExportProtocol;
  }

  const rate = envNumber(env, 'DEMO_RATE');
  if (rate !== undefined) opts.rate = rate;
  const maxTasks = envNumber(env, 'DEMO_MAX_TASKS', { integer: true });
  if (maxTasks !== undefined) opts.maxTasks = maxTasks;
  const mix = envString(env, 'DEMO_MIX');
  if (mix) opts.mix = parseMix(mix);
  const order = envString(env, 'DEMO_ORDER');
  if (order) {
    if (order !== 'random' && order !== 'interleaved') throw new Error(`DEMO_ORDER: expected random or interleaved, got '${order}'`);
    opts.order = order;
  }
  const longTasks = envNumber(env, 'DEMO_LONG_TASKS', { integer: true });
  if (longTasks !== undefined) opts.longTasks = longTasks;
  const longTaskMs = envNumber(env, 'DEMO_LONG_TASK_MS', { integer: true });
  if (longTaskMs !== undefined) opts.longTaskMs = longTaskMs;
  const suspendedTasks = envNumber(env, 'DEMO_SUSPENDED_TASKS', { integer: true });
  if (suspendedTasks !== undefined) opts.suspendedTasks = suspendedTasks;
  const concurrency = envNumber(env, 'DEMO_CONCURRENCY', { integer: true, min: 1 });
  if (concurrency !== undefined) opts.concurrency = concurrency;
  return opts;
}

/** The startup line: URL, auth, storage, OTLP and workload. */
export function describeDemoServer(server: Pick<DemoServer, 'url'>, opts: DemoServerOptions): string {
  const storage = !opts.storageUrl
    ? 'in-memory'
    : isPostgresUrl(opts.storageUrl)
      ? `postgresql ${opts.storageUrl.replace(/\/\/[^@/]*@/, '//***@')}`
      : `libsql ${opts.storageUrl}`;
  const otlp = opts.otlpEndpoint ? `${opts.otlpEndpoint} (${opts.otlpProtocol ?? 'http/protobuf'})` : 'off';
  const rate = opts.rate ?? 2;
  const workload =
    rate > 0 && opts.maxTasks !== 0 ? `${rate}/s${opts.maxTasks !== undefined ? `, max ${opts.maxTasks}` : ''}` : 'off';
  return (
    `mastra demo server listening on ${server.url} (api: ${server.url}/api; auth: ${opts.token ? 'on' : 'off'}; ` +
    `storage: ${storage}; otlp: ${otlp}; workload: ${workload})`
  );
}

async function main(): Promise<void> {
  let opts: DemoServerOptions;
  try {
    opts = demoServerOptionsFromEnv();
  } catch (err) {
    console.error(`[mastra-demo] ${describeError(err)}`);
    process.exit(2);
  }
  const server = await startDemoServer(opts);
  console.log(describeDemoServer(server, opts));

  let shuttingDown = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (shuttingDown) {
      // a second signal: give up on the graceful path
      process.exit(1);
    }
    shuttingDown = true;
    console.log(`[mastra-demo] ${signal}: shutting down`);
    server.close().then(
      () => process.exit(0),
      (err: unknown) => {
        console.error(`[mastra-demo] shutdown failed: ${describeError(err)}`);
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
}

function isMainModule(): boolean {
  const entry = process.argv[1];
  if (!entry) return false;
  try {
    return realpathSync(resolve(entry)) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isMainModule()) {
  main().catch((err: unknown) => {
    console.error(`[mastra-demo] failed to start: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    process.exit(1);
  });
}
