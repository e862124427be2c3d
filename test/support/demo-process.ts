// The demo Mastra HTTP server (demo/server.ts) as a real child process, so a test can SIGKILL it mid-workload and
// start it again on the same port and the same LibSQL file, as a crash and restart in production would.
import { type ChildProcess, spawn } from 'node:child_process';
import { waitFor } from './poll.js';

export interface DemoProcessOptions {
  port: number;
  /** Listen address (default 127.0.0.1; any 127.x.y.z is loopback, so replicas can share a port). */
  host?: string;
  /** LibSQL or PostgreSQL URL, e.g. `file:/tmp/x/demo.db`. */
  storageUrl: string;
  /** DEMO_* and other variables (DEMO_RATE, DEMO_MAX_TASKS, DEMO_MIX, DEMO_TOKEN, DEMO_LONG_TASKS, …). */
  env?: Record<string, string>;
  startTimeoutMs?: number;
}

export interface DemoProcess {
  /** e.g. http://127.0.0.1:4111 */
  url: string;
  child: ChildProcess;
  log(): string;
  /** Resolves with the exit code (null when killed by a signal). */
  exited: Promise<number | null>;
  kill(signal?: NodeJS.Signals): Promise<void>;
}

export async function startDemoProcess(opts: DemoProcessOptions): Promise<DemoProcess> {
  let log = '';
  const child = spawn(process.execPath, ['--import', 'tsx', 'demo/server.ts'], {
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      DEMO_HOST: opts.host ?? '127.0.0.1',
      DEMO_PORT: String(opts.port),
      DEMO_STORAGE_URL: opts.storageUrl,
      MASTRA_TELEMETRY_DISABLED: '1',
      ...opts.env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout!.on('data', (d) => (log += String(d)));
  child.stderr!.on('data', (d) => (log += String(d)));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  let dead = false;
  void exited.then(() => (dead = true));
  const url = `http://${opts.host ?? '127.0.0.1'}:${opts.port}`;
  await waitFor(
    () => {
      if (dead) throw new Error(`demo server exited during start:\n${log}`);
      return log.includes('mastra demo server listening on');
    },
    { timeoutMs: opts.startTimeoutMs ?? 60_000, message: `demo server listening; log so far:\n${log}` },
  );
  return {
    url,
    child,
    log: () => log,
    exited,
    async kill(signal = 'SIGTERM') {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill(signal);
      await exited;
    },
  };
}

/**
 * Starts one background task on a running demo server through Mastra's own agent route (the scripted model turns the
 * prompt into the tool call), so a test decides exactly which tasks exist and when. Resolves once the task is
 * dispatched (agent runs do not wait for background tasks).
 */
export async function dispatchTask(
  baseUrl: string,
  tool: 'research_topic' | 'charge_card' | 'provision_cluster' | 'tail_logs',
  opts: { agentId?: string; args?: Record<string, unknown>; thread?: string; token?: string } = {},
): Promise<void> {
  const args =
    opts.args ??
    (tool === 'research_topic'
      ? { topic: 'tests' }
      : tool === 'charge_card'
        ? { amountCents: 4200 }
        : tool === 'provision_cluster'
          ? { nodes: 1, _background: { timeoutMs: 150 } }
          : { service: 'api', tickMs: 50, maxRunMs: 1000 });
  const res = await fetch(`${baseUrl}/api/agents/${opts.agentId ?? 'research-agent'}/generate`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(opts.token ? { authorization: `Bearer ${opts.token}` } : {}) },
    body: JSON.stringify({
      messages: [{ role: 'user', content: `call ${tool} ${JSON.stringify(args)}` }],
      memory: { thread: opts.thread ?? `test-${tool}`, resource: 'test-user' },
    }),
  });
  const text = await res.text();
  if (res.status !== 200 || !text.includes('Background task started')) throw new Error(`dispatch ${tool}: HTTP ${res.status}: ${text.slice(0, 300)}`);
}
