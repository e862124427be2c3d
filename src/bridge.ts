// startBridge(): composes one bridge instance — source, tracker, pipeline, metrics, tracing, HTTP app — and returns a
// handle. It never listens on a port (main.ts does, or the embedding app mounts/starts `handle.app` itself).

import type { FastifyInstance } from 'fastify';
import pino, { type Logger } from 'pino';
import { type ConfigInput, type BridgeConfig, parseConfig, sourceServers, tracesUrl } from './config.js';
import { FastPaths, logFastPaths } from './fast-paths.js';
import { EventFeed } from './event-feed.js';
import { EventHub } from './event-hub.js';
import { Checkpoint } from './checkpoint.js';
import { buildApp } from './http/app.js';
import type { BridgeStatus } from './status.js';
import { BridgeMetrics } from './metrics.js';
import type { Pipeline } from './pipeline.js';
import { maxLagFor, Reconciler } from './reconcile.js';
import { SpanIndex } from './span-index.js';
import type { TaskSink } from './sinks.js';
import { InProcessSource, type MastraLike } from './sources/in-process.js';
import { RemoteSource } from './sources/remote.js';
import type { TaskSource } from './sources/types.js';
import { SourceSession } from './source-session.js';
import { StreamMerge } from './stream-merge.js';
import { Fleet, type Resolver } from './fleet.js';
import { type Tracing, createTracing } from './telemetry.js';
import { TaskTracker } from './tracker.js';
import { VERSION } from './version.js';
import { trackerOptions, wirePipeline } from './wiring.js';
import { LogThrottle } from './log-throttle.js';

export { trackerOptions } from './wiring.js';

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
  /** DNS discovery's resolver (tests); default Node's system resolver. */
  resolve?: Resolver;
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
  /** Run one reconciliation pass now (tests, operators' tools); resolves when it ends. */
  reconcileNow(): Promise<void>;
  /** The Mastra servers followed, each with its session. */
  readonly fleet: Fleet;
  /** Stop the source, finish in-flight tasks, flush spans, close HTTP. Idempotent. */
  close(): Promise<void>;
}

/** A source's short name, the value of the `source` label: `host:port` of a remote server, else its kind. */
export function sourceKey(source: TaskSource): string {
  const m = /https?:\/\/([^/\s]+)/.exec(source.description);
  return source.kind === 'remote' && m ? m[1]! : source.kind;
}

export function startBridge(options: StartBridgeOptions): BridgeHandle {
  const config = parseConfig(options.config);
  const logger = options.logger ?? pino({ level: config.log.level, name: 'mastra-task-bridge' });
  const now = options.now ?? Date.now;
  const fixed: TaskSource | undefined = options.source ?? (options.mastra ? new InProcessSource(options.mastra) : undefined);
  const servers = fixed ? [] : sourceServers(config);
  if (!fixed && servers.length === 0) {
    throw new Error('startBridge needs { mastra } (in process), { source }, or config.source.mastraUrl (a remote Mastra server)');
  }
  const sourceLog = logger.child({ component: 'source' });
  // Every server followed is a fleet member with a session of its own; one plain URL is a fleet of one, as before.
  const fleet = new Fleet({
    servers,
    makeSource: (baseUrl) =>
      new RemoteSource({
        baseUrl,
        apiPrefix: config.source.apiPrefix,
        token: config.source.token || undefined,
        maxFrameBytes: config.source.maxFrameBytes,
        maxResponseBytes: config.source.maxResponseBytes,
        requestTimeoutMs: config.source.requestTimeoutMs,
        backoff: config.source.reconnect,
        logger: servers.length > 1 || servers[0]!.startsWith('dns+') ? sourceLog.child({ source: new URL(baseUrl).host }) : sourceLog,
      }),
    makeSession: (key, src) => newSession(key, src),
    dropped: (key) => metrics.forgetSource(key),
    logger: logger.child({ component: 'discovery' }),
    refreshMs: config.source.discovery.refreshSeconds * 1000,
    ...(options.resolve ? { resolve: options.resolve } : {}),
  });
  const source: TaskSource = fixed ?? fleet;
  const mode = options.mode ?? (source.kind === 'remote' ? 'remote' : 'in-process');

  const tracker = new TaskTracker(trackerOptions(config));
  const hub = new EventHub({ bufferSize: config.events.bufferSize, recentFinished: 200 });
  // Library bypasses report here (fast-paths.ts): logged below, exposed as mastra_task_bridge_fast_path_info.
  const fastPaths = options.tracing?.fastPaths ?? new FastPaths();
  const metrics = new BridgeMetrics({
    version: VERSION,
    fastPaths,
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
  const futureLog = new LogThrottle();
  const checkpoint = config.state.checkpointFile
    ? new Checkpoint(config.state.checkpointFile, config.state.checkpointWindowSeconds * 1000, {
        now,
        onFutureDated: (taskId, completedAt) => {
          metrics.futureTimestamp('checkpoint');
          if (futureLog.take()) {
            logger.warn(
              { checkpoint: config.state.checkpointFile, taskId, completedAt, clamped: futureLog.count },
              'task completed in the future (clock skew or a bad record): kept in the checkpoint, but not as its watermark',
            );
          }
        },
      })
    : undefined;
  let scanFrom = now();
  if (checkpoint) {
    const saved = checkpoint.load();
    if (saved && saved.corruptLines > 0) {
      logger.warn({ checkpoint: checkpoint.path, corruptLines: saved.corruptLines }, 'checkpoint had torn or corrupt lines: skipped (the file is rewritten)');
    }
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
  // A dead collector must not flood the log.
  const exportFailureLog = new LogThrottle();
  const queueFullLog = new LogThrottle(5, 1000);
  const tracing =
    options.tracing ??
    createTracing(
      {
        serviceName: config.otel.serviceName,
        serviceVersion: VERSION,
        tracesUrl: tracesUrl(config),
        protocol: config.otel.protocol,
        timeoutMs: config.otel.timeoutMs,
        fastPaths,
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
        if (outcome === 'failed' && exportFailureLog.take()) {
          exportLog.warn({ err: error, spans: count }, 'span export failed; spans in this batch are lost');
        }
        if (outcome === 'queue_full' && queueFullLog.take()) {
          exportLog.warn(
            { maxQueueSize: config.otel.batch.maxQueueSize, dropped: queueFullLog.count },
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
  const enrichFailureLog = new LogThrottle();
  // The task API shows each task's span ids: exact for spans written, derived for open tasks.
  const spanIndex = new SpanIndex({ maxEntries: config.tracker.maxFinishedIds, mode: config.traces.parent, isOpen: (id) => tracker.get(id) !== undefined });
  const abort = new AbortController();
  const { pipeline } = wirePipeline(config, {
    source,
    closing: abort.signal,
    // Several streams may carry the same events (replicas sharing a pubsub): merge them (stream-merge.ts).
    ...(fleet.multi ? { merge: new StreamMerge(config.tracker.maxOpenTasks) } : {}),
    tracker,
    metrics,
    tracing,
    logger: logger.child({ component: 'pipeline' }),
    now,
    enrichmentFailed: (reason, taskId, error) => {
      metrics.enrichmentFailed(reason);
      if (enrichFailureLog.take()) {
        enrichLog.warn({ reason, taskId, err: error }, 'task lookup failed; its span lacks thread, resource and queue data');
      }
    },
    sinks: [
      new EventFeed(hub, { exporting: tracing.exporting, holdForLookup: config.enrichment.enabled }),
      spanIndex,
      ...(options.sinks ?? []),
      // Without an exporter there is no acknowledgement to wait for: a task is done when its telemetry is recorded.
      ...(checkpoint && !tracing.exporting ? [{ finished: (t: { taskId: string; completedAt: number }) => recordCheckpoint([t]) }] : []),
    ],
  });
  // Every fast path has reported by now (the exporter in createTracing, the span writer in wirePipeline).
  logFastPaths(logger, fastPaths);
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

  const readyWaiters = new Set<() => void>();
  function newSession(key: string, src: TaskSource): SourceSession {
    metrics.sourceUp(key, false);
    return new SourceSession({
      key,
      description: src.description,
      target: pipeline,
      // A replica's store is found out on connect (one listTasks, not one per pass); then the shared pass runs.
      sync: fleet.multi ? async (signal) => {
        await fleet.place(key, signal).catch((error) => sourceLog.warn({ err: error, source: key }, 'could not tell which store this Mastra server uses; retrying at its next sync'));
        await rec.pass(signal);
      } : (signal) => rec.pass(signal),
      up: (up) => metrics.sourceUp(key, up),
      reconnect: (why) => metrics.sourceReconnect(key, why),
      changed: () => {
        if (!isReady()) return;
        for (const w of [...readyWaiters]) w();
      },
      openTasks: () => tracker.size,
      logger: fleet.multi ? sourceLog.child({ source: key }) : sourceLog,
      now,
    });
  }
  const sessions = (): SourceSession[] => fleet.list().map((m) => m.session);
  // A fleet is ready while at least one server is connected and synced: reconciliation covers a dead replica's
  // store, and the per-source metrics page for it (README, "Several Mastra replicas").
  const isReady = (): boolean => sessions().some((x) => x.ready);

  const status = (): BridgeStatus => {
    const all = sessions().map((x) => x.status());
    const ready = all.some((x) => x.connected && x.synced);
    const s: BridgeStatus = {
      mode,
      source: source.description,
      version: VERSION,
      connected: all.some((x) => x.connected),
      synced: ready,
      openTasks: tracker.size,
      tracesExported: tracing.exporting,
    };
    if (!ready) {
      const why = all.find((x) => x.connected)?.reason ?? all[0]?.reason;
      s.reason = all.length === 0 ? 'no Mastra server found yet (discovery has no address for the name)' : all.length > 1 ? `no Mastra server ready (${all.map((x) => `${x.key}: ${x.reason ?? 'not ready'}`).join('; ')})` : (why ?? 'not ready');
    }
    if (fleet.multi) s.sources = all.map((x) => ({ source: x.key, connected: x.connected, synced: x.synced, ...(x.reason ? { reason: x.reason } : {}) }));
    return s;
  };

  if (fixed) fleet.addFixed({ key: sourceKey(fixed), source: fixed });
  else fleet.start();
  const pruneTimer = setInterval(() => tracker.prune(now()), 30_000);
  pruneTimer.unref();
  // Periodic reconciliation while connected (one also runs after every connect).
  const reconcileTimer = setInterval(() => {
    if (!isReady()) return;
    void fleet
      .settle(abort.signal)
      .then(() => rec.pass(abort.signal))
      .catch((error) => sourceLog.warn({ err: error }, 'reconciliation pass failed'));
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
    fleet,
    whenReady(timeoutMs = 30_000) {
      if (isReady()) return Promise.resolve();
      return new Promise((resolve, reject) => {
        const t = setTimeout(() => {
          readyWaiters.delete(done);
          reject(new Error(`bridge not ready after ${timeoutMs} ms: ${status().reason ?? 'unknown'}`));
        }, timeoutMs);
        const done = (): void => {
          clearTimeout(t);
          readyWaiters.delete(done);
          resolve();
        };
        readyWaiters.add(done);
      });
    },
    async idle() {
      await Promise.all(sessions().map((x) => x.drained()));
      await pipeline.idle();
    },
    reconcileNow() {
      return fleet.settle(abort.signal).then(() => rec.pass(abort.signal));
    },
    close() {
      closing ??= (async () => {
        clearInterval(pruneTimer);
        clearInterval(reconcileTimer);
        abort.abort();
        await fleet.stop();
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
