// The Enricher alone, over a source whose getTask (and listTasks) answer when the test says: one lookup per task in
// flight at a time; lookups with a time hint gathered into one listTasks date window, and every task the window misses
// asked for on its own.
import { describe, expect, it } from 'vitest';
import { waitFor } from './support/poll.js';
import { BATCH_MAX_SPAN_MS, DEFAULT_ENRICHMENT, Enricher, NEEDS_LOOKUP } from '../src/enrichment.js';
import type { TaskRecord } from '../src/events.js';
import { SourceError, type TaskPage, type TaskQuery } from '../src/sources/types.js';
import { heapAfterGc } from './support/heap.js';

function deferredSource() {
  const calls: { id: string; resolve: (r: TaskRecord | null) => void }[] = [];
  return {
    calls,
    getTask: (id: string) => new Promise<TaskRecord | null>((resolve) => calls.push({ id, resolve })),
  };
}

const record = (status: TaskRecord['status']): TaskRecord => ({
  id: 't',
  status,
  toolName: 'tool',
  toolCallId: 'call',
  agentId: 'agent',
  runId: 'run',
  createdAt: 1,
});
const settle = () => new Promise((r) => setImmediate(r));

describe('Enricher', () => {
  it('a re-lookup started by a finished task stays the one lookup in flight (no duplicate getTask)', async () => {
    const source = deferredSource();
    const enricher = new Enricher(source, DEFAULT_ENRICHMENT, () => undefined);
    const first = enricher.lookup('t');
    const finished = enricher.forFinished('t', (r) => r.status === 'running'); // the first answer will be stale
    source.calls[0]!.resolve(record('running'));
    expect(await first).toMatchObject({ status: 'running' });
    await settle();
    expect(source.calls).toHaveLength(2); // the final lookup
    // Asked again while that final lookup runs: it joins it rather than sending a third request.
    const again = enricher.lookup('t');
    expect(source.calls).toHaveLength(2);
    source.calls[1]!.resolve(record('completed'));
    expect(await finished).toMatchObject({ status: 'completed' });
    expect(await again).toMatchObject({ status: 'completed' });
    expect(source.calls).toHaveLength(2);
  });

  it('bounds concurrency and reports a full queue as overloaded', async () => {
    const source = deferredSource();
    const failures: string[] = [];
    const enricher = new Enricher(source, { ...DEFAULT_ENRICHMENT, concurrency: 2, maxQueue: 1 }, (reason) => void failures.push(reason));
    const lookups = ['a', 'b', 'c', 'd'].map((id) => enricher.lookup(id));
    expect(source.calls.map((c) => c.id)).toEqual(['a', 'b']); // c waits in the queue, d finds it full
    expect(failures).toEqual(['overloaded']);
    expect(await lookups[3]).toBeUndefined();
    source.calls[0]!.resolve(null);
    await settle();
    expect(source.calls.map((c) => c.id)).toEqual(['a', 'b', 'c']);
    expect(failures).toEqual(['overloaded', 'not_found']);
  });
});

describe('Enricher memory', () => {
  it('keeps no payloads: 300 lookups of records with 1 MiB args leave the heap bounded', async () => {
    // Mirrors the hostile case of issue 10: every getTask answer carries 1 MiB of fresh args (and a result).
    const big = (i: number): string => `${i}:`.padEnd(1024 * 1024, 'x');
    const source = {
      getTask: async (id: string): Promise<TaskRecord> => ({
        ...record('running'),
        id,
        threadId: `thread-${id}`,
        args: { blob: big(Number(id.slice(1))) },
        result: { blob: big(-1) },
        suspendPayload: { blob: big(-2) },
      }),
    };
    const enricher = new Enricher(source, DEFAULT_ENRICHMENT, () => undefined);
    const before = heapAfterGc();
    const answers = [];
    for (let i = 0; i < 300; i++) answers.push(await enricher.lookup(`t${i}`));
    const after = heapAfterGc();
    // Every record is cached (a task that ends later reuses it) and each answer is still referenced here.
    expect(answers.every((a) => a?.threadId?.startsWith('thread-t') && a.args === undefined && a.result === undefined)).toBe(true);
    await settle();
    expect(enricher.finishedNow('t299', () => false)).toMatchObject({ id: 't299', threadId: 'thread-t299' });
    // 300 records with payloads would be > 900 MB; without them a few hundred KB. Loose bound, GC measured.
    expect(after - before).toBeLessThan(20 * 1024 * 1024);
  });
});

/** A source whose getTask and listTasks answer when the test says; the batch window is flushed by the test. */
function batchSource() {
  const gets: { id: string; resolve: (r: TaskRecord | null) => void; reject: (e: unknown) => void }[] = [];
  const lists: { query: TaskQuery; resolve: (p: TaskPage) => void; reject: (e: unknown) => void }[] = [];
  return {
    gets,
    lists,
    getTask: (id: string) => new Promise<TaskRecord | null>((resolve, reject) => gets.push({ id, resolve, reject })),
    listTasks: (query: TaskQuery) => new Promise<TaskPage>((resolve, reject) => lists.push({ query, resolve, reject })),
  };
}

const T0 = Date.parse('2026-03-01T10:00:00.000Z');
const stored = (id: string, startedAt: number, over: Partial<TaskRecord> = {}): TaskRecord => ({
  ...record('running'),
  id,
  threadId: `thread-${id}`,
  startedAt,
  args: { big: 'payload' },
  ...over,
});
// A window that never ends by itself: each test flushes when it has gathered what it wants.
const gathering = { ...DEFAULT_ENRICHMENT, batchWindowMs: 60_000 };

describe('Enricher batches', () => {
  it('lookups gathered in one window are one listTasks over their date window, answered per task (payloads dropped)', async () => {
    const source = batchSource();
    const failures: string[] = [];
    const enricher = new Enricher(source, gathering, (reason) => void failures.push(reason));
    const a = enricher.lookup('a', { by: 'startedAt', at: T0 + 40 });
    const b = enricher.lookup('b', { by: 'startedAt', at: T0 });
    const c = enricher.lookup('c', { by: 'startedAt', at: T0 + 900 });
    expect(enricher.lookup('a', { by: 'startedAt', at: T0 + 40 })).toBe(a); // asked twice: one lookup
    expect(source.lists).toHaveLength(0); // gathered, not sent yet
    enricher.flush();
    expect(source.gets).toHaveLength(0);
    expect(source.lists).toHaveLength(1);
    // fromDate inclusive and toDate exclusive in every Mastra store: the window ends 1 ms after its last task.
    expect(source.lists[0]!.query).toEqual({
      dateFilterBy: 'startedAt',
      fromDate: new Date(T0),
      toDate: new Date(T0 + 901),
      orderBy: 'startedAt',
      orderDirection: 'asc',
      page: 0,
      perPage: 100,
    });
    // The answer also holds a task nobody asked about: ignored.
    source.lists[0]!.resolve({ tasks: [stored('b', T0), stored('x', T0 + 1), stored('a', T0 + 40), stored('c', T0 + 900)], total: 4, invalid: 0 });
    expect(await a).toMatchObject({ id: 'a', threadId: 'thread-a' });
    expect(await b).toMatchObject({ id: 'b', threadId: 'thread-b' });
    expect((await c)?.args).toBeUndefined();
    expect(source.gets).toHaveLength(0);
    expect(failures).toEqual([]);
    // Cached for the task's end, as a getTask answer is; the unasked record is not kept.
    expect(enricher.finishedNow('a', () => false)).toMatchObject({ id: 'a' });
    expect(enricher.finishedNow('x', () => false)).toBe(NEEDS_LOOKUP);
  });

  it('a task the answer lacks (its start changed by a retry, or a page too small) gets its own getTask', async () => {
    const source = batchSource();
    const failures: string[] = [];
    const enricher = new Enricher(source, gathering, (reason) => void failures.push(reason));
    const a = enricher.lookup('a', { by: 'startedAt', at: T0 });
    const b = enricher.lookup('b', { by: 'startedAt', at: T0 + 10 });
    enricher.flush();
    source.lists[0]!.resolve({ tasks: [stored('a', T0)], total: 2, invalid: 0 });
    expect(await a).toMatchObject({ id: 'a' });
    await settle();
    expect(source.gets.map((g) => g.id)).toEqual(['b']);
    source.gets[0]!.resolve(stored('b', T0 + 5_000, { retryCount: 1 }));
    expect(await b).toMatchObject({ id: 'b', retryCount: 1 });
    expect(failures).toEqual([]);
  });

  it('a failing listTasks counts no failure itself: each task falls back to its getTask, which alone may fail', async () => {
    const source = batchSource();
    const failures: string[] = [];
    const enricher = new Enricher(source, { ...gathering, concurrency: 2 }, (reason) => void failures.push(reason));
    const ids = ['a', 'b', 'c'];
    const lookups = ids.map((id, i) => enricher.lookup(id, { by: 'completedAt', at: T0 + i }));
    enricher.flush();
    expect(source.lists[0]!.query).toMatchObject({ dateFilterBy: 'completedAt', orderBy: 'completedAt' });
    source.lists[0]!.reject(new Error('Mastra unreachable'));
    await settle();
    // The batch's slot is free again; the fallbacks share the two slots (bounded concurrency holds).
    expect(source.gets.map((g) => g.id)).toEqual(['a', 'b']);
    expect(enricher.inFlight).toBe(3);
    source.gets[0]!.resolve(stored('a', T0));
    source.gets[1]!.resolve(null);
    await settle();
    expect(source.gets.map((g) => g.id)).toEqual(['a', 'b', 'c']);
    source.gets[2]!.reject(new Error('still unreachable'));
    expect(await Promise.all(lookups)).toEqual([expect.objectContaining({ id: 'a' }), undefined, undefined]);
    expect(failures.sort()).toEqual(['error', 'not_found']);
    await settle(); // the last slot is released just after its answer
    expect(enricher.inFlight).toBe(0);
  });

  it('a lookup alone in its window, or without a hint, is a getTask', async () => {
    const source = batchSource();
    const enricher = new Enricher(source, gathering, () => undefined);
    const alone = enricher.lookup('a', { by: 'startedAt', at: T0 });
    const unhinted = enricher.lookup('b');
    expect(source.gets.map((g) => g.id)).toEqual(['b']); // sent at once
    enricher.flush();
    expect(source.lists).toHaveLength(0);
    expect(source.gets.map((g) => g.id)).toEqual(['b', 'a']);
    source.gets[0]!.resolve(stored('b', T0));
    source.gets[1]!.resolve(stored('a', T0));
    expect(await alone).toMatchObject({ id: 'a' });
    expect(await unhinted).toMatchObject({ id: 'b' });
  });

  it('gathered lookups count against maxQueue (overloaded past it), and flush() sends them without waiting', async () => {
    const source = batchSource();
    const failures: string[] = [];
    const enricher = new Enricher(source, { ...gathering, maxQueue: 2 }, (reason) => void failures.push(reason));
    const a = enricher.lookup('a', { by: 'startedAt', at: T0 });
    const b = enricher.lookup('b', { by: 'startedAt', at: T0 + 1 });
    expect(await enricher.lookup('c', { by: 'startedAt', at: T0 + 2 })).toBeUndefined();
    expect(failures).toEqual(['overloaded']);
    expect(enricher.inFlight).toBe(2);
    enricher.flush(); // what Pipeline.idle() (and so a bridge's close) does
    expect(source.lists).toHaveLength(1);
    source.lists[0]!.resolve({ tasks: [stored('a', T0), stored('b', T0 + 1)], total: 2, invalid: 0 });
    expect((await Promise.all([a, b])).map((r) => r?.id)).toEqual(['a', 'b']);
  });

  it('an answer refused as too large halves the next batches (records carry payloads; the answer size is capped)', async () => {
    const source = batchSource();
    const enricher = new Enricher(source, gathering, () => undefined);
    const ask = (ids: string[]) => ids.map((id, i) => enricher.lookup(id, { by: 'startedAt', at: T0 + i }));
    const first = ask(['a', 'b', 'c', 'd']);
    enricher.flush();
    source.lists[0]!.reject(new SourceError('answered more than source.maxResponseBytes', 'bad_response', { refused: 'too_large' }));
    await settle();
    for (const g of source.gets) g.resolve(stored(g.id, T0));
    await Promise.all(first);
    const second = ask(['e', 'f', 'g', 'h']);
    enricher.flush();
    expect(source.lists.slice(1).map((l) => l.query.toDate!.getTime() - l.query.fromDate!.getTime())).toEqual([2, 2]); // two windows of two
    for (const l of source.lists.slice(1)) l.resolve({ tasks: ['e', 'f', 'g', 'h'].map((id, i) => stored(id, T0 + i)), total: 4, invalid: 0 });
    expect((await Promise.all(second)).map((r) => r?.id)).toEqual(['e', 'f', 'g', 'h']);
  });

  it('splits a window by field and where its span would pass the bound; a window flushes by itself after batchWindowMs', async () => {
    const source = batchSource();
    const enricher = new Enricher(source, { ...DEFAULT_ENRICHMENT, concurrency: 8, batchWindowMs: 20 }, () => undefined);
    const span = BATCH_MAX_SPAN_MS;
    // Two close starts, then two more just past the bound from the first, one start alone far later, two ends.
    const hints = {
      s1: T0,
      s2: T0 + 5,
      s3: T0 + span + 1,
      s4: T0 + span + 2,
      s5: T0 + 10 * span,
    };
    for (const [id, at] of Object.entries(hints)) void enricher.lookup(id, { by: 'startedAt', at });
    void enricher.forFinished('e1', () => false, { by: 'completedAt', at: T0 + 1 });
    void enricher.forFinished('e2', () => false, { by: 'completedAt', at: T0 + 2 });
    await waitFor(() => source.lists.length + source.gets.length > 0, { timeoutMs: 10_000, message: 'the window flushed by its timer' });
    const windows = source.lists.map((l) => `${l.query.dateFilterBy} ${l.query.fromDate!.getTime() - T0}..${l.query.toDate!.getTime() - T0}`);
    expect(windows.sort()).toEqual([`completedAt 1..3`, `startedAt 0..6`, `startedAt ${span + 1}..${span + 3}`].sort());
    expect(source.gets.map((g) => g.id)).toEqual(['s5']);
  });
});
