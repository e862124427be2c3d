// The register of fast paths: places where the bridge reaches into a library's private parts (pinned versions) to go
// faster or to see more, and falls back to the library's public API when those parts are not what it expects.
//
// Owns: the names of the fast paths, what each one relies on, whether each is active in this process, and how often a
// per-call fast path fell back. Each fenced module reports here (otel-sdk-internals.ts, otlp-encode.ts through
// telemetry.ts, prom-fast.ts through metrics.ts); startBridge logs the register at start and metrics.ts exposes it
// (mastra_task_bridge_fast_path_info, mastra_task_bridge_fast_path_fallbacks_total). Must not: know how any fast path
// works. The upgrade policy for the libraries behind them is in docs/upgrading.md.

import type { Logger } from 'pino';

export const FAST_PATHS = {
  otel_direct_span:
    '@opentelemetry/sdk-trace-base 2.12 tracer fields (_resource, instrumentationScope, _sampler, _spanLimits, _spanProcessor) and a hand-built ReadableSpan; else tracer.startSpan()',
  otel_queue_full_count: '@opentelemetry/sdk-trace-base 2.12 BatchSpanProcessor._droppedSpansCount; else queue_full drops are not counted',
  otlp_encoder: "the bridge's OTLP/protobuf encoder (src/otlp-encode.ts, bytes of @opentelemetry/otlp-transformer 0.223); else ProtobufTraceSerializer",
  otlp_retry_after_guard:
    '@opentelemetry/otlp-exporter-base 0.223 exporter._delegate._transport._transport (a Retry-After: 0 retry made a negative timeout); else Node 23+ warns on each such retry',
  prom_client_series: 'prom-client 15.1 Counter/Histogram internals written at scrape time (src/prom-fast.ts); else inc()/observe()',
} as const;

export type FastPath = keyof typeof FAST_PATHS;

/** The start log line: every reported path at info, and a warning naming each one that is off. */
export function logFastPaths(logger: Pick<Logger, 'info' | 'warn'>, fastPaths: FastPaths): void {
  logger.info({ fastPaths: fastPaths.summary() }, 'fast paths');
  for (const s of fastPaths.list()) {
    if (!s.active) logger.warn({ path: s.path, reason: s.reason, relies_on: FAST_PATHS[s.path] }, 'fast path off: using the library\'s public path (slower or less visible); see docs/upgrading.md');
  }
}

export interface FastPathState {
  path: FastPath;
  active: boolean;
  /** Why it is not active (absent when active). */
  reason?: string;
}

export class FastPaths {
  private readonly states = new Map<FastPath, FastPathState>();
  private readonly fallbackCounts = new Map<FastPath, number>();

  /** Whether a fast path is in use; the last report of a path wins. */
  report(path: FastPath, active: boolean, reason?: string): void {
    this.states.set(path, active || reason === undefined ? { path, active } : { path, active, reason });
  }

  /** One call of a per-call fast path went the library's way instead (e.g. a request the encoder did not expect). */
  fallback(path: FastPath, n = 1): void {
    this.fallbackCounts.set(path, (this.fallbackCounts.get(path) ?? 0) + n);
  }

  /** The reported paths, in FAST_PATHS order. */
  list(): FastPathState[] {
    return (Object.keys(FAST_PATHS) as FastPath[]).flatMap((p) => {
      const s = this.states.get(p);
      return s ? [s] : [];
    });
  }

  fallbacks(path: FastPath): number {
    return this.fallbackCounts.get(path) ?? 0;
  }

  /** For the start log: `{ otel_direct_span: 'active', otlp_encoder: 'off: <reason>' }`. */
  summary(): Record<string, string> {
    const out: Record<string, string> = {};
    for (const s of this.list()) out[s.path] = s.active ? 'active' : `off: ${s.reason ?? 'not used'}`;
    return out;
  }
}
