// Test support: a peer binary (Jaeger, Prometheus, Alertmanager) as a child process for the length of a test file —
// its output kept for failure messages, ready once a probe answers (polled with a deadline), and on close SIGTERM,
// SIGKILL after a grace period, waited for. A test worker that exits without close() still kills it. jaeger.ts,
// prometheus.ts and alertmanager.ts only say how to start and probe theirs.
import { type ChildProcess, spawn } from 'node:child_process';
import { waitFor } from './poll.js';

export interface ChildExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface PeerProcess {
  readonly child: ChildProcess;
  /** stdout and stderr so far (the last 100–200 kB). */
  output(): string;
  /** How the process ended, or undefined while it runs. */
  exit(): ChildExit | undefined;
  /** SIGTERM, SIGKILL after 5 s, waits for the exit, then runs `cleanup`. Safe to call twice. */
  close(): Promise<void>;
}

export interface StartPeerOptions {
  /** Names the peer in messages (`jaeger`). */
  name: string;
  bin: string;
  args: string[];
  /** The whole environment of the child; default: this process's. */
  env?: NodeJS.ProcessEnv;
  /** Polled until it resolves true (a thrown error counts as not yet). */
  ready(): Promise<boolean>;
  readyTimeoutMs: number;
  intervalMs: number;
  /** What `ready` waits for, for the timeout message. */
  readyMessage: string;
  /** Runs once the process is gone, on close (e.g. removes its temp dir). */
  cleanup?(): Promise<void>;
}

const KEEP_OUTPUT = 200_000;

/** Starts the peer and resolves once `ready` holds; else closes it and throws with its output. */
export async function startPeer(opts: StartPeerOptions): Promise<PeerProcess> {
  let output = '';
  const child = spawn(opts.bin, opts.args, { ...(opts.env ? { env: opts.env } : {}), stdio: ['ignore', 'pipe', 'pipe'] });
  const append = (chunk: Buffer): void => {
    output += chunk.toString('utf8');
    if (output.length > KEEP_OUTPUT) output = output.slice(-KEEP_OUTPUT / 2);
  };
  child.stdout.on('data', append);
  child.stderr.on('data', append);
  let exit: ChildExit | undefined;
  let ended!: () => void;
  const exited = new Promise<void>((done) => (ended = done));
  child.once('exit', (code, signal) => {
    exit = { code, signal };
    ended();
  });
  child.once('error', (err) => {
    output += `\n[spawn error] ${err.message}\n`;
    // A binary that could not be spawned never emits 'exit'.
    if (child.pid === undefined) {
      exit = { code: null, signal: null };
      ended();
    }
  });

  const killOnExit = (): void => {
    if (!exit) child.kill('SIGKILL');
  };
  process.once('exit', killOnExit);

  let closed = false;
  const close = async (): Promise<void> => {
    if (closed) return;
    closed = true;
    process.removeListener('exit', killOnExit);
    if (!exit) {
      child.kill('SIGTERM');
      const killTimer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(killTimer);
    }
    await opts.cleanup?.();
  };

  try {
    await waitFor(
      async () => {
        if (exit) throw new Error(`${opts.name} exited early (${JSON.stringify(exit)})`);
        return opts.ready();
      },
      { timeoutMs: opts.readyTimeoutMs, intervalMs: opts.intervalMs, message: opts.readyMessage },
    );
  } catch (err) {
    const log = output;
    await close();
    throw new Error(`${err instanceof Error ? err.message : String(err)}\n--- ${opts.name} output ---\n${log}`);
  }
  return { child, output: () => output, exit: () => exit, close };
}
