// The wire-format parser: every chunk type as Mastra sends it (Date objects in process, ISO strings over HTTP), and
// every kind of bad input as a drop reason, never a throw.
import { describe, expect, it } from 'vitest';
import { errorType, parseEvent, parseFrame, parseTaskRecord, toMillis } from '../src/events.js';

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

describe('toMillis (ISO strings read without Date.parse when unambiguous)', () => {
  it('agrees with Date.parse on ISO strings, edge cases and near misses', () => {
    const cases = [
      '2026-12-01T19:30:00.123Z',
      '1970-01-01T00:00:00.000Z',
      '1969-12-31T23:59:59.999Z',
      '1000-01-01T00:00:00.000Z',
      '0999-12-31T23:59:59.999Z',
      '0050-06-15T12:00:00.000Z',
      '9999-12-31T23:59:59.999Z',
      '2024-02-29T00:00:00.000Z',
      '2023-02-29T00:00:00.000Z',
      '2024-02-31T00:00:00.000Z',
      '2024-04-31T10:00:00.000Z',
      '2024-01-01T24:00:00.000Z',
      '2024-01-01T23:60:00.000Z',
      '2024-01-01T00:00:60.000Z',
      '2024-13-01T00:00:00.000Z',
      '2024-00-01T00:00:00.000Z',
      '2024-01-00T00:00:00.000Z',
      '2024-01-32T00:00:00.000Z',
      '2024-01-01T00:00:00.000z',
      '2024-01-01t00:00:00.000Z',
      '2024-01-01T00:00:00Z',
      '2024-01-01T00:00:00.00Z',
      '2024-01-01T00:00:00.000+01:00',
      '+002024-01-01T00:00:00.000Z',
      '2024-01-01 00:00:00.000Z',
      '2024-1-01T00:00:00.0000Z',
      '202a-01-01T00:00:00.000Z',
      '2024-01-01T0a:00:00.000Z',
      '2024-01-01T00:00:00.a00Z',
      '2024-01-01',
      'Tue, 01 Dec 2026 19:30:00 GMT',
      'not a date at all, 24 ch',
    ];
    for (const s of cases) expect(toMillis(s), s).toBe(Date.parse(s));
    // A deterministic sweep: real instants across four millennia, and the same strings with one character changed.
    let seed = 1;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    for (let i = 0; i < 20_000; i++) {
      let s = new Date(Math.floor(rnd() * 2.5e14) - 3e13).toISOString();
      if (i % 3 === 0) {
        const at = Math.floor(rnd() * s.length);
        s = s.slice(0, at) + '0129-:.TZ x'[Math.floor(rnd() * 11)] + s.slice(at + 1);
      }
      expect(Object.is(toMillis(s), Date.parse(s)), s).toBe(true);
    }
  });

  it('takes Dates, finite numbers, and rejects the rest as NaN', () => {
    expect(toMillis(new Date(1234))).toBe(1234);
    expect(toMillis(1234)).toBe(1234);
    expect(toMillis(Number.POSITIVE_INFINITY)).toBeNaN();
    expect(toMillis('')).toBeNaN();
    expect(toMillis({})).toBeNaN();
    expect(toMillis(undefined)).toBeUndefined();
    expect(toMillis(null)).toBeUndefined();
  });
});
