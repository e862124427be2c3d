// The pure redaction of task payloads: removed unless allowed, per field and per tool; truncated by UTF-8 bytes of
// their JSON when allowed, never splitting a character; every removal and cut named in the result.
import { describe, expect, it } from 'vitest';
import { type RedactionPolicy, redactTask, ruleFor, truncateJson, truncateString } from '../src/redact.js';

const closed: RedactionPolicy = { args: false, result: false, suspendPayload: false, errorStack: false, errorMessage: 'scrub', maxBytes: 4096, tools: {} };
const open: RedactionPolicy = { ...closed, args: true, result: true, suspendPayload: true, errorStack: true };
const task = {
  toolName: 'charge_card',
  args: { card: '4111 1111 1111 1111', amountCents: 1200 },
  result: { ok: true },
  suspendPayload: { reason: 'approval' },
  error: { message: 'card declined', stack: 'PaymentDeclinedError: card declined\n    at charge (tools.ts:1:1)' },
};

describe('redactTask', () => {
  it('removes every payload and the stack by default, keeps the error message, and says what it removed', () => {
    const r = redactTask(task, closed);
    expect(r).toEqual({ error: { message: 'card declined' }, redacted: ['args', 'result', 'suspendPayload', 'error.stack'], truncated: [] });
    expect(JSON.stringify(r)).not.toContain('4111');
  });

  it('shows what the policy allows, unchanged when within budget', () => {
    const r = redactTask(task, open);
    expect(r).toEqual({ args: task.args, result: task.result, suspendPayload: task.suspendPayload, error: task.error, redacted: [], truncated: [] });
  });

  it.each([
    { field: 'args', policy: { ...closed, args: true }, shown: ['args'] },
    { field: 'result', policy: { ...closed, result: true }, shown: ['result'] },
    { field: 'suspendPayload', policy: { ...closed, suspendPayload: true }, shown: ['suspendPayload'] },
  ])('allows $field alone', ({ policy, shown }) => {
    const r = redactTask(task, policy);
    for (const f of ['args', 'result', 'suspendPayload'] as const) expect(f in r, f).toBe(shown.includes(f));
    expect(r.error).toEqual({ message: 'card declined' });
  });

  it('applies per-tool overrides over the section, both ways', () => {
    const policy: RedactionPolicy = { ...closed, result: true, tools: { charge_card: { args: true, result: false, errorStack: true, maxBytes: 20 } } };
    expect(ruleFor(policy, 'charge_card')).toEqual({ args: true, result: false, suspendPayload: false, errorStack: true, errorMessage: 'scrub', maxBytes: 20 });
    expect(ruleFor(policy, 'research_topic')).toEqual({ args: false, result: true, suspendPayload: false, errorStack: false, errorMessage: 'scrub', maxBytes: 4096 });
    const r = redactTask(task, policy);
    expect(r.redacted).toEqual(['result', 'suspendPayload']);
    expect(r.truncated).toEqual(['args', 'error.stack']);
    expect(r.args).toBe('{"card":"4111 111…'); // 17 bytes + the 3-byte ellipsis
    expect(Buffer.byteLength(r.error!.stack!)).toBeLessThanOrEqual(20);
    // An inherited name like "constructor" is not a tool override.
    expect(ruleFor(closed, 'constructor')).toEqual(ruleFor(closed, 'x'));
  });

  it('truncates the error message to the budget even when the stack is removed', () => {
    const r = redactTask({ toolName: 't', error: { message: 'x'.repeat(100) } }, { ...closed, maxBytes: 16 });
    expect(r.error!.message).toBe(`${'x'.repeat(13)}…`);
    expect(r.truncated).toEqual(['error.message']);
    expect(r.redacted).toEqual([]);
  });

  it('leaves absent fields absent (nothing to redact)', () => {
    expect(redactTask({ toolName: 't' }, closed)).toEqual({ redacted: [], truncated: [] });
    expect(redactTask({ toolName: 't', args: undefined }, open)).toEqual({ redacted: [], truncated: [] });
  });
});

describe('truncation', () => {
  it.each([
    { s: 'short', max: 16, out: 'short', cut: false },
    { s: 'a'.repeat(16), max: 16, out: 'a'.repeat(16), cut: false },
    { s: 'a'.repeat(17), max: 16, out: `${'a'.repeat(13)}…`, cut: true },
    // é is 2 bytes: 13 budget bytes hold 6 of them (12 bytes), never half of the seventh.
    { s: 'é'.repeat(20), max: 16, out: `${'é'.repeat(6)}…`, cut: true },
    // 😀 is 4 bytes (a surrogate pair in UTF-16): 13 bytes hold 3 of them.
    { s: '😀'.repeat(10), max: 16, out: `${'😀'.repeat(3)}…`, cut: true },
  ])('cuts $s.length chars to $max bytes on a character boundary', ({ s, max, out, cut }) => {
    const r = truncateString(s, max);
    expect(r).toEqual({ value: out, truncated: cut });
    expect(Buffer.byteLength(r.value)).toBeLessThanOrEqual(max);
    expect(r.value).not.toContain('\uFFFD');
  });

  it('keeps a JSON value within budget as is, and cuts its JSON text otherwise', () => {
    expect(truncateJson({ a: 1 }, 16)).toEqual({ value: { a: 1 }, truncated: false });
    expect(truncateJson({ a: 'x'.repeat(50) }, 16)).toEqual({ value: '{"a":"xxxxxxx…', truncated: true });
    expect(truncateJson(undefined, 16)).toEqual({ value: undefined, truncated: false });
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expect(truncateJson(cyclic, 16)).toEqual({ value: '[unserializable]', truncated: true });
    expect(truncateJson(10n, 16)).toEqual({ value: '[unserializable]', truncated: true });
  });
});
