/**
 * Real in-process tests of the demo Mastra app: scripted model -> real agents -> real background
 * tasks, Mastra's own stream and storage, and Mastra's stored traces (observability on).
 */
import type { Mastra } from '@mastra/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDemoMastra, DEMO_AGENT_IDS, DEMO_TOOL_NAMES, shutdownDemoMastra } from '../demo/app.js';
import { decideStep, parseInstruction, toolInstruction } from '../demo/model.js';
import { demoServerOptionsFromEnv } from '../demo/server.js';
import {
  DEFAULT_MIX,
  dispatchQuickTask,
  EXPECTED_STATUS,
  interleavedPicker,
  isTerminalStatus,
  runScenario,
  SCENARIOS,
  startWorkload,
  type Scenario,
  type ScenarioResult,
} from '../demo/workload.js';
import { type EmbeddedDemoModule, EMBEDDED_DEMO_ENTRY, loadEmbeddedDemo } from '../src/embedded-demo.js';
import { findToolCallSpan, hasTraceStorage } from '../src/sources/mastra-traces.js';
import * as embeddedDemo from '../demo/embedded.js';
import { waitFor as poll } from './support/poll.js';

interface StreamEvent {
  type: string;
  payload: Record<string, unknown>;
}

/** The shared deadline poll, with this file's generous default (a loaded CI machine is slow). */
const waitFor = <T>(probe: Parameters<typeof poll<T>>[0], message: string, timeoutMs = 20_000) => poll(probe, { message, timeoutMs, intervalMs: 10 });

/** Subscribes to mastra.backgroundTaskManager.stream({}) and collects every event. */
function collectEvents(mastra: Mastra): { events: StreamEvent[]; stop(): void } {
  const events: StreamEvent[] = [];
  const abort = new AbortController();
  const stream = mastra.backgroundTaskManager!.stream({ abortSignal: abort.signal });
  void (async () => {
    const reader = stream.getReader();
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        events.push(value as unknown as StreamEvent);
      }
    } catch {
      // aborted
    }
  })();
  return { events, stop: () => abort.abort() };
}

const EXPECTED_EVENTS: Record<Scenario, { types: string[]; terminal: string }> = {
  complete: { types: ['background-task-running', 'background-task-output', 'background-task-completed'], terminal: 'background-task-completed' },
  fail: { types: ['background-task-running', 'background-task-output', 'background-task-failed'], terminal: 'background-task-failed' },
  // a timeout is stored as 'timed_out' but streamed as background-task-failed
  timeout: { types: ['background-task-running', 'background-task-failed'], terminal: 'background-task-failed' },
  cancel: { types: ['background-task-running', 'background-task-cancelled'], terminal: 'background-task-cancelled' },
  suspend_resume: {
    types: ['background-task-running', 'background-task-suspended', 'background-task-resumed', 'background-task-completed'],
    terminal: 'background-task-completed',
  },
};

describe('scripted model', () => {
  it('parses the instruction and emits the tool call once, then text', () => {
    expect(parseInstruction('please call charge_card {"amountCents": 5, "note": "a } b"} now')).toEqual({
      toolName: 'charge_card',
      args: { amountCents: 5, note: 'a } b' },
    });
    expect(parseInstruction('call tail_logs')).toEqual({ toolName: 'tail_logs', args: {} });
    expect(parseInstruction('hello')).toBeNull();

    const user = { role: 'user' as const, content: [{ type: 'text' as const, text: toolInstruction('research_topic', { topic: 'x' }) }] };
    const first = decideStep([{ role: 'system', content: 'sys' }, user]);
    expect(first).toMatchObject({ kind: 'tool-call', toolName: 'research_topic', args: { topic: 'x' } });
    const second = decideStep([{ role: 'system', content: 'sys' }, user]);
    expect(second.kind === 'tool-call' && first.kind === 'tool-call' && second.toolCallId !== first.toolCallId).toBe(true);

    const after = decideStep([
      user,
      { role: 'assistant', content: [{ type: 'tool-call', toolCallId: 'c1', toolName: 'research_topic', input: {} }] },
      {
        role: 'tool',
        content: [{ type: 'tool-result', toolCallId: 'c1', toolName: 'research_topic', output: { type: 'text', value: 'started' } }],
      },
    ]);
    expect(after.kind).toBe('text');
  });
});

describe('interleaved workload order', () => {
  const draw = (pick: () => Scenario | undefined, n: number) => Array.from({ length: n }, () => pick());
  const errors = (run: (Scenario | undefined)[]) => run.filter((s) => s === 'fail' || s === 'timeout').length;

  it('deals the default mix exactly once per period of 10', () => {
    const run = draw(interleavedPicker(DEFAULT_MIX), 1000);
    for (let i = 0; i < run.length; i += 10) {
      const period = run.slice(i, i + 10);
      expect(period.filter((s) => s === 'complete')).toHaveLength(6);
      for (const s of ['fail', 'timeout', 'cancel', 'suspend_resume'] as const) expect(period.filter((x) => x === s)).toHaveLength(1);
    }
  });

  it('keeps every window of consecutive scenarios within one of each error scenario\'s share (20% in all)', () => {
    const run = draw(interleavedPicker(DEFAULT_MIX), 500);
    // 53 is what one agent finishes in the alert test's 20 s window: at most 12 errors (23%), never near 30%.
    for (const size of [5, 10, 17, 53]) {
      for (let i = 0; i + size <= run.length; i++) {
        const n = errors(run.slice(i, i + size));
        expect(Math.abs(n - 0.2 * size), `window ${i}..${i + size}`).toBeLessThanOrEqual(2); // fail ±1, timeout ±1
      }
    }
  });

  it('the demo server takes DEMO_ORDER from its environment and rejects anything else', () => {
    expect(demoServerOptionsFromEnv({ DEMO_ORDER: 'interleaved' }).order).toBe('interleaved');
    expect(demoServerOptionsFromEnv({}).order).toBeUndefined();
    expect(() => demoServerOptionsFromEnv({ DEMO_ORDER: 'shuffled' })).toThrow(/DEMO_ORDER: expected random or interleaved, got 'shuffled'/);
  });

  it('honours zero weights and an empty mix', () => {
    const only = draw(interleavedPicker({ complete: 1, fail: 9, timeout: 0, cancel: 0, suspend_resume: 0 }), 100);
    expect(new Set(only)).toEqual(new Set(['complete', 'fail']));
    expect(only.filter((s) => s === 'fail')).toHaveLength(90);
    expect(interleavedPicker({ complete: 0, fail: 0, timeout: 0, cancel: 0, suspend_resume: 0 })()).toBeUndefined();
  });
});

describe('demo app with observability', () => {
  let mastra: Mastra;
  let collector: ReturnType<typeof collectEvents>;
  const results = new Map<Scenario, ScenarioResult>();

  beforeAll(() => {
    mastra = createDemoMastra({ observability: true });
    collector = collectEvents(mastra);
  });

  afterAll(async () => {
    collector?.stop();
    if (mastra) await shutdownDemoMastra(mastra).catch(() => undefined);
  });

  it.each(SCENARIOS)('scenario %s ends with the expected stored status and stream events', async (scenario) => {
    const result = await runScenario(mastra, scenario, { resourceId: 'user-1', timeoutMs: 30_000 });
    results.set(scenario, result);
    expect(result.taskId).toBeTruthy();
    expect(result.runId).toBeTruthy();

    const task = await mastra.backgroundTaskManager!.getTask(result.taskId);
    expect(task).not.toBeNull();
    expect(task!.status).toBe(EXPECTED_STATUS[scenario]);
    expect(task!.agentId).toBe(result.agentId);
    expect(task!.runId).toBe(result.runId);
    expect(task!.threadId).toBe(result.threadId);
    expect(task!.resourceId).toBe('user-1');
    expect(task!.completedAt).toBeInstanceOf(Date);

    const expected = EXPECTED_EVENTS[scenario];
    const mine = (): StreamEvent[] => collector.events.filter((e) => e.payload['taskId'] === result.taskId);
    await waitFor(() => mine().some((e) => e.type === expected.terminal), `${expected.terminal} for ${scenario}`);
    const types = new Set(mine().map((e) => e.type));
    for (const type of expected.types) expect(types, `${scenario}: ${type}`).toContain(type);
    for (const e of mine()) {
      expect(e.payload).toMatchObject({
        taskId: result.taskId,
        toolCallId: task!.toolCallId,
        toolName: task!.toolName,
        agentId: result.agentId,
        runId: result.runId,
      });
    }

    switch (scenario) {
      case 'complete':
        expect(mine().filter((e) => e.type === 'background-task-output').length).toBe(3);
        expect(task!.result).toMatchObject({ findings: expect.any(Array) });
        break;
      case 'fail':
        expect(task!.error?.message).toMatch(/declined/);
        break;
      case 'timeout': {
        expect(task!.timeoutMs).toBe(150);
        const failed = mine().find((e) => e.type === 'background-task-failed');
        expect((failed?.payload['error'] as { message?: string } | undefined)?.message).toMatch(/timed out after 150ms/);
        break;
      }
      case 'suspend_resume':
        expect(task!.result).toMatchObject({ approved: true, refunded: true });
        break;
      case 'cancel':
        break;
    }
  });

  it('findToolCallSpan finds the tool_call span under the agent run trace for each scenario', async () => {
    expect(await hasTraceStorage(mastra)).toBe(true);
    const store = (await mastra.getStorage()!.getStore('observability'))!;
    for (const scenario of SCENARIOS) {
      const result = results.get(scenario) ?? (await runScenario(mastra, scenario));
      const task = (await mastra.backgroundTaskManager!.getTask(result.taskId))!;
      // spans are flushed by the storage exporter after its batch delay (100 ms in the demo)
      const ref = await waitFor(() => findToolCallSpan(mastra, result.runId, task.toolCallId), `tool_call span for ${scenario}`);

      const { spans: roots } = await store.listTraces({ filters: { runId: result.runId }, pagination: { page: 0, perPage: 10 } });
      expect(roots.map((r) => r.traceId)).toContain(ref.traceId);
      expect(roots.find((r) => r.traceId === ref.traceId)?.spanType).toBe('agent_run');

      const trace = (await store.getTrace({ traceId: ref.traceId }))!;
      const span = trace.spans.find((s) => s.spanId === ref.spanId);
      expect(span?.spanType).toBe('tool_call');
      expect(span?.attributes?.['toolCallId']).toBe(task.toolCallId);
      expect(span?.entityName).toBe(task.toolName);
    }
    expect(await findToolCallSpan(mastra, results.get('complete')!.runId, 'call_unknown')).toBeNull();
  });

  it('the tool_call span is visible while the task is still running', async () => {
    const agent = mastra.getAgentById('ops-agent');
    const out = await agent.stream(toolInstruction(DEMO_TOOL_NAMES.cancel, { tickMs: 20 }), {
      memory: { thread: 'visibility', resource: 'user-1' },
    });
    void (async () => {
      for await (const _chunk of out.fullStream) void _chunk;
    })().catch(() => undefined);
    const manager = mastra.backgroundTaskManager!;
    const task = await waitFor(async () => (await manager.listTasks({ runId: out.runId })).tasks[0], 'task');
    try {
      const ref = await waitFor(() => findToolCallSpan(mastra, out.runId, task.toolCallId), 'tool_call span while running');
      expect(ref.spanId).toMatch(/^[0-9a-f]{16}$/);
      expect(ref.traceId).toMatch(/^[0-9a-f]{32}$/);
      expect((await manager.getTask(task.id))?.status).toBe('running');
    } finally {
      await manager.cancel(task.id);
    }
    await waitFor(async () => (await manager.getTask(task.id))?.status === 'cancelled', 'cancelled');
  });

  it('dispatchQuickTask runs a task without an agent', async () => {
    const manager = mastra.backgroundTaskManager!;
    const ok = await dispatchQuickTask(mastra, { durationMs: 5 });
    expect((await ok.wait()).status).toBe('completed');
    expect((await manager.getTask(ok.taskId))?.status).toBe('completed');

    const bad = await dispatchQuickTask(mastra, { durationMs: 5, outcome: 'fail' });
    await waitFor(async () => isTerminalStatus((await manager.getTask(bad.taskId))?.status), 'quick failure');
    expect((await manager.getTask(bad.taskId))?.status).toBe('failed');
  });

  it('startWorkload runs a mix across the agents and stop() settles it', async () => {
    const manager = mastra.backgroundTaskManager!;
    const since = new Date();
    const errors: unknown[] = [];
    const workload = startWorkload(mastra, { ratePerSecond: 25, onError: (e) => errors.push(e) });
    await waitFor(() => workload.started() >= 15, 'workload to start 15 scenarios');
    await workload.stop();
    const startedAtStop = workload.started();
    expect(errors).toEqual([]);

    const { tasks } = await manager.listTasks({ fromDate: since });
    const workloadTasks = tasks.filter((t) => t.threadId?.startsWith('workload-'));
    expect(workloadTasks.length).toBe(startedAtStop);
    for (const t of workloadTasks) expect(isTerminalStatus(t.status), `${t.toolName} ${t.status}`).toBe(true);
    expect(new Set(workloadTasks.map((t) => t.agentId))).toEqual(new Set(DEMO_AGENT_IDS));

    await new Promise((r) => setTimeout(r, 120));
    expect(workload.started()).toBe(startedAtStop); // nothing starts after stop()
  });
});

describe('demo app without observability', () => {
  it('has no traces to find', async () => {
    const mastra = createDemoMastra();
    try {
      const result = await runScenario(mastra, 'complete');
      const task = (await mastra.backgroundTaskManager!.getTask(result.taskId))!;
      expect(task.status).toBe('completed');
      expect(await hasTraceStorage(mastra)).toBe(false);
      expect(await findToolCallSpan(mastra, result.runId, task.toolCallId)).toBeNull();
    } finally {
      await shutdownDemoMastra(mastra).catch(() => undefined);
    }
  });
});

describe('the embedded demo entry point (what `npm start` loads with no MASTRA_URL)', () => {
  // A compile-time check: demo/embedded.ts provides what src/embedded-demo.ts expects (the CLI loads it by path).
  const typed: EmbeddedDemoModule = embeddedDemo;
  void typed;

  it('is found by path from src/, runs a workload on its Mastra, and shuts down', async () => {
    const loaded = await loadEmbeddedDemo();
    expect('error' in loaded ? loaded.error : undefined).toBeUndefined();
    expect(EMBEDDED_DEMO_ENTRY.pathname).toMatch(/\/demo\/embedded\.js$/);
    const demo = embeddedDemo.createEmbeddedDemo();
    const manager = demo.mastra.backgroundTaskManager!;
    const since = new Date();
    const workload = demo.startWorkload({ ratePerSecond: 50, onError: (e) => { throw e; } });
    await waitFor(() => workload.started() >= 3, 'embedded workload to start 3 scenarios');
    await workload.stop();
    const { tasks } = await manager.listTasks({ fromDate: since });
    expect(tasks.length).toBeGreaterThanOrEqual(3);
    await demo.shutdown();
  });

  it('an install without demo/ gets one sentence naming MASTRA_URL', async () => {
    const loaded = await loadEmbeddedDemo(new URL('../no-such-demo/embedded.js', EMBEDDED_DEMO_ENTRY));
    expect('error' in loaded && loaded.error).toContain('this install has no embedded demo');
    expect('error' in loaded && loaded.error).toContain('Set MASTRA_URL');
  });
});
