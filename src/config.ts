// Configuration: one typed schema, validated once. A YAML file (config/bridge.yaml documents every key) overridden by
// environment variables, the standard OTEL_* ones included. Every problem is reported at once, naming where the bad
// value came from; the CLI prints them and exits 1.

import { existsSync, readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { DEFAULT_DURATION_BUCKETS, DEFAULT_QUEUE_WAIT_BUCKETS, DEFAULT_SUSPENDED_BUCKETS } from './metric-buckets.js';

const buckets = (def: number[]) =>
  z
    .array(z.number().positive())
    .min(1)
    .refine((a) => a.every((v, i) => i === 0 || v > a[i - 1]!), 'buckets must be strictly increasing')
    .default(def);
/**
 * A number from YAML (a number) or an environment variable (a decimal string). Nothing else is converted: an empty or
 * blank value, null (a YAML key without a value), a boolean or a list is an error, never 0 or 1.
 */
const DECIMAL = /^\s*[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?\s*$/;
const num = () => z.preprocess((v) => (typeof v === 'string' && DECIMAL.test(v) ? Number(v) : v), z.number());
const int = (min: number, max: number) => num().pipe(z.number().int().min(min).max(max));
const url = z.union([z.literal(''), z.url({ protocol: /^https?$/ })]);
/** One Mastra server: `http(s)://host:port[/path]`, or `dns+http(s)://name:port` for every address of a DNS name. */
const serverUrl = z.url({ protocol: /^(dns\+)?https?$/, error: 'must be an http(s):// URL, or dns+http(s)://name:port for discovery' });
/** MASTRA_URL: one server URL or a comma-separated list of them; empty runs the embedded demo. */
const serverList = z.string().superRefine((v, ctx) => {
  for (const entry of splitList(v) as string[]) {
    const r = serverUrl.safeParse(entry);
    if (!r.success) ctx.addIssue({ code: 'custom', message: `${JSON.stringify(entry)}: ${r.error.issues[0]?.message ?? 'invalid URL'}` });
  }
});

/** A comma-separated list (from an environment variable) or a YAML list. */
const bool = () => z.preprocess((v) => (v === 'true' ? true : v === 'false' ? false : v), z.boolean());
const splitList = (v: unknown) => (typeof v === 'string' ? v.split(',').map((t) => t.trim()).filter((t) => t !== '') : v);
const token = z.string().min(16, 'tokens must be at least 16 characters').regex(/^[\x21-\x7e]+$/, 'tokens are printable ASCII without spaces');
/** What the task API may show of a task's payloads: each is removed unless allowed, and truncated when allowed. */
const maxBytes = int(16, 16 * 1024 * 1024);
const redactionRule = {
  args: z.boolean().default(false),
  result: z.boolean().default(false),
  suspendPayload: z.boolean().default(false),
  errorStack: z.boolean().default(false),
  /** error.message (and an allowed stack): secrets scrubbed, as stored, or not shown. */
  errorMessage: z.enum(['scrub', 'full', 'none']).default('scrub'),
  maxBytes: maxBytes.default(4096),
};
/** A tool's overrides: only the keys it sets; the rest come from the section. */
const toolRedactionRule = z.strictObject({
  args: z.boolean().optional(),
  result: z.boolean().optional(),
  suspendPayload: z.boolean().optional(),
  errorStack: z.boolean().optional(),
  errorMessage: z.enum(['scrub', 'full', 'none']).optional(),
  maxBytes: maxBytes.optional(),
});

export const ConfigSchema = z.strictObject({
  source: z
    .strictObject({
      /**
       * Remote Mastra server base URL, or a comma-separated list of them (one per replica; `dns+http://name:port`
       * follows every address of a DNS name); empty runs the embedded demo Mastra in process.
       */
      mastraUrl: serverList.default(''),
      /** More servers, as a YAML list (same forms as mastraUrl); followed together with mastraUrl's. */
      servers: z.array(serverUrl).default([]),
      /** DNS discovery (`dns+http://` entries): how often each name is resolved again. */
      discovery: z
        .strictObject({
          refreshSeconds: int(1, 86400).default(30),
        })
        .prefault({}),
      apiPrefix: z.string().regex(/^(\/[^\s]*)?$/, 'must be empty or start with /').default('/api'),
      token: z.string().default(''),
      /** SSE frames larger than this are dropped (counted as invalid). */
      maxFrameBytes: int(1024, 64 * 1024 * 1024).default(1024 * 1024),
      /** Decoded bytes a REST answer (getTask, listTasks, traces) may have; larger ones fail the lookup, counted. */
      maxResponseBytes: int(64 * 1024, 1024 * 1024 * 1024).default(8 * 1024 * 1024),
      /** Timeout of each REST lookup and of waiting for the stream's response headers. */
      requestTimeoutMs: int(100, 600_000).default(10_000),
      /** Reconnect backoff: min(maxMs, initialMs * 2^attempt), with jitter; 401/403 retry at maxMs. */
      reconnect: z
        .strictObject({
          initialMs: int(1, 600_000).default(250),
          maxMs: int(1, 3_600_000).default(30_000),
        })
        .prefault({}),
    })
    .prefault({}),
  http: z
    .strictObject({
      host: z.string().min(1).default('0.0.0.0'),
      port: int(0, 65535).default(9469),
    })
    .prefault({}),
  log: z
    .strictObject({
      level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    })
    .prefault({}),
  otel: z
    .strictObject({
      serviceName: z.string().min(1).default('mastra-task-bridge'),
      tracesExporter: z.enum(['otlp', 'none']).default('otlp'),
      /** Base OTLP/HTTP endpoint; `/v1/traces` is appended. */
      endpoint: url.default(''),
      /** Full traces URL; wins over `endpoint`. */
      tracesEndpoint: url.default(''),
      protocol: z.enum(['http/protobuf', 'http/json']).default('http/protobuf'),
      timeoutMs: int(100, 600_000).default(10_000),
      batch: z
        .strictObject({
          maxQueueSize: int(1, 1_000_000).default(8192),
          maxExportBatchSize: int(1, 100_000).default(512),
          scheduledDelayMs: int(0, 600_000).default(1000),
          exportTimeoutMs: int(100, 600_000).default(30_000),
        })
        .prefault({}),
    })
    .prefault({}),
  traces: z
    .strictObject({
      parent: z.enum(['auto', 'run', 'none']).default('auto'),
      lookupAttempts: int(1, 20).default(6),
      lookupRetryDelayMs: int(0, 60_000).default(250),
      recordArgs: z.boolean().default(false),
      recordResult: z.boolean().default(false),
      recordOutput: z.boolean().default(false),
      /** Span exception.message, status message and exception.stacktrace: secrets scrubbed, as stored, or left out. */
      errorMessage: z.enum(['scrub', 'full', 'none']).default('scrub'),
      maxPayloadLength: int(16, 1_000_000).default(2048),
      maxOutputEvents: int(0, 10_000).default(10),
    })
    .prefault({}),
  metrics: z
    .strictObject({
      maxLabelValues: int(1, 100_000).default(200),
      /** (agent_id, tool_name) pairs before new pairs fold into `_other`: bounds a scrape's size and time. */
      maxSeries: int(1, 100_000).default(1000),
      defaultMetrics: z.boolean().default(true),
      durationBuckets: buckets(DEFAULT_DURATION_BUCKETS),
      queueWaitBuckets: buckets(DEFAULT_QUEUE_WAIT_BUCKETS),
      suspendedBuckets: buckets(DEFAULT_SUSPENDED_BUCKETS),
    })
    .prefault({}),
  tracker: z
    .strictObject({
      maxOpenTasks: int(1, 10_000_000).default(100_000),
      dedupeWindowSeconds: int(1, 7 * 86400).default(900),
      maxFinishedIds: int(1, 10_000_000).default(100_000),
    })
    .prefault({}),
  enrichment: z
    .strictObject({
      enabled: z.boolean().default(true),
      concurrency: int(1, 256).default(4),
      maxQueue: int(1, 1_000_000).default(10_000),
      cacheSize: int(0, 1_000_000).default(10_000),
      timeoutMs: int(100, 600_000).default(5_000),
      /** Lookups gathered this long go as one listTasks date window (0: one getTask each); see src/enrichment.ts. */
      batchWindowMs: int(0, 10_000).default(0),
    })
    .prefault({}),
  reconcile: z
    .strictObject({
      /** Seconds between reconciliation passes (one also runs after every connect). */
      intervalSeconds: int(1, 86400).default(30),
      perPage: int(1, 1000).default(100),
      maxPages: int(1, 10_000).default(10),
      overlapSeconds: int(0, 3600).default(60),
      maxLookups: int(0, 100_000).default(200),
    })
    .prefault({}),
  state: z
    .strictObject({
      /** Restart checkpoint; empty: no checkpoint (a restart does not backfill). */
      checkpointFile: z.string().default(''),
      checkpointWindowSeconds: int(10, 86400).default(600),
    })
    .prefault({}),
  events: z
    .strictObject({
      /** Events kept for resuming `/api/events` with Last-Event-ID. */
      bufferSize: int(1, 1_000_000).default(1000),
      heartbeatSeconds: num().pipe(z.number().min(0.05).max(3600)).default(15),
      /** Bytes queued for one client that does not read before it is dropped. */
      maxClientBufferBytes: int(1024, 1024 * 1024 * 1024).default(1024 * 1024),
      maxClients: int(1, 100_000).default(100),
      /** Connects per client address per window (429 past it); max 0 turns the limit off. */
      connectLimit: z
        .strictObject({ max: int(0, 1_000_000).default(60), timeWindowMs: int(1_000, 86_400_000).default(60_000) })
        .prefault({}),
      /** Time a client has to take an opening (snapshot or replay) larger than maxClientBufferBytes before it is dropped. */
      openingDrainMs: int(100, 600_000).default(10_000),
    })
    .prefault({}),
  board: z
    .strictObject({
      /** Trace link of a finished task on the board; `{traceId}` is replaced. Empty: no links. */
      traceUrlTemplate: z
        .union([z.literal(''), z.url({ protocol: /^https?$/ }).refine((u) => u.includes('{traceId}'), 'must contain {traceId}')])
        .default(''),
    })
    .prefault({}),
  api: z
    .strictObject({
      /** Bearer tokens accepted on /api/*; empty: /api/* answers loopback clients only, unless allowAnonymous. */
      tokens: z.preprocess(splitList, z.array(token)).default([]),
      /** With no token, serve /api/* (task API, event feed) to clients on other hosts too. */
      allowAnonymous: bool().default(false),
      /** Wrong bearer tokens per client address per window before 429 for the rest of it; max 0: no limit. */
      failedAuthLimit: z
        .strictObject({ max: int(0, 1_000_000).default(10), timeWindowMs: int(1_000, 86_400_000).default(60_000) })
        .prefault({}),
      /** Bearer token required on /metrics; empty: /metrics is open (Prometheus convention). */
      metricsToken: z.union([z.literal(''), token]).default(''),
      /** Larger perPage values are capped to this. */
      maxPerPage: int(1, 1000).default(100),
      /** Deadline of each lookup the API makes on Mastra; past it the API answers 504. */
      upstreamTimeoutMs: int(100, 600_000).default(5_000),
      /** Lookups on Mastra in flight at once from the task API; more wait for a slot within their deadline. */
      maxUpstreamConcurrency: int(1, 1024).default(8),
      cache: z
        .strictObject({
          /** How long a lookup answer is reused; 0 turns the cache off. */
          ttlMs: int(0, 600_000).default(1_000),
          maxEntries: int(1, 1_000_000).default(1_000),
          /** Bytes of cached answers (their JSON); the least recently used go first past it. */
          maxBytes: int(0, 4 * 1024 * 1024 * 1024).default(32 * 1024 * 1024),
        })
        .prefault({}),
      rateLimit: z
        .strictObject({
          /** Requests per client address per window on the task API (/api/tasks*); 0 turns the limit off. */
          max: int(0, 1_000_000_000).default(600),
          timeWindowMs: int(1_000, 86_400_000).default(60_000),
        })
        .prefault({}),
      redaction: z
        .strictObject({
          ...redactionRule,
          /** Per tool overrides of any of the keys above. */
          tools: z.record(z.string().min(1), toolRedactionRule).default({}),
        })
        .prefault({}),
    })
    .prefault({}),
  demo: z
    .strictObject({
      /** Background tasks per second the embedded demo workload starts. */
      ratePerSecond: num().pipe(z.number().min(0).max(1000)).default(2),
    })
    .prefault({}),
});

export type BridgeConfig = z.infer<typeof ConfigSchema>;
export type ConfigInput = z.input<typeof ConfigSchema>;

/** Environment variables and the config path each overrides. The README table is checked against this list. */
export const ENV_VARS: readonly { name: string; path: string; description: string }[] = [
  { name: 'MASTRA_URL', path: 'source.mastraUrl', description: 'Remote Mastra server base URL, or a comma-separated list (one per replica; `dns+http://name:port` discovers them); unset runs the embedded demo' },
  { name: 'MASTRA_API_PREFIX', path: 'source.apiPrefix', description: 'Mastra API route prefix' },
  { name: 'MASTRA_TOKEN', path: 'source.token', description: 'Bearer token sent to the Mastra server' },
  { name: 'BRIDGE_HOST', path: 'http.host', description: 'Address the bridge listens on' },
  { name: 'BRIDGE_PORT', path: 'http.port', description: 'Port the bridge listens on' },
  { name: 'BRIDGE_LOG_LEVEL', path: 'log.level', description: 'fatal, error, warn, info, debug, trace or silent' },
  { name: 'BRIDGE_CHECKPOINT_FILE', path: 'state.checkpointFile', description: 'Restart checkpoint file (backfill after restarts)' },
  { name: 'BRIDGE_RECONCILE_INTERVAL', path: 'reconcile.intervalSeconds', description: 'Seconds between reconciliation passes' },
  { name: 'BRIDGE_TRACE_URL_TEMPLATE', path: 'board.traceUrlTemplate', description: 'Trace link on the board, e.g. a Jaeger URL with {traceId}' },
  { name: 'BRIDGE_API_TOKEN', path: 'api.tokens', description: 'Bearer token(s) required on /api/* (comma-separated list)' },
  { name: 'BRIDGE_METRICS_TOKEN', path: 'api.metricsToken', description: 'Bearer token required on /metrics' },
  { name: 'BRIDGE_API_ALLOW_ANONYMOUS', path: 'api.allowAnonymous', description: 'true: serve /api/* without a token to non-loopback clients too' },
  { name: 'BRIDGE_DEMO_RATE', path: 'demo.ratePerSecond', description: 'Tasks per second the embedded demo starts (0: none)' },
  { name: 'OTEL_SERVICE_NAME', path: 'otel.serviceName', description: 'service.name of the exported spans' },
  { name: 'OTEL_TRACES_EXPORTER', path: 'otel.tracesExporter', description: '`otlp`, or `none` to export no spans' },
  { name: 'OTEL_EXPORTER_OTLP_ENDPOINT', path: 'otel.endpoint', description: 'OTLP/HTTP base URL (`/v1/traces` is appended)' },
  { name: 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT', path: 'otel.tracesEndpoint', description: 'Full OTLP traces URL (wins)' },
  { name: 'OTEL_EXPORTER_OTLP_PROTOCOL', path: 'otel.protocol', description: '`http/protobuf` or `http/json`' },
  { name: 'OTEL_EXPORTER_OTLP_TRACES_PROTOCOL', path: 'otel.protocol', description: 'Same, for traces only (wins)' },
  { name: 'OTEL_EXPORTER_OTLP_TRACES_TIMEOUT', path: 'otel.timeoutMs', description: 'Export request timeout, ms' },
  { name: 'OTEL_BSP_MAX_QUEUE_SIZE', path: 'otel.batch.maxQueueSize', description: 'Spans buffered before dropping' },
  { name: 'OTEL_BSP_MAX_EXPORT_BATCH_SIZE', path: 'otel.batch.maxExportBatchSize', description: 'Spans per export request' },
  { name: 'OTEL_BSP_SCHEDULE_DELAY', path: 'otel.batch.scheduledDelayMs', description: 'Delay between exports, ms' },
  { name: 'OTEL_BSP_EXPORT_TIMEOUT', path: 'otel.batch.exportTimeoutMs', description: 'Batch export timeout, ms' },
];
// Also honoured, by the OTLP exporter itself: OTEL_EXPORTER_OTLP_HEADERS / _TRACES_HEADERS, OTEL_RESOURCE_ATTRIBUTES;
// and OTEL_SDK_DISABLED=true, which exports nothing.

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

function setPath(obj: Record<string, unknown>, path: string, value: unknown): void {
  const keys = path.split('.');
  let cur = obj;
  for (const k of keys.slice(0, -1)) {
    const next = cur[k];
    if (typeof next !== 'object' || next === null || Array.isArray(next)) cur[k] = {};
    cur = cur[k] as Record<string, unknown>;
  }
  cur[keys[keys.length - 1]!] = value;
}

export const DEFAULT_CONFIG_FILE = 'config/bridge.yaml';

export interface LoadOptions {
  /** An explicit file must exist; without one, `config/bridge.yaml` is read when present. */
  file?: string;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

/** Load, merge and validate. Throws ConfigError listing every problem. */
export function loadConfig(opts: LoadOptions = {}): BridgeConfig {
  const env = opts.env ?? process.env;
  const problems: string[] = [];
  let raw: Record<string, unknown> = {};
  const file = opts.file ?? (existsSync(resolvePath(DEFAULT_CONFIG_FILE, opts.cwd)) ? DEFAULT_CONFIG_FILE : undefined);
  if (file !== undefined) {
    const path = resolvePath(file, opts.cwd);
    try {
      const doc = parseYaml(readFileSync(path, 'utf8')) as unknown;
      if (doc === null || doc === undefined) raw = {};
      else if (typeof doc === 'object' && !Array.isArray(doc)) raw = doc as Record<string, unknown>;
      else problems.push(`${file}: the top level must be a mapping of sections`);
    } catch (e) {
      problems.push(`${file}: ${(e as Error).message.split('\n')[0]}`);
    }
  }
  const origin = new Map<string, string>();
  for (const v of ENV_VARS) {
    const value = env[v.name];
    if (value === undefined || value === '') continue;
    // The traces-specific variable wins over the generic one, as the OTel spec says.
    if (v.name === 'OTEL_EXPORTER_OTLP_PROTOCOL' && env.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL) continue;
    setPath(raw, v.path, value);
    origin.set(v.path, v.name);
  }
  if (env.OTEL_SDK_DISABLED?.toLowerCase() === 'true') {
    setPath(raw, 'otel.tracesExporter', 'none');
    origin.set('otel.tracesExporter', 'OTEL_SDK_DISABLED');
  }
  const result = ConfigSchema.safeParse(raw);
  if (!result.success) {
    for (const issue of result.error.issues) {
      const path = issue.path.join('.');
      // A list element's issue (api.tokens.0) came from the variable that set the list.
      const from = origin.get(path) ?? origin.get(issue.path.slice(0, -1).join('.'));
      const where = from ? `${path} (from ${from})` : file ? `${path} (in ${file})` : path;
      problems.push(`${where || '(top level)'}: ${issue.message}`);
    }
  }
  if (problems.length > 0 || !result.success) throw new ConfigError(problems);
  return result.data;
}

/**
 * Validates a configuration object as given in code (library use: `startBridge({ config })`). Unlike loadConfig it
 * reads no file and no environment. Throws ConfigError listing every problem.
 */
export function parseConfig(input: unknown): BridgeConfig {
  const result = ConfigSchema.safeParse(input ?? {});
  if (result.success) return result.data;
  throw new ConfigError(result.error.issues.map((issue) => `${issue.path.join('.') || '(top level)'}: ${issue.message}`));
}

function resolvePath(p: string, cwd?: string): string {
  return cwd && !p.startsWith('/') ? `${cwd}/${p}` : p;
}

/** Every Mastra server the configuration names (mastraUrl's list, then servers), without repeats. */
export function sourceServers(config: BridgeConfig): string[] {
  return [...new Set([...(splitList(config.source.mastraUrl) as string[]), ...config.source.servers])];
}

/** The OTLP traces URL the config selects, or undefined when spans are not exported. */
export function tracesUrl(config: BridgeConfig): string | undefined {
  const o = config.otel;
  if (o.tracesExporter === 'none') return undefined;
  if (o.tracesEndpoint) return o.tracesEndpoint;
  if (o.endpoint) return `${o.endpoint.replace(/\/+$/, '')}/v1/traces`;
  return undefined;
}
