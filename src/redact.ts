// What the task API may show of a task's payloads. Pure: no I/O, no config loading, no clock.
//
// Owns: removing args, result, suspendPayload and error.stack unless the policy allows them (per field, optionally
// overridden per tool), and truncating what is allowed to a byte budget. Must not: decide anything else about the
// response shape (src/http/tasks.ts does).
//
// Truncation is by UTF-8 bytes of the field's JSON text (what a client downloads). A value over the budget becomes a
// string — its JSON cut on a character boundary, ending in "…" — and the field is named in `truncated`, so a client
// never mistakes a cut value for the real one. error.message (what operators need) follows `errorMessage`: `scrub`
// (default) shows it with secret-looking substrings replaced by [REDACTED] (scrubSecrets), `full` as stored, `none`
// not at all (named in `redacted`); an allowed error.stack follows the same setting. Both are held to the budget; a
// long one is scrubbed only as far as can be shown (scrubHead), not over all its megabytes.

/** How an error message (and an allowed stack) is shown: secrets scrubbed, as stored, or not at all. */
export type ErrorMessageMode = 'scrub' | 'full' | 'none';
export const ERROR_MESSAGE_MODES: readonly ErrorMessageMode[] = ['scrub', 'full', 'none'];

export interface RedactionRule {
  args: boolean;
  result: boolean;
  suspendPayload: boolean;
  errorStack: boolean;
  errorMessage: ErrorMessageMode;
  /** Budget per allowed field, UTF-8 bytes. */
  maxBytes: number;
}

export interface RedactionPolicy extends RedactionRule {
  /** Per tool overrides; keys not set fall back to the section's. */
  tools: Readonly<Record<string, Partial<RedactionRule>>>;
}

export const PAYLOAD_FIELDS = ['args', 'result', 'suspendPayload'] as const;
export type PayloadField = (typeof PAYLOAD_FIELDS)[number];
export type RedactableField = PayloadField | 'error.stack' | 'error.message';

export interface RedactableTask {
  toolName: string;
  args?: unknown;
  result?: unknown;
  suspendPayload?: unknown;
  error?: { message: string; stack?: string };
}

export interface Redacted {
  args?: unknown;
  result?: unknown;
  suspendPayload?: unknown;
  error?: { message: string; stack?: string };
  /** Fields the task had that the policy removed. */
  redacted: RedactableField[];
  /** Fields (and error.message) cut to the byte budget. */
  truncated: (RedactableField | 'error.message')[];
}

const ELLIPSIS = '…';
const ELLIPSIS_BYTES = Buffer.byteLength(ELLIPSIS);

/** The rule that applies to one tool: the tool's overrides over the section's defaults. */
export function ruleFor(policy: RedactionPolicy, toolName: string): RedactionRule {
  const o = Object.hasOwn(policy.tools, toolName) ? policy.tools[toolName] : undefined;
  return {
    args: o?.args ?? policy.args,
    result: o?.result ?? policy.result,
    suspendPayload: o?.suspendPayload ?? policy.suspendPayload,
    errorStack: o?.errorStack ?? policy.errorStack,
    errorMessage: o?.errorMessage ?? policy.errorMessage,
    maxBytes: o?.maxBytes ?? policy.maxBytes,
  };
}

/** A string cut to at most `maxBytes` UTF-8 bytes (ellipsis included), never splitting a character. */
export function truncateString(s: string, maxBytes: number): { value: string; truncated: boolean } {
  // Fast path: a UTF-16 unit is at most 3 UTF-8 bytes.
  if (s.length * 3 <= maxBytes || Buffer.byteLength(s) <= maxBytes) return { value: s, truncated: false };
  return { value: cutString(s, maxBytes), truncated: true };
}

/** `s` marked as cut: at most `maxBytes` UTF-8 bytes with the ellipsis, which is always added. */
function cutString(s: string, maxBytes: number): string {
  const budget = Math.max(0, maxBytes - ELLIPSIS_BYTES);
  if (s.length * 3 <= budget) return s + ELLIPSIS;
  const bytes = Buffer.from(s, 'utf8');
  if (bytes.length <= budget) return s + ELLIPSIS;
  let end = budget;
  // Back off continuation bytes (10xxxxxx) so the cut lands on a character boundary.
  while (end > 0 && (bytes[end]! & 0xc0) === 0x80) end--;
  return bytes.subarray(0, end).toString('utf8') + ELLIPSIS;
}

/** scrubSecrets(s) cut to `maxBytes` like truncateString, scanning only the start of a long `s` (scrubHead). */
function scrubbedString(s: string, maxBytes: number): { value: string; truncated: boolean } {
  // A character is at least one byte: the first maxBytes characters hold everything that can be shown.
  const { head, rest } = scrubHead(s, maxBytes);
  return rest > 0 ? { value: cutString(head, maxBytes), truncated: true } : truncateString(head, maxBytes);
}

/** A JSON value held to `maxBytes` of JSON text; over it, the cut JSON text as a string. */
export function truncateJson(value: unknown, maxBytes: number): { value: unknown; truncated: boolean } {
  let json: string | undefined;
  try {
    json = JSON.stringify(value);
  } catch {
    // Cycles or BigInts (possible in process): not representable, so not shown as if it were.
    return { value: '[unserializable]', truncated: true };
  }
  if (json === undefined) return { value: undefined, truncated: false };
  const cut = truncateString(json, maxBytes);
  return cut.truncated ? cut : { value, truncated: false };
}

export function redactTask(task: RedactableTask, policy: RedactionPolicy): Redacted {
  const rule = ruleFor(policy, task.toolName);
  const out: Redacted = { redacted: [], truncated: [] };
  for (const field of PAYLOAD_FIELDS) {
    if (!Object.hasOwn(task, field) || task[field] === undefined) continue;
    if (!rule[field]) {
      out.redacted.push(field);
      continue;
    }
    const t = truncateJson(task[field], rule.maxBytes);
    if (t.truncated) out.truncated.push(field);
    if (t.value !== undefined) out[field] = t.value;
  }
  if (task.error) {
    // The response schema requires a message: `none` leaves it empty and names it.
    const shown = (s: string) => (rule.errorMessage === 'scrub' ? scrubbedString(s, rule.maxBytes) : truncateString(s, rule.maxBytes));
    if (rule.errorMessage === 'none' && task.error.message !== '') out.redacted.push('error.message');
    const message = shown(rule.errorMessage === 'none' ? '' : task.error.message);
    if (message.truncated) out.truncated.push('error.message');
    out.error = { message: message.value };
    if (task.error.stack !== undefined) {
      if (!rule.errorStack || rule.errorMessage === 'none') out.redacted.push('error.stack');
      else {
        const stack = shown(task.error.stack);
        if (stack.truncated) out.truncated.push('error.stack');
        out.error.stack = stack.value;
      }
    }
  }
  return out;
}

// Secret-looking substrings in free text (error messages and stacks): credentials in an Authorization header value,
// key=value pairs whose key names a secret, provider key formats, JWTs, and user:password in URLs. Keeps the key or
// scheme so the message still says what was there. Best effort: a secret in no known shape passes; `none` is the
// setting for messages that may hold anything.
const SECRET_PATTERNS: [RegExp, string][] = [
  [/\b(Bearer|Basic|Token)\s+[A-Za-z0-9\-._~+/]{6,}=*/gi, '$1 [REDACTED]'],
  [/\b((?:api[_-]?key|apikey|access[_-]?key|secret(?:[_-]?key)?|client[_-]?secret|password|passwd|pwd|token|auth(?:orization)?|session(?:[_-]?id)?|cookie)["']?\s*[:=]\s*["']?)(?!(?:Bearer|Basic|Token)\s|\[REDACTED\])[^\s"',;&}]+/gi, '$1[REDACTED]'],
  [/\b(?:sk|pk|rk)_(?:live|test)_[A-Za-z0-9]{6,}\b/g, '[REDACTED]'],
  [/\b(?:sk-(?:proj-|ant-)?|ghp_|gho_|github_pat_|xox[abpr]-|AIza)[A-Za-z0-9_\-]{10,}/g, '[REDACTED]'],
  [/\bAKIA[0-9A-Z]{16}\b/g, '[REDACTED]'],
  [/\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]+/g, '[REDACTED]'],
  [/(\/\/)[^/\s:@]+:[^/\s@]+@/g, '$1[REDACTED]@'],
];

/** `s` with secret-looking substrings replaced by [REDACTED]. */
export function scrubSecrets(s: string): string {
  let out = s;
  for (const [re, by] of SECRET_PATTERNS) out = out.replace(re, by);
  return out;
}

// Scrubbing costs time in proportion to the text, and a stored error may be megabytes of which a span or the API shows
// a few KiB: scrubHead scans a prefix. A shape cut by the end of that prefix may go unrecognised, so the last
// SCRUB_MARGIN characters of the scrubbed prefix are never shown: every bounded shape above is recognised from its
// first secret character within 22 characters (github_pat_ + 10; AKIA + 16 and the \b after it), and a key's
// lookahead reads 10. Two shapes need a terminator at any distance — a JWT its second dot, URL credentials their @ —
// so one of them still open at the end of the prefix makes the scan go on (doubling, up to SCRUB_EXTEND times the
// first length), and if it is still open then, the shown text stops before it.
const SCRUB_MARGIN = 64;
const SCRUB_EXTEND = 16;
const UNFINISHED: RegExp[] = [/\beyJ[A-Za-z0-9_-]*(?:\.[A-Za-z0-9_-]*){0,2}$/, /\/\/[^/\s:@]*(?::[^/\s@]*)?$/];

/**
 * The start of scrubSecrets(s) for a caller that shows at most `keep` characters of it: `head` (at most `keep`
 * characters) and `rest`, how many characters come after it (of the scrubbed text as far as scanned, of `s` beyond).
 * `head` is scrubSecrets(s).slice(0, keep) — and `rest` its remaining length, when no secret lies past the scan — as
 * long as each secret-looking shape that starts within `keep` ends within the scan; otherwise `head` stops short of
 * the shape, so no part of a secret is ever shown.
 */
export function scrubHead(s: string, keep: number): { head: string; rest: number } {
  let scan = keep + SCRUB_MARGIN;
  const most = SCRUB_EXTEND * scan;
  for (;;) {
    if (scan >= s.length) {
      const all = scrubSecrets(s);
      return { head: all.slice(0, keep), rest: Math.max(0, all.length - keep) };
    }
    const part = scrubSecrets(s.slice(0, scan));
    // Secrets replaced inside the prefix shorten it: the shown text must still end SCRUB_MARGIN before its end.
    let end = Math.min(keep, part.length - SCRUB_MARGIN);
    for (const re of UNFINISHED) {
      const open = re.exec(part);
      if (open !== null && open.index < end) end = open.index;
    }
    if (end === keep || scan >= most) {
      end = Math.max(0, end);
      return { head: part.slice(0, end), rest: part.length - end + (s.length - scan) };
    }
    scan *= 2;
  }
}
