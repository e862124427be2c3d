// Table tests for the pure core: one row per rule in src/tracker.ts, synthetic events, no Mastra, no clock.
import { describe, expect, it } from 'vitest';
import type { EventKind, TaskEvent, TaskRecord } from '../src/events.js';
import { type FinishedTask, TaskTracker, type TrackerOptions, type Transition, completeWithRecord } from '../src/tracker.js';

const T0 = Date.parse('2026-01-01T00:00:00Z');

function ev(kind: EventKind, at: number | undefined, extra: Partial<TaskEvent> = {}): TaskEvent {
  const e: TaskEvent = { kind, taskId: 't1', toolName: 'tool', toolCallId: 'call-1', agentId: 'agent', runId: 'run-1', ...extra };
  if (at !== undefined) e.at = T0 + at;
  return e;
}

type Step = { event: TaskEvent; expect: 'applied' | 'duplicate' | 'out_of_order'; transitions: Transition['type'][] };

interface Case {
  rule: string;
  steps: Step[];
  options?: Partial<TrackerOptions>;
  finished?: (f: FinishedTask) => void;
}

const step = (event: TaskEvent, expectResult: Step['expect'], transitions: Transition['type'][] = []): Step => ({
  event,
  expect: expectResult,
  transitions,
});

const cases: Case[] = [
  {
    rule: 'a connect-snapshot running frame that repeats a live running is a duplicate',
    steps: [step(ev('running', 0), 'applied', ['started']), step(ev('running', 0), 'duplicate')],
  },
  {
    rule: 'a snapshot running after a resume (storage overwrote startedAt) is a duplicate and keeps the first start',
    steps: [
      step(ev('running', 0), 'applied', ['started']),
      step(ev('suspended', 100), 'applied', ['suspended']),
      step(ev('resumed', 5000), 'applied', ['resumed']),
      step(ev('running', 5000), 'duplicate'),
      step(ev('completed', 6000), 'applied', ['finished']),
    ],
    finished: (f) => {
      expect(f.startedAt).toBe(T0);
      expect(f.status).toBe('completed');
      expect(f.events.map((e) => e.name)).toEqual(['suspended', 'resumed']);
      expect(f.startCounted).toBe(true);
    },
  },
  {
    rule: 'a terminal event for a task never seen running (cancelled while pending) yields one finished task',
    steps: [step(ev('cancelled', 300), 'applied', ['finished'])],
    finished: (f) => {
      expect(f.status).toBe('cancelled');
      expect(f.startedAt).toBeUndefined();
      expect(f.startCounted).toBe(false);
      expect(f.completedAt).toBe(T0 + 300);
    },
  },
  {
    rule: 'a completed event for a task that started before the bridge did still finishes it once',
    steps: [step(ev('completed', 900, { result: { ok: true } }), 'applied', ['finished'])],
    finished: (f) => {
      expect(f.status).toBe('completed');
      expect(f.origin).toBe('event');
      expect(f.startCounted).toBe(false);
    },
  },
  {
    rule: 'failed caused by a timeout becomes timed_out',
    steps: [
      step(ev('running', 0), 'applied', ['started']),
      step(ev('failed', 300_000, { error: { message: 'Task timed out after 300000ms' } }), 'applied', ['finished']),
    ],
    finished: (f) => expect(f.status).toBe('timed_out'),
  },
  {
    rule: 'failed with any other error stays failed',
    steps: [
      step(ev('running', 0), 'applied', ['started']),
      step(ev('failed', 10, { error: { message: 'Task timed out? no: card declined', stack: 'PaymentDeclinedError: x' } }), 'applied', ['finished']),
    ],
    finished: (f) => {
      expect(f.status).toBe('failed');
      expect(f.error?.stack).toContain('PaymentDeclinedError');
    },
  },
  {
    rule: 'an event after the terminal one is out of order and changes nothing',
    steps: [
      step(ev('running', 0), 'applied', ['started']),
      step(ev('completed', 10), 'applied', ['finished']),
      step(ev('output', undefined), 'out_of_order'),
      step(ev('running', 0), 'out_of_order'),
      step(ev('suspended', 5), 'out_of_order'),
    ],
  },
  {
    rule: 'a duplicate terminal event changes nothing, even with another status',
    steps: [
      step(ev('running', 0), 'applied', ['started']),
      step(ev('completed', 10), 'applied', ['finished']),
      step(ev('completed', 10), 'duplicate'),
      step(ev('failed', 11, { error: { message: 'x' } }), 'duplicate'),
    ],
  },
  {
    rule: 'a running after a suspend is a missed resume: applied, with the time suspended',
    steps: [
      step(ev('running', 0), 'applied', ['started']),
      step(ev('suspended', 100), 'applied', ['suspended']),
      step(ev('running', 2100), 'applied', ['resumed']),
    ],
  },
  {
    rule: 'a resume repeated is a duplicate; a suspend repeated is a duplicate',
    steps: [
      step(ev('running', 0), 'applied', ['started']),
      step(ev('suspended', 100), 'applied', ['suspended']),
      step(ev('suspended', 100), 'duplicate'),
      step(ev('resumed', 200), 'applied', ['resumed']),
      step(ev('resumed', 200), 'duplicate'),
    ],
  },
  {
    rule: 'a task first seen suspended (not in the running snapshot) opens suspended',
    steps: [step(ev('suspended', 100), 'applied', ['started', 'suspended']), step(ev('resumed', 400), 'applied', ['resumed'])],
  },
  {
    rule: 'output chunks are counted; only the first N become span events',
    options: { maxOutputEvents: 2 },
    steps: [
      step(ev('running', 0), 'applied', ['started']),
      step(ev('output', undefined), 'applied', ['output']),
      step(ev('output', undefined), 'applied', ['output']),
      step(ev('output', undefined), 'applied', ['output']),
      step(ev('completed', 50), 'applied', ['finished']),
    ],
    finished: (f) => {
      expect(f.outputCount).toBe(3);
      expect(f.events.filter((e) => e.name === 'output').map((e) => e.index)).toEqual([0, 1]);
    },
  },
];

describe('TaskTracker rules', () => {
  it.each(cases)('$rule', ({ steps, options, finished }) => {
    const tracker = new TaskTracker(options);
    let last: FinishedTask | undefined;
    steps.forEach((s, i) => {
      const outcome = tracker.apply(s.event, T0 + 10_000 + i);
      expect({ step: i, result: outcome.result, transitions: outcome.transitions.map((t) => t.type) }).toEqual({
        step: i,
        result: s.expect,
        transitions: s.transitions,
      });
      for (const t of outcome.transitions) if (t.type === 'finished') last = t.task;
    });
    if (finished) {
      expect(last).toBeDefined();
      finished(last!);
    }
    // Finished tasks never stay open.
    if (last) expect(tracker.get(last.taskId)).toBeUndefined();
  });

  it('measures the suspended time from suspendedAt to the resume', () => {
    const tracker = new TaskTracker();
    tracker.apply(ev('running', 0), T0);
    tracker.apply(ev('suspended', 100), T0);
    const out = tracker.apply(ev('resumed', 2100), T0);
    expect(out.transitions[0]).toMatchObject({ type: 'resumed', suspendedMs: 2000 });
  });

  it('forgets finished tasks after the dedupe window (bounded memory)', () => {
    const tracker = new TaskTracker({ dedupeWindowMs: 1000 });
    tracker.apply(ev('completed', 0), T0);
    expect(tracker.apply(ev('completed', 0), T0 + 500).result).toBe('duplicate');
    tracker.prune(T0 + 1001);
    expect(tracker.tombstoneCount).toBe(0);
  });

  it('caps remembered finished ids', () => {
    const tracker = new TaskTracker({ maxTombstones: 3 });
    for (let i = 0; i < 10; i++) tracker.apply(ev('completed', i, { taskId: `t${i}` }), T0 + i);
    tracker.prune(T0 + 10);
    expect(tracker.tombstoneCount).toBe(3);
    expect(tracker.isFinished('t9')).toBe(true);
    expect(tracker.isFinished('t0')).toBe(false);
  });

  it('keeps the newest finished ids at the cap over many tasks, oldest forgotten first', () => {
    const tracker = new TaskTracker({ maxTombstones: 100 });
    for (let i = 0; i < 5000; i++) tracker.apply(ev('completed', i, { taskId: `t${i}` }), T0 + i);
    expect(tracker.tombstoneCount).toBeLessThanOrEqual(101);
    tracker.prune(T0 + 5000);
    expect(tracker.tombstoneCount).toBe(100);
    expect(tracker.isFinished('t4899')).toBe(false);
    expect(tracker.isFinished('t4900')).toBe(true);
    expect(tracker.isFinished('t4999')).toBe(true);
    expect(tracker.apply(ev('completed', 4999, { taskId: 't4999' }), T0 + 5000).result).toBe('duplicate');
  });

  it('an id remembered again counts from its latest time for the dedupe window', () => {
    const tracker = new TaskTracker({ dedupeWindowMs: 1000 });
    tracker.rememberFinished(['a', 'b'], T0);
    tracker.rememberFinished(['a'], T0 + 900);
    tracker.prune(T0 + 1001);
    expect(tracker.isFinished('a')).toBe(true);
    expect(tracker.isFinished('b')).toBe(false);
    tracker.prune(T0 + 1901);
    expect(tracker.tombstoneCount).toBe(0);
  });

  it('caps open tasks: the oldest is evicted (counted), and its later end still finishes it once', () => {
    const tracker = new TaskTracker({ maxOpenTasks: 2 });
    tracker.apply(ev('running', 0, { taskId: 'a' }), T0);
    tracker.apply(ev('running', 1, { taskId: 'b' }), T0);
    const out = tracker.apply(ev('running', 2, { taskId: 'c' }), T0);
    expect(out.transitions.map((t) => t.type)).toEqual(['started', 'evicted']);
    expect((out.transitions[1] as { task: { taskId: string } }).task.taskId).toBe('a');
    expect(tracker.size).toBe(2);
    const end = tracker.apply(ev('completed', 9, { taskId: 'a' }), T0);
    expect(end.transitions.map((t) => t.type)).toEqual(['finished']);
    // Its start was counted when it opened, and its first start is kept for the span.
    expect((end.transitions[0] as { task: FinishedTask }).task).toMatchObject({ startCounted: true, startedAt: T0, completedAt: T0 + 9 });
    expect(tracker.apply(ev('completed', 9, { taskId: 'a' }), T0).result).toBe('duplicate');
  });

  it('remembers evicted tasks in bounded memory, even when they keep ending (their FIFO slots are compacted)', () => {
    const tracker = new TaskTracker({ maxOpenTasks: 10 });
    for (let i = 0; i < 20_000; i++) {
      tracker.apply(ev('running', i, { taskId: `t${i}` }), T0 + i);
      // the task evicted by this start (10 back) ends at once: its memory entry goes, its FIFO slot goes stale
      if (i >= 10) {
        const end = tracker.apply(ev('completed', i, { taskId: `t${i - 10}` }), T0 + i);
        expect((end.transitions[0] as { task: FinishedTask }).task.startCounted).toBe(true);
      }
    }
    expect(tracker.evictedSlots).toBeLessThan(2 * 10 + 1024 + 2);
  });

  it('an evicted task that speaks again re-opens without a second start; reconciliation never re-opens it', () => {
    const tracker = new TaskTracker({ maxOpenTasks: 2 });
    tracker.apply(ev('running', 0, { taskId: 'a' }), T0);
    tracker.apply(ev('running', 1, { taskId: 'b' }), T0);
    tracker.apply(ev('running', 2, { taskId: 'c' }), T0); // evicts a
    // Storage still says a runs: reconciliation leaves it alone (re-opening would evict b, then b would evict c...).
    const stored = tracker.reconcile(rec('running', { id: 'a', startedAt: T0 }), T0);
    expect(stored).toEqual({ result: 'duplicate', transitions: [] });
    expect(tracker.get('a')).toBeUndefined();
    // The stream speaks of a again: it is open again (evicting the oldest, b), its start not counted twice.
    const out = tracker.apply(ev('output', undefined, { taskId: 'a' }), T0 + 5);
    expect(out.transitions.map((t) => t.type)).toEqual(['output', 'evicted']);
    expect(tracker.get('a')).toMatchObject({ startedAt: T0, outputCount: 1 });
    // b, evicted now, ends through reconciliation: one finish, start already counted.
    const done = tracker.reconcile(rec('completed', { id: 'b', startedAt: T0 + 1, completedAt: T0 + 20 }), T0 + 30);
    expect(done.transitions.map((t) => t.type)).toEqual(['finished']);
    expect((done.transitions[0] as { task: FinishedTask }).task).toMatchObject({ taskId: 'b', startCounted: true, startedAt: T0 + 1, origin: 'reconciled' });
  });

  it('a task Mastra requeued for a retry (stored pending) is parked: not running, then runs again without a second start', () => {
    const tracker = new TaskTracker();
    tracker.apply(ev('running', 0, { taskId: 'r' }), T0);
    const running = () => [...tracker.openCounts()].filter((c) => c.phase === 'running').reduce((n, c) => n + c.count, 0);
    expect(running()).toBe(1);
    expect(tracker.reconcile(rec('pending', { id: 'r', startedAt: T0 }), T0 + 10)).toEqual({ result: 'applied', transitions: [] });
    expect(tracker.get('r')!.phase).toBe('pending');
    expect(running()).toBe(0); // counted from storage as pending, not here
    expect(tracker.reconcile(rec('pending', { id: 'r' }), T0 + 20).result).toBe('duplicate');
    const again = tracker.apply(ev('running', 500, { taskId: 'r' }), T0 + 500);
    expect(again).toEqual({ result: 'applied', transitions: [] }); // no second `started`
    expect(tracker.get('r')).toMatchObject({ phase: 'running', startedAt: T0, lastResumedAt: T0 + 500 });
    expect(running()).toBe(1);
    const end = tracker.apply(ev('completed', 900, { taskId: 'r' }), T0 + 900);
    expect((end.transitions[0] as { task: FinishedTask }).task).toMatchObject({ startedAt: T0, startCounted: true });
  });

  it('keeps open-task counts by agent, tool and phase', () => {
    const tracker = new TaskTracker();
    tracker.apply(ev('running', 0, { taskId: 'a' }), T0);
    tracker.apply(ev('running', 0, { taskId: 'b' }), T0);
    tracker.apply(ev('suspended', 1, { taskId: 'b' }), T0);
    tracker.apply(ev('running', 0, { taskId: 'c', toolName: 'other' }), T0);
    tracker.apply(ev('completed', 2, { taskId: 'c', toolName: 'other' }), T0);
    const counts = [...tracker.openCounts()].filter((c) => c.count > 0).map((c) => `${c.toolName}/${c.phase}=${c.count}`);
    expect(counts.sort()).toEqual(['tool/running=1', 'tool/suspended=1']);
  });
});

function rec(status: TaskRecord['status'], extra: Partial<TaskRecord> = {}): TaskRecord {
  return { id: 't1', status, toolName: 'tool', toolCallId: 'call-1', agentId: 'agent', runId: 'run-1', ...extra };
}

describe('TaskTracker.reconcile (stored state when the stream was silent)', () => {
  it('finishes an open task whose record is terminal (e.g. failed by Mastra restart recovery)', () => {
    const tracker = new TaskTracker();
    tracker.apply(ev('running', 0), T0);
    const out = tracker.reconcile(rec('failed', { completedAt: T0 + 50, error: { message: 'Worker process terminated before task completed' } }), T0 + 60);
    expect(out.transitions.map((t) => t.type)).toEqual(['finished']);
    const f = (out.transitions[0] as { task: FinishedTask }).task;
    expect(f).toMatchObject({ status: 'failed', origin: 'reconciled', startedAt: T0, completedAt: T0 + 50, startCounted: true });
    expect(tracker.reconcile(rec('failed', { completedAt: T0 + 50 }), T0 + 70).result).toBe('duplicate');
    expect(tracker.apply(ev('failed', 50, { error: { message: 'x' } }), T0 + 80).result).toBe('duplicate');
  });

  it('finishes a task that began and ended in a gap, with its stored status', () => {
    const tracker = new TaskTracker();
    const out = tracker.reconcile(rec('timed_out', { startedAt: T0, completedAt: T0 + 300 }), T0 + 400);
    const f = (out.transitions[0] as { task: FinishedTask }).task;
    expect(f).toMatchObject({ status: 'timed_out', startCounted: false, origin: 'reconciled' });
  });

  it('opens a stored suspended task and corrects a phase the stream missed', () => {
    const tracker = new TaskTracker();
    expect(tracker.reconcile(rec('suspended', { suspendedAt: T0 + 5, startedAt: T0 }), T0 + 10).transitions.map((t) => t.type)).toEqual([
      'started',
      'suspended',
    ]);
    expect(tracker.reconcile(rec('suspended', { suspendedAt: T0 + 5 }), T0 + 11).result).toBe('duplicate');
    expect(tracker.reconcile(rec('running', { startedAt: T0 + 20 }), T0 + 21).transitions).toMatchObject([{ type: 'resumed', suspendedMs: 15 }]);
  });

  it('ignores pending tasks (they publish nothing until they run)', () => {
    const tracker = new TaskTracker();
    expect(tracker.reconcile(rec('pending'), T0).transitions).toEqual([]);
    expect(tracker.size).toBe(0);
  });
});

describe('completeWithRecord (the stored record at the task end)', () => {
  const base = (): FinishedTask => ({
    taskId: 't1',
    agentId: 'a',
    toolName: 'tool',
    toolCallId: 'c',
    runId: 'r',
    status: 'failed',
    completedAt: T0 + 1000,
    events: [],
    outputCount: 0,
    startCounted: false,
    queueWaitObserved: false,
    origin: 'event',
  });

  it('takes the true status, the start and the queue wait from storage when the stream had none', () => {
    const f = base();
    const { queueWaitMs } = completeWithRecord(f, rec('timed_out', { createdAt: T0 - 200, startedAt: T0, threadId: 'th', retryCount: 2 }));
    expect(f.status).toBe('timed_out');
    expect(f.startedAt).toBe(T0);
    expect(f.info).toMatchObject({ threadId: 'th', retryCount: 2 });
    expect(queueWaitMs).toBe(200);
  });

  it('never replaces a start seen in an event (storage overwrites startedAt on resume and retry)', () => {
    const f = { ...base(), startedAt: T0, status: 'completed' as const };
    completeWithRecord(f, rec('completed', { createdAt: T0 - 10, startedAt: T0 + 500 }));
    expect(f.startedAt).toBe(T0);
  });

  it('does nothing without a record (a failed lookup degrades, never loses)', () => {
    const f = base();
    expect(completeWithRecord(f, undefined)).toEqual({});
    expect(f.status).toBe('failed');
  });
});
