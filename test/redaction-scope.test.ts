// Redaction scope (issue 10): error messages and stacks follow a setting in the task API (api.redaction.errorMessage)
// and on spans (traces.errorMessage), scrubbed of secret-looking substrings by default — a stored "Bearer …" came back
// verbatim before; and error types are class-like names only (else `_OTHER`), on spans and in /api/events.
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BatchSpanProcessor, InMemorySpanExporter } from '@opentelemetry/sdk-trace-base';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import { describe, expect, it } from 'vitest';
import { errorType, isClassLikeName } from '../src/events.js';
import { type RedactionPolicy, redactTask, scrubSecrets } from '../src/redact.js';
import { fallbackPlacement } from '../src/span-ids.js';
import { SpanWriter } from '../src/spans.js';
import { PresetIdGenerator } from '../src/telemetry.js';
import type { FinishedTask } from '../src/tracker.js';

const SECRET_MESSAGE = 'upstream said 401 for Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.c2lnbmF0dXJl with api_key=sk_live_51Habcdefghijklmnop';
const SECRET_STACK = `Error: ${SECRET_MESSAGE}\n    at call (file:///app/tools.ts:1:1)`;

describe('scrubSecrets', () => {
  it.each([
    ['Authorization: Bearer abc.DEF-123_xyz', 'Authorization: Bearer [REDACTED]'],
    ['token=0123456789abcdef&x=1', 'token=[REDACTED]&x=1'],
    ['{"password": "hunter2!", "user": "ann"}', '{"password": "[REDACTED]", "user": "ann"}'],
    ['key sk_live_51Habcdefghijk used', 'key [REDACTED] used'],
    ['openai sk-proj-abcdefghijklmnop1234 failed', 'openai [REDACTED] failed'],
    ['aws AKIAIOSFODNN7EXAMPLE denied', 'aws [REDACTED] denied'],
    ['jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.sig', 'jwt [REDACTED]'],
    ['GET https://bob:s3cr3t@db.internal/x failed', 'GET https://[REDACTED]@db.internal/x failed'],
    ['card declined for order 1234 (code 51)', 'card declined for order 1234 (code 51)'],
  ])('%s', (input, expected) => {
    expect(scrubSecrets(input)).toBe(expected);
  });
});

describe('task API error message settings', () => {
  const base: RedactionPolicy = { args: false, result: false, suspendPayload: false, errorStack: true, errorMessage: 'scrub', maxBytes: 4096, tools: {} };
  const t = { toolName: 'call_api', error: { message: SECRET_MESSAGE, stack: SECRET_STACK } };

  it('scrubs message and stack by default, shows them as stored with full, and removes both with none', () => {
    const scrubbed = redactTask(t, base);
    expect(scrubbed.error!.message).not.toContain('eyJ');
    expect(scrubbed.error!.message).not.toContain('sk_live');
    expect(scrubbed.error!.message).toContain('Bearer [REDACTED]');
    expect(scrubbed.error!.stack).not.toContain('sk_live');
    expect(redactTask(t, { ...base, errorMessage: 'full' }).error).toEqual(t.error);
    const none = redactTask(t, { ...base, tools: { call_api: { errorMessage: 'none' } } });
    expect(none.error).toEqual({ message: '' });
    expect(none.redacted).toEqual(['error.message', 'error.stack']);
  });
});

describe('error types', () => {
  it.each([
    ['TypeError: x is not a function', 'TypeError'],
    ['AI_APICallError: rate limited', 'AI_APICallError'],
    ['errors.PaymentDeclinedError: no', 'errors.PaymentDeclinedError'],
    ['sk_live_51Habcdefghijk: boom', '_OTHER'],
    ['AKIAIOSFODNN7EXAMPLE: denied', '_OTHER'],
    ['deadbeefcafe: x', '_OTHER'],
    ['Token9f8e7d6c5b4a3921: x', '_OTHER'],
    ['something went wrong', '_OTHER'],
  ])('%s -> %s', (firstLine, expected) => {
    expect(errorType({ message: 'm', stack: `${firstLine}\n    at x` }, 'failed')).toBe(expected);
  });

  it('admits class names only', () => {
    expect(isClassLikeName('Error')).toBe(true);
    expect(isClassLikeName('error')).toBe(false);
    expect(isClassLikeName('ERRORCODE')).toBe(false);
  });
});

describe('span exception attributes', () => {
  const T0 = Date.parse('2026-01-01T00:00:00Z');
  const failed: FinishedTask = {
    taskId: 'task-1',
    agentId: 'agent',
    toolName: 'call_api',
    toolCallId: 'call-1',
    runId: 'run-1',
    status: 'failed',
    startedAt: T0,
    completedAt: T0 + 1000,
    error: { message: SECRET_MESSAGE, stack: SECRET_STACK.replace(/^Error/, 'sk_live_51Habcdefghijk') },
    events: [],
    outputCount: 0,
    startCounted: true,
    queueWaitObserved: false,
    origin: 'event',
  };

  async function exceptionOf(errorMessage: 'scrub' | 'full' | 'none'): Promise<{ attrs: Record<string, unknown>; status?: string; type: unknown }> {
    const exporter = new InMemorySpanExporter();
    const ids = new PresetIdGenerator();
    const provider = new NodeTracerProvider({
      resource: resourceFromAttributes({ 'service.name': 't' }),
      idGenerator: ids,
      spanProcessors: [new BatchSpanProcessor(exporter)],
    });
    const tracing = { tracer: provider.getTracer('t'), ids, exporting: true, forceFlush: () => provider.forceFlush(), shutdown: () => provider.shutdown() };
    const writer = new SpanWriter(tracing, { recordArgs: false, recordResult: false, recordOutput: false, maxPayloadLength: 2048, maxStackLength: 4096, errorMessage });
    writer.write(failed, fallbackPlacement(failed, 'run'));
    await provider.forceFlush();
    const span = exporter.getFinishedSpans()[0]!;
    await provider.shutdown();
    const event = span.events.find((e) => e.name === 'exception')!;
    return { attrs: event.attributes ?? {}, status: span.status.message, type: span.attributes['error.type'] };
  }

  it('scrubs exception.message, the status message and exception.stacktrace by default; none leaves them out', async () => {
    const scrubbed = await exceptionOf('scrub');
    expect(String(scrubbed.attrs['exception.message'])).toContain('Bearer [REDACTED]');
    expect(JSON.stringify(scrubbed)).not.toContain('sk_live_51');
    expect(JSON.stringify(scrubbed)).not.toContain('eyJhbGci');
    expect(scrubbed.type).toBe('_OTHER');
    expect(scrubbed.attrs['exception.type']).toBe('_OTHER');
    expect(String((await exceptionOf('full')).attrs['exception.message'])).toContain('sk_live_51');
    const none = await exceptionOf('none');
    expect(none.attrs['exception.message']).toBe('');
    expect(none.attrs['exception.stacktrace']).toBeUndefined();
    expect(none.status ?? '').toBe('');
  });
});
