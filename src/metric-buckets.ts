// Histogram bucket choices (seconds), apart from metrics.ts so that loading the configuration (whose defaults they
// are) does not load prom-client.
//
// Durations reach past Mastra's default 5-minute timeout up to an hour: a task stuck at its timeout must land in a
// finite bucket, not only in +Inf. Queue waits are short unless concurrency saturates. Suspensions wait for a human or
// another system: minutes to a day.
export const DEFAULT_DURATION_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600];
export const DEFAULT_QUEUE_WAIT_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300];
export const DEFAULT_SUSPENDED_BUCKETS = [1, 5, 15, 30, 60, 300, 900, 1800, 3600, 4 * 3600, 12 * 3600, 86400];
