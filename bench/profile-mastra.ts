// Where the in-process bridge's cost lands in a Mastra app: runs the bench's (c) workload (1000 quick background tasks
// on the demo Mastra, dispatched at once) under the V8 CPU profiler, without and with startBridge({ mastra }), and
// prints self time by module for both arms and the difference (the bridge's share, including what it makes Mastra
// and the runtime do).
//   node --expose-gc --import tsx bench/profile-mastra.ts [tasks=1000]
// Writes bench/.profile/mastra-{without,with}.cpuprofile.

import { mkdirSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { dirname, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import { startBridge } from '../src/bridge.js';
import { createDemoMastra, shutdownDemoMastra } from '../demo/app.js';
import { dispatchQuickTask } from '../demo/workload.js';
import { SerialisingExporter, benchTracing, fmt } from './support.js';

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}
interface Profile {
  nodes: Node[];
  samples?: number[];
  timeDeltas?: number[];
}

process.env['MASTRA_TELEMETRY_DISABLED'] = 'true';
const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(HERE, '..');
const TASKS = Number(process.argv[2] ?? 1000);
const TERMINAL = new Set(['background-task-completed', 'background-task-failed', 'background-task-cancelled']);
const gc = (globalThis as { gc?: () => void }).gc;

const short = (url: string): string => {
  if (!url) return '(native/vm)';
  const p = url.startsWith('file://') ? fileURLToPath(url) : url;
  const rel = relative(ROOT, p);
  const m = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(rel);
  if (m) return m[1] as string;
  return rel.startsWith('..') ? p : rel;
};

async function run(arm: 'without' | 'with', profileIt: boolean): Promise<{ byModule: Map<string, number>; byFn: Map<string, number>; cpuMs: number }> {
  gc?.();
  const mastra = createDemoMastra({ backgroundTasks: { globalConcurrency: 50, perAgentConcurrency: 50 } });
  const manager = mastra.backgroundTaskManager!;
  const abort = new AbortController();
  let terminal = 0;
  let allDone!: () => void;
  const done = new Promise<void>((r) => (allDone = r));
  const reader = manager.stream({ abortSignal: abort.signal, includeExisting: false }).getReader();
  const counting = (async () => {
    for (;;) {
      const { value, done: end } = await reader.read();
      if (end) return;
      if (TERMINAL.has(String((value as { type?: unknown }).type)) && ++terminal >= TASKS) allDone();
    }
  })().catch(() => undefined);
  const handle =
    arm === 'with'
      ? startBridge({ mastra, config: { log: { level: 'silent' } }, tracing: benchTracing(new SerialisingExporter()), logger: pino({ level: 'silent' }) })
      : undefined;
  await handle?.whenReady(10_000);
  await new Promise((r) => setTimeout(r, 50));

  const session = new Session();
  if (profileIt) {
    session.connect();
    await session.post('Profiler.enable');
    await session.post('Profiler.setSamplingInterval', { interval: 100 });
    await session.post('Profiler.start');
  }
  const c0 = process.cpuUsage();
  await Promise.all(
    Array.from({ length: TASKS }, (_, i) =>
      dispatchQuickTask(mastra, { durationMs: 5, outcome: i % 10 === 9 ? 'fail' : 'complete', agentId: ['bench-agent-a', 'bench-agent-b', 'bench-agent-c'][i % 3]!, threadId: `thread-${i % 50}`, resourceId: `user-${i % 7}` }),
    ),
  );
  await done;
  await handle?.idle();
  await handle?.tracing.forceFlush();
  const c = process.cpuUsage(c0);
  const byModule = new Map<string, number>();
  const byFn = new Map<string, number>();
  if (profileIt) {
    const { profile } = (await session.post('Profiler.stop')) as unknown as { profile: Profile };
    session.disconnect();
    mkdirSync(resolve(HERE, '.profile'), { recursive: true });
    writeFileSync(resolve(HERE, `.profile/mastra-${arm}.cpuprofile`), JSON.stringify(profile));
    const self = new Map<number, number>();
    const samples = profile.samples ?? [];
    const deltas = profile.timeDeltas ?? [];
    for (let i = 0; i < samples.length; i++) self.set(samples[i]!, (self.get(samples[i]!) ?? 0) + (deltas[i] ?? 0));
    for (const n of profile.nodes) {
      const t = self.get(n.id) ?? 0;
      if (t === 0) continue;
      const mod = short(n.callFrame.url);
      const fn = `${n.callFrame.functionName || '(anonymous)'} ${mod}${n.callFrame.url && !mod.includes('node_modules') ? `:${n.callFrame.lineNumber + 1}` : ''}`;
      byModule.set(mod, (byModule.get(mod) ?? 0) + t / 1000);
      byFn.set(fn, (byFn.get(fn) ?? 0) + t / 1000);
    }
  }
  await handle?.close();
  abort.abort();
  await counting;
  await shutdownDemoMastra(mastra, { drainTimeoutMs: 2_000 });
  return { byModule, byFn, cpuMs: (c.user + c.system) / 1000 };
}

await run('without', false); // warm-up
await run('with', false);
const without = await run('without', true);
const withBridge = await run('with', true);
console.log(`${TASKS} tasks: CPU without ${fmt(without.cpuMs)} ms, with ${fmt(withBridge.cpuMs)} ms (profiler on): +${fmt(((withBridge.cpuMs - without.cpuMs) * 1000) / TASKS)} µs per task`);
const diff = (a: Map<string, number>, b: Map<string, number>, n: number, title: string): void => {
  const keys = new Set([...a.keys(), ...b.keys()]);
  const rows = [...keys].map((k) => [k, (b.get(k) ?? 0) - (a.get(k) ?? 0), a.get(k) ?? 0, b.get(k) ?? 0] as const).sort((x, y) => y[1] - x[1]);
  console.log(`\n${title} (ms: with − without, without, with)`);
  for (const [k, d, x, y] of rows.slice(0, n)) console.log(`  ${fmt(d).padStart(7)}  ${fmt(x).padStart(7)}  ${fmt(y).padStart(7)}  ${k}`);
};
diff(without.byModule, withBridge.byModule, 20, 'Self time by module');
diff(without.byFn, withBridge.byFn, 40, 'Self time by function');
