// A short soak (minutes, not in CI): a listening bridge against a hostile Mastra upstream, with 100 idle
// `/api/events` clients, its RSS and heap sampled throughout.
//
//   npm run soak                   (SOAK_SECONDS=180 SOAK_CLIENTS=100 SOAK_TASK_RATE=20 by default)
//
// The upstream (test/support/hostile-upstream.ts) runs in a child process, so the samples are the bridge's alone. It
// streams tasks at SOAK_TASK_RATE a second (one in fifty completed in the year 2999) and cycles every 10 s through its
// lookup modes (ok, 64 MiB bodies, gzip bombs, a 10 GiB content-length, redirects to another origin, records for
// another id); every fourth phase the stream itself turns hostile for a few seconds (a text/html 200, a redirect, a
// server that hangs up at once), then recovers. Prints a sample table, the bridge's counters of what it refused, and,
// last, one JSON line. Exit code 1 when the bridge stopped answering /healthz or its RSS kept growing.

import { type ChildProcess, fork } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { request } from 'node:http';
import { realpathSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import { startBridge } from '../src/bridge.js';
import { HostileUpstream, type LookupMode, type StreamMode, frameFor, storedTask } from '../test/support/hostile-upstream.js';
import { parseExposition, total } from '../test/support/metrics-text.js';

type Command = { lookup?: LookupMode; stream?: StreamMode };

/** The child: a hostile upstream steered by the parent over IPC; it announces its URL, then streams tasks. */
async function upstreamChild(): Promise<void> {
  const up = await new HostileUpstream().start();
  const rate = Number(process.env.SOAK_TASK_RATE ?? 20);
  let n = 0;
  setInterval(() => {
    for (let i = 0; i < Math.max(1, Math.round(rate / 10)); i++) {
      const id = `soak-${n++}`;
      const completedAt = n % 50 === 0 ? '2999-01-01T00:00:00.000Z' : new Date().toISOString();
      const t = storedTask(id, 'completed', { startedAt: new Date(Date.now() - 200).toISOString(), completedAt, createdAt: new Date(Date.now() - 300).toISOString() });
      // Keep the store small: the last 500 tasks (what getTask in mode `ok` and the reconcile scans see).
      up.records.set(id, t);
      if (up.records.size > 500) up.records.delete(up.records.keys().next().value!);
      up.broadcast(frameFor('running', t) + frameFor('completed', t));
    }
  }, 100);
  process.on('message', (m: Command) => {
    if (m.lookup) up.lookupMode = m.lookup;
    if (m.stream && m.stream !== up.streamMode) {
      up.streamMode = m.stream;
      if (m.stream !== 'sse') up.endStreams();
    }
  });
  process.send!({ url: up.url });
  process.on('disconnect', () => void up.close().finally(() => process.exit(0)));
}

/** An `/api/events` client that connects and reads whatever comes; returns a closer. */
function idleClient(url: string, token: string): { close: () => void; bytes: () => number } {
  let bytes = 0;
  const req = request(`${url}/api/events`, { headers: { accept: 'text/event-stream', authorization: `Bearer ${token}` } }, (res) => {
    res.on('data', (c: Buffer) => (bytes += c.length));
    res.on('error', () => undefined);
  });
  req.on('error', () => undefined);
  req.end();
  return { close: () => req.destroy(), bytes: () => bytes };
}

async function main(): Promise<void> {
  const seconds = Number(process.env.SOAK_SECONDS ?? 180);
  const clients = Number(process.env.SOAK_CLIENTS ?? 100);
  const child: ChildProcess = fork(fileURLToPath(import.meta.url), ['--upstream'], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const upstreamUrl = await new Promise<string>((resolveUrl, reject) => {
    child.once('message', (m: { url: string }) => resolveUrl(m.url));
    child.once('exit', (code) => reject(new Error(`upstream child exited ${code}`)));
  });
  const token = randomBytes(24).toString('hex');
  const bridge = startBridge({
    logger: pino({ level: 'silent' }),
    config: {
      source: { mastraUrl: upstreamUrl, reconnect: { initialMs: 50, maxMs: 2_000 } },
      otel: { tracesExporter: 'none' },
      reconcile: { intervalSeconds: 5 },
      api: { tokens: [token] },
      events: { maxClients: clients + 10 },
    },
  });
  const address = await bridge.app.listen({ host: '127.0.0.1', port: 0 });
  const readers = Array.from({ length: clients }, () => idleClient(address, token));

  const lookups: LookupMode[] = ['ok', 'huge', 'gzip-bomb', 'huge-length', 'redirect', 'wrong-id'];
  const streams: StreamMode[] = ['html', 'redirect', 'hangup'];
  const samples: { t: number; rssMiB: number; heapMiB: number; healthzMs: number }[] = [];
  const started = Date.now();
  let phase = 0;
  let healthFailures = 0;
  const mib = (b: number) => Math.round((b / 1024 / 1024) * 10) / 10;

  while (Date.now() - started < seconds * 1000) {
    const lookup = lookups[phase % lookups.length]!;
    const hostileStream = phase % 4 === 3 ? streams[Math.floor(phase / 4) % streams.length]! : undefined;
    child.send({ lookup, stream: hostileStream ?? 'sse' } satisfies Command);
    for (let i = 0; i < 2; i++) {
      await new Promise((r) => setTimeout(r, hostileStream && i === 0 ? 3_000 : 5_000));
      if (hostileStream && i === 0) child.send({ stream: 'sse' } satisfies Command);
      const t0 = performance.now();
      const ok = await fetch(`${address}/healthz`).then((r) => r.ok, () => false);
      if (!ok) healthFailures++;
      const m = process.memoryUsage();
      samples.push({ t: Math.round((Date.now() - started) / 1000), rssMiB: mib(m.rss), heapMiB: mib(m.heapUsed), healthzMs: Math.round(performance.now() - t0) });
      const s = samples.at(-1)!;
      console.log(`${String(s.t).padStart(4)} s  rss ${String(s.rssMiB).padStart(6)} MiB  heap ${String(s.heapMiB).padStart(6)} MiB  /healthz ${s.healthzMs} ms  lookup=${lookup}${hostileStream ? ` stream=${hostileStream}` : ''}`);
    }
    phase++;
  }

  const text = await (await fetch(`${address}/metrics`, { headers: { accept: 'text/plain' } })).text();
  const s = parseExposition(text);
  const counts = {
    finished: total(s, 'mastra_background_task_finished_total'),
    enrichmentFailures: Object.fromEntries(['error', 'not_found', 'overloaded', 'too_large', 'redirect', 'wrong_id'].map((r) => [r, total(s, 'mastra_task_bridge_enrichment_failures_total', { reason: r })])),
    reconnects: Object.fromEntries(['eof', 'not_event_stream', 'redirect', 'error'].map((r) => [r, total(s, 'mastra_task_bridge_source_reconnects_total', { reason: r })])),
    futureTimestamps: total(s, 'mastra_task_bridge_future_timestamps_total'),
    sseClients: total(s, 'mastra_task_bridge_sse_clients'),
    sseDropped: total(s, 'mastra_task_bridge_sse_dropped_clients_total'),
  };
  for (const r of readers) r.close();
  await bridge.close();
  child.disconnect();

  // Growth: the last third's RSS against the first third's (after warm-up), both medians.
  const third = Math.max(1, Math.floor(samples.length / 3));
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const early = median(samples.slice(0, third).map((x) => x.rssMiB));
  const late = median(samples.slice(-third).map((x) => x.rssMiB));
  const summary = {
    seconds,
    clients,
    rssMiB: { min: Math.min(...samples.map((x) => x.rssMiB)), max: Math.max(...samples.map((x) => x.rssMiB)), earlyMedian: early, lateMedian: late },
    heapMiBMax: Math.max(...samples.map((x) => x.heapMiB)),
    healthzMsMax: Math.max(...samples.map((x) => x.healthzMs)),
    healthFailures,
    counts,
  };
  console.log(JSON.stringify(summary));
  if (healthFailures > 0 || late > early * 1.5 + 50) process.exitCode = 1;
}

const isMain = process.argv[1] !== undefined && realpathSync(resolve(process.argv[1])) === realpathSync(fileURLToPath(import.meta.url));
if (isMain) {
  (process.argv.includes('--upstream') ? upstreamChild() : main()).catch((error: unknown) => {
    console.error(error);
    process.exit(1);
  });
}
