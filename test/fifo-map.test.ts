// FifoMap (src/fifo-map.ts): bounded, oldest first, a key set again counts as new, deleted keys leave no live slot,
// and its age order stays within a small multiple of what it holds whatever the mix of sets and deletes.
import { describe, expect, it } from 'vitest';
import { FifoMap } from '../src/fifo-map.js';

describe('FifoMap', () => {
  it('keeps at most max entries, dropping the oldest', () => {
    const m = new FifoMap<string, number>(3);
    for (const [i, k] of ['a', 'b', 'c', 'd', 'e'].entries()) m.set(k, i);
    expect(m.size).toBe(3);
    expect(['a', 'b', 'c', 'd', 'e'].filter((k) => m.has(k))).toEqual(['c', 'd', 'e']);
    expect(m.get('e')).toBe(4);
  });

  it('a key set again becomes the newest (its older slot is skipped)', () => {
    const m = new FifoMap<string, number>(3);
    m.set('a', 1);
    m.set('b', 2);
    m.set('c', 3);
    m.set('a', 10); // a is now newest: b goes first
    m.set('d', 4);
    expect(['a', 'b', 'c', 'd'].filter((k) => m.has(k))).toEqual(['a', 'c', 'd']);
    m.set('e', 5);
    m.set('f', 6);
    expect(['a', 'c', 'd', 'e', 'f'].filter((k) => m.has(k))).toEqual(['d', 'e', 'f']);
  });

  it('a deleted key set again is as new as its last set, not its first', () => {
    const m = new FifoMap<string, number>(2);
    m.set('a', 1);
    m.set('b', 2);
    expect(m.delete('a')).toBe(true);
    expect(m.delete('a')).toBe(false);
    m.set('a', 3); // a's first slot is stale; its live slot is after b's
    m.set('c', 4); // over the cap: b is the oldest live entry
    expect(m.has('a')).toBe(true);
    expect(m.has('b')).toBe(false);
    expect(m.get('a')).toBe(3);
  });

  it('dropOldestWhile drops from the oldest while the predicate holds, and stops at the first it keeps', () => {
    const m = new FifoMap<string, number>(100);
    for (let i = 0; i < 10; i++) m.set(`k${i}`, i * 10);
    m.set('k0', 95); // refreshed: now the newest
    m.dropOldestWhile((at) => at < 50);
    expect(m.size).toBe(6);
    expect(m.has('k0')).toBe(true);
    expect(m.has('k4')).toBe(false);
    expect(m.has('k5')).toBe(true);
  });

  it('stays compact under churn: deletes, re-sets and evictions of 200k keys', () => {
    const m = new FifoMap<number, number>(1000);
    let maxSlots = 0;
    for (let i = 0; i < 200_000; i++) {
      m.set(i, i);
      if (i % 3 === 0) m.delete(i - 1);
      if (i % 7 === 0) m.set(i - 500, i);
      maxSlots = Math.max(maxSlots, m.slots);
    }
    expect(m.size).toBeLessThanOrEqual(1000);
    expect(maxSlots).toBeLessThanOrEqual(2 * 1000 + 1024 + 1);
    // Whatever is held is reachable and the newest keys survived.
    expect(m.has(199_999)).toBe(true);
    expect(m.get(199_999)).toBe(199_999);
  });
});
