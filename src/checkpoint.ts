// The restart checkpoint: which tasks the bridge has exported, so a restarted bridge backfills the tasks that finished
// while it was down and never exports one twice.
//
// The state is the high-water mark (latest completedAt exported) and the ids of tasks exported with completedAt within
// `windowMs` below it. On start the bridge scans Mastra for tasks completed since `watermark - windowMs`; recorded ids
// count as already finished, so only the rest are exported. A task is missed only if its export lagged the newest
// export by more than the window.
//
// File format: JSON lines. The first line is a header, every further line one exported task. Each acknowledged export
// batch is appended synchronously (small, cheap), so even a SIGKILL right after an export loses nothing; the file is
// compacted (pruned to the window) by writing a temporary file and renaming it over the old one, which is atomic.
// A torn or corrupt body line (a crash mid-append, a failed partial append) is skipped and counted on load, wherever
// it is; after a failed append the next write compacts, so a torn line never stays in the middle of the file.
//
// The file is the bridge's own: a symlink at its path is refused (it would make the bridge write wherever it points),
// appends never follow one, and the temporary file of a compaction is created exclusively, mode 0600.
//
// A completedAt ahead of the bridge clock by more than `futureToleranceMs` (a wrong clock upstream, a hostile record)
// never becomes the watermark (its entry is kept, clamped to now + tolerance): one task dated 2999 would otherwise
// prune every real id and move the next backfill to 2999, i.e. never. A file with entries in the future (written
// before this check) recovers as it loads: its watermark comes from the sane entries, or its creation time.
//
// The header also keeps `createdAt`, when the bridge first started with this file (written at once, before any export).
// It is the floor of every backfill: tasks that finished before the bridge ever watched are not its to count, so a
// checkpoint that has exported nothing yet (watermark 0, e.g. a collector down the whole run) backfills from there,
// not from the epoch.

import { constants, closeSync, fsyncSync, lstatSync, mkdirSync, openSync, readFileSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { dirname } from 'node:path';

export interface CheckpointState {
  watermark: number;
  exported: Map<string, number>;
  /** When the bridge first started with this file (epoch ms); absent in files written before it was kept. */
  createdAt: number | undefined;
  /** Body lines that were not an entry (torn or corrupt), skipped. */
  corruptLines: number;
  /** Entries dated further in the future than the tolerance, clamped. */
  futureDated: number;
}

export interface CheckpointOptions {
  /** Appended lines before the file is compacted. */
  compactEvery?: number;
  now?: () => number;
  /** How far ahead of `now` a completedAt may be (clock skew between Mastra and the bridge) before it is clamped. */
  futureToleranceMs?: number;
  /** Called for each completedAt clamped (on load and on record). */
  onFutureDated?: (taskId: string, completedAt: number) => void;
}

export const DEFAULT_FUTURE_TOLERANCE_MS = 5 * 60_000;

const HEADER = { format: 'mastra-task-bridge-checkpoint', version: 1 } as const;

export class Checkpoint {
  private readonly exported = new Map<string, number>();
  /** Ids whose completedAt was clamped (written with `"f":1`): never a watermark, even once the clock catches up. */
  private readonly clamped = new Set<string>();
  private watermarkMs = 0;
  private createdAtMs: number | undefined;
  private appended = 0;
  private futureDated = 0;
  private readonly compactEvery: number;
  private readonly now: () => number;
  private readonly futureToleranceMs: number;

  constructor(
    readonly path: string,
    private readonly windowMs: number,
    options: CheckpointOptions | number = {},
  ) {
    const o = typeof options === 'number' ? { compactEvery: options } : options;
    this.compactEvery = o.compactEvery ?? 10_000;
    this.now = o.now ?? Date.now;
    this.futureToleranceMs = o.futureToleranceMs ?? DEFAULT_FUTURE_TOLERANCE_MS;
    this.onFutureDated = o.onFutureDated;
  }

  private readonly onFutureDated: CheckpointOptions['onFutureDated'];

  /**
   * Read the file. Missing: a first start (undefined). Not a checkpoint, or a symlink: throws — never silently
   * re-export, never write through a link.
   */
  load(): CheckpointState | undefined {
    let text: string;
    try {
      if (lstatSync(this.path).isSymbolicLink()) {
        throw new Error(`${this.path} is a symbolic link: refusing to use it as the checkpoint (point state.checkpointFile at the real file)`);
      }
      text = readFileSync(this.path, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw e;
    }
    const lines = text.split('\n').filter((l) => l !== '');
    let header: unknown;
    try {
      header = JSON.parse(lines[0] ?? '');
    } catch {
      header = undefined;
    }
    const h = header as { format?: string; version?: number; createdAt?: unknown } | undefined;
    if (h?.format !== HEADER.format || h.version !== HEADER.version) {
      throw new Error(`${this.path} is not a mastra-task-bridge checkpoint (version ${HEADER.version})`);
    }
    if (typeof h.createdAt === 'number' && Number.isFinite(h.createdAt)) this.createdAtMs = Math.min(h.createdAt, this.now());
    let corruptLines = 0;
    const futureBefore = this.futureDated;
    for (const line of lines.slice(1)) {
      let entry: { id?: unknown; c?: unknown; f?: unknown } | null;
      try {
        entry = JSON.parse(line) as typeof entry;
      } catch {
        entry = null;
      }
      if (typeof entry?.id !== 'string' || typeof entry.c !== 'number' || !Number.isFinite(entry.c)) corruptLines++;
      else if (entry.f === 1) {
        this.exported.set(entry.id, Math.min(entry.c, this.now() + this.futureToleranceMs));
        this.clamped.add(entry.id);
      } else this.note(entry.id, entry.c);
    }
    this.prune();
    // Rewrite a file that held a corrupt line or a future date at once: the next append must not land after a torn line.
    if (corruptLines > 0 || this.futureDated > futureBefore) this.appended = 0;
    return {
      watermark: this.watermarkMs,
      exported: new Map(this.exported),
      createdAt: this.createdAtMs,
      corruptLines,
      futureDated: this.futureDated - futureBefore,
    };
  }

  /** A first start: write the file now, so that even a crash before the first export leaves the backfill's floor. */
  create(nowMs: number): void {
    this.createdAtMs = nowMs;
    this.compact();
  }

  /**
   * Where a restarted bridge's backfill starts (epoch ms): the window below the newest export, never before the file
   * was created. A file without `createdAt` that has exported nothing has no floor: undefined (start fresh).
   */
  backfillFrom(state: CheckpointState): number | undefined {
    const fromWatermark = state.watermark > 0 ? state.watermark - this.windowMs : undefined;
    if (state.createdAt === undefined) return fromWatermark;
    return Math.max(fromWatermark ?? state.createdAt, state.createdAt);
  }

  /** Record tasks whose spans the collector acknowledged (or that finished, when spans are not exported). */
  record(entries: { taskId: string; completedAt: number }[]): void {
    if (entries.length === 0) return;
    const noted = entries.map((e) => this.line(e.taskId, this.note(e.taskId, e.completedAt)));
    if (this.appended === 0 || this.appended + entries.length > this.compactEvery) {
      this.compact();
      return;
    }
    try {
      const fd = openSync(this.path, constants.O_WRONLY | constants.O_APPEND | constants.O_NOFOLLOW);
      try {
        writeSync(fd, noted.map((l) => `${l}\n`).join(''));
      } finally {
        closeSync(fd);
      }
    } catch (error) {
      // A partial append may have left a torn line: the next write rewrites the whole file from memory.
      this.appended = 0;
      throw error;
    }
    this.appended += entries.length;
  }

  /** Rewrite the file with only what is inside the window, atomically. */
  compact(): void {
    this.prune();
    mkdirSync(dirname(this.path), { recursive: true });
    const tmp = `${this.path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
    const header = { ...HEADER, watermark: this.watermarkMs, ...(this.createdAtMs !== undefined ? { createdAt: this.createdAtMs } : {}) };
    const body = [JSON.stringify(header), ...[...this.exported].map(([id, c]) => this.line(id, c))];
    // fsync before the rename: otherwise a power loss right after it can leave the new name on an empty file.
    // Exclusive and not through a link: a file planted at the temporary name is never written through.
    const fd = openSync(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
    try {
      try {
        writeSync(fd, `${body.join('\n')}\n`);
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      renameSync(tmp, this.path);
    } catch (error) {
      try {
        unlinkSync(tmp);
      } catch {
        // already renamed or gone
      }
      this.appended = 0;
      throw error;
    }
    this.appended = 1;
  }

  private line(id: string, c: number): string {
    return JSON.stringify(this.clamped.has(id) ? { id, c, f: 1 } : { id, c });
  }

  /**
   * Record one entry; returns the time kept. A completedAt too far in the future is kept clamped to now + tolerance (so
   * it prunes in time) but never sets the watermark: that would prune the real ids near now (the tolerance can exceed
   * the window) and move the backfill ahead. Found in the file (written before clamping existed, or the clock went
   * back), the sane entries, or with none the creation time, give a backfill that happens rather than one that never does.
   */
  private note(id: string, completedAt: number): number {
    const limit = this.now() + this.futureToleranceMs;
    if (completedAt > limit) {
      this.futureDated++;
      this.onFutureDated?.(id, completedAt);
      this.exported.set(id, limit);
      this.clamped.add(id);
      return limit;
    }
    this.clamped.delete(id);
    this.exported.set(id, completedAt);
    if (completedAt > this.watermarkMs) this.watermarkMs = completedAt;
    return completedAt;
  }

  private prune(): void {
    const floor = this.watermarkMs - this.windowMs;
    // Clamped entries also age by the clock: with no real export after them, the watermark would never prune them.
    const clampedFloor = Math.max(floor, this.now() - this.windowMs);
    for (const [id, at] of this.exported) {
      if (at >= floor && !(at < clampedFloor && this.clamped.has(id))) continue;
      this.exported.delete(id);
      this.clamped.delete(id);
    }
  }
}
