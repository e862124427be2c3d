// startBridge(): composes one bridge instance — source, tracker, pipeline, metrics, tracing, HTTP app — and returns a
// handle. It never listens on a port (main.ts does, or the embedding app mounts/starts `handle.app` itself).

import type { FastifyInstance } from 'fastify';
import pino, { type Logger } from 'pino';
import { type BridgeConfig, type ConfigInput, parseConfig, tracesUrl } from './config.js';
import { Enricher } from './enrichment.js';
import { EventFeed } from './event-feed.js';
import { EventHub } from './event-hub.js';
import { Checkpoint } from './checkpoint.js';
import { ChunkBatch } from './chunk-batch.js';
import { type BridgeStatus, buildApp } from './http/app.js';
import { BridgeMetrics } from './metrics.js';
import { Pipeline } from './pipeline.js';
import { PlacementResolver } from './placement.js';
import { maxLagFor, Reconciler } from './reconcile.js';
import { SpanIndex } from './span-index.js';
import type { TaskSink } from './sinks.js';
import { InProcessSource, type MastraLike } from './sources/in-process.js';
import { RemoteSource } from './sources/remote.js';
import type { SourceSink, TaskSource } from './sources/types.js';
import { SpanWriter } from './spans.js';
import { type Tracing, createTracing } from './telemetry.js';
import { TaskTracker, type TrackerOptions } from './tracker.js';
import { VERSION } from './version.js';

export interface StartBridgeOptions {
  /** An in-process Mastra with background tasks enabled. */
  mastra?: MastraLike;
  /** Or any source (e.g. a remote Mastra server). */
  source?: TaskSource;
  /** Partial configuration; validated with the same schema as the file (defaults fill the rest). */
  config?: ConfigInput;
  logger?: Logger;
  /** Shown on `/` and in logs. */
  mode?: BridgeStatus['mode'];
  /** Replace the OTel wiring (tests, benchmarks). */
  tracing?: Tracing;
  /** Extra observers of finished tasks. */
  sinks?: TaskSink[];
  now?: () => number;
}

export interface BridgeHandle {
  readonly config: BridgeConfig;
  readonly app: FastifyInstance;
  readonly metrics: BridgeMetrics;
  readonly registry: BridgeMetrics['registry'];
  readonly tracker: TaskTracker;
  readonly pipeline: Pipeline;
  readonly source: TaskSource;
  readonly tracing: Tracing;
  /** The task events behind `/api/events` and the board. */
  readonly events: EventHub;
  status(): BridgeStatus;
  /** Resolves once connected and synced; rejects after `timeoutMs`. */
  whenReady(timeoutMs?: number): Promise<void>;
  /** Resolves when every finished task seen so far has its span and terminal count. */
  idle(): Promise<void>;
  /** Stop the source, finish in-flight tasks, flush spans, close HTTP. Idempotent. */
  close(): Promise<void>;
}

/** The tracker's options from the configuration (the bridge and the benchmark build their tracker alike). */
export function trackerOptions(config: BridgeConfig): Partial<TrackerOptions> {
  return {
    maxOpenTasks: config.tracker.maxOpenTasks,
    dedupeWindowMs: config.tracker.dedupeWindowSeconds * 1000,
    maxTombstones: config.tracker.maxFinishedIds,
    maxOutputEvents: config.traces.maxOutputEvents,
    keepArgs: config.traces.recordArgs,
    keepOutput: config.traces.recordOutput,
  };
}

export function startBridge(options: StartBridgeOptions): BridgeHandle {
  const config = parseConfig(options.config);
  const logger = options.logger ?? pino({ level: config.log.level, name: 'mastra-task-bridge' });
  const now = options.now ?? Date.now;
  let source: TaskSource;
  if (options.source) source = options.source;
  else if (options.mastra) source = new InProcessSource(options.mastra);
  else if (config.source.mastraUrl) {
    source = new RemoteSource({
      baseUrl: config.source.mastraUrl,
      apiPrefix: config.source.apiPrefix,
      token: config.source.token || undefined,
      maxFrameBytes: config.source.maxFrameBytes,
      requestTimeoutMs: config.source.requestTimeoutMs,
      backoff: config.source.reconnect,
      logger: logger.child({ component: 'source' }),
    });
  } else throw new Error('startBridge needs { mastra } (in process), { source }, or config.source.mastraUrl (a remote Mastra server)');
  const mode = options.mode ?? (source.kind === 'remote' ? 'remote' : 'in-process');

  const tracker = new TaskTracker(trackerOptions(config));
  const hub = new EventHub({ bufferSize: config.events.bufferSize, recentFinished: 200 });
  const metrics = new BridgeMetrics({
    version: VERSION,
    durationBuckets: config.metrics.durationBuckets,
    queueWaitBuckets: config.metrics.queueWaitBuckets,
    suspendedBuckets: config.metrics.suspendedBuckets,
    maxLabelValues: config.metrics.maxLabelValues,
    maxSeries: config.metrics.maxSeries,
    defaultMetrics: config.metrics.defaultMetrics,
    openTasks: () => tracker.openCounts(),
    scanOpenTasks: () => tracker.openTasks(),
    pendingTasks: () => reconciler?.pending() ?? [],
    sseClients: () => hub.subscriberCount,
    now,
  });
  let reconciler: Reconciler | undefined;

  // Restart checkpoint: tasks exported before a restart count as finished; the scan backfills the rest.
  const checkpoint = config.state.checkpointFile ? new Checkpoint(config.state.checkpointFile, config.state.checkpointWindowSeconds * 1000) : undefined;
  let scanFrom = now();
  if (checkpoint) {
    const saved = checkpoint.load();
    const from = saved ? checkpoint.backfillFrom(saved) : undefined;
    if (saved && from !== undefined) {
      tracker.rememberFinished(saved.exported.keys(), now());
      scanFrom = from;
      logger.info(
        { checkpoint: checkpoint.path, watermark: saved.watermark > 0 ? new Date(saved.watermark).toISOString() : undefined, exported: saved.exported.size, backfillFrom: new Date(from).toISOString() },
        'checkpoint loaded; backfilling tasks finished since',
      );
    } else if (saved) {
      tracker.rememberFinished(saved.exported.keys(), now());
      checkpoint.create(now()); // from now on it has a creation time: the next restart backfills from here
      logger.warn({ checkpoint: checkpoint.path }, 'checkpoint has exported nothing and has no creation time: starting fresh, no backfill');
    } else {
      checkpoint.create(now());
      logger.info({ checkpoint: checkpoint.path }, 'no checkpoint yet; starting fresh');
    }
  }
  const exportLog = logger.child({ component: 'otlp' });
  let exportFailuresLogged = 0;
  let queueFullLogged = 0;
  const tracing =
    options.tracing ??
    createTracing(
      {
        serviceName: config.otel.serviceName,
        serviceVersion: VERSION,
        tracesUrl: tracesUrl(config),
        protocol: config.otel.protocol,
        timeoutMs: config.otel.timeoutMs,
        batch: {
          maxQueueSize: config.otel.batch.maxQueueSize,
          maxExportBatchSize: Math.min(config.otel.batch.maxExportBatchSize, config.otel.batch.maxQueueSize),
          scheduledDelayMillis: config.otel.batch.scheduledDelayMs,
          exportTimeoutMillis: config.otel.batch.exportTimeoutMs,
        },
      },
      (outcome, count, error) => {
        metrics.spanOutcome(outcome, count);
        // A dead collector must not flood the log: the first failures, then one in a hundred.
        if (outcome === 'failed' && (exportFailuresLogged++ < 5 || exportFailuresLogged % 100 === 0)) {
          exportLog.warn({ err: error, spans: count }, 'span export failed; spans in this batch are lost');
        }
        if (outcome === 'queue_full' && (queueFullLogged++ < 5 || queueFullLogged % 1000 === 0)) {
          exportLog.warn(
            { maxQueueSize: config.otel.batch.maxQueueSize, dropped: queueFullLogged },
            'span queue full (the collector is slower than the task rate): span dropped; raise otel.batch.maxQueueSize or check the collector',
          );
        }
      },
      checkpoint
        ? (spans) => {
            const entries = [];
            for (const span of spans) {
              const taskId = span.attributes['mastra.background_task.id'];
              if (typeof taskId === 'string') entries.push({ taskId, completedAt: span.endTime[0] * 1000 + Math.floor(span.endTime[1] / 1e6) });
            }
            recordCheckpoint(entries);
          }
        : undefined,
    );
  function recordCheckpoint(entries: { taskId: string; completedAt: number }[]): void {
    try {
      checkpoint?.record(entries);
    } catch (error) {
      logger.error({ err: error, checkpoint: checkpoint?.path }, 'writing the checkpoint failed');
    }
  }
  if (!tracing.exporting) {
    logger.info(
      config.otel.tracesExporter === 'none'
        ? 'traces exporter is none (otel.tracesExporter / OTEL_TRACES_EXPORTER / OTEL_SDK_DISABLED): spans are not exported; metrics are served as usual'
        : 'no OTLP endpoint configured (otel.endpoint / OTEL_EXPORTER_OTLP_ENDPOINT): spans are not exported; metrics are served as usual',
    );
  }

  const enrichLog = logger.child({ component: 'enrichment' });
  let enrichFailuresLogged = 0;
  const enricher = new Enricher(source, config.enrichment, (reason, taskId, error) => {
    metrics.enrichmentFailed(reason);
    if (enrichFailuresLogged++ < 5 || enrichFailuresLogged % 100 === 0) {
      enrichLog.warn({ reason, taskId, err: error }, 'task lookup failed; its span lacks thread, resource and queue data');
    }
  });
  const placement = new PlacementResolver(source, {
    mode: config.traces.parent,
    attempts: config.traces.lookupAttempts,
    retryDelayMs: config.traces.lookupRetryDelayMs,
    timeoutMs: config.enrichment.timeoutMs,
  });
  const spans = new SpanWriter(tracing, {
    recordArgs: config.traces.recordArgs,
    recordResult: config.traces.recordResult,
    recordOutput: config.traces.recordOutput,
    maxPayloadLength: config.traces.maxPayloadLength,
    maxStackLength: Math.max(config.traces.maxPayloadLength, 4096),
    errorMessage: config.traces.errorMessage,
  });
  // The task API shows each task's span ids: exact for spans written, derived for open tasks.
  const spanIndex = new SpanIndex({ maxEntries: config.tracker.maxFinishedIds, mode: config.traces.parent, isOpen: (id) => tracker.get(id) !== undefined });
  const pipeline = new Pipeline({
    tracker,
    metrics,
    spans,
    enricher,
    placement,
    logger: logger.child({ component: 'pipeline' }),
    exporting: tracing.exporting,
    maxFrameBytes: config.source.maxFrameBytes,
    now,
    sinks: [
      new EventFeed(hub, { exporting: tracing.exporting, holdForLookup: config.enrichment.enabled }),
      spanIndex,
      ...(options.sinks ?? []),
      // Without an exporter there is no acknowledgement to wait for: a task is done when its telemetry is recorded.
      ...(checkpoint && !tracing.exporting ? [{ finished: (t: { taskId: string; completedAt: number }) => recordCheckpoint([t]) }] : []),
    ],
  });
  reconciler = new Reconciler(
    { source, pipeline, tracker, metrics, logger: logger.child({ component: 'reconcile' }), now, scanFrom },
    {
      perPage: config.reconcile.perPage,
      maxPages: config.reconcile.maxPages,
      overlapMs: config.reconcile.overlapSeconds * 1000,
      maxLookups: config.reconcile.maxLookups,
      maxLagMs: maxLagFor(config.tracker.dedupeWindowSeconds * 1000),
    },
  );
  const rec = reconciler;

  let connected = false;
  let synced = false;
  /** Connection attempts that failed since the last successful connect, and the reason last logged. */
  let failedAttempts = 0;
  let lastFailure: string | undefined;
  let reason: string | undefined = 'connecting to the Mastra background-task stream';
  let generation = 0;
  const readyWaiters = new Set<() => void>();
  const sourceLog = logger.child({ component: 'source' });
  const abort = new AbortController();

  const status = (): BridgeStatus => {
    const s: BridgeStatus = {
      mode,
      source: source.description,
      version: VERSION,
      connected,
      synced,
      openTasks: tracker.size,
      tracesExported: tracing.exporting,
    };
    if (!(connected && synced) && reason) s.reason = reason;
    return s;
  };

  // In-process chunks are handled once per event-loop turn, off Mastra's publish path (chunk-batch.ts says why).
  // Everything queued is handed over before a connect or disconnect is acted on, before idle() and on close.
  const chunks = new ChunkBatch(
    (c) => pipeline.chunk(c),
    (error) => sourceLog.error({ err: error }, 'handling a background-task chunk failed'),
  );
  const sink: SourceSink = {
    chunk: (c) => chunks.push(c),
    frame: (d) => {
      if (chunks.size > 0) chunks.flush();
      pipeline.frame(d);
    },
    dropped: (why, detail) => {
      if (chunks.size > 0) chunks.flush();
      pipeline.dropped(why, detail);
    },
    connected: () => {
      chunks.flush();
      connected = true;
      failedAttempts = 0;
      lastFailure = undefined;
      synced = false;
      reason = 'initial sync with Mastra not finished';
      metrics.sourceUp(true);
      const gen = ++generation;
      sourceLog.info({ source: source.description }, 'connected to the background-task stream');
      rec.pass(abort.signal).then(
        () => {
          if (gen !== generation || !connected) return;
          synced = true;
          reason = undefined;
          sourceLog.info({ openTasks: tracker.size }, 'initial sync applied; ready');
          for (const w of readyWaiters) w();
        },
        (error) => {
          if (gen !== generation || abort.signal.aborted) return;
          reason = `initial sync failed: ${(error as Error).message}`;
          sourceLog.warn({ err: error }, 'initial sync failed; open tasks will be picked up from the stream');
          // The stream is live and will correct itself; do not keep the bridge unready forever.
          synced = true;
          for (const w of readyWaiters) w();
        },
      );
    },
    disconnected: (why, error) => {
      chunks.flush();
      const wasConnected = connected;
      if (why !== 'stopped') metrics.sourceReconnect(why);
      connected = false;
      synced = false;
      generation++;
      reason = `disconnected: ${why}`;
      metrics.sourceUp(false);
      if (abort.signal.aborted) return;
      if (wasConnected) {
        sourceLog.warn({ reason: why, err: error }, 'background-task stream ended; reconnecting');
        return;
      }
      // A bridge that never gets through (wrong MASTRA_URL, port or prefix; Mastra down) must say so, without a line
      // per retry: the first failure of each kind, then every 20th. Rejected credentials are logged by the source.
      failedAttempts++;
      if (why !== 'unauthorized' && (why !== lastFailure || failedAttempts % 20 === 0)) {
        lastFailure = why;
        sourceLog.warn(
          { reason: why, err: error, attempts: failedAttempts, source: source.description },
          'cannot connect to the background-task stream; retrying with backoff',
        );
      }
    },
  };
  const running = source.run(sink, abort.signal).catch((error) => {
    sourceLog.error({ err: error }, 'source stopped unexpectedly');
  });
  const pruneTimer = setInterval(() => tracker.prune(now()), 30_000);
  pruneTimer.unref();
  // Periodic reconciliation while connected (one also runs after every connect).
  const reconcileTimer = setInterval(() => {
    if (connected && synced) void rec.pass(abort.signal).catch((error) => sourceLog.warn({ err: error }, 'reconciliation pass failed'));
  }, config.reconcile.intervalSeconds * 1000);
  reconcileTimer.unref();

  const app = buildApp({
    metrics,
    status,
    logger,
    events: {
      hub,
      heartbeatMs: config.events.heartbeatSeconds * 1000,
      maxClientBufferBytes: config.events.maxClientBufferBytes,
      maxClients: config.events.maxClients,
      connectLimit: config.events.connectLimit,
      openingDrainMs: config.events.openingDrainMs,
    },
    board: { traceUrlTemplate: config.board.traceUrlTemplate },
    auth: {
      apiTokens: config.api.tokens,
      metricsTokens: config.api.metricsToken ? [config.api.metricsToken] : [],
      allowAnonymous: config.api.allowAnonymous,
      failureLimit: config.api.failedAuthLimit,
    },
    tasks: { source, config: config.api, metrics, spans: spanIndex },
  });

  let closing: Promise<void> | undefined;
  const handle: BridgeHandle = {
    config,
    app,
    metrics,
    registry: metrics.registry,
    tracker,
    pipeline,
    source,
    tracing,
    events: hub,
    status,
    whenReady(timeoutMs = 30_000) {
      if (connected && synced) return Promise.resolve();
      return new Promise((resolve, reject) => {
        const t = setTimeout(() => {
          readyWaiters.delete(done);
          reject(new Error(`bridge not ready after ${timeoutMs} ms: ${status().reason ?? 'unknown'}`));
        }, timeoutMs);
        const done = () => {
          clearTimeout(t);
          readyWaiters.delete(done);
          resolve();
        };
        readyWaiters.add(done);
      });
    },
    async idle() {
      await chunks.drained();
      await pipeline.idle();
    },
    close() {
      closing ??= (async () => {
        clearInterval(pruneTimer);
        clearInterval(reconcileTimer);
        abort.abort();
        await running;
        chunks.flush();
        await Promise.race([pipeline.idle(), new Promise((r) => setTimeout(r, 10_000).unref())]);
        try {
          await tracing.forceFlush();
        } catch (error) {
          logger.warn({ err: error }, 'flushing spans failed');
        }
        await tracing.shutdown().catch(() => undefined);
        try {
          checkpoint?.compact();
        } catch (error) {
          logger.error({ err: error }, 'writing the checkpoint failed');
        }
        await app.close();
      })();
      return closing;
    },
  };
  return handle;
}
