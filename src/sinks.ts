// Observers of finished tasks, called once per task after its span and terminal count are recorded: the place for
// the task API's recent-task buffer and the restart checkpoint. A sink must be cheap and must not throw (the pipeline
// guards it anyway).

import type { WrittenSpan } from './spans.js';
import type { FinishedTask } from './tracker.js';

export interface TaskSink {
  finished(task: FinishedTask, span: WrittenSpan): void;
}
