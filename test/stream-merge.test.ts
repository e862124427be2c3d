// Table tests for exactly-once across streams: one row per rule in src/stream-merge.ts. Each step is one event as
// stream `a` or `b` delivered it, put through the merge and then the tracker as the pipeline does; no Mastra, no clock.
import { describe, expect, it } from 'vitest';
import type { EventKind, TaskEvent } from '../src/events.js';
import { StreamMerge } from '../src/stream-merge.js';
import { type FinishedTask, TaskTracker, type Transition } from '../src/tracker.js';

const T0 = Date.parse('2026-01-01T00:00:00Z');

function ev(kind: EventKind, at: number | undefined, taskId = 't1'): TaskEvent {
  const e: TaskEvent = { kind, taskId, toolName: 'tool', toolCallId: `call-${taskId}`, agentId: 'agent', runId: 'run-1' };
  if (at !== undefined) e.at = T0 + at;
  return e;
}

type Result = 'applied' | 'duplicate' | 'out_of_order';
type Step = [source: 'a' | 'b' | 'c', event: TaskEvent, expect: Result, transitions?: Transition['type'][]];

interface Case {
  rule: string;
  steps: Step[];
  finished?: (f: FinishedTask[]) => void;
}

/** As Pipeline.handle does: a repeat is a duplicate and never reaches the tracker. */
function run(steps: Step[]): { results: Result[]; transitions: Transition['type'][][]; finished: FinishedTask[]; merge: StreamMerge } {
  const merge = new StreamMerge();
  const tracker = new TaskTracker();
  const results: Result[] = [];
  const transitions: Transition['type'][][] = [];
  const finished: FinishedTask[] = [];
  for (const [source, event] of steps) {
    if (merge.admit(event, source) === 'repeat') {
      results.push('duplicate');
      transitions.push([]);
      continue;
    }
    const o = tracker.apply(event, T0 + 1_000_000);
    if (tracker.get(event.taskId) === undefined) merge.forget(event.taskId);
    results.push(o.result);
    transitions.push(o.transitions.map((t) => t.type));
    for (const t of o.transitions) if (t.type === 'finished') finished.push(t.task);
  }
  return { results, transitions, finished, merge };
}

const cases: Case[] = [
  {
    rule: 'shared pubsub: the whole lifecycle on both streams, interleaved, is applied once',
    steps: [
      ['a', ev('running', 0), 'applied', ['started']],
      ['b', ev('running', 0), 'duplicate'],
      ['a', ev('output', undefined), 'applied', ['output']],
      ['b', ev('output', undefined), 'duplicate'],
      ['a', ev('completed', 50), 'applied', ['finished']],
      ['b', ev('completed', 50), 'duplicate'],
    ],
    finished: (f) => {
      expect(f).toHaveLength(1);
      expect(f[0]!.outputCount).toBe(1);
      expect(f[0]!.origin).toBe('event');
    },
  },
  {
    rule: 'a suspended from the slower stream after the faster one resumed is a repeat (the task stays running)',
    steps: [
      ['a', ev('running', 0), 'applied', ['started']],
      ['a', ev('suspended', 100), 'applied', ['suspended']],
      ['a', ev('resumed', 5000), 'applied', ['resumed']],
      ['b', ev('running', 0), 'duplicate'],
      ['b', ev('suspended', 100), 'duplicate'],
      ['b', ev('resumed', 5000), 'duplicate'],
      ['a', ev('completed', 6000), 'applied', ['finished']],
      ['b', ev('completed', 6000), 'duplicate'],
    ],
    finished: (f) => expect(f[0]!.events.map((e) => e.name)).toEqual(['suspended', 'resumed']),
  },
  {
    rule: "a running older than the task's suspend is a repeat, not a missed resume",
    steps: [
      ['a', ev('running', 0), 'applied', ['started']],
      ['a', ev('suspended', 100), 'applied', ['suspended']],
      ['b', ev('running', 0), 'duplicate'],
      ['b', ev('suspended', 100), 'duplicate'],
    ],
  },
  {
    rule: 'a later lifecycle time passes and moves on: a snapshot running after a resume on another stream resumes',
    steps: [
      ['a', ev('running', 0), 'applied', ['started']],
      ['a', ev('suspended', 100), 'applied', ['suspended']],
      // stream a goes away; b connects and its snapshot shows the task running since its resume (storage's startedAt)
      ['b', ev('running', 5000), 'applied', ['resumed']],
      ['b', ev('completed', 6000), 'applied', ['finished']],
    ],
  },
  {
    rule: 'separate pubsubs: each task on its own stream, every event once, all applied',
    steps: [
      ['a', ev('running', 0, 't1'), 'applied', ['started']],
      ['b', ev('running', 1, 't2'), 'applied', ['started']],
      ['a', ev('output', undefined, 't1'), 'applied', ['output']],
      ['b', ev('output', undefined, 't2'), 'applied', ['output']],
      ['b', ev('output', undefined, 't2'), 'applied', ['output']],
      ['a', ev('completed', 10, 't1'), 'applied', ['finished']],
      ['b', ev('failed', 11, 't2'), 'applied', ['finished']],
    ],
    finished: (f) => expect(f.map((t) => [t.taskId, t.outputCount])).toEqual([['t1', 1], ['t2', 2]]),
  },
  {
    rule: "output chunks: a chunk is new only when its stream's count passes the most any stream delivered",
    steps: [
      ['a', ev('running', 0), 'applied', ['started']],
      ['a', ev('output', undefined), 'applied', ['output']],
      ['a', ev('output', undefined), 'applied', ['output']],
      ['b', ev('output', undefined), 'duplicate'],
      ['b', ev('output', undefined), 'duplicate'],
      ['b', ev('output', undefined), 'applied', ['output']], // b is ahead now (a lost its connection)
      ['a', ev('output', undefined), 'duplicate'],
      ['c', ev('output', undefined), 'duplicate'], // a stream that joined late delivers nothing new until it passes
    ],
    finished: () => undefined,
  },
  {
    rule: 'shared pubsub with a suspend and resume: each chunk once, also when the slower stream is still a phase behind',
    steps: [
      ['a', ev('running', 0), 'applied', ['started']],
      ['b', ev('running', 0), 'duplicate'],
      ['a', ev('output', undefined), 'applied', ['output']],
      ['a', ev('output', undefined), 'applied', ['output']],
      ['b', ev('output', undefined), 'duplicate'],
      ['a', ev('output', undefined), 'applied', ['output']],
      ['a', ev('suspended', 100), 'applied', ['suspended']],
      ['a', ev('resumed', 5000), 'applied', ['resumed']],
      ['a', ev('output', undefined), 'applied', ['output']],
      // b still delivers the chunks from before the suspend: compared with that phase, not the new one
      ['b', ev('output', undefined), 'duplicate'],
      ['b', ev('output', undefined), 'duplicate'],
      ['b', ev('suspended', 100), 'duplicate'],
      ['b', ev('resumed', 5000), 'duplicate'],
      ['b', ev('output', undefined), 'duplicate'],
      ['a', ev('output', undefined), 'applied', ['output']],
      ['b', ev('output', undefined), 'duplicate'],
      ['a', ev('completed', 6000), 'applied', ['finished']],
      ['b', ev('completed', 6000), 'duplicate'],
    ],
    finished: (f) => expect(f.map((t) => t.outputCount)).toEqual([5]),
  },
  {
    rule: "separate pubsubs, resumed on another replica: that replica's chunks count from its resume",
    steps: [
      ['a', ev('running', 0), 'applied', ['started']],
      ['a', ev('output', undefined), 'applied', ['output']],
      ['a', ev('output', undefined), 'applied', ['output']],
      ['a', ev('output', undefined), 'applied', ['output']],
      ['a', ev('suspended', 100), 'applied', ['suspended']],
      ['b', ev('resumed', 5000), 'applied', ['resumed']],
      ['b', ev('output', undefined), 'applied', ['output']],
      ['b', ev('output', undefined), 'applied', ['output']],
      ['b', ev('completed', 6000), 'applied', ['finished']],
    ],
    finished: (f) => expect(f.map((t) => t.outputCount)).toEqual([5]),
  },
  {
    rule: 'separate pubsubs, resume seen only as the other replica\'s snapshot running: its chunks count',
    steps: [
      ['a', ev('running', 0), 'applied', ['started']],
      ['a', ev('output', undefined), 'applied', ['output']],
      ['a', ev('output', undefined), 'applied', ['output']],
      ['a', ev('suspended', 100), 'applied', ['suspended']],
      ['b', ev('running', 5000), 'applied', ['resumed']],
      ['b', ev('output', undefined), 'applied', ['output']],
      ['b', ev('completed', 6000), 'applied', ['finished']],
    ],
    finished: (f) => expect(f.map((t) => t.outputCount)).toEqual([3]),
  },
  {
    rule: "a reconnect's snapshot of the same phase keeps the stream's count (no chunk counted twice, none dropped)",
    steps: [
      ['a', ev('running', 0), 'applied', ['started']],
      ['a', ev('output', undefined), 'applied', ['output']],
      ['a', ev('output', undefined), 'applied', ['output']],
      ['a', ev('running', 0), 'duplicate'], // stream a reconnected: Mastra's snapshot of the running task
      ['a', ev('output', undefined), 'applied', ['output']],
      ['a', ev('completed', 50), 'applied', ['finished']],
    ],
    finished: (f) => expect(f.map((t) => t.outputCount)).toEqual([3]),
  },
  {
    rule: 'events from the slower stream after the task finished are duplicates or out of order, never a second task',
    steps: [
      ['a', ev('running', 0), 'applied', ['started']],
      ['a', ev('completed', 10), 'applied', ['finished']],
      ['b', ev('running', 0), 'out_of_order'],
      ['b', ev('output', undefined), 'out_of_order'],
      ['b', ev('completed', 10), 'duplicate'],
    ],
    finished: (f) => expect(f).toHaveLength(1),
  },
  {
    rule: 'a terminal event first on the slower stream of a task the faster one never showed still finishes once',
    steps: [
      ['b', ev('cancelled', 300), 'applied', ['finished']],
      ['a', ev('cancelled', 300), 'duplicate'],
    ],
    finished: (f) => expect(f).toHaveLength(1),
  },
];

describe('StreamMerge rules', () => {
  for (const c of cases) {
    it(c.rule, () => {
      const { results, transitions, finished, merge } = run(c.steps);
      expect(results).toEqual(c.steps.map((s) => s[2]));
      expect(transitions).toEqual(c.steps.map((s) => s[3] ?? []));
      c.finished?.(finished);
      // Nothing is kept for a task the tracker no longer holds.
      const open = new Set(c.steps.map((s) => s[1].taskId).filter((id) => !finished.some((f) => f.taskId === id)));
      expect(merge.size).toBe(open.size);
    });
  }

  it('keeps at most maxTasks entries, oldest dropped first', () => {
    const merge = new StreamMerge(3);
    for (let i = 0; i < 10; i++) merge.admit(ev('running', i, `t${i}`), 'a');
    expect(merge.size).toBe(3);
    // t0 was dropped: its repeat is not recognised by the merge (the tracker's own rules still apply to it).
    expect(merge.admit(ev('running', -5, 't0'), 'b')).toBe('new');
    expect(merge.admit(ev('running', -5, 't9'), 'b')).toBe('repeat');
  });

  it('many suspend/resume cycles (more than the phases kept): a repeat in the latest phase is still recognised', () => {
    const merge = new StreamMerge();
    for (let i = 0; i < 20; i++) {
      merge.admit(ev('resumed', i * 100), 'a');
      expect(merge.admit(ev('output', undefined), 'a')).toBe('new');
    }
    // b replays the last phase: its chunk is a repeat there
    merge.admit(ev('resumed', 1900), 'b');
    expect(merge.admit(ev('output', undefined), 'b')).toBe('repeat');
    expect(merge.admit(ev('output', undefined), 'b')).toBe('new');
  });
});
