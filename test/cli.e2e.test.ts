// The real CLI process in demo mode: it starts the embedded demo Mastra, serves, and on SIGTERM stops the source,
// flushes ended spans (the batch delay is set far beyond the test, so spans can only arrive through the shutdown
// flush), closes HTTP and exits 0.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { afterAll, describe, expect, it } from 'vitest';
import { startOtlpReceiver } from './support/otlp-receiver.js';
import { freePort, waitFor } from './support/poll.js';


describe('CLI in demo mode', () => {
  let child: ChildProcess | undefined;
  afterAll(() => {
    if (child && child.exitCode === null) child.kill('SIGKILL');
  });

  it('serves the demo workload and shuts down cleanly on SIGTERM, flushing spans', async () => {
    const receiver = await startOtlpReceiver();
    const port = await freePort();
    let log = '';
    child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
      env: {
        PATH: process.env.PATH,
        HOME: process.env.HOME,
        BRIDGE_HOST: '127.0.0.1',
        BRIDGE_PORT: String(port),
        BRIDGE_DEMO_RATE: '10',
        OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
        OTEL_BSP_SCHEDULE_DELAY: '600000',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout!.on('data', (d) => (log += String(d)));
    child.stderr!.on('data', (d) => (log += String(d)));
    const exited = new Promise<number | null>((resolve) => child!.on('exit', (code) => resolve(code)));

    const base = `http://127.0.0.1:${port}`;
    await waitFor(async () => (await fetch(`${base}/readyz`).catch(() => undefined))?.status === 200, { timeoutMs: 60_000, message: `ready; log so far:\n${log}` });
    expect(await (await fetch(`${base}/`)).text()).toContain('Demo mode');
    expect(log).toContain('DEMO MODE');
    const finished = await waitFor(
      async () => {
        const text = await (await fetch(`${base}/metrics`)).text();
        const n = [...text.matchAll(/^mastra_background_task_finished_total\{[^}]*\} (\d+)/gm)].reduce((a, m) => a + Number(m[1]), 0);
        return n >= 5 ? n : undefined;
      },
      { timeoutMs: 30_000, message: 'demo tasks finished' },
    );
    expect(finished).toBeGreaterThanOrEqual(5);
    expect(receiver.spans()).toHaveLength(0); // nothing exported yet: the batch delay is 10 minutes

    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(log).toContain('shutting down');
    expect(log).toContain('"msg":"stopped"');
    expect(receiver.spans().length).toBeGreaterThanOrEqual(finished);
    await receiver.close();
  }, 150_000);

  it('without MASTRA_URL and without the demo packages (a production install), exits 1 with a clear message', () => {
    const r = spawnSync(process.execPath, ['--import', './test/support/without-demo-deps.mjs', '--import', 'tsx', 'src/main.ts'], {
      encoding: 'utf8',
      env: { PATH: process.env.PATH, HOME: process.env.HOME, BRIDGE_HOST: '127.0.0.1', BRIDGE_PORT: '0' },
      timeout: 60_000,
    });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('no MASTRA_URL set, and the embedded demo cannot load');
    expect(r.stderr).toContain('Set MASTRA_URL');
    expect(r.stderr).not.toMatch(/^\s+at /m); // a message, not a stack trace
  }, 90_000);
});
