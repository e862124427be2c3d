// What each kind of request the bridge can make costs the Mastra server: the demo server (bench/remote-mastra.ts,
// observability on) runs a burst of agent runs, then this driver sends each request kind N times, one at a time, and
// reads the server's own CPU time before and after. Idle CPU over the same wall time is subtracted.
//   node --import tsx bench/request-costs.ts [runs=200]
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = dirname(fileURLToPath(import.meta.url));
const RUNS = Number(process.argv.find((a) => /^\d+$/.test(a)) ?? 200);
const MARK = '@@RESULT ';

async function main(): Promise<void> {
  const env = { ...process.env };
  let pg: { stop(): void } | undefined;
  if (process.argv.includes('--pg')) {
    const { startPostgres } = await import('../test/support/postgres.js');
    const cluster = await startPostgres();
    pg = cluster;
    env['BENCH_STORAGE_URL'] = cluster.createDatabase('costs');
  }
  const child = spawn(process.execPath, ['--import', 'tsx', resolve(HERE, 'remote-mastra.ts')], { stdio: ['pipe', 'pipe', 'inherit'], env });
  child.on('exit', () => pg?.stop());
  const answers: ((x: unknown) => void)[] = [];
  createInterface({ input: child.stdout! }).on('line', (l) => { if (l.startsWith(MARK)) answers.shift()?.(JSON.parse(l.slice(MARK.length))); });
  const ask = <T>(cmd: string): Promise<T> => new Promise<T>((r) => { answers.push(r as (x: unknown) => void); child.stdin!.write(`${cmd}\n`); });
  const { url } = await ask<{ url: string }>('url');
  await ask('burst 20 6');
  await ask(`burst ${RUNS} 6`);
  await ask('flush');
  const get = async (path: string): Promise<any> => {
    const r = await fetch(`${url}/api${path}`);
    const body = await r.text();
    if (!r.ok) throw new Error(`${path}: ${r.status} ${body.slice(0, 300)}`);
    return JSON.parse(body);
  };
  const list = await get(`/background-tasks?perPage=100&orderBy=createdAt&orderDirection=desc`);
  const tasks = list.tasks as { id: string; runId: string; toolCallId: string; completedAt: string }[];
  const traces = await get(`/observability/traces?perPage=100`);
  const traceIds = (traces.spans as { traceId: string }[]).map((s) => s.traceId);
  console.log(`tasks ${tasks.length}, traces ${traceIds.length}`);
  const cpu = async (): Promise<number> => (await ask<{ cpuMs: number }>('cpu')).cpuMs;
  const N = Math.min(100, tasks.length);
  const measure = async (name: string, mk: (i: number) => string, n = N): Promise<void> => {
    await get(mk(0));
    const c0 = await cpu();
    const t0 = performance.now();
    let bytes = 0;
    for (let i = 0; i < n; i++) bytes += JSON.stringify(await get(mk(i))).length;
    const wall = performance.now() - t0;
    const c1 = await cpu();
    console.log(`${name.padEnd(44)} ${((c1 - c0) / n).toFixed(2).padStart(7)} ms CPU/request  ${(wall / n).toFixed(2).padStart(7)} ms wall  ${Math.round(bytes / n)} B`);
  };
  const sp = (o: Record<string, string>) => new URLSearchParams(o).toString();
  await measure('idle (cpu probe only)', () => '/background-tasks?perPage=1', 1);
  for (let round = 0; round < 2; round++) {
    await measure('getTask', (i) => `/background-tasks/${tasks[i]!.id}`);
    await measure('listTasks runId', (i) => `/background-tasks?${sp({ runId: tasks[i]!.runId })}`);
    await measure('listTasks window of 10 (completedAt)', (i) => {
      const w = tasks.slice(i, i + 10);
      const ts = w.map((t) => Date.parse(t.completedAt));
      return `/background-tasks?${sp({ dateFilterBy: 'completedAt', fromDate: new Date(Math.min(...ts)).toISOString(), toDate: new Date(Math.max(...ts)).toISOString(), perPage: '100' })}`;
    }, 20);
    await measure('traces?runId', (i) => `/observability/traces?${sp({ runId: tasks[i]!.runId, page: '0', perPage: '20' })}`);
    await measure('traces/:id', (i) => `/observability/traces/${traceIds[i]}`);
    await measure('traces/:id/light', (i) => `/observability/traces/${traceIds[i]}/light`);
    if (process.argv.includes('--pg')) {
      await measure('branches runId+tool_call', (i) => `/observability/branches?${sp({ runId: tasks[i]!.runId, spanType: 'tool_call' })}`);
      await measure('branches window of 10 tool_call', (i) => {
        const w = tasks.slice(i, i + 10);
        const ts = w.map((t) => Date.parse(t.completedAt));
        return `/observability/branches?${sp({ spanType: 'tool_call', startedAt: JSON.stringify({ start: new Date(Math.min(...ts) - 1000).toISOString(), end: new Date(Math.max(...ts)).toISOString() }), perPage: '100' })}`;
      }, 20);
    }
    await measure('traces/light window of 10 roots', (i) => {
      const w = tasks.slice(i, i + 10);
      const ts = w.map((t) => Date.parse(t.completedAt));
      return `/observability/traces/light?${sp({ startedAt: JSON.stringify({ start: new Date(Math.min(...ts) - 1000).toISOString(), end: new Date(Math.max(...ts)).toISOString() }), perPage: '100' })}`;
    }, 20);
    await measure('traces window of 10 roots (startedAt)', (i) => {
      const w = tasks.slice(i, i + 10);
      const ts = w.map((t) => Date.parse(t.completedAt));
      return `/observability/traces?${sp({ startedAt: JSON.stringify({ start: new Date(Math.min(...ts) - 1000).toISOString(), end: new Date(Math.max(...ts)).toISOString() }), perPage: '100' })}`;
    }, 20);
  }
  // The stream: bursts with and without one raw SSE reader (reads and discards), alternated.
  const burstCpu = async (sse: boolean): Promise<number> => {
    const ac = new AbortController();
    let bytes = 0;
    if (sse) {
      const r = await fetch(`${url}/api/background-tasks/stream`, { signal: ac.signal });
      void (async () => { for await (const c of r.body as any) bytes += c.length; })().catch(() => undefined);
    }
    const c0 = await cpu();
    await ask(`burst ${RUNS} 6`);
    await ask('flush');
    const c1 = await cpu();
    ac.abort();
    return (c1 - c0) / RUNS;
  };
  for (const sse of [false, true, true, false, false, true]) console.log(`burst ${sse ? 'with SSE reader   ' : 'without SSE reader'} ${(await burstCpu(sse)).toFixed(2)} ms CPU/task`);
  child.stdin!.end('quit\n');
}
void main();
