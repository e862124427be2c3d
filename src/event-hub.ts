// The bounded fan-out behind `GET /api/events`: the bridge's normalised task events, numbered, kept in a ring buffer
// for resumption, and handed to subscribers with their filter applied.
//
// Owns: event ids (`<epoch>-<seq>`, seq strictly increasing by one per event; the epoch changes per hub, so an id from
// another bridge process is recognised instead of being misread), the ring of the last `bufferSize` events, the view
// of open tasks as published (the connect snapshot, consistent with the ids), a short list of recently finished
// tasks, and the resume decision (replay, or reset + snapshot when the id is older than the buffer or unknown).
// Must not: do I/O, read a clock (event times come in the events), or hold per-client buffers (the HTTP adapter does,
// capped). Every frame is serialised at most once, whatever the number of subscribers, and only when needed: with no
// matching subscriber an event is kept unserialised (published events are never mutated), and its frame is built the
// first time a replay asks for it. Until an id has left the hub (a subscription, `publish`'s return, `lastId`), no
// event can ever be delivered or replayed — ids are per hub — so `record` only numbers an event and updates the
// snapshot state (open views, recently finished), with no ring entry and no event object.
//
// Payload contents (args, results, output chunks, suspend payloads, error messages) are never part of an event: they
// may hold secrets, and the board does not need them.

import type { FinalStatus, TaskIdentity } from './events.js';

export const BRIDGE_EVENT_TYPES = ['started', 'output', 'suspended', 'resumed', 'finished'] as const;
export type BridgeEventType = (typeof BRIDGE_EVENT_TYPES)[number];
export type TaskViewStatus = 'running' | 'suspended' | 'pending' | FinalStatus;
export const TASK_VIEW_STATUSES: readonly TaskViewStatus[] = ['running', 'suspended', 'pending', 'completed', 'failed', 'timed_out', 'cancelled'];

/** A task as `/api/events` shows it. Times are epoch milliseconds. */
export interface TaskView extends TaskIdentity {
  /** From the stored task (enrichment); absent when the lookup failed or is disabled. */
  threadId?: string;
  resourceId?: string;
  /** The true status: a failed event caused by Mastra's timeout is `timed_out`. */
  status: TaskViewStatus;
  /** The first start (kept across suspend/resume). */
  startedAt?: number;
  suspendedAt?: number;
  /** Last (re)start of the current run. */
  resumedAt?: number;
  completedAt?: number;
  /** completedAt − startedAt, when both are known. */
  durationMs?: number;
  outputCount: number;
  /** The task's span (finished tasks only: the span and its trace exist once the task ends). */
  traceId?: string;
  spanId?: string;
  /** failed / timed_out: the bounded error class (as the span's `error.type`), never the message. */
  errorType?: string;
}

export interface BridgeEvent {
  type: BridgeEventType;
  /** Event time: start, suspend, resume or completion time; the time the bridge saw it for output chunks. */
  at: number;
  task: TaskView;
}

/** Filters as on Mastra's stream (agentId, runId, threadId, resourceId, taskId), plus toolName, event type, status. */
export interface EventFilter {
  agentId?: string;
  runId?: string;
  threadId?: string;
  resourceId?: string;
  taskId?: string;
  toolName?: string;
  types?: ReadonlySet<BridgeEventType>;
  statuses?: ReadonlySet<TaskViewStatus>;
}

export interface HubOptions {
  /** Events kept for resumption with Last-Event-ID. */
  bufferSize: number;
  /** Finished tasks kept for the connect snapshot (what the board shows as recently finished). */
  recentFinished: number;
  /** Distinguishes this hub's ids from another process's; default: a random base-36 string. */
  epoch?: string;
}

/** What a subscriber gets first: a snapshot (fresh connect, or a resume that cannot be honoured) or a replay. */
export type Opening =
  | { kind: 'replay'; frames: string[] }
  | { kind: 'snapshot'; reason: 'connect' | 'reset'; detail?: string; frames: string[] };

export interface Subscription {
  readonly opening: Opening;
  unsubscribe(): void;
}

interface Stored {
  seq: number;
  event: BridgeEvent;
  /** Built on first use (live delivery or replay). */
  frame: string | undefined;
}

interface Subscriber {
  filter: EventFilter;
  deliver: (frame: string) => void;
}

export function matches(filter: EventFilter, task: TaskView, type?: BridgeEventType): boolean {
  if (filter.agentId !== undefined && task.agentId !== filter.agentId) return false;
  if (filter.runId !== undefined && task.runId !== filter.runId) return false;
  if (filter.threadId !== undefined && task.threadId !== filter.threadId) return false;
  if (filter.resourceId !== undefined && task.resourceId !== filter.resourceId) return false;
  if (filter.taskId !== undefined && task.taskId !== filter.taskId) return false;
  if (filter.toolName !== undefined && task.toolName !== filter.toolName) return false;
  if (filter.statuses !== undefined && !filter.statuses.has(task.status)) return false;
  if (type !== undefined && filter.types !== undefined && !filter.types.has(type)) return false;
  return true;
}

const MAX_CACHED_SNAPSHOTS = 32;

/** One string per distinct filter (sets in sorted order). */
function filterKey(f: EventFilter): string {
  return JSON.stringify([
    f.agentId, f.runId, f.threadId, f.resourceId, f.taskId, f.toolName,
    f.types ? [...f.types].sort() : null,
    f.statuses ? [...f.statuses].sort() : null,
  ]);
}

export class EventHub {
  readonly epoch: string;
  private readonly ring: (Stored | undefined)[];
  private seq = 0;
  private readonly open = new Map<string, TaskView>();
  private readonly finished: TaskView[] = [];
  private readonly subscribers = new Set<Subscriber>();
  // Until an id is handed out, events are counted but not kept; `retainedFrom` is the first seq kept in the ring.
  private issued = false;
  private retainedFrom = 1;
  // Snapshot frames built for the current state, by filter and reason: a burst of connects serialises the open tasks
  // once, not once per client (20,000 open tasks are a 4.3 MB frame). Any change of the snapshot state clears it.
  private stateVersion = 0;
  private readonly snapshots = new Map<string, { version: number; frame: string; bytes: Buffer | undefined }>();
  private snapshotSerialisations = 0;
  private lastSnapshotBytes = 0;

  constructor(private readonly options: HubOptions) {
    if (!(options.bufferSize >= 1)) throw new Error('bufferSize must be at least 1');
    this.epoch = options.epoch ?? Math.floor(Math.random() * 36 ** 8).toString(36);
    this.ring = new Array<Stored | undefined>(options.bufferSize);
  }

  /** The id of the newest event (`<epoch>-0` before the first). */
  get lastId(): string {
    this.issue();
    return this.idOf(this.seq);
  }

  /**
   * True while no id has left the hub: nothing published so far or from now until that changes can be delivered or
   * replayed, so a publisher may `record` instead of `publish` (and skip building the event).
   */
  get quiet(): boolean {
    return !this.issued;
  }

  /**
   * While `quiet`: number one event and update the snapshot state (open views, recently finished) as `publish` would;
   * nothing is kept for replay. `task` is held by the hub as the open (or finished) view; while quiet, the open view
   * of a task is referenced nowhere else and its publisher may update it in place (`openView`).
   */
  record(type: BridgeEventType, at: number, task: TaskView): void {
    if (this.issued) {
      this.publish({ type, at, task });
      return;
    }
    ++this.seq;
    this.track(type, task);
  }

  /** While `quiet`: the open view last recorded for a task (to update in place), else undefined. */
  openView(taskId: string): TaskView | undefined {
    return this.issued ? undefined : this.open.get(taskId);
  }

  get subscriberCount(): number {
    return this.subscribers.size;
  }

  get openCount(): number {
    return this.open.size;
  }

  /** Oldest seq still in the ring (seq + 1 when empty). */
  get oldestSeq(): number {
    // Events recorded before the first id was issued are not in the ring.
    if (!this.issued) return this.seq + 1;
    return Math.max(1, this.retainedFrom, this.seq - this.options.bufferSize + 1);
  }

  /** Number an event, keep it, update the open-task view, and deliver it to every matching subscriber. */
  publish(event: BridgeEvent): string {
    this.issue();
    const seq = ++this.seq;
    const slot = seq % this.options.bufferSize;
    const prev = this.ring[slot];
    let stored: Stored;
    if (prev === undefined) this.ring[slot] = stored = { seq, event, frame: undefined };
    else {
      // Reuse the evicted slot's holder: one object per ring slot, not one per event.
      stored = prev;
      stored.seq = seq;
      stored.event = event;
      stored.frame = undefined;
    }
    const t = event.task;
    this.track(event.type, t);
    if (this.subscribers.size > 0) {
      for (const s of this.subscribers) if (matches(s.filter, t, event.type)) s.deliver(this.frameOf(stored));
    }
    return this.idOf(seq);
  }

  private track(type: BridgeEventType, t: TaskView): void {
    this.stateVersion++;
    if (type === 'finished') {
      this.open.delete(t.taskId);
      this.finished.push(t);
      if (this.finished.length > this.options.recentFinished) this.finished.shift();
    } else {
      this.open.set(t.taskId, t);
    }
  }

  /** From the first id handed out on, every event is kept in the ring (the ids before it were never issued). */
  private issue(): void {
    if (this.issued) return;
    this.issued = true;
    this.retainedFrom = this.seq + 1;
  }

  /** Drop an open task from the view without an event (the tracker evicted it at its cap). */
  forget(taskId: string): void {
    if (this.open.delete(taskId)) this.stateVersion++;
  }

  /**
   * The frame as bytes, shared: for a snapshot frame of the current state, one Buffer for every client that gets it
   * (written to each socket without a per-client copy); any other frame is encoded anew.
   */
  frameBytes(frame: string): Buffer {
    for (const s of this.snapshots.values()) {
      if (s.frame === frame) return (s.bytes ??= Buffer.from(frame, 'utf8'));
    }
    return Buffer.from(frame, 'utf8');
  }

  /** Snapshot frames serialised so far (one per hub state and filter, however many clients connect) and the last size. */
  stats(): { snapshotSerialisations: number; snapshotBytes: number } {
    return { snapshotSerialisations: this.snapshotSerialisations, snapshotBytes: this.lastSnapshotBytes };
  }

  /**
   * Subscribe. With no `lastEventId`: a snapshot, then live events. With one this hub issued and whose successors are
   * all still buffered: exactly the matching events after it, then live. Otherwise (older than the buffer, another
   * epoch, malformed, from the future): a snapshot with reason `reset`. Opening and live delivery are computed in one
   * synchronous step, so nothing falls between them.
   */
  subscribe(filter: EventFilter, lastEventId: string | undefined, deliver: (frame: string) => void): Subscription {
    this.issue();
    let opening: Opening;
    if (lastEventId === undefined || lastEventId === '') {
      opening = { kind: 'snapshot', reason: 'connect', frames: [this.snapshotFrame(filter, 'connect')] };
    } else {
      const from = this.parseId(lastEventId);
      if (typeof from === 'string') {
        opening = { kind: 'snapshot', reason: 'reset', detail: from, frames: [this.snapshotFrame(filter, 'reset', from)] };
      } else {
        const frames: string[] = [];
        for (let s = from + 1; s <= this.seq; s++) {
          const stored = this.ring[s % this.options.bufferSize]!;
          if (matches(filter, stored.event.task, stored.event.type)) frames.push(this.frameOf(stored));
        }
        opening = { kind: 'replay', frames };
      }
    }
    const sub: Subscriber = { filter, deliver };
    this.subscribers.add(sub);
    return { opening, unsubscribe: () => void this.subscribers.delete(sub) };
  }

  private frameOf(stored: Stored): string {
    return (stored.frame ??= `id: ${this.idOf(stored.seq)}\nevent: ${stored.event.type}\ndata: ${JSON.stringify(stored.event)}\n\n`);
  }

  private idOf(seq: number): string {
    return `${this.epoch}-${seq}`;
  }

  /** The seq to resume after, or why it cannot be resumed. */
  private parseId(id: string): number | string {
    const m = /^([0-9a-z]{1,16})-(\d{1,15})$/.exec(id.trim());
    if (!m) return 'malformed Last-Event-ID';
    if (m[1] !== this.epoch) return 'Last-Event-ID is from another bridge process';
    const seq = Number(m[2]);
    if (seq > this.seq) return 'Last-Event-ID is newer than any event';
    if (seq < this.oldestSeq - 1) return `Last-Event-ID is older than the buffer (${this.options.bufferSize} events)`;
    return seq;
  }

  private snapshotFrame(filter: EventFilter, reason: 'connect' | 'reset', detail?: string): string {
    const key = `${reason}\u0000${detail ?? ''}\u0000${filterKey(filter)}`;
    const cached = this.snapshots.get(key);
    if (cached && cached.version === this.stateVersion) return cached.frame;
    // Entries of an older state are never valid again.
    for (const [k, s] of this.snapshots) if (s.version !== this.stateVersion) this.snapshots.delete(k);
    const frame = this.buildSnapshotFrame(filter, reason, detail);
    this.snapshotSerialisations++;
    this.lastSnapshotBytes = Buffer.byteLength(frame);
    // A bounded number of distinct filters per state: clients with filters of their own each cost one frame.
    if (this.snapshots.size >= MAX_CACHED_SNAPSHOTS) this.snapshots.delete(this.snapshots.keys().next().value as string);
    this.snapshots.set(key, { version: this.stateVersion, frame, bytes: undefined });
    return frame;
  }

  private buildSnapshotFrame(filter: EventFilter, reason: 'connect' | 'reset', detail?: string): string {
    const tasks: TaskView[] = [];
    for (const t of this.open.values()) if (matches(filter, t)) tasks.push(t);
    const finished = this.finished.filter((t) => matches(filter, t));
    const data: Record<string, unknown> = { reason, tasks, finished };
    if (detail !== undefined) data.detail = detail;
    // The snapshot carries the id of the newest event it reflects: resuming from it replays what came after.
    return `id: ${this.lastId}\nevent: snapshot\ndata: ${JSON.stringify(data)}\n\n`;
  }
}
