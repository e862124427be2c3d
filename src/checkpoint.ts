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
// A torn last line (crash mid-append) is ignored on load.
//
// The header also keeps `createdAt`, when the bridge first started with this file (written at once, before any export).
// It is the floor of every backfill: tasks that finished before the bridge ever watched are not its to count, so a
// checkpoint that has exported nothing yet (watermark 0, e.g. a collector down the whole run) backfills from there,
// not from the epoch.

import { appendFileSync, closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

export interface CheckpointState {
  watermark: number;
  exported: Map<string, number>;
  /** When the bridge first started with this file (epoch ms); absent in files written before it was kept. */
  createdAt: number | undefined;
}

const HEADER = { format: 'mastra-task-bridge-checkpoint', version: 1 } as const;

export class Checkpoint {
  private readonly exported = new Map<string, number>();
  private watermarkMs = 0;
  private createdAtMs: number | undefined;
  private appended = 0;

  constructor(
    readonly path: string,
    private readonly windowMs: number,
    /** Appended lines before the file is compacted. */
    private readonly compactEvery = 10_000,
  ) {}

  /** Read the file. Missing: a first start (undefined). Not a checkpoint: throws — never silently re-export. */
  load(): CheckpointState | undefined {
    let text: string;
    try {
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
    if (typeof h.createdAt === 'number' && Number.isFinite(h.createdAt)) this.createdAtMs = h.createdAt;
    for (const [i, line] of lines.slice(1).entries()) {
      let entry: { id?: unknown; c?: unknown };
      try {
        entry = JSON.parse(line) as typeof entry;
      } catch (e) {
        if (i === lines.length - 2) break; // torn last append
        throw new Error(`${this.path}: corrupt line ${i + 2}: ${(e as Error).message}`);
      }
      if (typeof entry.id === 'string' && typeof entry.c === 'number') this.note(entry.id, entry.c);
    }
    this.prune();
    return { watermark: this.watermarkMs, exported: new Map(this.exported), createdAt: this.createdAtMs };
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
    for (const e of entries) this.note(e.taskId, e.completedAt);
    if (this.appended === 0 || this.appended + entries.length > this.compactEvery) {
      this.compact();
      return;
    }
    appendFileSync(this.path, entries.map((e) => `${JSON.stringify({ id: e.taskId, c: e.completedAt })}\n`).join(''));
    this.appended += entries.length;
  }

  /** Rewrite the file with only what is inside the window, atomically. */
  compact(): void {
    this.prune();
    mkdirSync(dirname(this.path), { recursive: true });
    const tmp = `${this.path}.${process.pid}.tmp`;
    const header = { ...HEADER, watermark: this.watermarkMs, ...(this.createdAtMs !== undefined ? { createdAt: this.createdAtMs } : {}) };
    const body = [JSON.stringify(header), ...[...this.exported].map(([id, c]) => JSON.stringify({ id, c }))];
    // fsync before the rename: otherwise a power loss right after it can leave the new name on an empty file.
    const fd = openSync(tmp, 'w');
    try {
      writeFileSync(fd, `${body.join('\n')}\n`);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, this.path);
    this.appended = 1;
  }

  private note(id: string, completedAt: number): void {
    this.exported.set(id, completedAt);
    if (completedAt > this.watermarkMs) this.watermarkMs = completedAt;
  }

  private prune(): void {
    const floor = this.watermarkMs - this.windowMs;
    for (const [id, at] of this.exported) if (at < floor) this.exported.delete(id);
  }
}
