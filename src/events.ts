// The one file that knows Mastra's background-task wire format.
//
// Owns: turning an upstream chunk (`{ type, payload }` from `backgroundTaskManager.stream()` or one SSE `data:` frame)
// and a stored task record (`getTask`/`listTasks`) into typed, normalised values — or a drop reason.
// Must not: hold state, read a clock, or do I/O. Every time it returns is epoch milliseconds; dates arrive as `Date`
// objects in process and ISO strings over HTTP, and both are accepted everywhere.

export const EVENT_KINDS = ['running', 'output', 'completed', 'failed', 'cancelled', 'suspended', 'resumed'] as const;
export type EventKind = (typeof EVENT_KINDS)[number];
/** The kinds that end a task. */
export function isTerminal(kind: EventKind): boolean {
  return kind === 'completed' || kind === 'failed' || kind === 'cancelled';
}

/** Statuses a finished task ends in. `timed_out` is a `failed` event whose cause was Mastra's timeout. */
export const FINAL_STATUSES = ['completed', 'failed', 'timed_out', 'cancelled'] as const;
export type FinalStatus = (typeof FINAL_STATUSES)[number];

export const TASK_STATUSES = ['pending', 'running', 'suspended', 'completed', 'failed', 'cancelled', 'timed_out'] as const;
export type TaskStatus = (typeof TASK_STATUSES)[number];

export interface TaskError {
  message: string;
  stack?: string;
}

/** Who a task is: what every upstream payload carries, and every view of a task in the bridge starts from. */
export interface TaskIdentity {
  taskId: string;
  toolName: string;
  toolCallId: string;
  agentId: string;
  runId: string;
}

/** One upstream lifecycle event, normalised. `at` is the event's own time when the wire carries one. */
export interface TaskEvent extends TaskIdentity {
  kind: EventKind;
  /** running/resumed: startedAt; suspended: suspendedAt; completed/failed/cancelled: completedAt; output: none. */
  at?: number;
  args?: unknown;
  result?: unknown;
  error?: TaskError;
  suspendPayload?: unknown;
  /** output: the tool-output chunk's `payload.output`. */
  output?: unknown;
}

/** A stored task (`getTask`/`listTasks`), normalised. Storage calls the task id `id`. */
export interface TaskRecord extends Omit<TaskIdentity, 'taskId'> {
  id: string;
  status: TaskStatus;
  threadId?: string;
  resourceId?: string;
  createdAt?: number;
  startedAt?: number;
  suspendedAt?: number;
  completedAt?: number;
  retryCount?: number;
  maxRetries?: number;
  timeoutMs?: number;
  error?: TaskError;
  args?: unknown;
  result?: unknown;
  suspendPayload?: unknown;
}

export type DropReason =
  | 'not_json'
  | 'oversized'
  | 'not_object'
  | 'unknown_type'
  | 'missing_field'
  | 'bad_timestamp';

export type Parsed<T> = { ok: true; value: T } | { ok: false; reason: DropReason; detail: string; kind?: EventKind };

const TYPE_PREFIX = 'background-task-';
const KIND_BY_TYPE: ReadonlyMap<string, EventKind> = new Map(EVENT_KINDS.map((k) => [TYPE_PREFIX + k, k]));
const TIME_FIELD: Readonly<Record<EventKind, string | undefined>> = {
  running: 'startedAt',
  resumed: 'startedAt',
  suspended: 'suspendedAt',
  completed: 'completedAt',
  failed: 'completedAt',
  cancelled: 'completedAt',
  output: undefined,
};
const ID_FIELDS = ['taskId', 'toolName', 'toolCallId', 'agentId', 'runId'] as const;

// Mastra's timeout message (background-tasks manager): "Task timed out after 300000ms". The stored status says
// `timed_out`, but the stream only carries the failed event with this message and no stack.
const TIMEOUT_MESSAGE = /^Task timed out after \d+\s*ms\b/;

export function isTimeoutError(error: TaskError | undefined): boolean {
  return error !== undefined && TIMEOUT_MESSAGE.test(error.message);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

// `YYYY-MM-DDTHH:MM:SS.sssZ` (what JSON.stringify makes of a Date) read digit by digit: Date.parse costs ≈0.7 µs a
// call. Only the unambiguous case is taken (year ≥ 1000, fields in range); anything else goes to Date.parse.
function digit(s: string, i: number): number {
  const d = s.charCodeAt(i) - 48;
  return d >= 0 && d <= 9 ? d : -100_000;
}
function fastIsoMillis(s: string): number | undefined {
  if (
    s.length !== 24 ||
    s.charCodeAt(4) !== 45 || // -
    s.charCodeAt(7) !== 45 ||
    s.charCodeAt(10) !== 84 || // T
    s.charCodeAt(13) !== 58 || // :
    s.charCodeAt(16) !== 58 ||
    s.charCodeAt(19) !== 46 || // .
    s.charCodeAt(23) !== 90 // Z
  ) {
    return undefined;
  }
  const y = digit(s, 0) * 1000 + digit(s, 1) * 100 + digit(s, 2) * 10 + digit(s, 3);
  const mo = digit(s, 5) * 10 + digit(s, 6);
  const d = digit(s, 8) * 10 + digit(s, 9);
  const h = digit(s, 11) * 10 + digit(s, 12);
  const mi = digit(s, 14) * 10 + digit(s, 15);
  const sec = digit(s, 17) * 10 + digit(s, 18);
  const ms = digit(s, 20) * 100 + digit(s, 21) * 10 + digit(s, 22);
  // A non-digit makes its field negative (−100000 per bad digit, more than the others can add back).
  if (y < 1000 || mo < 1 || mo > 12 || d < 1 || d > 31 || h < 0 || h > 23 || mi < 0 || mi > 59 || sec < 0 || sec > 59 || ms < 0) {
    return undefined;
  }
  // Days since the epoch of a proleptic Gregorian date (day 29-31 of a shorter month rolls over, as Date.parse does).
  const yy = mo <= 2 ? y - 1 : y;
  const era = Math.floor(yy / 400);
  const yoe = yy - era * 400;
  const doy = Math.floor((153 * (mo + (mo > 2 ? -3 : 9)) + 2) / 5) + d - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  const days = era * 146_097 + doe - 719_468;
  return ((days * 24 + h) * 60 + mi) * 60_000 + sec * 1000 + ms;
}

/** Epoch ms from a Date, an ISO string or a number; undefined when absent; NaN when present but unusable. */
export function toMillis(v: unknown): number | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'string') return v === '' ? Number.NaN : (fastIsoMillis(v) ?? Date.parse(v));
  if (v instanceof Date) return v.getTime();
  if (typeof v === 'number') return Number.isFinite(v) ? v : Number.NaN;
  return Number.NaN;
}

function parseError(v: unknown): TaskError {
  if (isObject(v)) {
    const message = typeof v.message === 'string' ? v.message : String(v.message ?? '');
    return typeof v.stack === 'string' ? { message, stack: v.stack } : { message };
  }
  return { message: typeof v === 'string' ? v : '' };
}

/** Parse one upstream chunk (`{ type, payload }`). Unknown fields are ignored; unknown types are a drop. */
export function parseEvent(chunk: unknown): Parsed<TaskEvent> {
  if (!isObject(chunk)) return { ok: false, reason: 'not_object', detail: 'event is not an object' };
  const type = chunk.type;
  const kind = typeof type === 'string' ? KIND_BY_TYPE.get(type) : undefined;
  if (kind === undefined) {
    return { ok: false, reason: 'unknown_type', detail: `unknown event type ${JSON.stringify(type)?.slice(0, 80)}` };
  }
  const p = chunk.payload;
  if (!isObject(p)) return { ok: false, reason: 'not_object', detail: 'payload is not an object', kind };
  for (const f of ID_FIELDS) {
    const v = p[f];
    if (typeof v !== 'string' || v === '') {
      return { ok: false, reason: 'missing_field', detail: `payload.${f} is missing or not a string`, kind };
    }
  }
  const event: TaskEvent = {
    kind,
    taskId: p.taskId as string,
    toolName: p.toolName as string,
    toolCallId: p.toolCallId as string,
    agentId: p.agentId as string,
    runId: p.runId as string,
  };
  const timeField = TIME_FIELD[kind];
  if (timeField !== undefined) {
    const at = toMillis(p[timeField]);
    if (at === undefined) return { ok: false, reason: 'missing_field', detail: `payload.${timeField} is missing`, kind };
    if (Number.isNaN(at)) return { ok: false, reason: 'bad_timestamp', detail: `payload.${timeField} is not a date`, kind };
    event.at = at;
  }
  switch (kind) {
    case 'running':
    case 'resumed':
      if ('args' in p) event.args = p.args;
      break;
    case 'suspended':
      if ('args' in p) event.args = p.args;
      if ('suspendPayload' in p) event.suspendPayload = p.suspendPayload;
      break;
    case 'completed':
      if ('result' in p) event.result = p.result;
      break;
    case 'failed':
      event.error = parseError(p.error);
      break;
    case 'output': {
      // payload.payload is the tool-output chunk: { type: 'tool-output', payload: { output, ... } }
      const chunkPayload = isObject(p.payload) && isObject(p.payload.payload) ? p.payload.payload : undefined;
      if (chunkPayload && 'output' in chunkPayload) event.output = chunkPayload.output;
      break;
    }
    case 'cancelled':
      break;
  }
  return { ok: true, value: event };
}

/**
 * Parse one SSE `data:` field. Oversized frames are dropped before JSON.parse so a hostile or broken upstream cannot
 * make the bridge allocate a huge object graph.
 */
export function parseFrame(data: string, maxBytes: number): Parsed<TaskEvent> {
  // string length counts UTF-16 units; a unit is at least one byte, so this never lets a larger frame through.
  // A unit is at most three bytes, so the exact count is only needed for frames that could be near the limit.
  if (data.length > maxBytes || (data.length * 3 > maxBytes && Buffer.byteLength(data, 'utf8') > maxBytes)) {
    return { ok: false, reason: 'oversized', detail: `frame larger than ${maxBytes} bytes` };
  }
  let json: unknown;
  try {
    json = JSON.parse(data);
  } catch {
    return { ok: false, reason: 'not_json', detail: 'frame is not valid JSON' };
  }
  return parseEvent(json);
}

const STATUS_SET: ReadonlySet<string> = new Set(TASK_STATUSES);

/** Parse a stored task record. Unknown statuses are a drop: the bridge must not guess a task's fate. */
export function parseTaskRecord(raw: unknown): Parsed<TaskRecord> {
  if (!isObject(raw)) return { ok: false, reason: 'not_object', detail: 'task record is not an object' };
  for (const f of ['id', 'toolName', 'toolCallId', 'agentId', 'runId'] as const) {
    if (typeof raw[f] !== 'string' || raw[f] === '') {
      return { ok: false, reason: 'missing_field', detail: `task.${f} is missing or not a string` };
    }
  }
  if (typeof raw.status !== 'string' || !STATUS_SET.has(raw.status)) {
    return { ok: false, reason: 'unknown_type', detail: `unknown task status ${JSON.stringify(raw.status)}` };
  }
  const record: TaskRecord = {
    id: raw.id as string,
    status: raw.status as TaskStatus,
    toolName: raw.toolName as string,
    toolCallId: raw.toolCallId as string,
    agentId: raw.agentId as string,
    runId: raw.runId as string,
  };
  if (typeof raw.threadId === 'string') record.threadId = raw.threadId;
  if (typeof raw.resourceId === 'string') record.resourceId = raw.resourceId;
  for (const f of ['createdAt', 'startedAt', 'suspendedAt', 'completedAt'] as const) {
    const ms = toMillis(raw[f]);
    if (ms === undefined) continue;
    if (Number.isNaN(ms)) return { ok: false, reason: 'bad_timestamp', detail: `task.${f} is not a date` };
    record[f] = ms;
  }
  for (const f of ['retryCount', 'maxRetries', 'timeoutMs'] as const) {
    if (typeof raw[f] === 'number' && Number.isFinite(raw[f])) record[f] = raw[f];
  }
  if (raw.error !== undefined && raw.error !== null) record.error = parseError(raw.error);
  if ('args' in raw) record.args = raw.args;
  if ('result' in raw) record.result = raw.result;
  if ('suspendPayload' in raw) record.suspendPayload = raw.suspendPayload;
  return { ok: true, value: record };
}

/** The final status a stored record implies, or undefined while the task is not finished. */
export function finalStatusOf(record: TaskRecord): FinalStatus | undefined {
  switch (record.status) {
    case 'completed':
    case 'cancelled':
    case 'timed_out':
      return record.status;
    case 'failed':
      return isTimeoutError(record.error) ? 'timed_out' : 'failed';
    default:
      return undefined;
  }
}

/**
 * A bounded error class for `error.type`: the identifier before the first colon of the stack's first line
 * ("PaymentDeclinedError: card declined" → "PaymentDeclinedError"), `timed_out` for Mastra timeouts, else `_OTHER`.
 * Never the message: messages carry ids and user data, and would explode cardinality. Only class-like names pass
 * (`isClassLikeName`): a stack whose first line starts with a token (`sk_live_…: …`) gave that token before.
 */
export function errorType(error: TaskError | undefined, status: FinalStatus): string {
  if (status === 'timed_out') return 'timed_out';
  const firstLine = error?.stack?.split('\n', 1)[0] ?? '';
  const m = /^([A-Za-z_$][\w$.]{0,63})(?::|$)/.exec(firstLine.trim());
  return m?.[1] !== undefined && isClassLikeName(m[1]) ? m[1] : '_OTHER';
}

/**
 * A class name as code writes one: optional dotted namespace segments, then a last segment that starts with a
 * capital letter and has a lower-case letter (`TypeError`, `AI_APICallError`, `errors.PaymentDeclinedError`), with no
 * run of four digits. Keys and tokens (`sk_live_…`, `AKIA…`, hex ids) do not pass.
 */
export function isClassLikeName(name: string): boolean {
  const last = name.slice(name.lastIndexOf('.') + 1);
  return /^(?:[A-Za-z_$][\w$]*\.)*[A-Z][A-Za-z0-9_$]*$/.test(name) && /[a-z]/.test(last) && !/\d{4}/.test(name) && name.length <= 64;
}
