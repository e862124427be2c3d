// Reads Prometheus text exposition (0.0.4) into samples, for assertions on what /metrics really says.
import type { FastifyInstance } from 'fastify';
import { BridgeMetrics } from '../../src/metrics.js';

/** A BridgeMetrics with one of everything recorded (the metric tests and the promtool lint render it). */
export function withTraffic(opts: Partial<ConstructorParameters<typeof BridgeMetrics>[0]> = {}): BridgeMetrics {
  const m = new BridgeMetrics({ version: '1.2.3', defaultMetrics: false, ...opts });
  m.taskStarted('agent-a', 'tool-x');
  m.taskFinished('agent-a', 'tool-x', 'failed', 1.5, { traceId: 'a'.repeat(32), spanId: 'b'.repeat(16) });
  m.taskFinished('agent-a', 'tool-x', 'completed', 0.2);
  m.queueWaited('agent-a', 'tool-x', 0.01);
  m.resumedAfter('agent-a', 'tool-x', 42);
  m.outputChunk('agent-a', 'tool-x');
  m.event('running', 'applied', 1_700_000_000);
  m.sourceUp('mastra:4111', true);
  m.sourceReconnect('mastra:4111', 'refused');
  return m;
}

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export function parseExposition(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)/.exec(line);
    if (!m) throw new Error(`unparseable exposition line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!.replace(/\\(.)/g, '$1');
    out.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return out;
}

/** Sum of the samples of `name` whose labels include `match`. */
export function total(samples: Sample[], name: string, match: Record<string, string> = {}): number {
  return samples
    .filter((s) => s.name === name && Object.entries(match).every(([k, v]) => s.labels[k] === v))
    .reduce((a, s) => a + s.value, 0);
}

export async function scrape(app: FastifyInstance): Promise<Sample[]> {
  const res = await app.inject({ method: 'GET', url: '/metrics', headers: { accept: 'text/plain' } });
  if (res.statusCode !== 200) throw new Error(`/metrics answered ${res.statusCode}`);
  return parseExposition(res.body);
}
