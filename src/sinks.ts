// Observers of the pipeline: the place for the task API's recent-task buffer, the restart checkpoint and the live
// event feed. `finished` is called once per task after its span and terminal count are recorded; the optional
// `transition` and `looked_up` hooks see live transitions of open tasks as they are applied, and the end of each
// open task's first lookup (enrichment). A sink must be cheap and must not throw (the pipeline guards it anyway).

import type { WrittenSpan } from './span-ids.js';
import type { FinishedTask, OpenTask, Transition } from './tracker.js';

export interface TaskSink {
  finished(task: FinishedTask, span: WrittenSpan): void;
  /** started, suspended, resumed, output or evicted, synchronously as the tracker applies it. */
  transition?(t: Exclude<Transition, { type: 'finished' } | { type: 'queue_wait' }>, observedAt: number): void;
  /** The first lookup of an open task ended (its stored fields are merged into `task.info` when it succeeded). */
  lookedUp?(taskId: string, task: OpenTask | undefined): void;
}
