import { describe, expect, it } from 'vitest';
import { ChunkBatch } from '../src/chunk-batch.js';

describe('ChunkBatch', () => {
  it('hands chunks over on the next turn, in order, all together', async () => {
    const seen: unknown[] = [];
    const batch = new ChunkBatch((c) => void seen.push(c), () => undefined);
    batch.push(1);
    batch.push(2);
    await Promise.resolve();
    expect(seen).toEqual([]);
    expect(batch.size).toBe(2);
    await new Promise((r) => setImmediate(r));
    expect(seen).toEqual([1, 2]);
    expect(batch.size).toBe(0);
  });

  it('flush() hands everything over at once and cancels the scheduled turn', async () => {
    const seen: unknown[] = [];
    const batch = new ChunkBatch((c) => void seen.push(c), () => undefined);
    batch.push('a');
    batch.flush();
    expect(seen).toEqual(['a']);
    await new Promise((r) => setImmediate(r));
    expect(seen).toEqual(['a']);
  });

  it('a handler that flushes (re-enters) hands each chunk over once, in order', () => {
    const seen: unknown[] = [];
    let batch!: ChunkBatch;
    batch = new ChunkBatch((c) => {
      seen.push(c);
      if (c === 'a') {
        batch.push('c');
        batch.flush();
      }
    }, () => undefined);
    batch.push('a');
    batch.push('b');
    batch.flush();
    expect(seen.sort()).toEqual(['a', 'b', 'c']);
    expect(batch.size).toBe(0);
  });

  it('a throwing handler is reported and the rest of the batch still goes through', async () => {
    const seen: unknown[] = [];
    const errors: unknown[] = [];
    const batch = new ChunkBatch(
      (c) => {
        if (c === 'bad') throw new Error('boom');
        seen.push(c);
      },
      (e) => void errors.push(e),
    );
    for (const c of ['x', 'bad', 'y']) batch.push(c);
    await batch.drained();
    expect(seen).toEqual(['x', 'y']);
    expect(errors).toHaveLength(1);
  });

  it('drained() resolves at once when empty, else after the queued chunks are handled', async () => {
    const seen: unknown[] = [];
    const batch = new ChunkBatch((c) => void seen.push(c), () => undefined);
    await batch.drained();
    batch.push(1);
    const d = batch.drained();
    batch.push(2);
    await d;
    expect(seen).toEqual([1, 2]);
  });
});
