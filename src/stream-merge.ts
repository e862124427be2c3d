// Exactly once across several streams: which events from several Mastra replicas' streams are new, without being told
// whether the replicas share a pubsub (then every event arrives on every stream) or not (then each arrives once).
//
// Owns: per open task, the latest lifecycle time seen and each stream's count of output chunks. Must not: do I/O, read
// a clock, or decide what an event means for the task (the tracker does): this only filters what is a repeat from
// another stream before the tracker sees it. Used only when the bridge follows more than one stream (a fleet); one
// stream is handed to the tracker unfiltered, as before.
//
// Rules (each has a row in test/stream-merge.test.ts):
// - Terminal events pass: the tracker's finished-id window makes the second one a duplicate.
// - A lifecycle event (running, suspended, resumed) carries its time (startedAt, suspendedAt, startedAt of the resume).
//   One older than the latest lifecycle time already seen for the task is a repeat from a slower stream and is
//   dropped: otherwise stream B's `suspended` arriving after stream A's `resumed` would suspend a running task again,
//   and B's late `running` after A's `suspended` would read as a missed resume. One at the same time passes (the
//   tracker calls the same state again a duplicate); a later one passes and moves the time on.
// - Output chunks carry no time and no sequence number. Each stream's chunks of a task are counted within the phase
//   the stream is in (the time of the last lifecycle event that stream delivered for the task); a chunk is new only
//   when its stream's count exceeds the most any stream has delivered in that phase. With a shared pubsub both streams
//   count 1, 2, 3… in each phase and each number is accepted once; with separate pubsubs only one stream delivers them.
//   A stream that connected late (missed the first chunks) delivers nothing new until it passes the others; one with
//   no lifecycle event of its own for the task counts in the task's latest phase.
// - Phases, not one count per task, because a task may resume on another replica: with separate pubsubs that
//   replica's stream starts counting at 0 and its chunks would be dropped until they passed what the first replica
//   delivered. A count restarts only when its stream moves to another lifecycle time, never on a repeat of the same
//   one (a reconnect's snapshot `running` on the same replica keeps the count), and a slower stream still in an older
//   phase is compared with that phase's maximum, so with a shared pubsub the chunks before a suspend are not counted
//   again after the resume. Each task keeps its last `MAX_PHASES` phases.
// - A task's entry is forgotten when the tracker no longer holds it open (finished or evicted); entries are bounded
//   (`maxTasks`, oldest dropped first).

import type { TaskEvent } from './events.js';

export type MergeVerdict = 'new' | 'repeat';

/** Phases kept per task: enough for a stream lagging several suspend/resume cycles behind. */
const MAX_PHASES = 8;

interface StreamPosition {
  /** The lifecycle time of the phase this stream is in for the task. */
  phase: number;
  /** Output chunks this stream delivered in that phase. */
  outputs: number;
}

interface Entry {
  /** Latest lifecycle time seen (ms). */
  at: number;
  /** Where each stream is, for streams that delivered anything of the task. */
  streams: Map<string, StreamPosition> | undefined;
  /** The most output chunks any stream delivered, by phase. */
  maxOutputs: Map<number, number> | undefined;
}

export class StreamMerge {
  private readonly tasks = new Map<string, Entry>();

  constructor(private readonly maxTasks = 100_000) {}

  get size(): number {
    return this.tasks.size;
  }

  /** Whether `event`, delivered by stream `source`, is new. Records it when it is. */
  admit(event: TaskEvent, source: string): MergeVerdict {
    const kind = event.kind;
    if (kind === 'completed' || kind === 'failed' || kind === 'cancelled') return 'new';
    let entry = this.tasks.get(event.taskId);
    if (kind === 'output') {
      if (entry === undefined) entry = this.create(event.taskId, Number.NEGATIVE_INFINITY);
      const position = this.position(entry, source, entry.at);
      const n = ++position.outputs;
      entry.maxOutputs ??= new Map();
      if (n <= (entry.maxOutputs.get(position.phase) ?? 0)) return 'repeat';
      if (!entry.maxOutputs.has(position.phase) && entry.maxOutputs.size >= MAX_PHASES) entry.maxOutputs.delete(entry.maxOutputs.keys().next().value!);
      entry.maxOutputs.set(position.phase, n);
      return 'new';
    }
    const at = event.at ?? Number.NEGATIVE_INFINITY;
    let verdict: MergeVerdict = 'new';
    if (entry === undefined) entry = this.create(event.taskId, at);
    else if (at < entry.at) verdict = 'repeat';
    else entry.at = at;
    // Repeat or not, the stream is in this phase now (an event with no time places nothing).
    if (event.at !== undefined) {
      const position = this.position(entry, source, at);
      if (position.phase !== at) {
        position.phase = at;
        position.outputs = 0;
      }
    }
    return verdict;
  }

  private position(entry: Entry, source: string, phase: number): StreamPosition {
    entry.streams ??= new Map();
    let p = entry.streams.get(source);
    if (p === undefined) {
      p = { phase, outputs: 0 };
      entry.streams.set(source, p);
    }
    return p;
  }

  /** The task is no longer open in the tracker (finished or evicted). */
  forget(taskId: string): void {
    this.tasks.delete(taskId);
  }

  private create(taskId: string, at: number): Entry {
    if (this.tasks.size >= this.maxTasks) this.tasks.delete(this.tasks.keys().next().value!);
    const entry: Entry = { at, streams: undefined, maxOutputs: undefined };
    this.tasks.set(taskId, entry);
    return entry;
  }
}
