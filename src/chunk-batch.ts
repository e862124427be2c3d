// Hands in-process chunks to the pipeline once per event-loop turn, in arrival order, instead of one at a time.
//
// Why: an in-process chunk arrives inside Mastra's own publish path (its pubsub emit → stream enqueue → our read), in
// the middle of Mastra's microtask chains. Handling each there interleaves the bridge's code with Mastra's at every
// event; handling them together in a setImmediate keeps both hot and costs one immediate per turn with events (not
// one per chunk). On the bench's in-process Mastra run the bridge's added CPU per task fell from about 1.7 ms to
// about 0.3 ms (README, Performance).
// Owns: the queue and its flushing. Must not: interpret chunks, or drop one — a chunk handler that throws is
// reported and the rest of the batch still goes through; flush() hands over whatever is queued at once (shutdown,
// reconnects, idle()).

export class ChunkBatch {
  private queue: unknown[] = [];
  private scheduled: ReturnType<typeof setImmediate> | undefined;
  private waiters: (() => void)[] = [];
  private readonly flushNow = (): void => this.flush();

  constructor(
    private readonly handle: (chunk: unknown) => void,
    private readonly onError: (error: unknown) => void,
  ) {}

  push(chunk: unknown): void {
    this.queue.push(chunk);
    this.scheduled ??= setImmediate(this.flushNow);
  }

  /** Chunks waiting for the next turn. */
  get size(): number {
    return this.queue.length;
  }

  /** Hand every queued chunk over now. */
  flush(): void {
    if (this.scheduled !== undefined) {
      clearImmediate(this.scheduled);
      this.scheduled = undefined;
    }
    // Chunks pushed while flushing (a handler that feeds back) join this flush, in order. The queue is taken before
    // handling, so a handler that calls flush() itself hands over only what came after, never a chunk twice.
    while (this.queue.length > 0) {
      const batch = this.queue;
      this.queue = [];
      for (const chunk of batch) {
        try {
          this.handle(chunk);
        } catch (error) {
          this.onError(error);
        }
      }
    }
    const waiters = this.waiters;
    if (waiters.length === 0) return;
    this.waiters = [];
    for (const w of waiters) w();
  }

  /** Resolves once every chunk queued so far has been handed over. */
  drained(): Promise<void> {
    if (this.queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }
}
