// LogThrottle (src/log-throttle.ts): the first few, then one in `every`, and the count for the log line.
import { describe, expect, it } from 'vitest';
import { LogThrottle } from '../src/log-throttle.js';

describe('LogThrottle', () => {
  it('logs the first few occurrences, then one in every', () => {
    const t = new LogThrottle(3, 10);
    const logged = Array.from({ length: 35 }, (_, i) => (t.take() ? i + 1 : 0)).filter(Boolean);
    expect(logged).toEqual([1, 2, 3, 10, 20, 30]);
    expect(t.count).toBe(35);
  });

  it('with first 1: the first occurrence, then every nth', () => {
    const t = new LogThrottle(1, 20);
    const logged = Array.from({ length: 41 }, (_, i) => (t.take() ? i + 1 : 0)).filter(Boolean);
    expect(logged).toEqual([1, 20, 40]);
  });
});
