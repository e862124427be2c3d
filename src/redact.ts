// What the task API may show of a task's payloads. Pure: no I/O, no config loading, no clock.
//
// Owns: removing args, result, suspendPayload and error.stack unless the policy allows them (per field, optionally
// overridden per tool), and truncating what is allowed to a byte budget. Must not: decide anything else about the
// response shape (src/http/tasks.ts does).
//
// Truncation is by UTF-8 bytes of the field's JSON text (what a client downloads). A value over the budget becomes a
// string — its JSON cut on a character boundary, ending in "…" — and the field is named in `truncated`, so a client
// never mistakes a cut value for the real one. error.message is always shown (it is what operators need) but is held
// to the same budget.

export interface RedactionRule {
  args: boolean;
  result: boolean;
  suspendPayload: boolean;
  errorStack: boolean;
  /** Budget per allowed field, UTF-8 bytes. */
  maxBytes: number;
}

export interface RedactionPolicy extends RedactionRule {
  /** Per tool overrides; keys not set fall back to the section's. */
  tools: Readonly<Record<string, Partial<RedactionRule>>>;
}

export const PAYLOAD_FIELDS = ['args', 'result', 'suspendPayload'] as const;
export type PayloadField = (typeof PAYLOAD_FIELDS)[number];
export type RedactableField = PayloadField | 'error.stack';

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
    maxBytes: o?.maxBytes ?? policy.maxBytes,
  };
}

/** A string cut to at most `maxBytes` UTF-8 bytes (ellipsis included), never splitting a character. */
export function truncateString(s: string, maxBytes: number): { value: string; truncated: boolean } {
  // Fast path: a UTF-16 unit is at most 3 UTF-8 bytes.
  if (s.length * 3 <= maxBytes || Buffer.byteLength(s) <= maxBytes) return { value: s, truncated: false };
  const budget = Math.max(0, maxBytes - ELLIPSIS_BYTES);
  const bytes = Buffer.from(s, 'utf8');
  let end = budget;
  // Back off continuation bytes (10xxxxxx) so the cut lands on a character boundary.
  while (end > 0 && (bytes[end]! & 0xc0) === 0x80) end--;
  return { value: bytes.subarray(0, end).toString('utf8') + ELLIPSIS, truncated: true };
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
    const message = truncateString(task.error.message, rule.maxBytes);
    if (message.truncated) out.truncated.push('error.message');
    out.error = { message: message.value };
    if (task.error.stack !== undefined) {
      if (!rule.errorStack) out.redacted.push('error.stack');
      else {
        const stack = truncateString(task.error.stack, rule.maxBytes);
        if (stack.truncated) out.truncated.push('error.stack');
        out.error.stack = stack.value;
      }
    }
  }
  return out;
}
