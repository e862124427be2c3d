// How a pipeline is assembled from a configuration: tracker options, span writer, enrichment and placement. startBridge()
// and the benchmark both build their pipeline here, so what the benchmark measures is what the bridge runs.
//
// Owns: mapping configuration to the parts' options. Must not: start anything (no timers, no sources, no HTTP).

import type { Logger } from 'pino';
import type { BridgeConfig } from './config.js';
import { Enricher, type EnrichmentFailure } from './enrichment.js';
import type { BridgeMetrics } from './metrics.js';
import { Pipeline } from './pipeline.js';
import { PlacementResolver } from './placement.js';
import type { TaskSink } from './sinks.js';
import type { TaskSource } from './sources/types.js';
import { SpanWriter } from './spans.js';
import type { StreamMerge } from './stream-merge.js';
import type { Tracing } from './telemetry.js';
import { TaskTracker, type TrackerOptions } from './tracker.js';

/** The tracker's options from the configuration. */
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

export interface PipelineParts {
  /** Where lookups go (getTask and listTasks windows for enrichment, stored traces for placement). */
  source: Pick<TaskSource, 'getTask' | 'findToolCallSpan'> & Partial<Pick<TaskSource, 'listTasks'>>;
  metrics: BridgeMetrics;
  tracing: Tracing;
  logger: Logger;
  tracker?: TaskTracker;
  /** Replace the span writer (the benchmark's no-op stages). */
  spans?: SpanWriter;
  sinks?: TaskSink[];
  /** Exactly-once across several streams (a fleet of replicas). */
  merge?: StreamMerge;
  enrichmentFailed?: (reason: EnrichmentFailure, taskId: string, error?: unknown) => void;
  now?: () => number;
  /** The bridge closing: placement stops waiting for Mastra's spans and places at once (its fallback). */
  closing?: AbortSignal;
}

export interface WiredPipeline {
  pipeline: Pipeline;
  tracker: TaskTracker;
  spans: SpanWriter;
}

export function wirePipeline(config: BridgeConfig, parts: PipelineParts): WiredPipeline {
  const tracker = parts.tracker ?? new TaskTracker(trackerOptions(config));
  const spans =
    parts.spans ??
    new SpanWriter(parts.tracing, {
      recordArgs: config.traces.recordArgs,
      recordResult: config.traces.recordResult,
      recordOutput: config.traces.recordOutput,
      maxPayloadLength: config.traces.maxPayloadLength,
      maxStackLength: Math.max(config.traces.maxPayloadLength, 4096),
      errorMessage: config.traces.errorMessage,
    });
  const enricher = new Enricher(parts.source, config.enrichment, parts.enrichmentFailed ?? (() => undefined));
  const placement = new PlacementResolver(parts.source, {
    mode: config.traces.parent,
    attempts: config.traces.lookupAttempts,
    retryDelayMs: config.traces.lookupRetryDelayMs,
    timeoutMs: config.enrichment.timeoutMs,
    ...(parts.closing ? { closing: parts.closing } : {}),
  });
  const pipeline = new Pipeline({
    tracker,
    metrics: parts.metrics,
    spans,
    enricher,
    placement,
    logger: parts.logger,
    exporting: parts.tracing.exporting,
    maxFrameBytes: config.source.maxFrameBytes,
    ...(parts.now ? { now: parts.now } : {}),
    ...(parts.merge ? { merge: parts.merge } : {}),
    sinks: parts.sinks ?? [],
  });
  return { pipeline, tracker, spans };
}
