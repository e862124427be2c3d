// The bridge as its own process (`src/main.ts --config FILE`), for the tests that SIGKILL it and start it again on
// the same checkpoint: one config file (a remote Mastra, a checkpoint, short reconnects and reconciliation), one
// port, one process at a time, and the output of every process started from it, kept for failure messages.
import { type ChildProcess, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type Sample, parseExposition } from './metrics-text.js';
import { freePort, waitFor } from './poll.js';

export interface BridgeCli {
  readonly port: number;
  readonly configFile: string;
  /** A new bridge process on the same config (and checkpoint); resolves once its `/readyz` answers 200. */
  start(): Promise<void>;
  /** SIGKILLs the running process and resolves once it has exited. */
  kill(): Promise<void>;
  /**
   * SIGKILLs it in a quiet moment between two OTLP exports: once `exports()` (the collector's request count) has not
   * moved for 60 ms. The batch delay is 200 ms and an export takes a few ms, so a kill in the instant between the
   * collector accepting a batch and the checkpoint recording it (which would re-export that batch once) is ruled out.
   */
  killBetweenExports(exports: () => number): Promise<void>;
  /** Kills a process still running (for afterAll). */
  close(): Promise<void>;
  /** Everything every process started so far printed. */
  log(): string;
  metrics(): Promise<Sample[]>;
}

export async function bridgeCli(opts: { dir: string; mastraUrl: string; env: Record<string, string> }): Promise<BridgeCli> {
  const port = await freePort();
  const configFile = join(opts.dir, 'bridge.yaml');
  writeFileSync(
    configFile,
    [
      'source:',
      `  mastraUrl: ${opts.mastraUrl}`,
      '  reconnect: { initialMs: 50, maxMs: 500 }',
      `http: { host: 127.0.0.1, port: ${port} }`,
      'log: { level: info }',
      'otel: { batch: { scheduledDelayMs: 200 } }',
      'reconcile: { intervalSeconds: 1, overlapSeconds: 5 }',
      `state: { checkpointFile: ${join(opts.dir, 'checkpoint.jsonl')} }`,
    ].join('\n'),
  );
  let log = '';
  let child: ChildProcess | undefined;
  let started = 0;
  const running = (c: ChildProcess | undefined): c is ChildProcess => c !== undefined && c.exitCode === null && c.signalCode === null;
  const ready = async (): Promise<boolean> => (await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => undefined))?.status === 200;
  const kill = async (): Promise<void> => {
    if (!running(child)) return;
    const exited = new Promise((resolve) => child!.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
  };
  return {
    port,
    configFile,
    async start() {
      if (running(child)) throw new Error('a bridge process is still running');
      started++;
      child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts', '--config', configFile], {
        env: { PATH: process.env.PATH, HOME: process.env.HOME, ...opts.env },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      child.stdout!.on('data', (d) => (log += String(d)));
      child.stderr!.on('data', (d) => (log += String(d)));
      try {
        await waitFor(ready, { timeoutMs: 60_000, message: `bridge process ${started} ready` });
      } catch (err) {
        throw new Error(`${(err as Error).message}\n--- bridge log ---\n${log}`);
      }
    },
    kill,
    async killBetweenExports(exports) {
      let seen = exports();
      let changedAt = Date.now();
      await waitFor(
        () => {
          const n = exports();
          if (n !== seen) [seen, changedAt] = [n, Date.now()];
          return Date.now() - changedAt > 60;
        },
        { intervalMs: 5, message: 'a quiet moment between exports' },
      );
      await kill();
    },
    close: kill,
    log: () => log,
    metrics: async () => parseExposition(await (await fetch(`http://127.0.0.1:${port}/metrics`, { headers: { accept: 'text/plain' } })).text()),
  };
}
