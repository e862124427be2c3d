import { describe, expect, it } from 'vitest';
import { InProcessSource } from '../src/sources/in-process.js';

const record = (id: string, from: string) => ({
  id,
  status: 'running',
  toolName: 't',
  toolCallId: `call-${id}`,
  agentId: 'a',
  runId: 'r',
  threadId: from,
  createdAt: new Date(0),
  retryCount: 0,
  maxRetries: 0,
});

const turn = () => new Promise((r) => setImmediate(r));

function fake(withStorage: boolean) {
  const calls = { manager: 0, store: 0 };
  const store = { getTask: async (id: string) => (calls.store++, record(id, 'store')) };
  let storage: unknown = { getStore: async (name: string) => (name === 'backgroundTasks' ? store : undefined) };
  const mastra = {
    backgroundTaskManager: {
      stream: () => new ReadableStream(),
      getTask: async (id: string) => (calls.manager++, record(id, 'manager')),
      listTasks: async () => ({ tasks: [], total: 0 }),
    },
    ...(withStorage ? { getStorage: () => storage } : {}),
  };
  return { mastra, calls, swap: (s: unknown) => (storage = s) };
}

describe('InProcessSource.getTask', () => {
  it('reads the background-tasks store directly once resolved, the manager until then', async () => {
    const f = fake(true);
    const source = new InProcessSource(f.mastra);
    expect((await source.getTask('x'))?.threadId).toBe('manager');
    await turn();
    expect((await source.getTask('y'))?.threadId).toBe('store');
    expect(f.calls).toEqual({ manager: 1, store: 1 });
  });

  it('falls back to the manager without getStorage, without the domain, and re-resolves a swapped storage', async () => {
    const plain = fake(false);
    const a = new InProcessSource(plain.mastra);
    await a.getTask('x');
    await turn();
    await a.getTask('y');
    expect(plain.calls).toEqual({ manager: 2, store: 0 });

    const f = fake(true);
    const b = new InProcessSource(f.mastra);
    await b.getTask('x');
    await turn();
    await b.getTask('y');
    f.swap({ getStore: async () => undefined });
    await b.getTask('z');
    await turn();
    await b.getTask('w');
    expect(f.calls).toEqual({ manager: 3, store: 1 });
  });
});
