// Restarts on either side, with real processes killed by SIGKILL:
// - the Mastra server dies mid-workload and comes back on the same LibSQL file: Mastra's restart recovery marks the
//   tasks that were running `failed` in storage without any event; the bridge reconnects by itself and resolves them
//   through reconciliation;
// - the bridge dies while tasks finish and restarts with its checkpoint: it backfills what finished while it was down
//   and never re-exports what it had exported.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type BridgeHandle, startBridge } from '../src/bridge.js';
import { type DemoProcess, dispatchTask, startDemoProcess } from './support/demo-process.js';

type Tool = Parameters<typeof dispatchTask>[1];
import { type StoredTask, TERMINAL, allTasksDone, finishedByStatus, listAllTasks, ms, spansByTask, terminalCounts } from './support/ground-truth.js';
import { scrape, total } from './support/metrics-text.js';
import { type OtlpReceiver, startOtlpReceiver } from './support/otlp-receiver.js';
import { freePort, waitFor } from './support/poll.js';
import { type BridgeCli, bridgeCli } from './support/bridge-cli.js';

const silent = pino({ level: 'silent' });
const sorted = (o: Record<string, number>) => Object.fromEntries(Object.entries(o).sort(([a], [b]) => a.localeCompare(b)));

describe('the Mastra server is SIGKILLed mid-workload and restarted on the same storage', () => {
  let dir: string;
  let demo: DemoProcess;
  let receiver: OtlpReceiver;
  let bridge: BridgeHandle;
  let killedAt: number;
  let longTaskIds: string[];
  let tasks: StoredTask[];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'bridge-mastra-kill-'));
    receiver = await startOtlpReceiver();
    const port = await freePort();
    const storageUrl = `file:${join(dir, 'mastra.db')}`;
    bridge = startBridge({
      logger: silent,
      config: {
        source: { mastraUrl: `http://127.0.0.1:${port}`, reconnect: { initialMs: 50, maxMs: 500 } },
        otel: { tracesEndpoint: receiver.tracesUrl, batch: { scheduledDelayMs: 50 } },
        metrics: { defaultMetrics: false },
        reconcile: { intervalSeconds: 1, overlapSeconds: 5 },
      },
    });
    demo = await startDemoProcess({
      port,
      storageUrl,
      env: { DEMO_LONG_TASKS: '2', DEMO_LONG_TASK_MS: '120000', DEMO_SUSPENDED_TASKS: '1', DEMO_RATE: '3', DEMO_MAX_TASKS: '6', DEMO_MIX: 'complete=2,fail=1' },
    });
    await bridge.whenReady(20_000);
    await waitFor(
      async () => {
        const s = await scrape(bridge.app);
        return (
          total(s, 'mastra_background_tasks', { status: 'running' }) >= 2 &&
          total(s, 'mastra_background_tasks', { status: 'suspended' }) >= 1 &&
          total(s, 'mastra_background_task_finished_total') >= 2
        );
      },
      { timeoutMs: 30_000, message: 'long tasks running, one suspended, some finished' },
    );
    longTaskIds = (await listAllTasks(demo.url)).filter((t) => t.toolName === 'tail_logs' && t.status === 'running').map((t) => t.id);
    expect(longTaskIds).toHaveLength(2);

    killedAt = Date.now();
    await demo.kill('SIGKILL');
    await waitFor(async () => total(await scrape(bridge.app), 'mastra_task_bridge_source_up') === 0, { message: 'source_up drops to 0' });
    const ready = await bridge.app.inject({ method: 'GET', url: '/readyz' });
    expect(ready.statusCode).toBe(503);

    demo = await startDemoProcess({ port, storageUrl, env: { DEMO_RATE: '3', DEMO_MAX_TASKS: '6', DEMO_MIX: 'complete=2,fail=1,timeout=1' } });
    await bridge.whenReady(20_000);
    // Settled: nothing running or pending, and the second workload has run.
    tasks = await waitFor(
      async () => {
        const all = await listAllTasks(demo.url);
        const after = all.filter((t) => ms(t.createdAt) > killedAt);
        return after.length >= 6 && all.every((t) => t.status !== 'running' && t.status !== 'pending') ? all : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 250, message: 'second workload done, nothing running' },
    );
    const want = terminalCounts(tasks);
    await waitFor(async () => JSON.stringify(sorted(finishedByStatus(await scrape(bridge.app)))) === JSON.stringify(sorted(want)), {
      timeoutMs: 30_000,
      message: `finished_total == ${JSON.stringify(want)}`,
    });
    await bridge.tracing.forceFlush();
    await waitFor(() => tasks.filter((t) => TERMINAL.has(t.status)).every((t) => spansByTask(receiver.spans()).has(t.id)), {
      timeoutMs: 20_000,
      message: 'a span for every finished task',
    });
  }, 330_000);

  afterAll(async () => {
    await bridge?.close();
    await demo?.kill();
    await receiver?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('tasks running at the kill end as failed, with Mastra’s recovery error, through reconciliation', async () => {
    const byTask = spansByTask(receiver.spans());
    for (const id of longTaskIds) {
      const stored = tasks.find((t) => t.id === id)!;
      expect(stored.status).toBe('failed');
      const spans = byTask.get(id) ?? [];
      expect(spans, `span of ${id}`).toHaveLength(1);
      expect(spans[0]!.status.code).toBe(2);
      expect(spans[0]!.attributes['mastra.background_task.status']).toBe('failed');
      const exception = spans[0]!.events.find((e) => e.name === 'exception');
      expect(String(exception?.attributes['exception.message'])).toBe(stored.error?.message);
    }
    expect(total(await scrape(bridge.app), 'mastra_task_bridge_reconciled_total', { status: 'failed' })).toBeGreaterThanOrEqual(2);
  });

  it('final counters equal the stored truth; exactly one span per finished task; the suspended task stays open', async () => {
    const samples = await scrape(bridge.app);
    expect(sorted(finishedByStatus(samples))).toEqual(sorted(terminalCounts(tasks)));
    const byTask = spansByTask(receiver.spans());
    const finished = tasks.filter((t) => TERMINAL.has(t.status));
    expect(byTask.size).toBe(finished.length);
    for (const t of finished) expect(byTask.get(t.id), t.id).toHaveLength(1);
    const suspended = tasks.filter((t) => t.status === 'suspended');
    expect(suspended).toHaveLength(1);
    expect(total(samples, 'mastra_background_tasks', { status: 'suspended' })).toBe(1);
    expect(total(samples, 'mastra_background_tasks', { status: 'running' })).toBe(0);
    expect(total(samples, 'mastra_task_bridge_source_reconnects_total')).toBeGreaterThanOrEqual(1);
  });
});

describe('the bridge is SIGKILLed while tasks finish and restarts with its checkpoint', () => {
  // The test dispatches every task itself (Mastra's agent route). The tasks that run across the kill run for
  // LONG_RUN_MS, far longer than dispatching them and killing the bridge takes even on a loaded machine (about 1 s);
  // the test checks in Mastra's storage that they were still running when the bridge died.
  const FIRST: Tool[] = ['research_topic', 'charge_card', 'provision_cluster', 'research_topic', 'research_topic', 'charge_card'];
  const ACROSS_KILL = 4; // tail_logs tasks running at the kill, finishing while the bridge is down
  const LONG_RUN_MS = 15_000;
  const WHILE_DOWN: Tool[] = ['research_topic', 'charge_card', 'provision_cluster'];
  const AFTER: Tool[] = ['research_topic', 'charge_card'];
  const TASKS = FIRST.length + ACROSS_KILL + WHILE_DOWN.length + AFTER.length;
  let dir: string;
  let demo: DemoProcess;
  let receiver: OtlpReceiver;
  let cli: BridgeCli;
  let spansBeforeKill: number;
  let finishedWhileDown: StoredTask[];
  let tasks: StoredTask[];
  let secondRunFinished: number;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'bridge-restart-'));
    receiver = await startOtlpReceiver();
    demo = await startDemoProcess({ port: await freePort(), storageUrl: `file:${join(dir, 'mastra.db')}`, env: { DEMO_RATE: '0' } });
    cli = await bridgeCli({ dir, mastraUrl: demo.url, env: { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url } });
    await cli.start();
    for (const tool of FIRST) await dispatchTask(demo.url, tool);
    await waitFor(() => spansByTask(receiver.spans()).size === FIRST.length, { timeoutMs: 30_000, message: `first spans exported; log:\n${cli.log()}` });
    for (let i = 0; i < ACROSS_KILL; i++) await dispatchTask(demo.url, 'tail_logs', { args: { service: `svc-${i}`, tickMs: 50, maxRunMs: LONG_RUN_MS }, thread: `tail-${i}` });
    await waitFor(async () => total(await cli.metrics(), 'mastra_background_tasks', { status: 'running' }) === ACROSS_KILL, {
      timeoutMs: 30_000,
      message: 'the bridge sees the long tasks running',
    });
    await cli.killBetweenExports(() => receiver.requests().length);
    const killedAt = Date.now();
    spansBeforeKill = receiver.spans().length;
    expect(existsSync(join(dir, 'checkpoint.jsonl'))).toBe(true);
    const runningAtKill = (await listAllTasks(demo.url)).filter((t) => t.toolName === 'tail_logs' && t.status === 'running');
    expect(runningAtKill, 'the long tasks were still running when the bridge died').toHaveLength(ACROSS_KILL);

    // More tasks begin and end while no bridge runs; the long ones end too.
    for (const tool of WHILE_DOWN) await dispatchTask(demo.url, tool);
    finishedWhileDown = await waitFor(
      async () => {
        const done = (await listAllTasks(demo.url)).filter((t) => ms(t.completedAt) > killedAt);
        return done.length === ACROSS_KILL + WHILE_DOWN.length ? done : undefined;
      },
      { timeoutMs: LONG_RUN_MS + 30_000, intervalMs: 200, message: 'tasks finished while the bridge was down' },
    );

    await cli.start();
    for (const tool of AFTER) await dispatchTask(demo.url, tool);
    tasks = await allTasksDone(demo.url, TASKS);
    await waitFor(() => tasks.every((t) => spansByTask(receiver.spans()).has(t.id)), { timeoutMs: 30_000, message: `every task exported; log:\n${cli.log()}` });
    secondRunFinished = await waitFor(
      async () => {
        const n = total(await cli.metrics(), 'mastra_background_task_finished_total');
        return n === receiver.spans().length - spansBeforeKill ? n : undefined;
      },
      { timeoutMs: 10_000, message: 'second run counted what it exported' },
    );
  }, 360_000);

  afterAll(async () => {
    await cli?.close();
    await demo?.kill();
    await receiver?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('none lost, none doubled: every stored task has exactly one span across both runs', () => {
    const byTask = spansByTask(receiver.spans());
    expect(byTask.size).toBe(TASKS);
    for (const t of tasks) expect(byTask.get(t.id), t.id).toHaveLength(1);
    expect(receiver.spans()).toHaveLength(TASKS);
  });

  it('the restarted bridge backfilled what finished while it was down, with real times, and counted it', () => {
    expect(finishedWhileDown).toHaveLength(ACROSS_KILL + WHILE_DOWN.length);
    const afterRestart = new Set(receiver.spans().slice(spansBeforeKill).map((s) => s.attributes['mastra.background_task.id']));
    for (const t of finishedWhileDown) expect(afterRestart.has(t.id), `backfilled ${t.id}`).toBe(true);
    // The second process counts exactly the tasks it exported: nothing the first one had exported is counted again.
    expect(secondRunFinished).toBe(receiver.spans().length - spansBeforeKill);
    expect(secondRunFinished).toBe(ACROSS_KILL + WHILE_DOWN.length + AFTER.length);
    expect(cli.log()).toContain('checkpoint loaded');
  });

  it('keeps a checkpoint in its documented format', () => {
    const header = JSON.parse(readFileSync(join(dir, 'checkpoint.jsonl'), 'utf8').split('\n')[0]!);
    expect(header).toMatchObject({ format: 'mastra-task-bridge-checkpoint', version: 1, watermark: expect.any(Number) });
  });
});
