// The pure event hub and the feed that fills it: ids, the bounded ring, resume (replay exactly what was missed, or
// reset + snapshot), filters, the snapshot's consistency with the ids, and the feed holding events until enrichment.
import { describe, expect, it } from 'vitest';
import { EventFeed } from '../src/event-feed.js';
import { type BridgeEvent, type BridgeEventType, EventHub, type TaskView } from '../src/event-hub.js';
import { parseEventsQuery } from '../src/http/events.js';
import { TaskTracker } from '../src/tracker.js';

const task = (id: string, over: Partial<TaskView> = {}): TaskView => ({
  taskId: id,
  toolName: 'research_topic',
  toolCallId: `call-${id}`,
  agentId: 'research-agent',
  runId: `run-${id}`,
  status: 'running',
  outputCount: 0,
  ...over,
});
const ev = (type: BridgeEventType, t: TaskView, at = 1000): BridgeEvent => ({ type, at, task: t });

interface Frame {
  id?: string;
  event?: string;
  data?: unknown;
}
function parse(frame: string): Frame {
  const f: Frame = {};
  for (const line of frame.trimEnd().split('\n')) {
    const [k, ...rest] = line.split(': ');
    const v = rest.join(': ');
    if (k === 'id') f.id = v;
    else if (k === 'event') f.event = v;
    else if (k === 'data') f.data = JSON.parse(v);
  }
  return f;
}
const seqOf = (id: string) => Number(id.split('-')[1]);

describe('EventHub', () => {
  it('numbers events consecutively under one epoch and delivers them live', () => {
    const hub = new EventHub({ bufferSize: 10, recentFinished: 5, epoch: 'e1' });
    expect(hub.lastId).toBe('e1-0');
    const got: Frame[] = [];
    hub.subscribe({}, undefined, (f) => got.push(parse(f)));
    hub.publish(ev('started', task('a')));
    hub.publish(ev('finished', task('a', { status: 'completed' })));
    expect(got.map((f) => [f.id, f.event])).toEqual([
      ['e1-1', 'started'],
      ['e1-2', 'finished'],
    ]);
  });

  it('opens a fresh connection with a snapshot of open and recently finished tasks, id = newest event', () => {
    const hub = new EventHub({ bufferSize: 10, recentFinished: 2, epoch: 'e1' });
    hub.publish(ev('started', task('a')));
    hub.publish(ev('suspended', task('b', { status: 'suspended' })));
    for (const id of ['c', 'd', 'e']) hub.publish(ev('finished', task(id, { status: 'failed' })));
    const sub = hub.subscribe({}, undefined, () => undefined);
    expect(sub.opening.kind).toBe('snapshot');
    const snap = parse(sub.opening.frames[0]!);
    expect(snap.event).toBe('snapshot');
    expect(snap.id).toBe('e1-5');
    const data = snap.data as { reason: string; tasks: TaskView[]; finished: TaskView[] };
    expect(data.reason).toBe('connect');
    expect(data.tasks.map((t) => [t.taskId, t.status])).toEqual([
      ['a', 'running'],
      ['b', 'suspended'],
    ]);
    // Bounded: only the last `recentFinished`.
    expect(data.finished.map((t) => t.taskId)).toEqual(['d', 'e']);
  });

  it('resumes with exactly the events after Last-Event-ID: nothing lost, nothing repeated', () => {
    const hub = new EventHub({ bufferSize: 50, recentFinished: 5, epoch: 'e1' });
    const all: string[] = [];
    hub.subscribe({}, undefined, (f) => all.push(parse(f).id!));
    const first: string[] = [];
    const a = hub.subscribe({}, undefined, (f) => first.push(parse(f).id!));
    for (let i = 0; i < 7; i++) hub.publish(ev('output', task('t', { outputCount: i })));
    a.unsubscribe();
    for (let i = 0; i < 20; i++) hub.publish(ev('output', task('t', { outputCount: 7 + i })));
    const second: string[] = [];
    const b = hub.subscribe({}, first.at(-1), (f) => second.push(parse(f).id!));
    expect(b.opening.kind).toBe('replay');
    second.unshift(...b.opening.frames.map((f) => parse(f).id!));
    for (let i = 0; i < 3; i++) hub.publish(ev('output', task('t', { outputCount: 27 + i })));
    expect([...first, ...second]).toEqual(all);
    expect(all.map(seqOf)).toEqual(Array.from({ length: 30 }, (_, i) => i + 1));
  });

  it('resumes a filtered stream with the filtered events only', () => {
    const hub = new EventHub({ bufferSize: 50, recentFinished: 5, epoch: 'e1' });
    const id = hub.publish(ev('started', task('a')));
    hub.publish(ev('started', task('b', { agentId: 'ops-agent' })));
    hub.publish(ev('finished', task('a', { status: 'completed' })));
    const sub = hub.subscribe({ agentId: 'research-agent' }, id, () => undefined);
    expect(sub.opening.frames.map((f) => parse(f).event)).toEqual(['finished']);
  });

  it('keeps only bufferSize events and resets (with a snapshot) when Last-Event-ID is older, foreign or malformed', () => {
    const hub = new EventHub({ bufferSize: 5, recentFinished: 5, epoch: 'e1' });
    for (let i = 0; i < 12; i++) hub.publish(ev('started', task(`t${i}`)));
    expect(hub.oldestSeq).toBe(8);
    // Resuming right before the oldest buffered event still loses nothing.
    const ok = hub.subscribe({}, 'e1-7', () => undefined);
    expect(ok.opening.kind).toBe('replay');
    expect(ok.opening.frames.map((f) => seqOf(parse(f).id!))).toEqual([8, 9, 10, 11, 12]);
    for (const [id, why] of [
      ['e1-6', /older than the buffer/],
      ['zz-12', /another bridge process/],
      ['e1-99', /newer/],
      ['garbage', /malformed/],
    ] as const) {
      const sub = hub.subscribe({}, id, () => undefined);
      expect(sub.opening.kind, id).toBe('snapshot');
      const snap = parse(sub.opening.frames[0]!);
      expect(snap.event).toBe('snapshot');
      expect((snap.data as { reason: string; detail: string }).reason).toBe('reset');
      expect((snap.data as { detail: string }).detail).toMatch(why);
      expect((snap.data as { tasks: unknown[] }).tasks).toHaveLength(12);
    }
  });

  it('filters like Mastra’s stream (agent, run, thread, resource, task) plus tool, event type and status', () => {
    const hub = new EventHub({ bufferSize: 50, recentFinished: 5, epoch: 'e1' });
    const seen = (q: Record<string, string>) => {
      const parsed = parseEventsQuery(q);
      if (!parsed.ok) throw new Error(parsed.message);
      const out: string[] = [];
      hub.subscribe(parsed.filter, undefined, (f) => {
        const d = parse(f).data as BridgeEvent;
        out.push(`${d.type}:${d.task.taskId}`);
      });
      return out;
    };
    const subs = {
      agent: seen({ agentId: 'ops-agent' }),
      thread: seen({ threadId: 'th-1' }),
      resource: seen({ resourceId: 'user-2' }),
      run: seen({ runId: 'run-b' }),
      taskId: seen({ taskId: 'a' }),
      tool: seen({ toolName: 'charge_card' }),
      finishedOnly: seen({ event: 'finished' }),
      failures: seen({ status: 'failed,timed_out' }),
    };
    hub.publish(ev('started', task('a', { threadId: 'th-1', resourceId: 'user-1' })));
    hub.publish(ev('started', task('b', { agentId: 'ops-agent', toolName: 'charge_card', threadId: 'th-2', resourceId: 'user-2' })));
    hub.publish(ev('finished', task('b', { agentId: 'ops-agent', toolName: 'charge_card', status: 'timed_out', threadId: 'th-2', resourceId: 'user-2' })));
    hub.publish(ev('finished', task('a', { status: 'completed', threadId: 'th-1', resourceId: 'user-1' })));
    expect(subs).toEqual({
      agent: ['started:b', 'finished:b'],
      thread: ['started:a', 'finished:a'],
      resource: ['started:b', 'finished:b'],
      run: ['started:b', 'finished:b'],
      taskId: ['started:a', 'finished:a'],
      tool: ['started:b', 'finished:b'],
      finishedOnly: ['finished:b', 'finished:a'],
      failures: ['finished:b'],
    });
  });

  it('before any id is handed out, record() numbers events and keeps the snapshot state only; ids stay consecutive', () => {
    const hub = new EventHub({ bufferSize: 10, recentFinished: 2, epoch: 'e1' });
    expect(hub.quiet).toBe(true);
    hub.record('started', 1, task('a'));
    hub.record('started', 1, task('b'));
    hub.record('suspended', 2, task('b', { status: 'suspended' }));
    for (const id of ['c', 'd', 'e']) hub.record('finished', 3, task(id, { status: 'failed' }));
    expect(hub.quiet).toBe(true);
    expect(hub.oldestSeq).toBe(7); // nothing in the ring
    const live: Frame[] = [];
    const sub = hub.subscribe({}, undefined, (f) => live.push(parse(f)));
    expect(hub.quiet).toBe(false);
    const snap = parse(sub.opening.frames[0]!);
    expect(snap.id).toBe('e1-6');
    const data = snap.data as { tasks: TaskView[]; finished: TaskView[] };
    expect(data.tasks.map((t) => [t.taskId, t.status])).toEqual([
      ['a', 'running'],
      ['b', 'suspended'],
    ]);
    expect(data.finished.map((t) => t.taskId)).toEqual(['d', 'e']);
    // From now on record() is publish(): delivered live, kept, resumable from the snapshot's id.
    hub.record('output', 7, task('a', { outputCount: 1 }));
    hub.record('finished', 8, task('a', { status: 'completed' }));
    expect(live.map((f) => [f.id, f.event, (f.data as BridgeEvent).at])).toEqual([
      ['e1-7', 'output', 7],
      ['e1-8', 'finished', 8],
    ]);
    sub.unsubscribe();
    const resumed = hub.subscribe({}, snap.id, () => undefined);
    expect(resumed.opening.kind).toBe('replay');
    expect(resumed.opening.frames.map((f) => parse(f).id)).toEqual(['e1-7', 'e1-8']);
    // An id from the quiet stretch was never issued: it cannot be honoured, so it resets.
    const early = hub.subscribe({}, 'e1-3', () => undefined);
    expect(early.opening.kind).toBe('snapshot');
    expect((parse(early.opening.frames[0]!).data as { detail: string }).detail).toMatch(/older than the buffer/);
  });

  it('reading lastId hands out an id: events after it are kept for a resume', () => {
    const hub = new EventHub({ bufferSize: 10, recentFinished: 2, epoch: 'e1' });
    hub.record('started', 1, task('a'));
    const id = hub.lastId;
    expect(id).toBe('e1-1');
    expect(hub.quiet).toBe(false);
    hub.record('output', 2, task('a', { outputCount: 1 }));
    const sub = hub.subscribe({}, id, () => undefined);
    expect(sub.opening.kind).toBe('replay');
    expect(sub.opening.frames.map((f) => parse(f).id)).toEqual(['e1-2']);
  });

  it('rejects unknown parameters, repeated values and unknown event types or statuses', () => {
    expect(parseEventsQuery({ agent: 'x' }).ok).toBe(false);
    expect(parseEventsQuery({ agentId: ['a', 'b'] }).ok).toBe(false);
    expect(parseEventsQuery({ agentId: '' }).ok).toBe(false);
    expect(parseEventsQuery({ event: 'started,exploded' }).ok).toBe(false);
    expect(parseEventsQuery({ status: 'queued' }).ok).toBe(false);
    expect(parseEventsQuery({ status: 'pending' }).ok).toBe(true); // a task requeued for a retry
    expect(parseEventsQuery({ event: 'started,finished', status: 'running', lastEventId: 'e-1' })).toMatchObject({ ok: true, lastEventId: 'e-1' });
  });
});

describe('EventFeed', () => {
  const run = (kind: 'running' | 'output' | 'suspended' | 'resumed' | 'failed', at?: number) => ({
    kind,
    taskId: 'T',
    toolName: 'provision_cluster',
    toolCallId: 'C',
    agentId: 'ops-agent',
    runId: 'R',
    ...(at !== undefined ? { at } : {}),
    ...(kind === 'failed' ? { error: { message: 'Task timed out after 150ms' } } : {}),
  });

  it('holds a new task’s events until its lookup ends, then publishes them in order with thread and resource', () => {
    const hub = new EventHub({ bufferSize: 50, recentFinished: 5, epoch: 'e1' });
    const feed = new EventFeed(hub, { exporting: true });
    const tracker = new TaskTracker();
    const out: BridgeEvent[] = [];
    hub.subscribe({}, undefined, (f) => out.push(parse(f).data as BridgeEvent));
    for (const [e, t] of [
      [run('running', 100), 110],
      [run('output'), 120],
      [run('suspended', 130), 130],
    ] as const) {
      for (const tr of tracker.apply(e, t).transitions) if (tr.type !== 'finished' && tr.type !== 'queue_wait') feed.transition(tr, t);
    }
    expect(out).toEqual([]);
    expect(feed.holding).toBe(1);
    tracker.enrich('T', { id: 'T', status: 'running', toolName: 'provision_cluster', toolCallId: 'C', agentId: 'ops-agent', runId: 'R', threadId: 'th', resourceId: 'res' });
    feed.lookedUp('T', tracker.get('T'));
    expect(out.map((e) => [e.type, e.task.status, e.task.threadId, e.task.resourceId, e.at])).toEqual([
      ['started', 'running', 'th', 'res', 100],
      ['output', 'running', 'th', 'res', 120],
      ['suspended', 'suspended', 'th', 'res', 130],
    ]);
    const resumed = tracker.apply(run('resumed', 140), 140).transitions[0]!;
    feed.transition(resumed as never, 140);
    expect(out.at(-1)).toMatchObject({ type: 'resumed', task: { status: 'running', threadId: 'th', resumedAt: 140, startedAt: 100 } });
    expect(hub.openCount).toBe(1);

    const done = tracker.apply(run('failed', 400), 400).transitions[0]!;
    if (done.type !== 'finished') throw new Error('expected finished');
    feed.finished(done.task, { traceId: 'a'.repeat(32), spanId: 'b'.repeat(16), sampled: true });
    expect(out.at(-1)).toMatchObject({
      type: 'finished',
      at: 400,
      task: { status: 'timed_out', errorType: 'timed_out', durationMs: 300, traceId: 'a'.repeat(32), spanId: 'b'.repeat(16) },
    });
    expect(JSON.stringify(out)).not.toContain('timed out after');
    expect(hub.openCount).toBe(0);
  });

  it('publishes held events unenriched when the lookup fails, and no trace id for spans that are not exported', () => {
    const hub = new EventHub({ bufferSize: 50, recentFinished: 5, epoch: 'e1' });
    const feed = new EventFeed(hub, { exporting: false });
    const tracker = new TaskTracker();
    const out: BridgeEvent[] = [];
    hub.subscribe({}, undefined, (f) => out.push(parse(f).data as BridgeEvent));
    for (const tr of tracker.apply(run('running', 100), 100).transitions) feed.transition(tr as never, 100);
    feed.lookedUp('T', tracker.get('T'));
    expect(out.map((e) => [e.type, e.task.threadId])).toEqual([['started', undefined]]);
    const done = tracker.apply({ ...run('failed', 200), error: { message: 'boom', stack: 'PaymentDeclinedError: boom\n at x' } }, 200).transitions[0]!;
    if (done.type !== 'finished') throw new Error('expected finished');
    feed.finished(done.task, { traceId: 'a'.repeat(32), spanId: 'b'.repeat(16), sampled: true });
    expect(out.at(-1)!.task).toMatchObject({ status: 'failed', errorType: 'PaymentDeclinedError' });
    expect(out.at(-1)!.task.traceId).toBeUndefined();
  });

  it('with no id handed out yet, the feed records the same snapshot state as it publishes', () => {
    const drive = (hub: EventHub): void => {
      const feed = new EventFeed(hub, { exporting: true, holdForLookup: false });
      const tracker = new TaskTracker();
      const other = { ...run('running', 50), taskId: 'U' };
      const steps = [
        [run('running', 100), 110],
        [other, 111],
        [run('output'), 120],
        [run('suspended', 130), 130],
        [{ ...other, kind: 'output' as const, at: undefined }, 131],
        [run('resumed', 140), 140],
        [run('output'), 150],
      ] as const;
      for (const [e, t] of steps) for (const tr of tracker.apply(e, t).transitions) if (tr.type !== 'finished' && tr.type !== 'queue_wait') feed.transition(tr, t);
      const done = tracker.apply({ ...other, kind: 'failed', at: 400, error: { message: 'x', stack: 'BoomError: x' } }, 400).transitions[0]!;
      if (done.type !== 'finished') throw new Error('expected finished');
      feed.finished(done.task, { traceId: 'a'.repeat(32), spanId: 'b'.repeat(16), sampled: true });
    };
    const quiet = new EventHub({ bufferSize: 50, recentFinished: 5, epoch: 'e1' });
    drive(quiet);
    const loud = new EventHub({ bufferSize: 50, recentFinished: 5, epoch: 'e1' });
    loud.subscribe({}, undefined, () => undefined).unsubscribe();
    drive(loud);
    const snapshot = (hub: EventHub) => hub.subscribe({}, undefined, () => undefined).opening.frames[0]!;
    expect(snapshot(quiet)).toBe(snapshot(loud));
    expect(parse(snapshot(quiet)).data).toMatchObject({
      tasks: [{ taskId: 'T', status: 'running', startedAt: 100, resumedAt: 140, outputCount: 2 }],
      finished: [{ taskId: 'U', status: 'failed', errorType: 'BoomError', outputCount: 1 }],
    });
  });
});
