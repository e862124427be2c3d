// The Mastra server of bench part (r): the demo app served over HTTP (startDemoServer: @mastra/hono, LibSQL storage in a
// temp file) with observability on as production apps run it: Mastra's traces stored (MastraStorageExporter, Mastra's
// default 5 s batch wait) and exported over OTLP (@mastra/otel-exporter) to the URL given. Its own process, so its CPU
// time is only Mastra's (and this driver's, the same in both arms): the bridge runs in the bench's process.
//
//   node --import tsx bench/remote-mastra.ts <otlp-base-url>
//
// Line protocol on stdin/stdout (one JSON object per answer, after RESULT_MARK):
//   url                    → { url }
//   burst <runs> <at once> → { tasks, ms }: agent runs (scripted model, one quick background tool call each), <at once>
//                            at a time; answers once every task is terminal (counted from one stream subscriber)
//   cpu                    → { cpuMs }: this process's user + system CPU so far (process.cpuUsage, all threads)
//   flush                  → {}: Mastra's span exporters flushed (the stored traces are written)
//   quit                   → shuts the app down and exits

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { DEMO_AGENT_IDS, DEMO_TOOL_NAMES } from '../demo/app.js';
import { toolInstruction } from '../demo/model.js';
import { startDemoServer } from '../demo/server.js';

export const RESULT_MARK = '@@RESULT ';
const TERMINAL = new Set(['background-task-completed', 'background-task-failed', 'background-task-cancelled']);

async function main(): Promise<void> {
  process.env['MASTRA_TELEMETRY_DISABLED'] = 'true';
  const otlp = process.argv[2];
  const dir = mkdtempSync(join(tmpdir(), 'bench-remote-'));
  const server = await startDemoServer({
    host: '127.0.0.1',
    port: 0,
    rate: 0,
    storageUrl: process.env['BENCH_STORAGE_URL'] || `file:${join(dir, 'mastra.db')}`,
    ...(otlp ? { otlpEndpoint: otlp } : {}),
    // Mastra's default batch wait (the demo's own default is 100 ms, for quick tests).
    storageBatchWaitMs: 5_000,
    concurrency: 50,
    logger: false,
  });
  const mastra = server.mastra;
  const manager = mastra.backgroundTaskManager!;
  let terminal = 0;
  const waiters: { n: number; done: () => void }[] = [];
  const reader = manager.stream({ includeExisting: false }).getReader();
  void (async () => {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      if (!TERMINAL.has(String((value as { type?: unknown }).type))) continue;
      terminal++;
      for (let i = waiters.length - 1; i >= 0; i--) {
        if (terminal >= waiters[i]!.n) waiters.splice(i, 1)[0]!.done();
      }
    }
  })().catch(() => undefined);

  const reply = (x: unknown): void => {
    process.stdout.write(`${RESULT_MARK}${JSON.stringify(x)}\n`);
  };
  let runNo = 0;
  const oneRun = async (): Promise<void> => {
    const i = runNo++;
    const agentId = DEMO_AGENT_IDS[i % DEMO_AGENT_IDS.length]!;
    const prompt = toolInstruction(DEMO_TOOL_NAMES.complete, { topic: `topic ${i}`, chunks: 1, stepMs: 5 });
    const output = await mastra.getAgentById(agentId).stream(prompt, { memory: { thread: `thread-${i % 50}`, resource: `user-${i % 7}` } });
    for await (const _chunk of output.fullStream as AsyncIterable<unknown>) void _chunk;
  };

  for await (const line of createInterface({ input: process.stdin })) {
    const [cmd, a, b] = line.trim().split(/\s+/);
    if (cmd === 'url') reply({ url: server.url });
    else if (cmd === 'cpu') {
      const u = process.cpuUsage();
      reply({ cpuMs: (u.user + u.system) / 1000 });
    } else if (cmd === 'flush') {
      await mastra.observability.flush().catch(() => undefined);
      reply({});
    } else if (cmd === 'burst') {
      const runs = Number(a);
      const atOnce = Number(b);
      const target = terminal + runs;
      const allTerminal = new Promise<void>((done) => waiters.push({ n: target, done }));
      const t0 = performance.now();
      let next = 0;
      await Promise.all(
        Array.from({ length: atOnce }, async () => {
          while (next < runs) {
            next++;
            await oneRun();
          }
        }),
      );
      await allTerminal;
      reply({ tasks: runs, ms: performance.now() - t0 });
    } else if (cmd === 'quit') break;
  }
  await reader.cancel().catch(() => undefined);
  await server.close();
  rmSync(dir, { recursive: true, force: true });
  process.exit(0);
}

void main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
