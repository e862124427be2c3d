// One source's connection state machine: the joint between a TaskSource (in process, or one remote Mastra server) and
// the pipeline. A bridge following several Mastra replicas has one session per replica.
//
// Owns: connected/synced state and the reason it is not ready; the sync pass after every connect, tagged with a
// generation so a sync that finishes after a later disconnect or reconnect is ignored; readiness waiters; the
// connect/disconnect log lines (a source that never gets through says so once per reason, then every 20th attempt);
// the in-process chunk hand-off (ChunkBatch: everything queued is handed over before a connect or disconnect is acted
// on, and on flush()). Must not: parse events, reconcile, or know how many other sessions exist.

import type { Logger } from 'pino';
import { ChunkBatch } from './chunk-batch.js';
import type { SourceSink, TaskSource } from './sources/types.js';

/** Where a session hands what its source delivers; `source` is the session's key (exactly-once across streams). */
export interface SessionTarget {
  chunk(chunk: unknown, source: string): void;
  frame(data: string, source: string): void;
  dropped(reason: string, detail: string): void;
}

export interface SessionDeps {
  /** A short, bounded, secret-free name: `host:port` of a remote server, `in-process`. Used as a metric label. */
  key: string;
  /** Human-readable description for logs and the landing page. */
  description: string;
  target: SessionTarget;
  /** The sync pass run after every connect (reconciliation). */
  sync: (signal: AbortSignal) => Promise<void>;
  /** The connection went up or down. */
  up?: (up: boolean) => void;
  /** A stream ended or an attempt failed, with its bounded reason (not called for `stopped`). */
  reconnect?: (reason: string) => void;
  /** Readiness changed (connected, synced, disconnected). */
  changed?: () => void;
  /** Open tasks, for the "ready" log line. */
  openTasks?: () => number;
  logger: Logger;
  now?: () => number;
}

export interface SessionStatus {
  key: string;
  description: string;
  connected: boolean;
  /** The sync pass after the last connect has been applied (or failed: the live stream corrects itself). */
  synced: boolean;
  /** Why the session is not ready, when it is not. */
  reason?: string;
  /** Times the stream ended or an attempt failed since the session started. */
  disconnects: number;
}

export class SourceSession implements SourceSink {
  readonly key: string;
  private connectedNow = false;
  private syncedNow = false;
  private reason: string | undefined = 'connecting to the Mastra background-task stream';
  /** Bumped on every connect and disconnect: a sync pass belongs to the connection that started it. */
  private generation = 0;
  /** Connection attempts that failed since the last successful connect, and the reason last logged. */
  private failedAttempts = 0;
  private lastFailure: string | undefined;
  private disconnects = 0;
  /** Connections that ended with no frame within 10 s of opening, in a row (a server that accepts and hangs up). */
  private briefConnections = 0;
  private connectedAt = 0;
  private sawFrame = false;
  private readonly waiters = new Set<() => void>();
  private readonly abort = new AbortController();
  private readonly chunks: ChunkBatch;
  private running: Promise<void> | undefined;

  constructor(private readonly deps: SessionDeps) {
    this.key = deps.key;
    const target = deps.target;
    const key = deps.key;
    // In-process chunks are handled once per event-loop turn, off Mastra's publish path (chunk-batch.ts says why).
    this.chunks = new ChunkBatch(
      (c) => target.chunk(c, key),
      (error) => deps.logger.error({ err: error }, 'handling a background-task chunk failed'),
    );
  }

  get isConnected(): boolean {
    return this.connectedNow;
  }

  get ready(): boolean {
    return this.connectedNow && this.syncedNow;
  }

  /** Aborted when the session stops. */
  get signal(): AbortSignal {
    return this.abort.signal;
  }

  status(): SessionStatus {
    const s: SessionStatus = {
      key: this.key,
      description: this.deps.description,
      connected: this.connectedNow,
      synced: this.syncedNow,
      disconnects: this.disconnects,
    };
    if (!this.ready && this.reason) s.reason = this.reason;
    return s;
  }

  /** Run `source` into this session until stop(). */
  start(source: TaskSource): Promise<void> {
    this.running ??= source.run(this, this.abort.signal).catch((error) => {
      this.deps.logger.error({ err: error }, 'source stopped unexpectedly');
    });
    return this.running;
  }

  /** Stop the source and hand over what it queued. Idempotent. */
  async stop(): Promise<void> {
    this.abort.abort();
    await this.running;
    this.chunks.flush();
  }

  /** Resolves once connected and synced; rejects after `timeoutMs`. */
  whenReady(timeoutMs = 30_000): Promise<void> {
    if (this.ready) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => {
        this.waiters.delete(done);
        reject(new Error(`source ${this.key} not ready after ${timeoutMs} ms: ${this.reason ?? 'unknown'}`));
      }, timeoutMs);
      const done = (): void => {
        clearTimeout(t);
        this.waiters.delete(done);
        resolve();
      };
      this.waiters.add(done);
    });
  }

  /** Hand every queued in-process chunk over now. */
  flush(): void {
    this.chunks.flush();
  }

  /** Resolves once every chunk queued so far has been handed over. */
  drained(): Promise<void> {
    return this.chunks.drained();
  }

  // SourceSink: what the source calls.

  chunk(c: unknown): void {
    this.chunks.push(c);
  }

  frame(d: string): void {
    if (this.chunks.size > 0) this.chunks.flush();
    this.sawFrame = true;
    this.deps.target.frame(d, this.key);
  }

  dropped(why: 'oversized' | 'not_json', detail: string): void {
    if (this.chunks.size > 0) this.chunks.flush();
    this.deps.target.dropped(why, detail);
  }

  connected(): void {
    this.chunks.flush();
    this.connectedNow = true;
    this.connectedAt = (this.deps.now ?? Date.now)();
    this.sawFrame = false;
    this.failedAttempts = 0;
    this.lastFailure = undefined;
    this.syncedNow = false;
    this.reason = 'initial sync with Mastra not finished';
    this.deps.up?.(true);
    const gen = ++this.generation;
    const log = this.deps.logger;
    log.info({ source: this.deps.description }, 'connected to the background-task stream');
    this.deps.changed?.();
    let pass: Promise<void>;
    try {
      pass = this.deps.sync(this.abort.signal);
    } catch (error) {
      pass = Promise.reject(error);
    }
    pass.then(
      () => {
        if (gen !== this.generation || !this.connectedNow) return;
        this.syncedNow = true;
        this.reason = undefined;
        log.info({ openTasks: this.deps.openTasks?.() }, 'initial sync applied; ready');
        this.becameReady();
      },
      (error: unknown) => {
        if (gen !== this.generation || this.abort.signal.aborted) return;
        this.reason = `initial sync failed: ${(error as Error).message}`;
        log.warn({ err: error }, 'initial sync failed; open tasks will be picked up from the stream');
        // The stream is live and will correct itself; do not keep the session unready forever.
        this.syncedNow = true;
        this.becameReady();
      },
    );
  }

  disconnected(why: string, error?: unknown): void {
    this.chunks.flush();
    const wasConnected = this.connectedNow;
    if (why !== 'stopped') {
      this.disconnects++;
      this.deps.reconnect?.(why);
    }
    this.connectedNow = false;
    this.syncedNow = false;
    this.generation++;
    this.reason = `disconnected: ${why}`;
    this.deps.up?.(false);
    this.deps.changed?.();
    if (this.abort.signal.aborted) return;
    const log = this.deps.logger;
    if (wasConnected) {
      // A server that accepts and hangs up at once would log a line per reconnect: after the first such brief
      // connection (no frame, under 10 s), one in twenty.
      const brief = !this.sawFrame && (this.deps.now ?? Date.now)() - this.connectedAt < 10_000;
      this.briefConnections = brief ? this.briefConnections + 1 : 0;
      if (this.briefConnections <= 1 || this.briefConnections % 20 === 0) {
        log.warn({ reason: why, err: error, ...(this.briefConnections > 1 ? { briefConnections: this.briefConnections } : {}) }, 'background-task stream ended; reconnecting');
      }
      return;
    }
    // A source that never gets through (wrong MASTRA_URL, port or prefix; Mastra down) must say so, without a line
    // per retry: the first failure of each kind, then every 20th. Rejected credentials are logged by the source.
    this.failedAttempts++;
    if (why !== 'unauthorized' && (why !== this.lastFailure || this.failedAttempts % 20 === 0)) {
      this.lastFailure = why;
      log.warn(
        { reason: why, err: error, attempts: this.failedAttempts, source: this.deps.description },
        'cannot connect to the background-task stream; retrying with backoff',
      );
    }
  }

  private becameReady(): void {
    this.deps.changed?.();
    for (const w of [...this.waiters]) w();
  }
}
