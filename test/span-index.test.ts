// SpanIndex: bounded to the most recent `maxEntries` finished tasks, oldest evicted first; a task finished again counts
// as recent (its older place in the age order is skipped).
import { describe, expect, it } from 'vitest';
import { SpanIndex } from '../src/span-index.js';
import type { FinishedTask } from '../src/tracker.js';

const span = (n: number) => ({ traceId: n.toString(16).padStart(32, '0'), spanId: n.toString(16).padStart(16, '0'), sampled: true });
const done = (id: string) => ({ taskId: id }) as FinishedTask;

describe('SpanIndex', () => {
  it('keeps the most recent maxEntries finished tasks and evicts the oldest', () => {
    const index = new SpanIndex({ maxEntries: 3, mode: 'none', isOpen: () => false });
    for (let i = 1; i <= 5; i++) index.finished(done(`t${i}`), span(i));
    expect(index.lookup({ id: 't1', runId: 'r' })).toBeUndefined();
    expect(index.lookup({ id: 't2', runId: 'r' })).toBeUndefined();
    expect(index.lookup({ id: 't3', runId: 'r' })).toEqual({ traceId: span(3).traceId, spanId: span(3).spanId });
    expect(index.lookup({ id: 't5', runId: 'r' })).toEqual({ traceId: span(5).traceId, spanId: span(5).spanId });
  });

  it('a task finished again is recent again and keeps its latest ids', () => {
    const index = new SpanIndex({ maxEntries: 3, mode: 'none', isOpen: () => false });
    index.finished(done('a'), span(1));
    index.finished(done('b'), span(2));
    index.finished(done('a'), span(3));
    index.finished(done('a'), span(4));
    index.finished(done('c'), span(5));
    index.finished(done('d'), span(6)); // evicts b, the oldest
    expect(index.lookup({ id: 'b', runId: 'r' })).toBeUndefined();
    expect(index.lookup({ id: 'a', runId: 'r' })?.spanId).toBe(span(4).spanId);
    index.finished(done('e'), span(7)); // evicts a (finished after b, before c)
    expect(index.lookup({ id: 'a', runId: 'r' })).toBeUndefined();
    expect(index.lookup({ id: 'c', runId: 'r' })?.spanId).toBe(span(5).spanId);
    expect(index.lookup({ id: 'd', runId: 'r' })?.spanId).toBe(span(6).spanId);
  });

  it('stays bounded over many more tasks than maxEntries', () => {
    const index = new SpanIndex({ maxEntries: 100, mode: 'none', isOpen: () => false });
    for (let i = 0; i < 5000; i++) index.finished(done(`t${i}`), span(i));
    expect(index.lookup({ id: 't4899', runId: 'r' })).toBeUndefined();
    expect(index.lookup({ id: 't4900', runId: 'r' })?.spanId).toBe(span(4900).spanId);
    expect(index.lookup({ id: 't4999', runId: 'r' })?.spanId).toBe(span(4999).spanId);
  });
});
