// Fleet alone, over scripted sources (no network): store groups, where lookups go, and discovery's add/drop.
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import type { TaskRecord } from '../src/events.js';
import { Fleet } from '../src/fleet.js';
import { Reconciler } from '../src/reconcile.js';
import { type FinishedTask, TaskTracker } from '../src/tracker.js';
import { SourceSession } from '../src/source-session.js';
import { SourceError, type SourceSink, type TaskQuery, type TaskSource } from '../src/sources/types.js';
import { waitFor } from './support/poll.js';

const silent = pino({ level: 'silent' });

function record(id: string): TaskRecord {
  return { id, status: 'completed', agentId: 'a', toolName: 't', toolCallId: `c-${id}`, runId: 'r', completedAt: 1 } as TaskRecord;
}

/** A server over a store (shared by reference between servers of one store). */
class FakeServer implements TaskSource {
  readonly kind = 'remote' as const;
  readonly description: string;
  up = true;
  listCalls = 0;
  getCalls = 0;
  constructor(
    readonly url: string,
    readonly store: TaskRecord[],
  ) {
    this.description = `Mastra server ${url}/api`;
  }
  async run(sink: SourceSink, signal: AbortSignal): Promise<void> {
    if (this.up) sink.connected();
    else sink.disconnected('refused');
    await new Promise<void>((r) => signal.addEventListener('abort', () => r(), { once: true }));
  }
  async getTask(id: string): Promise<TaskRecord | null> {
    this.getCalls++;
    if (!this.up) throw new SourceError('down', 'unavailable');
    return this.store.find((t) => t.id === id) ?? null;
  }
  async listTasks(q: TaskQuery) {
    this.listCalls++;
    if (!this.up) throw new SourceError('down', 'unavailable');
    const page = q.page ?? 0;
    const per = q.perPage ?? 100;
    const statuses = q.status === undefined ? undefined : Array.isArray(q.status) ? q.status : [q.status];
    const tasks = this.store.filter((t) => !statuses || statuses.includes(t.status));
    return { tasks: tasks.slice(page * per, (page + 1) * per), total: tasks.length, invalid: 0 };
  }
  async findToolCallSpan() {
    return undefined;
  }
}

function fleetOf(servers: FakeServer[], opts: { discover?: () => string[] } = {}) {
  const byUrl = new Map(servers.map((s) => [s.url, s]));
  const dropped: string[] = [];
  const fleet: Fleet = new Fleet({
    servers: opts.discover ? ['dns+http://mastra:4111'] : servers.map((s) => s.url),
    makeSource: (url) => byUrl.get(url)!,
    makeSession: (key) =>
      new SourceSession({
        key,
        description: key,
        target: { chunk: () => undefined, frame: () => undefined, dropped: () => undefined },
        sync: (signal) => fleet.place(key, signal),
        logger: silent,
      }),
    dropped: (k) => void dropped.push(k),
    logger: silent,
    refreshMs: 3_600_000,
    ...(opts.discover ? { resolve: async () => opts.discover!() } : {}),
  });
  return { fleet, dropped };
}

const T0 = Date.UTC(2026, 10, 25, 12, 0, 0);

function running(id: string): TaskRecord {
  return { id, status: 'running', agentId: 'a', toolName: 't', toolCallId: `c-${id}`, runId: 'r', createdAt: T0, startedAt: T0 } as TaskRecord;
}

/** The reconciler over `fleet`, on a tracker that already holds `open` as their streams showed them running. */
function reconcilerOn(fleet: Fleet, open: string[]) {
  const tracker = new TaskTracker();
  for (const id of open) tracker.apply({ kind: 'running', taskId: id, agentId: 'a', toolName: 't', toolCallId: `c-${id}`, runId: 'r', at: T0 }, T0);
  const finished: FinishedTask[] = [];
  let failedSteps = 0;
  const rec = new Reconciler({
    source: fleet,
    pipeline: {
      reconcile: (r) => {
        const o = tracker.reconcile(r, T0 + 1000);
        for (const t of o.transitions) if (t.type === 'finished') finished.push(t.task);
        return o.transitions;
      },
    },
    tracker,
    metrics: { reconciled: () => undefined, reconcileFailed: () => void failedSteps++, futureTimestamp: () => undefined },
    logger: silent,
    now: () => T0 + 1000,
    scanFrom: T0 - 1000,
  });
  return { rec, tracker, finished, failedSteps: () => failedSteps };
}

const ready = (fleet: Fleet) => waitFor(() => fleet.list().length > 0 && fleet.list().every((m) => m.session.ready && m.store !== undefined && !m.tentative), { timeoutMs: 5_000 });

describe('Fleet', () => {
  it('replicas on one store form one group: listTasks asks one of them', async () => {
    const store = [record('t1'), record('t2')];
    const servers = [new FakeServer('http://10.0.0.1:4111', store), new FakeServer('http://10.0.0.2:4111', store), new FakeServer('http://10.0.0.3:4111', store)];
    const { fleet } = fleetOf(servers);
    fleet.start();
    await ready(fleet);
    expect(fleet.groups()).toHaveLength(1);
    const before = servers.map((s) => s.listCalls);
    const page = await fleet.listTasks({ status: 'completed' });
    expect(page.tasks.map((t) => t.id)).toEqual(['t1', 't2']);
    expect(servers.reduce((n, s, i) => n + s.listCalls - before[i]!, 0)).toBe(1);
    await fleet.stop();
  });

  it('replicas on separate stores are separate groups: each store is listed, and getTask finds a task in its store', async () => {
    const a = new FakeServer('http://10.0.0.1:4111', [record('a1')]);
    const b = new FakeServer('http://10.0.0.2:4111', [record('b1'), record('b2')]);
    const { fleet } = fleetOf([a, b]);
    fleet.start();
    await ready(fleet);
    expect(fleet.groups()).toHaveLength(2);
    const page = await fleet.listTasks({});
    expect(page.tasks.map((t) => t.id).sort()).toEqual(['a1', 'b1', 'b2']);
    expect(page.total).toBe(3);
    expect((await fleet.getTask('b2'))?.id).toBe('b2');
    expect(await fleet.getTask('nope')).toBeNull();
    await fleet.stop();
  });

  it('empty stores cannot be told apart: placed tentatively together, and apart once tasks exist', async () => {
    const storeA: TaskRecord[] = [];
    const storeB: TaskRecord[] = [];
    const a = new FakeServer('http://10.0.0.1:4111', storeA);
    const b = new FakeServer('http://10.0.0.2:4111', storeB);
    const { fleet } = fleetOf([a, b]);
    fleet.start();
    await waitFor(() => fleet.list().every((m) => m.session.ready && m.tentative));
    expect(fleet.groups()).toHaveLength(1);
    storeA.push(record('a1'));
    storeB.push(record('b1'));
    await fleet.settle();
    expect(fleet.list().every((m) => !m.tentative)).toBe(true);
    expect(fleet.groups()).toHaveLength(2);
    await fleet.stop();
  });

  it('separate stores both empty at connect: the empty one never answers alone for the busy one, whose running tasks stay open', async () => {
    const storeA: TaskRecord[] = [];
    const storeB: TaskRecord[] = [];
    const a = new FakeServer('http://10.0.0.1:4111', storeA);
    const b = new FakeServer('http://10.0.0.2:4111', storeB);
    const { fleet } = fleetOf([a, b]);
    fleet.start();
    await waitFor(() => fleet.list().every((m) => m.session.ready && m.tentative));
    expect(fleet.groups()).toHaveLength(1); // the guess: one store
    storeB.push(running('b1'), running('b2'));
    // Found before any settle (a sync pass after another server's connect runs none).
    expect((await fleet.getTask('b1'))?.id).toBe('b1');
    const { rec, tracker, finished, failedSteps } = reconcilerOn(fleet, ['b1', 'b2']);
    // A task missing upstream is finished as failed at its second miss: two sync passes, then two periodic ones.
    await rec.pass();
    await rec.pass();
    for (let i = 0; i < 2; i++) {
      await fleet.settle();
      await rec.pass();
    }
    expect(finished).toEqual([]);
    expect(failedSteps()).toBe(0);
    expect([...tracker.openTasks()].map((t) => t.taskId).sort()).toEqual(['b1', 'b2']);
    // b is proven now (its store has tasks); a, still empty, stays tentative: asked besides b, never instead.
    expect(fleet.list().map((m) => [m.key, m.tentative])).toEqual([
      ['10.0.0.1:4111', true],
      ['10.0.0.2:4111', false],
    ]);
    expect((await fleet.getTask('b2'))?.id).toBe('b2');
    expect((await fleet.listTasks({ status: 'running' })).tasks.map((t) => t.id)).toEqual(['b1', 'b2']);
    // A task that ends on b is resolved with its stored status, once.
    storeB[0] = { ...storeB[0]!, status: 'completed', completedAt: T0 + 500 };
    await fleet.settle();
    await rec.pass();
    expect(finished.map((f) => [f.taskId, f.status])).toEqual([['b1', 'completed']]);
    await fleet.stop();
  });

  it('one store empty at connect: tentative members answer each task once, and once settled the store is listed once', async () => {
    const store: TaskRecord[] = [];
    const servers = [new FakeServer('http://10.0.0.1:4111', store), new FakeServer('http://10.0.0.2:4111', store), new FakeServer('http://10.0.0.3:4111', store)];
    const { fleet } = fleetOf(servers);
    fleet.start();
    await waitFor(() => fleet.list().every((m) => m.session.ready && m.tentative));
    store.push(running('t1'), running('t2'));
    const page = await fleet.listTasks({ status: 'running' });
    expect(page.tasks.map((t) => t.id)).toEqual(['t1', 't2']);
    expect(page.total).toBe(2);
    const { rec, finished, failedSteps } = reconcilerOn(fleet, ['t1', 't2']);
    await rec.pass();
    await fleet.settle();
    expect(fleet.list().every((m) => !m.tentative)).toBe(true);
    expect(fleet.groups()).toHaveLength(1);
    const before = servers.reduce((n, s) => n + s.listCalls, 0);
    await fleet.listTasks({ status: 'running' });
    expect(servers.reduce((n, s) => n + s.listCalls, 0) - before).toBe(1);
    await rec.pass();
    expect(finished).toEqual([]);
    expect(failedSteps()).toBe(0);
    await fleet.stop();
  });

  it('a replica that joins while its group cannot be asked is placed tentatively, then where it belongs', async () => {
    const store = [record('t1')];
    const a = new FakeServer('http://10.0.0.1:4111', store);
    const b = new FakeServer('http://10.0.0.2:4111', store);
    let addresses = ['10.0.0.1'];
    const { fleet } = fleetOf([a, b], { discover: () => addresses });
    fleet.start();
    await ready(fleet);
    a.up = false; // a's store answers nothing now: b's store cannot be compared with it
    addresses = ['10.0.0.1', '10.0.0.2'];
    await fleet.refresh();
    await waitFor(() => fleet.list().find((m) => m.key === '10.0.0.2:4111')?.session.ready);
    expect(fleet.list().find((m) => m.key === '10.0.0.2:4111')?.tentative).toBe(true);
    expect(fleet.groups()).toHaveLength(1);
    a.up = true;
    await fleet.settle();
    expect(fleet.list().every((m) => !m.tentative)).toBe(true);
    expect(fleet.groups()).toHaveLength(1);
    await fleet.stop();
  });

  it('getTask goes to a connected replica first, and to the next one when it fails', async () => {
    const store = [record('t1')];
    const a = new FakeServer('http://10.0.0.1:4111', store);
    const b = new FakeServer('http://10.0.0.2:4111', store);
    const { fleet } = fleetOf([a, b]);
    fleet.start();
    await ready(fleet);
    a.up = false; // it answers nothing any more (its session has not noticed yet)
    expect((await fleet.getTask('t1'))?.id).toBe('t1');
    expect(b.getCalls).toBeGreaterThanOrEqual(1);
    await fleet.stop();
  });

  it('discovery adds servers that appear and drops servers that go; a failed lookup keeps them', async () => {
    const store = [record('t1')];
    const servers = [new FakeServer('http://10.0.0.1:4111', store), new FakeServer('http://10.0.0.2:4111', store)];
    let addresses: string[] | Error = ['10.0.0.1'];
    const { fleet, dropped } = fleetOf(servers, {
      discover: () => {
        if (addresses instanceof Error) throw addresses;
        return addresses;
      },
    });
    fleet.start();
    await waitFor(() => fleet.list().length === 1);
    addresses = ['10.0.0.1', '10.0.0.2'];
    await fleet.refresh();
    expect(fleet.list().map((m) => m.key).sort()).toEqual(['10.0.0.1:4111', '10.0.0.2:4111']);
    addresses = new Error('SERVFAIL');
    await fleet.refresh();
    expect(fleet.list()).toHaveLength(2);
    addresses = ['10.0.0.2'];
    await fleet.refresh();
    expect(fleet.list().map((m) => m.key)).toEqual(['10.0.0.2:4111']);
    expect(dropped).toEqual(['10.0.0.1:4111']);
    expect(fleet.multi).toBe(true);
    await fleet.stop();
  });

  // As Node's dns answers: lookup() turns EAI_NONAME/EAI_NODATA into ENOTFOUND; the dns.resolve* calls say ENODATA.
  const lookupFailures: [code: string | undefined, outcome: 'dropped' | 'kept'][] = [
    ['ENOTFOUND', 'dropped'],
    ['ENODATA', 'dropped'],
    ['EAI_AGAIN', 'kept'],
    ['ETIMEOUT', 'kept'],
    ['ECONNREFUSED', 'kept'],
    ['ESERVFAIL', 'kept'],
    [undefined, 'kept'],
  ];
  for (const [code, outcome] of lookupFailures) {
    it(`discovery: a lookup failing with ${code ?? 'no code'} leaves the servers ${outcome}`, async () => {
      const store = [record('t1')];
      const servers = [new FakeServer('http://10.0.0.1:4111', store), new FakeServer('http://10.0.0.2:4111', store)];
      let answer: string[] | Error = ['10.0.0.1', '10.0.0.2'];
      const { fleet, dropped } = fleetOf(servers, {
        discover: () => {
          if (answer instanceof Error) throw answer;
          return answer;
        },
      });
      fleet.start();
      await waitFor(() => fleet.list().length === 2);
      answer = Object.assign(new Error(`getaddrinfo ${code ?? 'failed'} mastra`), code === undefined ? {} : { code, hostname: 'mastra' });
      await fleet.refresh();
      if (outcome === 'dropped') {
        expect(fleet.list()).toEqual([]);
        expect(dropped.sort()).toEqual(['10.0.0.1:4111', '10.0.0.2:4111']);
        await expect(fleet.getTask('t1')).rejects.toThrow(/no Mastra server/);
      } else {
        expect(fleet.list().map((m) => m.key).sort()).toEqual(['10.0.0.1:4111', '10.0.0.2:4111']);
        expect(dropped).toEqual([]);
      }
      // The name has addresses again: followed again either way.
      answer = ['10.0.0.2'];
      await fleet.refresh();
      expect(fleet.list().map((m) => m.key)).toEqual(['10.0.0.2:4111']);
      await fleet.stop();
    });
  }
});
