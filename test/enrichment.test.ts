// The Enricher alone, over a source whose getTask answers when the test says: one lookup per task in flight at a time.
import { describe, expect, it } from 'vitest';
import { DEFAULT_ENRICHMENT, Enricher } from '../src/enrichment.js';
import type { TaskRecord } from '../src/events.js';
import { heapAfterGc } from './support/heap.js';

function deferredSource() {
  const calls: { id: string; resolve: (r: TaskRecord | null) => void }[] = [];
  return {
    calls,
    getTask: (id: string) => new Promise<TaskRecord | null>((resolve) => calls.push({ id, resolve })),
  };
}

const record = (status: TaskRecord['status']): TaskRecord => ({
  id: 't',
  status,
  toolName: 'tool',
  toolCallId: 'call',
  agentId: 'agent',
  runId: 'run',
  createdAt: 1,
});
const settle = () => new Promise((r) => setImmediate(r));

describe('Enricher', () => {
  it('a re-lookup started by a finished task stays the one lookup in flight (no duplicate getTask)', async () => {
    const source = deferredSource();
    const enricher = new Enricher(source, DEFAULT_ENRICHMENT, () => undefined);
    const first = enricher.lookup('t');
    const finished = enricher.forFinished('t', (r) => r.status === 'running'); // the first answer will be stale
    source.calls[0]!.resolve(record('running'));
    expect(await first).toMatchObject({ status: 'running' });
    await settle();
    expect(source.calls).toHaveLength(2); // the final lookup
    // Asked again while that final lookup runs: it joins it rather than sending a third request.
    const again = enricher.lookup('t');
    expect(source.calls).toHaveLength(2);
    source.calls[1]!.resolve(record('completed'));
    expect(await finished).toMatchObject({ status: 'completed' });
    expect(await again).toMatchObject({ status: 'completed' });
    expect(source.calls).toHaveLength(2);
  });

  it('bounds concurrency and reports a full queue as overloaded', async () => {
    const source = deferredSource();
    const failures: string[] = [];
    const enricher = new Enricher(source, { ...DEFAULT_ENRICHMENT, concurrency: 2, maxQueue: 1 }, (reason) => void failures.push(reason));
    const lookups = ['a', 'b', 'c', 'd'].map((id) => enricher.lookup(id));
    expect(source.calls.map((c) => c.id)).toEqual(['a', 'b']); // c waits in the queue, d finds it full
    expect(failures).toEqual(['overloaded']);
    expect(await lookups[3]).toBeUndefined();
    source.calls[0]!.resolve(null);
    await settle();
    expect(source.calls.map((c) => c.id)).toEqual(['a', 'b', 'c']);
    expect(failures).toEqual(['overloaded', 'not_found']);
  });
});

describe('Enricher memory', () => {
  it('keeps no payloads: 300 lookups of records with 1 MiB args leave the heap bounded', async () => {
    // Mirrors the hostile case of issue 10: every getTask answer carries 1 MiB of fresh args (and a result).
    const big = (i: number): string => `${i}:`.padEnd(1024 * 1024, 'x');
    const source = {
      getTask: async (id: string): Promise<TaskRecord> => ({
        ...record('running'),
        id,
        threadId: `thread-${id}`,
        args: { blob: big(Number(id.slice(1))) },
        result: { blob: big(-1) },
        suspendPayload: { blob: big(-2) },
      }),
    };
    const enricher = new Enricher(source, DEFAULT_ENRICHMENT, () => undefined);
    const before = heapAfterGc();
    const answers = [];
    for (let i = 0; i < 300; i++) answers.push(await enricher.lookup(`t${i}`));
    const after = heapAfterGc();
    // Every record is cached (a task that ends later reuses it) and each answer is still referenced here.
    expect(answers.every((a) => a?.threadId?.startsWith('thread-t') && a.args === undefined && a.result === undefined)).toBe(true);
    await settle();
    expect(enricher.finishedNow('t299', () => false)).toMatchObject({ id: 't299', threadId: 'thread-t299' });
    // 300 records with payloads would be > 900 MB; without them a few hundred KB. Loose bound, GC measured.
    expect(after - before).toBeLessThan(20 * 1024 * 1024);
  });
});
