// The wire-format parser: every chunk type as Mastra sends it (Date objects in process, ISO strings over HTTP), and
// every kind of bad input as a drop reason, never a throw.
import { describe, expect, it } from 'vitest';
import { errorType, parseEvent, parseFrame, parseTaskRecord } from '../src/events.js';

const ids = { taskId: 't1', toolName: 'tool', toolCallId: 'c1', agentId: 'a1', runId: 'r1' };
const iso = '2026-11-25T08:51:42.775Z';
const ms = Date.parse(iso);

describe('parseEvent', () => {
  it.each([
    ['background-task-running', { startedAt: iso, args: { n: 1 } }, { kind: 'running', at: ms, args: { n: 1 } }],
    ['background-task-running', { startedAt: new Date(iso) }, { kind: 'running', at: ms }],
    ['background-task-completed', { completedAt: iso, result: { ok: 1 } }, { kind: 'completed', at: ms, result: { ok: 1 } }],
    ['background-task-failed', { completedAt: iso, error: { message: 'boom', stack: 'Error: boom' } }, { kind: 'failed', error: { message: 'boom', stack: 'Error: boom' } }],
    ['background-task-cancelled', { completedAt: iso }, { kind: 'cancelled', at: ms }],
    ['background-task-suspended', { suspendedAt: iso, suspendPayload: { q: 1 } }, { kind: 'suspended', at: ms, suspendPayload: { q: 1 } }],
    ['background-task-resumed', { startedAt: iso }, { kind: 'resumed', at: ms }],
    ['background-task-output', { payload: { type: 'tool-output', payload: { output: { p: 1 } } } }, { kind: 'output', output: { p: 1 } }],
  ])('%s', (type, extra, expected) => {
    const r = parseEvent({ type, payload: { ...ids, ...extra } });
    expect(r.ok).toBe(true);
    if (r.ok) expect(r.value).toMatchObject({ ...ids, ...expected });
  });

  it.each([
    ['not an object', 'hello', 'not_object'],
    ['null', null, 'not_object'],
    ['an array', [], 'not_object'],
    ['an unknown type', { type: 'background-task-exploded', payload: ids }, 'unknown_type'],
    ['no type', { payload: ids }, 'unknown_type'],
    ['a payload that is not an object', { type: 'background-task-running', payload: 5 }, 'not_object'],
    ['a missing taskId', { type: 'background-task-running', payload: { ...ids, taskId: undefined, startedAt: iso } }, 'missing_field'],
    ['an empty agentId', { type: 'background-task-running', payload: { ...ids, agentId: '', startedAt: iso } }, 'missing_field'],
    ['a numeric runId', { type: 'background-task-running', payload: { ...ids, runId: 7, startedAt: iso } }, 'missing_field'],
    ['a missing startedAt', { type: 'background-task-running', payload: ids }, 'missing_field'],
    ['a bad completedAt', { type: 'background-task-completed', payload: { ...ids, completedAt: 'yesterday' } }, 'bad_timestamp'],
    ['an object as a date', { type: 'background-task-cancelled', payload: { ...ids, completedAt: {} } }, 'bad_timestamp'],
  ])('drops %s', (_name, input, reason) => {
    const r = parseEvent(input);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.reason).toBe(reason);
  });
});

describe('parseFrame', () => {
  it('parses a JSON frame', () => {
    const r = parseFrame(JSON.stringify({ type: 'background-task-cancelled', payload: { ...ids, completedAt: iso } }), 1024);
    expect(r.ok).toBe(true);
  });
  it('drops bad JSON', () => {
    expect(parseFrame('{"type":', 1024)).toMatchObject({ ok: false, reason: 'not_json' });
  });
  it('drops an oversized frame before parsing it', () => {
    expect(parseFrame(`"${'x'.repeat(2000)}"`, 1024)).toMatchObject({ ok: false, reason: 'oversized' });
    // Multi-byte characters count as bytes, not UTF-16 units.
    expect(parseFrame(`"${'é'.repeat(600)}"`, 1024)).toMatchObject({ ok: false, reason: 'oversized' });
  });
});

describe('parseTaskRecord', () => {
  it('normalises dates and keeps the fields the stream lacks', () => {
    const r = parseTaskRecord({ id: 't1', status: 'timed_out', toolName: 'x', toolCallId: 'c', agentId: 'a', runId: 'r', threadId: 'th', resourceId: 'rs', createdAt: iso, startedAt: new Date(iso), retryCount: 1, maxRetries: 2, timeoutMs: 5 });
    expect(r).toMatchObject({ ok: true, value: { status: 'timed_out', createdAt: ms, startedAt: ms, threadId: 'th', retryCount: 1, timeoutMs: 5 } });
  });
  it('refuses an unknown status rather than guessing', () => {
    expect(parseTaskRecord({ id: 't1', status: 'exploded', toolName: 'x', toolCallId: 'c', agentId: 'a', runId: 'r' })).toMatchObject({ ok: false, reason: 'unknown_type' });
  });
});

describe('errorType (bounded, never the message)', () => {
  it.each([
    [{ message: 'card 4242 declined', stack: 'PaymentDeclinedError: card 4242 declined\n    at x' }, 'failed', 'PaymentDeclinedError'],
    [{ message: 'boom', stack: 'Error: boom' }, 'failed', 'Error'],
    [{ message: 'no stack at all' }, 'failed', '_OTHER'],
    [{ message: 'Task timed out after 500ms' }, 'timed_out', 'timed_out'],
    [{ message: 'weird', stack: '!!! not a class' }, 'failed', '_OTHER'],
  ] as const)('%j → %s', (error, status, expected) => {
    expect(errorType(error, status)).toBe(expected);
  });
});
