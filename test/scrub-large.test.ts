// Scrubbing secrets out of large error messages and stacks (issue 10): a stored error may be megabytes, of which a span
// or the task API shows at most a budget, so the scrubber must not run over the whole value for every task. What it
// shows must stay what scrubbing the whole value and then truncating showed (secrets inside the budget and across its
// edge), and no part of a secret may show at the cut, however long the secret is.
import { InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { type RedactionPolicy, redactTask, scrubSecrets, truncateString } from '../src/redact.js';
import { fallbackPlacement } from '../src/span-ids.js';
import { SpanWriter } from '../src/spans.js';
import { PresetIdGenerator } from '../src/telemetry.js';
import type { FinishedTask } from '../src/tracker.js';

const MESSAGE_MAX = 2048; // traces.maxPayloadLength: exception.message and the status message
const STACK_MAX = 4096; // traces.maxStackLength
const API_BYTES = 3000; // api.redaction.maxBytes
const policy: RedactionPolicy = { args: false, result: false, suspendPayload: false, errorStack: true, errorMessage: 'scrub', maxBytes: API_BYTES, tools: {} };

// Filler never contains Z, X or 9; every secret's own part is made of them, so a leak is any of them in the shown text.
const FILLER_WORDS = 'lorem ipsum dolor sit amet, consectetur adipiscing elit; séd do eiusmod tempor (code 51) ';
const filler = (n: number): string => FILLER_WORDS.repeat(Math.ceil(n / FILLER_WORDS.length)).slice(0, n);
const body = (n: number): string => 'ZX9'.repeat(Math.ceil(n / 3)).slice(0, n);
const SECRETS: Record<string, string> = {
  bearer: `Authorization: Bearer ${body(40)}`,
  keyValue: `api_key=${body(24)}`,
  stripe: `sk_live_${body(24)}`,
  github: `github_pat_${body(30)}`,
  aws: `AKIA${'ZX9ZX9ZX9ZX9ZX9Z'}`,
  jwt: `eyJ${body(20)}.${body(30)}.${body(20)}`,
  longJwt: `eyJ${body(300)}.${body(900)}.${body(300)}`, // longer than any margin: the scan must reach its end
  url: `https://ZX9ZX9:${body(20)}@db.internal/x`,
  longUrl: `https://ZX9ZX9:${body(700)}@db.internal/x`,
};

// What the bridge showed before, scrubbing the whole value (`whole` = scrubSecrets(value)): the reference.
const spanReference = (whole: string, max: number): string =>
  whole.length > max ? `${whole.slice(0, max)}…[truncated ${whole.length - max} chars]` : whole;
const apiReference = (whole: string, maxBytes: number): string => truncateString(whole, maxBytes).value;
/** `pieces` laid out from position 0: each [position, text] starts at its position, filler in between. */
function layout(...pieces: [number, string][]): string {
  let s = '';
  for (const [at, text] of pieces) {
    if (at < s.length + 1) throw new Error(`piece at ${at} overlaps`);
    s += `${filler(at - s.length - 1)} ${text} `;
  }
  return s;
}
/** Where scrubbing starts to change `secret` (after the kept key or scheme). */
function secretStart(secret: string): number {
  const scrubbed = scrubSecrets(secret);
  let i = 0;
  while (scrubbed[i] === secret[i]) i++;
  return i;
}
/** The shown text before the truncation marker (the marker's count is a number, which may contain a 9). */
const shownPart = (s: string): string => s.split('…')[0]!;

function failedTask(message: string, stack: string): FinishedTask {
  return {
    taskId: 'task-1',
    agentId: 'agent',
    toolName: 'call_api',
    toolCallId: 'call-1',
    runId: 'run-1',
    status: 'failed',
    startedAt: 1_000,
    completedAt: 2_000,
    error: { message, stack },
    events: [],
    outputCount: 0,
    startCounted: true,
    queueWaitObserved: false,
    origin: 'event',
  };
}

/** A SpanWriter on a real SDK provider; `shown(s)` writes a failed task whose message and stack are `s`. */
function spanWriter() {
  const exporter = new InMemorySpanExporter();
  const ids = new PresetIdGenerator();
  const provider = new NodeTracerProvider({ idGenerator: ids, spanProcessors: [new SimpleSpanProcessor(exporter)] });
  const tracing = { tracer: provider.getTracer('t'), ids, exporting: true, forceFlush: () => provider.forceFlush(), shutdown: () => provider.shutdown() };
  const writer = new SpanWriter(tracing, { recordArgs: false, recordResult: false, recordOutput: false, maxPayloadLength: MESSAGE_MAX, maxStackLength: STACK_MAX });
  return {
    shown(s: string): { message: string; stack: string; status: string } {
      exporter.reset();
      const task = failedTask(s, s);
      writer.write(task, fallbackPlacement(task, 'run'));
      const span = exporter.getFinishedSpans()[0]!;
      const event = span.events.find((e) => e.name === 'exception')!;
      return { message: String(event.attributes!['exception.message']), stack: String(event.attributes!['exception.stacktrace'] ?? ''), status: span.status.message ?? '' };
    },
    close: () => provider.shutdown(),
  };
}

function apiShown(s: string): { message: string; stack: string; truncated: string[] } {
  const r = redactTask({ toolName: 'call_api', error: { message: s, stack: s } }, policy);
  return { message: r.error!.message, stack: r.error!.stack!, truncated: r.truncated };
}

/** The longest string any regex replace ran over while `fn` ran (the scrubber's work). */
function longestScrubbed(fn: () => void): number {
  const spy = vi.spyOn(String.prototype, 'replace');
  try {
    fn();
    return Math.max(0, ...spy.mock.contexts.map((c, i) => (spy.mock.calls[i]![0] instanceof RegExp ? String(c).length : 0)));
  } finally {
    spy.mockRestore();
  }
}

describe('scrubbing a large error scans only what can be shown', () => {
  const spans = spanWriter();
  afterEach(() => vi.restoreAllMocks());

  it('shows what scrubbing the whole value showed, for every secret inside the budget or across its edge', () => {
    // Each secret at every offset around each budget's edge (and around the end of a margin past it), in 5 KB of text.
    const edges = [MESSAGE_MAX, API_BYTES, STACK_MAX];
    const offsets = new Set<number>([1, 500]);
    for (const edge of edges) for (let o = edge - 70; o <= edge + 100; o += o < edge + 5 ? 1 : 3) offsets.add(o);
    let cases = 0;
    const starts = Object.fromEntries(Object.entries(SECRETS).map(([kind, secret]) => [kind, secretStart(secret)]));
    for (const [kind, secret] of Object.entries(SECRETS)) {
      for (const at of offsets) {
        const s = layout([at, secret], [at + secret.length + 5_000, 'end']);
        const whole = scrubSecrets(s);
        const span = spans.shown(s);
        const api = apiShown(s);
        const where = `${kind} at ${at}`;
        // A secret whose replaced part starts past the budget may end past the scan: then the count after the cut is
        // of what was scanned plus the raw rest (its replacement is not known), and only the shown text is the same.
        const replacedFrom = at + starts[kind]!;
        const sameSpan = (actual: string, max: number) =>
          replacedFrom < max
            ? expect(actual, where).toBe(spanReference(whole, max))
            : expect(shownPart(actual), where).toBe(shownPart(spanReference(whole, max)));
        sameSpan(span.message, MESSAGE_MAX);
        sameSpan(span.status, MESSAGE_MAX);
        sameSpan(span.stack, STACK_MAX);
        expect(api.message, where).toBe(apiReference(whole, API_BYTES));
        expect(api.stack, where).toBe(apiReference(whole, API_BYTES));
        expect(api.truncated).toEqual(['error.message', 'error.stack']);
        for (const shown of [span.message, span.stack, api.message, api.stack]) expect(shownPart(shown), where).not.toMatch(/[ZX9]/);
        cases++;
      }
    }
    expect(cases).toBeGreaterThan(2_500);
  });

  it('an 8 MiB value with secrets before, across and after the cut: the same shown text, no leak, a bounded scan', () => {
    const MiB = 1024 * 1024;
    const s = layout(
      // before the cut
      [700, SECRETS.bearer!],
      [1000, SECRETS.jwt!],
      [1300, SECRETS.url!],
      // across it: each budget's edge falls inside a secret (the long JWT spans the message's and the API's)
      [MESSAGE_MAX - 10, SECRETS.longJwt!],
      [STACK_MAX - 8, SECRETS.keyValue!],
      // after it, megabytes out
      [3 * MiB, SECRETS.stripe!],
      [3 * MiB + 100, SECRETS.longUrl!],
      [8 * MiB, SECRETS.aws!],
    );
    expect(s.length).toBeGreaterThan(8 * MiB);
    const whole = scrubSecrets(s);
    let span!: ReturnType<typeof spans.shown>;
    let api!: ReturnType<typeof apiShown>;
    const scanned = longestScrubbed(() => {
      span = spans.shown(s);
      api = apiShown(s);
    });
    // The whole value was scrubbed for every task before (8 MiB here); now a few budgets' worth at most.
    expect(scanned).toBeLessThan(64 * 1024);
    // The shown text is the same; the marker's count may differ, as the secrets after the cut were never looked at.
    expect(shownPart(span.message)).toBe(shownPart(spanReference(whole, MESSAGE_MAX)));
    expect(shownPart(span.stack)).toBe(shownPart(spanReference(whole, STACK_MAX)));
    expect(api.message).toBe(apiReference(whole, API_BYTES));
    expect(api.stack).toBe(apiReference(whole, API_BYTES));
    expect(span.message).toMatch(/…\[truncated \d+ chars\]$/);
    for (const shown of [span.message, span.stack, span.status, api.message, api.stack]) {
      expect(shownPart(shown)).not.toMatch(/[ZX9]/);
      expect(shownPart(shown)).toContain('Bearer [REDACTED]');
    }
  });

  it('a secret longer than the scan, across the cut, shows none of itself (the text stops before it)', () => {
    const huge = 512 * 1024; // far longer than any scan (at most 16 × (budget + 64) characters)
    for (const secret of [`Bearer ${body(huge)}`, `password: ${body(huge)}`, `eyJ${body(huge)}.${body(10)}.${body(10)}`, `https://ZX9:${body(huge)}@h/x`, `sk_live_${body(huge)}`]) {
      for (const at of [10, MESSAGE_MAX - 5, API_BYTES - 30]) {
        const s = layout([at, secret], [at + secret.length + 1000, 'end']);
        let span!: ReturnType<typeof spans.shown>;
        let api!: ReturnType<typeof apiShown>;
        const scanned = longestScrubbed(() => {
          span = spans.shown(s);
          api = apiShown(s);
        });
        const where = `${secret.slice(0, 12)} at ${at}`;
        const whole = scrubSecrets(s);
        expect(scanned, where).toBeLessThan(256 * 1024);
        for (const shown of [span.message, span.stack, span.status, api.message, api.stack]) {
          expect(shownPart(shown), where).not.toMatch(/[ZX9]/);
          // Whatever is shown of the text is the same as the whole scrubbed value's start.
          expect(whole.startsWith(shownPart(shown)), where).toBe(true);
        }
        expect(api.truncated, where).toEqual(['error.message', 'error.stack']);
        expect(span.message, where).toMatch(/…\[truncated \d+ chars\]$/);
      }
    }
  });

  it('values within the scan are scrubbed whole, as before', () => {
    for (const s of ['', 'card declined', layout([MESSAGE_MAX - 5, SECRETS.bearer!]), layout([100, SECRETS.longJwt!])]) {
      const whole = scrubSecrets(s);
      const span = spans.shown(s);
      expect(span.message).toBe(spanReference(whole, MESSAGE_MAX));
      expect(span.stack).toBe(spanReference(whole, STACK_MAX));
      expect(apiShown(s).message).toBe(apiReference(whole, API_BYTES));
    }
  });
});
