// The checkpoint file against an unlucky operator and a hostile neighbour: symlinks, torn and corrupt lines, failed
// appends, and completedAt values in the future (from the stream, or already in a file written before they were
// clamped). Real files in a temporary directory; no bridge.
import { lstatSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Checkpoint } from '../src/checkpoint.js';

const NOW = Date.UTC(2026, 11, 6, 12, 0, 0);
const FUTURE = Date.UTC(2999, 0, 1);
const HEADER = '{"format":"mastra-task-bridge-checkpoint","version":1';

describe('checkpoint file', () => {
  const dirs: string[] = [];
  const tmp = () => {
    const d = mkdtempSync(join(tmpdir(), 'checkpoint-file-'));
    dirs.push(d);
    return d;
  };
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });
  const cp = (path: string, extra: ConstructorParameters<typeof Checkpoint>[2] = {}) =>
    new Checkpoint(path, 600_000, { now: () => NOW, ...(typeof extra === 'object' ? extra : {}) });

  it('is written with mode 0600, through a temporary file that leaves nothing behind', () => {
    const dir = tmp();
    const path = join(dir, 'cp.jsonl');
    const c = cp(path);
    c.create(NOW);
    c.record([{ taskId: 'a', completedAt: NOW - 1000 }]);
    c.compact();
    expect(lstatSync(path).mode & 0o777).toBe(0o600);
    expect(readdirSync(dir)).toEqual(['cp.jsonl']);
  });

  it('refuses a symlinked checkpoint, and never appends through a link planted after it loaded', () => {
    const dir = tmp();
    const target = join(dir, 'victim.txt');
    writeFileSync(target, 'precious\n');
    const link = join(dir, 'cp.jsonl');
    symlinkSync(target, link);
    expect(() => cp(link).load()).toThrow(/symbolic link/);
    expect(readFileSync(target, 'utf8')).toBe('precious\n');

    const path = join(dir, 'real.jsonl');
    const c = cp(path);
    c.create(NOW);
    c.record([{ taskId: 'a', completedAt: NOW - 2000 }]); // an append: the file was just compacted
    unlinkSync(path);
    symlinkSync(target, path);
    expect(() => c.record([{ taskId: 'b', completedAt: NOW - 1000 }])).toThrow();
    expect(readFileSync(target, 'utf8')).toBe('precious\n');
    // The failed append makes the next write a compaction: the link is replaced by a whole, clean file.
    c.record([{ taskId: 'c', completedAt: NOW }]);
    expect(lstatSync(path).isSymbolicLink()).toBe(false);
    expect(readFileSync(target, 'utf8')).toBe('precious\n');
    expect([...cp(path).load()!.exported.keys()].sort()).toEqual(['a', 'b', 'c']);
  });

  it('skips and counts torn or corrupt lines anywhere (a torn line in the middle no longer stops the next start)', () => {
    const path = join(tmp(), 'cp.jsonl');
    writeFileSync(
      path,
      [
        `${HEADER},"createdAt":${NOW - 3_600_000}}`,
        `{"id":"a","c":${NOW - 3000}}`,
        `{"id":"b","c":`, // torn by a failed partial append, then appended after
        `{"id":"c","c":"yesterday"}`,
        `{"id":"d","c":${NOW - 1000}}`,
        `{"id":"e","c`,
      ].join('\n'),
    );
    const c = cp(path);
    const state = c.load()!;
    expect(state.corruptLines).toBe(3);
    expect([...state.exported.keys()].sort()).toEqual(['a', 'd']);
    expect(state.watermark).toBe(NOW - 1000);
    // The first write after such a load rewrites the file whole.
    c.record([{ taskId: 'f', completedAt: NOW }]);
    const reloaded = cp(path).load()!;
    expect(reloaded.corruptLines).toBe(0);
    expect([...reloaded.exported.keys()].sort()).toEqual(['a', 'd', 'f']);
  });

  it('a completedAt far in the future is kept (clamped) but never becomes the watermark, and is reported', () => {
    const path = join(tmp(), 'cp.jsonl');
    const seen: [string, number][] = [];
    const c = cp(path, { onFutureDated: (id, at) => void seen.push([id, at]) });
    c.create(NOW - 3_600_000);
    c.record([{ taskId: 'real', completedAt: NOW - 1000 }]);
    c.record([{ taskId: 'future', completedAt: FUTURE }]);
    c.record([{ taskId: 'skewed', completedAt: NOW + 60_000 }]); // within the tolerance: ordinary clock skew
    expect(seen).toEqual([['future', FUTURE]]);
    const state = cp(path).load()!;
    expect(state.watermark).toBe(NOW + 60_000);
    expect([...state.exported.keys()].sort()).toEqual(['future', 'real', 'skewed']);
    expect(state.exported.get('future')).toBeLessThanOrEqual(NOW + 5 * 60_000);
    expect(c.backfillFrom(state)).toBe(NOW + 60_000 - 600_000);
  });

  it('recovers from a file whose watermark is already in the future: backfills from the sane entries, or its creation', () => {
    const path = join(tmp(), 'cp.jsonl');
    // What the old code left after one task dated 2999: every real id pruned, the watermark in 2999.
    writeFileSync(path, `${HEADER},"watermark":${FUTURE},"createdAt":${NOW - 3_600_000}}\n{"id":"future","c":${FUTURE}}\n`);
    const c = cp(path);
    const state = c.load()!;
    expect(state.futureDated).toBe(1);
    expect(state.watermark).toBe(0);
    expect(c.backfillFrom(state)).toBe(NOW - 3_600_000);
    expect(state.exported.has('future')).toBe(true);

    writeFileSync(path, `${HEADER},"createdAt":${NOW - 3_600_000}}\n{"id":"real","c":${NOW - 120_000}}\n{"id":"future","c":${FUTURE}}\n`);
    const d = cp(path);
    expect(d.backfillFrom(d.load()!)).toBe(NOW - 120_000 - 600_000);
  });
});
