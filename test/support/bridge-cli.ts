// The bridge as its own process (`src/main.ts --config FILE`), for the tests that SIGKILL it and start it again on
// the same checkpoint: one config file (a remote Mastra, a checkpoint, short reconnects and reconciliation), one
// port, and the output of every process started from it, kept for failure messages.
import { type ChildProcess, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type Sample, parseExposition } from './metrics-text.js';
import { freePort } from './poll.js';

export interface BridgeCli {
  readonly port: number;
  readonly configFile: string;
  /** A new bridge process on the same config (and checkpoint). */
  start(): ChildProcess;
  /** Everything every process started so far printed. */
  log(): string;
  metrics(): Promise<Sample[]>;
  /** `/readyz` answers 200 (false while nothing listens). */
  ready(): Promise<boolean>;
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
  return {
    port,
    configFile,
    start() {
      const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts', '--config', configFile], {
        env: { PATH: process.env.PATH, HOME: process.env.HOME, ...opts.env },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      child.stdout!.on('data', (d) => (log += String(d)));
      child.stderr!.on('data', (d) => (log += String(d)));
      return child;
    },
    log: () => log,
    metrics: async () => parseExposition(await (await fetch(`http://127.0.0.1:${port}/metrics`, { headers: { accept: 'text/plain' } })).text()),
    ready: async () => (await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => undefined))?.status === 200,
  };
}
