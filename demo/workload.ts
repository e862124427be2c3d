/**
 * Drives the demo app (createDemoMastra) through real agent runs: one scenario at a time
 * (runScenario) or a continuous, weighted workload (startWorkload). Also dispatchQuickTask,
 * a background task dispatched straight to the manager without an agent (for benchmarks).
 */
import { randomUUID } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import type { Mastra } from '@mastra/core';
import { createBackgroundTask, type BackgroundTask, type BackgroundTaskManager } from '@mastra/core/background-tasks';
import { DEMO_AGENT_IDS, DEMO_TOOL_NAMES } from './app.js';
import { toolInstruction } from './model.js';

export type Scenario = 'complete' | 'fail' | 'timeout' | 'cancel' | 'suspend_resume';

export const SCENARIOS: readonly Scenario[] = ['complete', 'fail', 'timeout', 'cancel', 'suspend_resume'];

export interface ScenarioResult {
  scenario: Scenario;
  taskId: string;
  agentId: string;
  runId: string;
  threadId: string;
}

export interface RunScenarioOptions {
  agentId?: string;
  threadId?: string;
  resourceId?: string;
  /** Deadline for the whole scenario (agent run + task reaching a terminal status). Default 20 s. */
  timeoutMs?: number;
  /** Aborting stops waiting; the scenario's task is cancelled (best effort) and the promise rejects. */
  signal?: AbortSignal;
}

/** Stored status each scenario ends with (a timeout is stored as 'timed_out'; its stream event is background-task-failed). */
export const EXPECTED_STATUS: Record<Scenario, BackgroundTask['status']> = {
  complete: 'completed',
  fail: 'failed',
  timeout: 'timed_out',
  cancel: 'cancelled',
  suspend_resume: 'completed',
};

/** Default agent per scenario (every demo agent carries every tool, so any agent works). */
export const SCENARIO_AGENT: Record<Scenario, string> = {
  complete: 'research-agent',
  fail: 'billing-agent',
  timeout: 'ops-agent',
  cancel: 'ops-agent',
  suspend_resume: 'billing-agent',
};

/** `_background.timeoutMs` the timeout scenario calls provision_cluster with. */
export const TIMEOUT_SCENARIO_TASK_MS = 150;

const TERMINAL: ReadonlySet<string> = new Set(['completed', 'failed', 'cancelled', 'timed_out']);
const POLL_MS = 20;

export function isTerminalStatus(status: string | undefined): boolean {
  return status !== undefined && TERMINAL.has(status);
}

/** The instruction prompt the scripted model turns into the scenario's tool call. */
export function scenarioPrompt(scenario: Scenario): string {
  switch (scenario) {
    case 'complete':
      return toolInstruction(DEMO_TOOL_NAMES.complete, { topic: 'background tasks' });
    case 'fail':
      return toolInstruction(DEMO_TOOL_NAMES.fail, { amountCents: 4200 });
    case 'timeout':
      return toolInstruction(DEMO_TOOL_NAMES.timeout, { nodes: 3, _background: { timeoutMs: TIMEOUT_SCENARIO_TASK_MS } });
    case 'cancel':
      return toolInstruction(DEMO_TOOL_NAMES.cancel, { service: 'api' });
    case 'suspend_resume':
      return toolInstruction(DEMO_TOOL_NAMES.suspend, { amountCents: 1500 });
  }
}

function requireManager(mastra: Mastra): BackgroundTaskManager {
  const manager = mastra.backgroundTaskManager;
  if (!manager) throw new Error('Background tasks are not enabled on this Mastra instance');
  return manager;
}

function delay(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

function abortReason(signal: AbortSignal): Error {
  const reason: unknown = signal.reason;
  return reason instanceof Error ? reason : new Error('runScenario aborted');
}

/**
 * Runs one scenario through a real agent (agent.stream with memory thread/resource) and resolves
 * once the task is terminal in storage. Cancels the 'cancel' task once it runs and resumes the
 * 'suspend_resume' task once it is suspended. Rejects on deadline, abort, or an unexpected agent error.
 */
export async function runScenario(
  mastra: Mastra,
  scenario: Scenario,
  opts: RunScenarioOptions = {},
): Promise<ScenarioResult> {
  const manager = requireManager(mastra);
  const agentId = opts.agentId ?? SCENARIO_AGENT[scenario];
  const threadId = opts.threadId ?? `thread-${randomUUID()}`;
  const resourceId = opts.resourceId ?? 'demo-user';
  const deadline = Date.now() + (opts.timeoutMs ?? 20_000);
  const signal = opts.signal;
  if (signal?.aborted) throw abortReason(signal);

  const agent = mastra.getAgentById(agentId);
  const output = await agent.stream(scenarioPrompt(scenario), { memory: { thread: threadId, resource: resourceId } });
  const runId = output.runId;

  // Drain the agent stream in the background (the loop does not wait for deferred background
  // tasks, but draining keeps it from stalling) and pick up the task id from its chunk.
  let taskIdFromStream: string | undefined;
  let streamError: unknown;
  const drained = (async () => {
    for await (const chunk of output.fullStream) {
      if (chunk.type === 'background-task-started') {
        const payload: unknown = chunk.payload;
        if (typeof payload === 'object' && payload !== null && 'taskId' in payload) {
          taskIdFromStream ??= String((payload as { taskId: unknown }).taskId);
        }
      }
    }
  })().catch((err: unknown) => {
    streamError = err;
  });

  let taskId: string | undefined;
  let task: BackgroundTask | null = null;
  let cancelRequested = false;
  let resumed = false;
  try {
    for (;;) {
      if (signal?.aborted) throw abortReason(signal);
      if (Date.now() > deadline) {
        throw new Error(
          `runScenario(${scenario}) timed out: task ${taskId ?? '(not dispatched)'} status ${task?.status ?? 'unknown'}`,
        );
      }
      if (!taskId) {
        taskId = taskIdFromStream;
        if (!taskId) {
          const { tasks } = await manager.listTasks({ runId });
          taskId = tasks[0]?.id;
        }
        if (!taskId && streamError !== undefined) throw streamError;
      }
      if (taskId) {
        task = await manager.getTask(taskId);
        if (task && isTerminalStatus(task.status)) break;
        if (task?.status === 'running' && scenario === 'cancel' && !cancelRequested) {
          cancelRequested = true;
          await manager.cancel(taskId);
          continue;
        }
        if (task?.status === 'suspended' && scenario === 'suspend_resume' && !resumed) {
          resumed = true;
          await manager.resume(taskId, { approved: true, approver: 'demo-workload' });
          continue;
        }
      }
      await delay(POLL_MS, signal);
    }
  } catch (err) {
    if (taskId && (signal?.aborted || Date.now() > deadline)) {
      await manager.cancel(taskId).catch(() => undefined);
    }
    throw err;
  }
  // The agent stream normally ended long ago; do not let a stuck one hold the caller.
  await Promise.race([drained, delay(Math.max(0, Math.min(2_000, deadline - Date.now())), signal)]);
  return { scenario, taskId, agentId, runId, threadId };
}

export interface WorkloadOptions {
  /** Scenarios started per second. Default 2. */
  ratePerSecond?: number;
  /** Relative weights; unspecified scenarios use the default weights, 0 disables one. */
  mix?: Partial<Record<Scenario, number>>;
  /** Called with every scenario error; errors are otherwise ignored. */
  onError?: (err: unknown) => void;
  /** Agents to spread scenarios across. Default: all demo agents. */
  agentIds?: readonly string[];
  /** How long stop() waits for in-flight scenarios before aborting them. Default 10 s. */
  stopTimeoutMs?: number;
  /** Per-scenario deadline. Default 30 s. */
  scenarioTimeoutMs?: number;
  /** Stop starting scenarios after this many (in-flight ones still finish). Default unlimited. */
  maxScenarios?: number;
  /**
   * How scenarios are drawn from the mix. 'random' (default) draws each one independently, like real traffic;
   * 'interleaved' deals each agent the mix in a fixed, evenly spread order (smooth weighted round-robin), so every
   * run of consecutive scenarios of an agent holds the mix's shares to within one scenario. Tests that assert on
   * ratios over short windows use 'interleaved' so that no run depends on the luck of the draw.
   */
  order?: 'random' | 'interleaved';
}

export const DEFAULT_MIX: Record<Scenario, number> = {
  complete: 6,
  fail: 1,
  timeout: 1,
  cancel: 1,
  suspend_resume: 1,
};

export interface Workload {
  /** Stops starting scenarios and waits for in-flight ones to settle (aborting them past the deadline). */
  stop(): Promise<void>;
  /** Scenarios started so far. */
  started(): number;
}

function pickWeighted(mix: Record<Scenario, number>, random: number): Scenario | undefined {
  const entries = SCENARIOS.map((s) => [s, Math.max(0, mix[s])] as const).filter(([, w]) => w > 0);
  const total = entries.reduce((sum, [, w]) => sum + w, 0);
  if (total <= 0) return undefined;
  let r = random * total;
  for (const [scenario, weight] of entries) {
    r -= weight;
    if (r < 0) return scenario;
  }
  return entries[entries.length - 1]?.[0];
}

/**
 * Smooth weighted round-robin (as in nginx's upstream balancer): each pick adds every weight to its running score,
 * takes the highest score and lowers it by the total. Weights 6,1,1,1,1 give a period of 10 with the four rare
 * scenarios spread apart rather than bunched.
 */
export function interleavedPicker(mix: Record<Scenario, number>): () => Scenario | undefined {
  const entries = SCENARIOS.map((s) => [s, Math.max(0, mix[s])] as const).filter(([, w]) => w > 0);
  const total = entries.reduce((sum, [, w]) => sum + w, 0);
  const score = entries.map(() => 0);
  return () => {
    if (total <= 0) return undefined;
    let best = 0;
    for (let i = 0; i < entries.length; i++) {
      score[i] = (score[i] ?? 0) + entries[i]![1];
      if (score[i]! > score[best]!) best = i;
    }
    score[best] = score[best]! - total;
    return entries[best]![0];
  };
}

/**
 * A continuous workload for the embedded demo: starts scenarios at `ratePerSecond` with a weighted
 * mix, round-robin across the agents. Never throws; stop() settles in-flight scenarios.
 */
export function startWorkload(mastra: Mastra, opts: WorkloadOptions = {}): Workload {
  const rate = opts.ratePerSecond !== undefined && opts.ratePerSecond > 0 ? opts.ratePerSecond : 2;
  const mix: Record<Scenario, number> = { ...DEFAULT_MIX, ...opts.mix };
  const agentIds = opts.agentIds && opts.agentIds.length > 0 ? opts.agentIds : DEMO_AGENT_IDS;
  const stopTimeoutMs = opts.stopTimeoutMs ?? 10_000;
  const report = (err: unknown): void => {
    try {
      opts.onError?.(err);
    } catch {
      // a failing error handler must not break the workload
    }
  };

  const abort = new AbortController();
  setMaxListeners(0, abort.signal); // one listener per in-flight scenario
  const inFlight = new Set<Promise<void>>();
  let count = 0;
  let stopped = false;

  const interleaved = opts.order === 'interleaved' ? agentIds.map(() => interleavedPicker(mix)) : undefined;

  const startOne = (): void => {
    const slot = count % agentIds.length;
    const scenario = interleaved ? interleaved[slot]!() : pickWeighted(mix, Math.random());
    if (!scenario) return;
    const n = count++;
    const agentId = agentIds[slot] ?? SCENARIO_AGENT[scenario];
    const p = runScenario(mastra, scenario, {
      agentId,
      threadId: `workload-${agentId}-${n % 8}`,
      resourceId: `demo-user-${n % 3}`,
      timeoutMs: opts.scenarioTimeoutMs ?? 30_000,
      signal: abort.signal,
    })
      .then(() => undefined)
      .catch(report)
      .finally(() => {
        inFlight.delete(p);
      });
    inFlight.add(p);
  };

  const maxScenarios = opts.maxScenarios ?? Infinity;
  const timer = setInterval(
    () => {
      if (stopped) return;
      if (count >= maxScenarios) {
        clearInterval(timer);
        return;
      }
      try {
        startOne();
      } catch (err) {
        report(err);
      }
    },
    Math.max(1, Math.round(1000 / rate)),
  );
  timer.unref?.();

  return {
    started: () => count,
    async stop(): Promise<void> {
      if (!stopped) {
        stopped = true;
        clearInterval(timer);
      }
      const settled = Promise.allSettled([...inFlight]).then(() => undefined);
      let deadlineTimer: NodeJS.Timeout | undefined;
      const deadline = new Promise<'deadline'>((resolve) => {
        deadlineTimer = setTimeout(() => resolve('deadline'), stopTimeoutMs);
      });
      const outcome = await Promise.race([settled, deadline]);
      clearTimeout(deadlineTimer);
      if (outcome === 'deadline') {
        abort.abort(new Error('workload stopped'));
        // Aborted scenarios cancel their tasks and reject promptly; give them a moment.
        await Promise.race([Promise.allSettled([...inFlight]), delay(2_000)]);
      }
    },
  };
}

export interface QuickTaskOptions {
  /** Default 'quick_task'. */
  toolName?: string;
  /** How long the task runs. Default 10 ms. */
  durationMs?: number;
  /** 'complete' (default) or 'fail' (throws). */
  outcome?: 'complete' | 'fail';
  agentId?: string;
  runId?: string;
  threadId?: string;
  resourceId?: string;
  args?: Record<string, unknown>;
  timeoutMs?: number;
  maxRetries?: number;
}

export interface QuickTaskHandle {
  taskId: string;
  toolCallId: string;
  runId: string;
  /** Resolves with the task record once it is terminal (manager's waitForCompletion). */
  wait(timeoutMs?: number): Promise<BackgroundTask>;
}

/**
 * Dispatches a background task straight to the manager (createBackgroundTask), without an agent or
 * model: cheap, for benchmarks. The task runs an in-process executor that sleeps `durationMs`,
 * honours its abortSignal, and completes or throws. It flows through the same storage and stream
 * as agent-dispatched tasks (running / completed / failed events).
 */
export async function dispatchQuickTask(mastra: Mastra, opts: QuickTaskOptions = {}): Promise<QuickTaskHandle> {
  const manager = requireManager(mastra);
  const durationMs = opts.durationMs ?? 10;
  const outcome = opts.outcome ?? 'complete';
  const toolCallId = `call_${randomUUID()}`;
  const runId = opts.runId ?? randomUUID();
  const handle = createBackgroundTask(manager, {
    toolName: opts.toolName ?? 'quick_task',
    toolCallId,
    args: opts.args ?? { durationMs, outcome },
    agentId: opts.agentId ?? 'bench-agent',
    runId,
    ...(opts.threadId !== undefined ? { threadId: opts.threadId } : {}),
    ...(opts.resourceId !== undefined ? { resourceId: opts.resourceId } : {}),
    ...(opts.timeoutMs !== undefined ? { timeoutMs: opts.timeoutMs } : {}),
    ...(opts.maxRetries !== undefined ? { maxRetries: opts.maxRetries } : {}),
    context: {
      executor: {
        execute: async (_args, options) => {
          await delay(durationMs, options?.abortSignal);
          if (options?.abortSignal?.aborted) throw abortReason(options.abortSignal);
          if (outcome === 'fail') throw new Error('quick task failed on purpose');
          return { ok: true, durationMs };
        },
      },
    },
  });
  const { task } = await handle.dispatch();
  return {
    taskId: task.id,
    toolCallId,
    runId,
    wait: (timeoutMs = 10_000) => handle.waitForCompletion({ timeoutMs }),
  };
}
