// Where a task's span goes: under Mastra's own tool_call span when the app stores its traces (`auto`), else in a
// trace derived from the run (`run`, also auto's fallback), or a trace of its own (`none`).
//
// Mastra's storage exporter writes a span after a batch delay (5 s by default), so a lookup made as soon as a quick task
// ends always misses, and each miss is a request Mastra serves. So the first lookup waits until the span is likely
// stored: the longest recent storage delay of the tool_call spans found (their createdAt − startedAt, Mastra's own
// clock: where in the exporter's batch cycle a span fell), Mastra's default 5 s until one is found; a miss is retried
// with exponential delays (250 ms · 2^n: 5 retries wait 7.75 s in all). Lookups of one run share their reads (RunSpanFinder). Nothing waits on this but the span: the
// terminal count is recorded before placement (pipeline.ts). When the app stores no traces at all, or lookups keep missing
// (traces sampled out, stored elsewhere), auto placement stops asking for a while and falls back at once: a task's
// telemetry must never wait on a lookup that cannot succeed. A run whose span was not found after every attempt is
// remembered for a while (bounded): its other tasks fall back at once instead of each waiting out the retries.

import { type ParentMode, type Placement, fallbackPlacement } from './span-ids.js';
import type { SpanRef, TaskSource } from './sources/types.js';

export interface PlacementOptions {
  mode: ParentMode;
  /** Attempts to find Mastra's tool_call span before falling back (auto mode). */
  attempts: number;
  retryDelayMs: number;
  timeoutMs: number;
  /**
   * Aborted when the bridge closes: every wait ends and the task is placed by its fallback at once, so its span is
   * written before the final flush (a span still waiting at exit would be lost, and counted again after a restart).
   */
  closing?: AbortSignal;
}

export const DEFAULT_PLACEMENT: PlacementOptions = { mode: 'auto', attempts: 6, retryDelayMs: 250, timeoutMs: 5_000 };

/** The longest the first lookup is put off after a task's start. */
const MAX_FIRST_WAIT_MS = 10_000;
/** Before any span was found: Mastra's default storage batch wait (MastraStorageExporter maxBatchWaitMs). */
const INITIAL_FIRST_WAIT_MS = 5_000;
/** Storage delays remembered (the first lookup waits for the longest of them). */
const DELAY_SAMPLES = 32;
/**
 * Added to the learned delay: the store write itself, the bridge seeing the task a little late, and a busier exporter
 * than the samples saw. A miss costs Mastra a request or two more; asking half a second later costs nobody anything
 * (the count does not wait).
 */
const FIRST_WAIT_MARGIN_MS = 250;
const FIRST_WAIT_MARGIN_RATIO = 0.1;

/** Consecutive tasks whose span was never found before auto placement pauses. */
const MISSES_BEFORE_PAUSE = 20;
const PAUSE_MS = 5 * 60_000;
const UNAVAILABLE_RECHECK_MS = 30_000;
/** How long, and for how many runs at most, a run whose tool_call span was never found is not asked for again. */
const MISSED_RUN_MS = 5 * 60_000;
const MISSED_RUNS_MAX = 1_000;

export class PlacementResolver {
  private pausedUntil = 0;
  private misses = 0;
  /** runId → until when its tasks fall back without a lookup (insertion order = expiry order). */
  private readonly missedRuns = new Map<string, number>();
  /** Recent storage delays of found tool_call spans (ms), oldest first; and the first lookup's wait they give. */
  private readonly delays: number[] = [];
  private storeDelayMs = INITIAL_FIRST_WAIT_MS;

  constructor(
    private readonly source: Pick<TaskSource, 'findToolCallSpan'>,
    private readonly options: PlacementOptions,
    private readonly now: () => number = Date.now,
    /** Injected by tests (a fake clock); by default a timer, cleared when the bridge closes. */
    private readonly sleep?: (ms: number) => Promise<void>,
  ) {
    options.closing?.addEventListener('abort', () => {
      for (const wake of [...this.waiting]) wake();
    }, { once: true });
  }

  /** The placement when it needs no lookup (mode run/none, or auto while paused), else undefined: call resolve(). */
  immediate(task: { taskId: string; runId: string }): Placement | undefined {
    if (this.options.mode !== 'auto' || this.now() < this.pausedUntil || this.options.closing?.aborted) return fallbackPlacement(task, this.options.mode);
    if (this.missedRuns.size > 0 && this.runMissed(task.runId)) return fallbackPlacement(task, this.options.mode);
    return undefined;
  }

  private runMissed(runId: string): boolean {
    const until = this.missedRuns.get(runId);
    if (until === undefined) return false;
    if (this.now() < until) return true;
    this.missedRuns.delete(runId);
    return false;
  }

  private learn(delayMs: number): void {
    this.delays.push(Math.min(MAX_FIRST_WAIT_MS, delayMs));
    if (this.delays.length > DELAY_SAMPLES) this.delays.shift();
    const longest = Math.max(...this.delays);
    this.storeDelayMs = Math.min(MAX_FIRST_WAIT_MS, longest * (1 + FIRST_WAIT_MARGIN_RATIO) + FIRST_WAIT_MARGIN_MS);
  }

  /** Sleeps `ms`; false when the bridge started closing meanwhile (or had already). */
  private async wait(ms: number): Promise<boolean> {
    const closing = this.options.closing;
    if (closing?.aborted) return false;
    if (this.sleep) {
      await this.sleep(ms);
      return !closing?.aborted;
    }
    await new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.waiting.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.waiting.add(done);
    });
    return !closing?.aborted;
  }

  /** Tasks sleeping until their next lookup; woken all at once by one listener on the closing signal. */
  private readonly waiting = new Set<() => void>();

  /** How long the first lookup waits after a task's start, as learned so far (ms). */
  get firstLookupDelayMs(): number {
    return this.storeDelayMs;
  }

  async resolve(task: { taskId: string; runId: string; toolCallId: string; startedAt?: number | undefined; completedAt?: number }): Promise<Placement> {
    const fallback = fallbackPlacement(task, this.options.mode);
    if (this.options.mode !== 'auto' || this.now() < this.pausedUntil || this.runMissed(task.runId)) return fallback;
    const closing = this.options.closing;
    if (closing?.aborted) return fallback;
    const startedAt = task.startedAt ?? task.completedAt ?? this.now();
    const firstWait = Math.min(MAX_FIRST_WAIT_MS, startedAt + this.storeDelayMs - this.now());
    if (firstWait > 0 && !(await this.wait(firstWait))) return fallback;
    for (let attempt = 0; attempt < this.options.attempts; attempt++) {
      if (attempt > 0 && !(await this.wait(this.options.retryDelayMs * 2 ** (attempt - 1)))) return fallback;
      // Paused while this task waited (20 misses elsewhere, or no trace storage): no more requests.
      if (this.now() < this.pausedUntil) return fallback;
      let found: SpanRef | null | undefined;
      try {
        // A lookup under way when the bridge closes is let finish (bounded by its timeout): no race against the
        // closing signal, whose listeners would pile up over a long run.
        found = await this.source.findToolCallSpan(task.runId, task.toolCallId, AbortSignal.timeout(this.options.timeoutMs), task.startedAt);
      } catch {
        found = null;
      }
      if (found === undefined) {
        this.pausedUntil = this.now() + UNAVAILABLE_RECHECK_MS;
        return fallback;
      }
      if (!found && closing?.aborted) return fallback;
      if (found) {
        this.misses = 0;
        this.learn(found.storedAfterMs ?? Math.max(0, this.now() - startedAt));
        return { traceId: found.traceId, parentSpanId: found.spanId, origin: 'mastra' };
      }
    }
    if (closing?.aborted) return fallback;
    this.missedRuns.delete(task.runId);
    this.missedRuns.set(task.runId, this.now() + MISSED_RUN_MS);
    if (this.missedRuns.size > MISSED_RUNS_MAX) this.missedRuns.delete(this.missedRuns.keys().next().value as string);
    if (++this.misses >= MISSES_BEFORE_PAUSE) {
      this.misses = 0;
      this.pausedUntil = this.now() + PAUSE_MS;
    }
    return fallback;
  }
}
