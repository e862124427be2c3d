// Test support: a real Alertmanager on a free 127.0.0.1 port with a temp config and storage, no cluster gossip
// ($ALERTMANAGER_BIN, else the Go-built 0.35 of test/peers/build.sh when built, else Debian's 0.25 in /usr/bin); and a
// webhook receiver (a tiny HTTP server) that records what it gets.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startPeer } from './child.js';
import { peerBinary } from './peers.js';
import { freePort } from './poll.js';

export const ALERTMANAGER_BIN = peerBinary('alertmanager', '/usr/bin/prometheus-alertmanager');
/** amtool of the same Alertmanager (Debian's is /usr/bin/amtool). */
export const AMTOOL_BIN = peerBinary('amtool', '/usr/bin/amtool');

export interface AlertmanagerHandle {
  url: string;
  close(): Promise<void>;
  logs(): string;
}

export async function startAlertmanager(configYaml: string): Promise<AlertmanagerHandle> {
  const dir = await mkdtemp(join(tmpdir(), 'am-test-'));
  const configPath = join(dir, 'alertmanager.yml');
  await writeFile(configPath, configYaml);
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const peer = await startPeer({
    name: 'alertmanager',
    bin: ALERTMANAGER_BIN,
    args: [`--config.file=${configPath}`, `--storage.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`, '--cluster.listen-address='],
    ready: async () => (await fetch(`${url}/-/ready`)).ok,
    readyTimeoutMs: 20_000,
    intervalMs: 100,
    readyMessage: `${url}/-/ready`,
    cleanup: () => rm(dir, { recursive: true, force: true }),
  });
  return { url, close: peer.close, logs: peer.output };
}

export interface WebhookAlert {
  status: 'firing' | 'resolved';
  labels: Record<string, string>;
  annotations: Record<string, string>;
}
export interface WebhookMessage {
  receiver: string;
  status: string;
  alerts: WebhookAlert[];
}

export interface WebhookReceiver {
  url: string;
  messages: WebhookMessage[];
  close(): Promise<void>;
}

export async function startWebhookReceiver(): Promise<WebhookReceiver> {
  const messages: WebhookMessage[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      try {
        messages.push(JSON.parse(body) as WebhookMessage);
      } catch {
        // not an Alertmanager message: ignore
      }
      res.writeHead(200).end();
    });
  });
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/alerts`,
    messages,
    close: () => new Promise<void>((done) => server.close(() => done())),
  };
}
