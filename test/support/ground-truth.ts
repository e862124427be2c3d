// Ground truth for end-to-end tests: what Mastra itself has stored (read straight from its REST API, never through the
// bridge), and helpers comparing it with what the bridge exported and counted.
import type { Sample } from './metrics-text.js';
import type { ReceivedSpan } from './otlp-receiver.js';
import { waitFor } from './poll.js';

export interface StoredTask {
  id: string;
  status: 'pending' | 'running' | 'suspended' | 'completed' | 'failed' | 'timed_out' | 'cancelled';
  toolName: string;
  toolCallId: string;
  agentId: string;
  runId: string;
  threadId?: string;
  resourceId?: string;
  createdAt: string;
  startedAt?: string;
  completedAt?: string;
  error?: { message?: string; stack?: string };
}

export const TERMINAL = new Set(['completed', 'failed', 'timed_out', 'cancelled']);

/** Every stored task, paged through `GET {api}/background-tasks`. */
export async function listAllTasks(baseUrl: string, token?: string): Promise<StoredTask[]> {
  const out: StoredTask[] = [];
  const headers: Record<string, string> = token ? { authorization: `Bearer ${token}` } : {};
  for (let page = 0; page < 100; page++) {
    const res = await fetch(`${baseUrl}/api/background-tasks?page=${page}&perPage=100&orderBy=createdAt&orderDirection=asc`, { headers });
    if (res.status !== 200) throw new Error(`listTasks answered ${res.status}: ${await res.text()}`);
    const body = (await res.json()) as { tasks: StoredTask[]; total: number };
    out.push(...body.tasks);
    if (body.tasks.length < 100 || out.length >= body.total) break;
  }
  return out;
}

/** Waits until Mastra has stored exactly `count` tasks, every one of them terminal, and resolves with them. */
export async function allTasksDone(baseUrl: string, count: number): Promise<StoredTask[]> {
  return waitFor(
    async () => {
      const all = await listAllTasks(baseUrl);
      return all.length === count && all.every((t) => TERMINAL.has(t.status)) ? all : undefined;
    },
    { timeoutMs: 60_000, intervalMs: 250, message: `${count} stored tasks, every one done` },
  );
}

/** Counts of stored tasks by status. */
export function countByStatus(tasks: StoredTask[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const t of tasks) out[t.status] = (out[t.status] ?? 0) + 1;
  return out;
}

/** `mastra_background_task_finished_total` by status, from a scrape. */
export function finishedByStatus(samples: Sample[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const s of samples) {
    if (s.name !== 'mastra_background_task_finished_total' || s.value === 0) continue;
    const status = s.labels.status!;
    out[status] = (out[status] ?? 0) + s.value;
  }
  return out;
}

/** Only the terminal entries of countByStatus. */
export function terminalCounts(tasks: StoredTask[]): Record<string, number> {
  return Object.fromEntries(Object.entries(countByStatus(tasks)).filter(([s]) => TERMINAL.has(s)));
}

/** Task spans grouped by `mastra.background_task.id`. */
export function spansByTask(spans: ReceivedSpan[]): Map<string, ReceivedSpan[]> {
  const out = new Map<string, ReceivedSpan[]>();
  for (const s of spans) {
    const id = s.attributes['mastra.background_task.id'];
    if (typeof id !== 'string') continue;
    out.set(id, [...(out.get(id) ?? []), s]);
  }
  return out;
}

export const ms = (iso: string | undefined): number => (iso === undefined ? Number.NaN : new Date(iso).getTime());
export const ns = (millis: number): bigint => BigInt(millis) * 1_000_000n;
