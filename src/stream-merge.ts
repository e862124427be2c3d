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
// - Output chunks carry no time and no sequence number. Each stream's chunks of a task are counted; a chunk is new
//   only when its stream's count exceeds the most any stream has delivered for that task. With a shared pubsub both
//   streams count 1, 2, 3… and each number is accepted once; with separate pubsubs only one stream delivers them. A
//   stream that connected late (missed the first chunks) delivers nothing new until it passes the others.
// - A task's entry is forgotten when the tracker no longer holds it open (finished or evicted); entries are bounded
//   (`maxTasks`, oldest dropped first).

import type { TaskEvent } from './events.js';

export type MergeVerdict = 'new' | 'repeat';

interface Entry {
  /** Latest lifecycle time seen (ms). */
  at: number;
  /** Output chunks delivered per stream, and the most any stream delivered. */
  outputs: Map<string, number> | undefined;
  maxOutputs: number;
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
      entry.outputs ??= new Map();
      const n = (entry.outputs.get(source) ?? 0) + 1;
      entry.outputs.set(source, n);
      if (n <= entry.maxOutputs) return 'repeat';
      entry.maxOutputs = n;
      return 'new';
    }
    const at = event.at ?? Number.NEGATIVE_INFINITY;
    if (entry === undefined) {
      this.create(event.taskId, at);
      return 'new';
    }
    if (at < entry.at) return 'repeat';
    entry.at = at;
    return 'new';
  }

  /** The task is no longer open in the tracker (finished or evicted). */
  forget(taskId: string): void {
    this.tasks.delete(taskId);
  }

  private create(taskId: string, at: number): Entry {
    if (this.tasks.size >= this.maxTasks) this.tasks.delete(this.tasks.keys().next().value!);
    const entry: Entry = { at, outputs: undefined, maxOutputs: 0 };
    this.tasks.set(taskId, entry);
    return entry;
  }
}
