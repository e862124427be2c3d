// Library entry: embed the bridge in a Mastra app (`startBridge({ mastra })`) or build on its parts.
export { startBridge, type BridgeHandle, type StartBridgeOptions } from './bridge.js';
export { loadConfig, parseConfig, ConfigSchema, ConfigError, ENV_VARS, type BridgeConfig, type ConfigInput } from './config.js';
export { parseEvent, parseFrame, parseTaskRecord, type TaskEvent, type TaskRecord, type FinalStatus } from './events.js';
export { TaskTracker, type FinishedTask, type OpenTask, type Transition } from './tracker.js';
export { BridgeMetrics, METRIC_NAMES } from './metrics.js';
export { runTraceId, taskSpanId, taskTraceId } from './span-ids.js';
export { spanName } from './spans.js';
export { InProcessSource, type MastraLike } from './sources/in-process.js';
export type { TaskSource, SourceSink, TaskQuery, TaskPage, SpanRef } from './sources/types.js';
export { SourceError } from './sources/types.js';
export { buildApp } from './http/app.js';
export type { BridgeStatus } from './status.js';
export { VERSION } from './version.js';
