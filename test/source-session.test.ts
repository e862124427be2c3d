// SourceSession alone: a scripted source drives it; no Mastra, no network.
import pino from 'pino';
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { SourceSession, type SessionDeps } from '../src/source-session.js';
import type { SourceSink, TaskSource } from '../src/sources/types.js';

function deferred(): { promise: Promise<void>; resolve: () => void; reject: (e: Error) => void } {
  let resolve!: () => void;
  let reject!: (e: Error) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** A source whose sink the test drives by hand. */
class ScriptedSource implements TaskSource {
  readonly kind = 'remote' as const;
  readonly description = 'Mastra server http://127.0.0.1:1/api';
  sink!: SourceSink;
  async run(sink: SourceSink, signal: AbortSignal): Promise<void> {
    this.sink = sink;
    await new Promise<void>((r) => signal.addEventListener('abort', () => r(), { once: true }));
    sink.disconnected('stopped');
  }
  getTask = async () => null;
  listTasks = async () => ({ tasks: [], total: 0, invalid: 0 });
  findToolCallSpan = async () => undefined;
}

function setup(overrides: Partial<SessionDeps> = {}) {
  const lines: { msg: string; reason?: string; attempts?: number }[] = [];
  const logger = pino(
    { level: 'debug' },
    new Writable({
      write(chunk, _enc, cb) {
        lines.push(JSON.parse(String(chunk)));
        cb();
      },
    }),
  );
  const syncs: ReturnType<typeof deferred>[] = [];
  const frames: [string, string][] = [];
  const chunks: [unknown, string][] = [];
  const ups: boolean[] = [];
  const reconnects: string[] = [];
  const session = new SourceSession({
    key: '127.0.0.1:1',
    description: 'test source',
    target: { frame: (d, s) => void frames.push([d, s]), chunk: (c, s) => void chunks.push([c, s]), dropped: () => undefined },
    sync: () => {
      const d = deferred();
      syncs.push(d);
      return d.promise;
    },
    up: (u) => void ups.push(u),
    reconnect: (r) => void reconnects.push(r),
    logger,
    ...overrides,
  });
  const source = new ScriptedSource();
  void session.start(source);
  return { session, source, syncs, frames, chunks, ups, reconnects, lines };
}

const turn = () => new Promise((r) => setImmediate(r));

describe('SourceSession', () => {
  it('connect -> sync -> ready, and whenReady resolves', async () => {
    const { session, source, syncs, ups } = setup();
    await turn();
    expect(session.ready).toBe(false);
    expect(session.status().reason).toMatch(/connecting/);
    const ready = session.whenReady(5_000);
    source.sink.connected();
    expect(session.isConnected).toBe(true);
    expect(session.ready).toBe(false);
    expect(session.status().reason).toMatch(/initial sync/);
    expect(syncs).toHaveLength(1);
    syncs[0]!.resolve();
    await ready;
    expect(session.ready).toBe(true);
    expect(session.status()).toMatchObject({ connected: true, synced: true, key: '127.0.0.1:1' });
    expect(session.status().reason).toBeUndefined();
    expect(ups).toEqual([true]);
    await session.stop();
  });

  it('a sync that finishes after a reconnect is ignored; the new connection waits for its own', async () => {
    const { session, source, syncs, reconnects } = setup();
    await turn();
    source.sink.connected();
    source.sink.disconnected('reset');
    source.sink.connected();
    expect(syncs).toHaveLength(2);
    syncs[0]!.resolve(); // the first connection's sync, late
    await turn();
    expect(session.ready).toBe(false);
    syncs[1]!.resolve();
    await session.whenReady(5_000);
    expect(session.ready).toBe(true);
    expect(reconnects).toEqual(['reset']);
    expect(session.status().disconnects).toBe(1);
    await session.stop();
  });

  it('a sync that finishes after a disconnect does not make the session ready', async () => {
    const { session, source, syncs } = setup();
    await turn();
    source.sink.connected();
    source.sink.disconnected('eof');
    syncs[0]!.resolve();
    await turn();
    expect(session.ready).toBe(false);
    expect(session.status().reason).toBe('disconnected: eof');
    await session.stop();
  });

  it('a failed sync still makes the session ready (the live stream corrects itself), with the reason logged', async () => {
    const { session, source, syncs, lines } = setup();
    await turn();
    source.sink.connected();
    syncs[0]!.reject(new Error('listTasks failed'));
    await session.whenReady(5_000);
    expect(lines.some((l) => l.msg.includes('initial sync failed'))).toBe(true);
    await session.stop();
  });

  it('failed attempts are logged throttled: the first of each reason, then every 20th', async () => {
    const { session, source, lines, reconnects } = setup();
    await turn();
    for (let i = 0; i < 45; i++) source.sink.disconnected('refused');
    source.sink.disconnected('timeout');
    for (let i = 0; i < 5; i++) source.sink.disconnected('unauthorized');
    const warned = lines.filter((l) => l.msg.startsWith('cannot connect'));
    expect(warned.map((l) => [l.reason, l.attempts])).toEqual([
      ['refused', 1],
      ['refused', 20],
      ['refused', 40],
      ['timeout', 46],
    ]);
    expect(reconnects).toHaveLength(51);
    // A stream that was up and ended is one line each time (it is rare and worth seeing).
    source.sink.connected();
    source.sink.disconnected('eof');
    expect(lines.filter((l) => l.msg.includes('stream ended; reconnecting'))).toHaveLength(1);
    await session.stop();
  });

  it('in-process chunks are handed over per turn with the session key, and before a disconnect is acted on', async () => {
    const { session, source, chunks, frames } = setup();
    await turn();
    source.sink.connected();
    source.sink.chunk({ n: 1 });
    source.sink.chunk({ n: 2 });
    expect(chunks).toHaveLength(0);
    source.sink.frame('x'); // a frame flushes what is queued first: order kept
    expect(chunks).toEqual([
      [{ n: 1 }, '127.0.0.1:1'],
      [{ n: 2 }, '127.0.0.1:1'],
    ]);
    expect(frames).toEqual([['x', '127.0.0.1:1']]);
    source.sink.chunk({ n: 3 });
    source.sink.disconnected('eof');
    expect(chunks).toHaveLength(3);
    source.sink.chunk({ n: 4 });
    await session.drained();
    expect(chunks).toHaveLength(4);
    await session.stop();
  });

  it('whenReady rejects after its timeout, naming the reason', async () => {
    const { session } = setup();
    await expect(session.whenReady(20)).rejects.toThrow(/not ready after 20 ms: connecting/);
    await session.stop();
  });
});
