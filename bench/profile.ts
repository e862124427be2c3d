// Where the pipeline's time goes: runs the (a) pipeline (startBridge + BenchSource, enrichment off, placement run,
// serialising exporter) under the V8 CPU profiler and prints the top functions by self time, and by module.
//   npx tsx bench/profile.ts [events=200000]
// Writes bench/.profile/pipeline.cpuprofile (open in Chrome DevTools → Performance → Load profile).

import { mkdirSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { dirname, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import { startBridge } from '../src/bridge.js';
import { BenchSource, SerialisingExporter, benchTracing, fmt, generateChunks } from './support.js';

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
  hitCount?: number;
  children?: number[];
}
interface Profile {
  nodes: Node[];
  startTime: number;
  endTime: number;
  samples?: number[];
  timeDeltas?: number[];
}

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(HERE, '..');
const events = Number(process.argv[2] ?? 200_000);

const exporter = new SerialisingExporter();
const tracing = benchTracing(exporter);
const source = new BenchSource();
const handle = startBridge({
  source,
  config: { log: { level: 'silent' }, enrichment: { enabled: false }, traces: { parent: 'run' } },
  tracing,
  logger: pino({ level: 'silent' }),
});
await handle.whenReady(5_000);
const warm = generateChunks(10_000, 1);
await source.push(warm.frames, 1024);
await handle.idle();
await tracing.forceFlush();
const g = generateChunks(Math.ceil(events / 4), 2);

const session = new Session();
session.connect();
await session.post('Profiler.enable');
await session.post('Profiler.setSamplingInterval', { interval: 100 });
await session.post('Profiler.start');
const t0 = performance.now();
const cpu0 = process.cpuUsage();
await source.push(g.frames, 1024);
await handle.idle();
await tracing.forceFlush();
const ms = performance.now() - t0;
const cpu = process.cpuUsage(cpu0);
const { profile } = (await session.post('Profiler.stop')) as unknown as { profile: Profile };
session.disconnect();
await handle.close();

console.log(`${fmt(g.chunks.length)} events in ${fmt(ms)} ms wall = ${fmt(g.chunks.length / (ms / 1000))} events/s; CPU ${fmt((cpu.user + cpu.system) / 1000)} ms`);

mkdirSync(resolve(HERE, '.profile'), { recursive: true });
writeFileSync(resolve(HERE, '.profile/pipeline.cpuprofile'), JSON.stringify(profile));

// Self time per node from samples × deltas.
const self = new Map<number, number>();
const samples = profile.samples ?? [];
const deltas = profile.timeDeltas ?? [];
for (let i = 0; i < samples.length; i++) self.set(samples[i] as number, (self.get(samples[i] as number) ?? 0) + ((deltas[i] ?? 0) as number));
const total = [...self.values()].reduce((a, b) => a + b, 0);
const byFn = new Map<string, number>();
const byModule = new Map<string, number>();
const short = (url: string): string => {
  if (!url) return '(native/vm)';
  const p = url.startsWith('file://') ? fileURLToPath(url) : url;
  const rel = relative(ROOT, p);
  const m = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(rel);
  if (m) return m[1] as string;
  return rel.startsWith('..') ? p : rel;
};
for (const n of profile.nodes) {
  const t = self.get(n.id) ?? 0;
  if (t === 0) continue;
  // The profiler's own Profiler.stop (a native `dispatch` under inspector's post()) lands in the last samples.
  if (n.callFrame.functionName === 'dispatch' && n.callFrame.url === '') continue;
  const mod = short(n.callFrame.url);
  // tsx compiles each module to one line: the column tells functions of the same name apart.
  const fn = `${n.callFrame.functionName || '(anonymous)'} ${mod}${n.callFrame.url && !mod.includes('node_modules') ? `:${n.callFrame.lineNumber + 1}:${n.callFrame.columnNumber + 1}` : ''}`;
  byFn.set(fn, (byFn.get(fn) ?? 0) + t);
  byModule.set(mod, (byModule.get(mod) ?? 0) + t);
}
const show = (title: string, m: Map<string, number>, n: number): void => {
  console.log(`\n${title}`);
  for (const [k, v] of [...m.entries()].sort((a, b) => b[1] - a[1]).slice(0, n)) {
    console.log(`  ${fmt((100 * v) / total, 1).padStart(5)}%  ${fmt(v / 1000).padStart(6)} ms  ${k}`);
  }
};
show('Self time by module', byModule, 15);
show('Self time by function', byFn, 40);
