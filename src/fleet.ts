// The Mastra servers the bridge follows: one, a fixed list (one per replica), or every address of a DNS name
// (`dns+http://name:port`, resolved again every `refreshMs`, like Prometheus' dns_sd_configs). One SourceSession per
// server; the fleet is also the TaskSource the rest of the bridge looks tasks up through.
//
// Owns: membership (adding and dropping sessions as discovery finds and loses addresses), which servers share a store,
// and routing lookups. Stores: replicas that share one store answer listTasks alike, so the fleet groups servers by
// store (a server's oldest task ids, compared with a member of each known group when it connects) and sends each
// listTasks to one healthy server per group: N replicas on one store cost one reconciliation, not N. getTask and trace
// lookups go to a connected server of each group in turn (the next one when it fails). A server whose store was empty
// when it connected is in its group only tentatively: it is asked as a store of its own until proven (route()), never
// in place of the group's proven servers. Must not: parse events or keep task state.

import { lookup } from 'node:dns/promises';
import type { Logger } from 'pino';
import type { TaskRecord } from './events.js';
import type { SourceSession } from './source-session.js';
import { SourceError, type SourceSink, type SpanRef, type TaskPage, type TaskQuery, type TaskSource } from './sources/types.js';
import { LogThrottle } from './log-throttle.js';

/**
 * Every address of a host name (A and AAAA), through the system resolver (hosts file, DNS). Rejects with `code`
 * ENOTFOUND or ENODATA when the name has no addresses (its servers are then dropped), any other error when the lookup
 * itself failed (they are kept).
 */
export type Resolver = (hostname: string) => Promise<string[]>;

/** A lookup's answer that the name has no addresses now (NXDOMAIN, or no A/AAAA record), not that the lookup failed. */
function noAddresses(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return code === 'ENOTFOUND' || code === 'ENODATA';
}

export const systemResolver: Resolver = async (hostname) => (await lookup(hostname, { all: true, verbatim: true })).map((a) => a.address);

export interface FleetMember {
  /** `host:port`, the `source` label. */
  readonly key: string;
  readonly url: string;
  readonly source: TaskSource;
  readonly session: SourceSession;
  /** Store group; undefined until placed. */
  store: number | undefined;
  /** Placed on an empty store (nothing to compare yet): placed again at the next sync. */
  tentative: boolean;
}

export interface FleetOptions {
  /** Server URLs: `http(s)://…` followed as given, `dns+http(s)://name:port/…` discovered. */
  servers: string[];
  /** A source for one server's base URL. */
  makeSource: (baseUrl: string) => TaskSource;
  /** A session for a new member (the bridge wires it to the pipeline and starts nothing). */
  makeSession: (key: string, source: TaskSource) => SourceSession;
  /** A member was dropped (its session is stopped already). */
  dropped?: (key: string) => void;
  logger: Logger;
  refreshMs?: number;
  resolve?: Resolver;
}

/** A fixed source (in process, or given by the embedder) as a fleet of one. */
export interface FixedMember {
  key: string;
  source: TaskSource;
}

const PROBE_PAGE = 10;

export class Fleet implements TaskSource {
  readonly kind = 'remote' as const;
  private readonly members = new Map<string, FleetMember>();
  private readonly discovered: { template: URL; hostname: string }[] = [];
  private timer: ReturnType<typeof setInterval> | undefined;
  private stopped = false;
  private nextStore = 0;
  private readonly resolveFailureLog = new LogThrottle(1, 20);
  private refreshing: Promise<void> | undefined;

  constructor(private readonly options: FleetOptions) {
    for (const server of options.servers) {
      const u = new URL(server);
      if (u.protocol.startsWith('dns+')) {
        const template = new URL(server.slice('dns+'.length));
        this.discovered.push({ template, hostname: template.hostname });
      }
    }
  }

  /** Whether the bridge may see one task on several streams (then it merges them): a list or discovery. */
  get multi(): boolean {
    return this.options.servers.length > 1 || this.discovered.length > 0;
  }

  get description(): string {
    const names = this.options.servers.map((s) => new URL(s).host);
    return this.options.servers.length === 1 && this.discovered.length === 0
      ? (this.members.values().next().value?.source.description ?? names[0]!)
      : `Mastra servers ${this.options.servers.map((s) => s.replace(/\/\/[^@/]*@/, '//')).join(', ')}`;
  }

  list(): FleetMember[] {
    return [...this.members.values()];
  }

  /** Start the fixed servers and, with discovery, the first lookup and its timer. */
  start(): void {
    for (const server of this.options.servers) {
      if (!new URL(server).protocol.startsWith('dns+')) this.add(server);
    }
    if (this.discovered.length > 0) {
      void this.refresh();
      this.timer = setInterval(() => void this.refresh(), this.options.refreshMs ?? 30_000);
      this.timer.unref();
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    await this.refreshing;
    await Promise.all([...this.members.values()].map((m) => m.session.stop()));
  }

  /**
   * Resolve every discovered name now; add new addresses, drop gone ones. A name that does not exist or has no
   * addresses (ENOTFOUND, ENODATA) has no servers now: its servers are dropped, as Prometheus' dns_sd does (a
   * Kubernetes headless Service with no ready pod answers so). Any other failure (EAI_AGAIN, ETIMEOUT, the resolver
   * refusing, …) says nothing about the replicas: the servers found before are kept.
   */
  refresh(): Promise<void> {
    this.refreshing ??= this.doRefresh().finally(() => {
      this.refreshing = undefined;
    });
    return this.refreshing;
  }

  private async doRefresh(): Promise<void> {
    const resolve = this.options.resolve ?? systemResolver;
    const wanted = new Set<string>();
    const keep = new Set<string>();
    for (const d of this.discovered) {
      let addresses: string[];
      try {
        addresses = await resolve(d.hostname);
      } catch (error) {
        if (noAddresses(error)) {
          if (this.resolveFailureLog.take()) this.options.logger.warn({ err: error, name: d.hostname }, 'discovery: the Mastra name has no addresses; following none of its servers until it has');
          continue;
        }
        // Keep following the last known addresses: a DNS hiccup must not drop every replica.
        for (const m of this.members.values()) if (m.url.startsWith(`${d.template.protocol}//`)) keep.add(m.url);
        if (this.resolveFailureLog.take()) this.options.logger.warn({ err: error, name: d.hostname }, 'discovery: resolving the Mastra name failed; keeping the servers found before');
        continue;
      }
      for (const address of addresses) {
        const u = new URL(d.template.href);
        u.hostname = address.includes(':') ? `[${address}]` : address;
        wanted.add(u.href.replace(/\/$/, ''));
      }
    }
    if (this.stopped) return;
    for (const url of wanted) if (![...this.members.values()].some((m) => m.url === url)) this.add(url);
    const fixed = new Set(this.options.servers.filter((s) => !s.startsWith('dns+')).map((s) => s.replace(/\/$/, '')));
    for (const m of [...this.members.values()]) {
      if (fixed.has(m.url) || wanted.has(m.url) || keep.has(m.url)) continue;
      this.members.delete(m.key);
      this.options.logger.info({ source: m.key }, 'discovery: Mastra server gone; no longer followed');
      await m.session.stop();
      this.options.dropped?.(m.key);
    }
  }

  private add(url: string): void {
    const source = this.options.makeSource(url);
    const key = new URL(url).host;
    if (this.members.has(key)) return;
    const session = this.options.makeSession(key, source);
    const member: FleetMember = { key, url: url.replace(/\/$/, ''), source, session, store: undefined, tentative: false };
    this.members.set(key, member);
    if (this.discovered.length > 0) this.options.logger.info({ source: key }, 'discovery: following a Mastra server');
    void session.start(source);
  }

  /** Add a fixed member (in process, or a source given by the embedder). */
  addFixed(member: FixedMember): FleetMember {
    const session = this.options.makeSession(member.key, member.source);
    const m: FleetMember = { key: member.key, url: '', source: member.source, session, store: 0, tentative: false };
    this.members.set(member.key, m);
    void session.start(member.source);
    return m;
  }

  // Stores.

  /**
   * Place a member in a store group (on connect, before its sync): its oldest task ids against those of a connected
   * member of each known group. Same ids: same store. No tasks yet: tentatively with the first group, placed again at
   * its next sync. Costs one listTasks on the member and one per known group, per connect — not per pass.
   */
  async place(key: string, signal?: AbortSignal): Promise<void> {
    const member = this.members.get(key);
    if (!member || (member.store !== undefined && !member.tentative)) return;
    const probe = async (m: FleetMember): Promise<Set<string>> =>
      new Set((await m.source.listTasks({ orderBy: 'createdAt', orderDirection: 'asc', page: 0, perPage: PROBE_PAGE }, signal)).tasks.map((t) => t.id));
    const mine = await probe(member);
    const groups = this.groups();
    if (mine.size === 0) {
      member.store ??= groups[0]?.[0] ?? this.nextStore++;
      member.tentative = true;
      return;
    }
    let inconclusive = false;
    for (const [store, ms] of groups) {
      const other = ms.find((m) => m !== member && !m.tentative && m.session.isConnected) ?? ms.find((m) => m !== member && !m.tentative);
      if (!other) continue;
      const theirs = await probe(other).catch(() => undefined);
      if (theirs === undefined) inconclusive = true;
      else if ([...mine].some((id) => theirs.has(id))) {
        this.setStore(member, store);
        return;
      }
    }
    // A group could not be asked (its servers down): no verdict yet. Tentatively with the first group, placed again
    // at the next pass, rather than taken for a store of its own for good.
    if (inconclusive) {
      member.store ??= groups[0]?.[0] ?? this.nextStore++;
      member.tentative = true;
      return;
    }
    // No placed server shares its tasks. Sitting tentatively in a group no placed server holds, it founds that group
    // (the other tentative members are compared with it at their next sync); otherwise it is a store of its own.
    const alone = member.store !== undefined && !groups.some(([s, ms]) => s === member.store && ms.some((m) => m !== member && !m.tentative));
    this.setStore(member, alone ? member.store! : this.nextStore++);
  }

  /** Place again the members whose store was empty when they connected (before a periodic pass). */
  async settle(signal?: AbortSignal): Promise<void> {
    for (const m of this.members.values()) if (m.tentative && m.session.isConnected) await this.place(m.key, signal).catch(() => undefined);
  }

  private setStore(member: FleetMember, store: number): void {
    if (member.store !== store || member.tentative) this.options.logger.info({ source: member.key, store }, 'Mastra server placed in a store group');
    member.store = store;
    member.tentative = false;
  }

  /** Store groups, each with its members (connected first); members not placed yet form none. */
  groups(): [number, FleetMember[]][] {
    const by = new Map<number, FleetMember[]>();
    for (const m of this.members.values()) {
      if (m.store === undefined) continue;
      const list = by.get(m.store) ?? [];
      list.push(m);
      by.set(m.store, list);
    }
    for (const list of by.values()) list.sort((a, b) => Number(b.session.isConnected) - Number(a.session.isConnected));
    return [...by.entries()].sort((a, b) => a[0] - b[0]);
  }

  /**
   * Where lookups go: one list per store group of its proven members (connected first), and every tentative member as
   * a store of its own; before any is placed, every member as one group. A tentative member's store was empty (or could
   * not be compared) when it connected, so its group is a guess: two replicas on separate stores that were both empty
   * at connect share one. Letting it answer for the group would take its empty store's "not found" for the busy
   * replica's store (whose running tasks would look vanished, and reconciliation would finish them as failed); leaving
   * it out would miss its own tasks. So it is asked as well, never instead: a task is missing only when every store
   * says so, and a store that cannot answer fails the lookup (it may hold the task). When the guess was right (one
   * shared store), the same records come back twice; listTasks drops the repeats by id, and the next settle() merges
   * the member into its group once the store has tasks to compare.
   */
  private route(): FleetMember[][] {
    const g: FleetMember[][] = [];
    for (const [, ms] of this.groups()) {
      const proven = ms.filter((m) => !m.tentative);
      if (proven.length > 0) g.push(proven);
      for (const m of ms) if (m.tentative) g.push([m]);
    }
    if (g.length > 0) return g;
    const all = [...this.members.values()].sort((a, b) => Number(b.session.isConnected) - Number(a.session.isConnected));
    return all.length > 0 ? [all] : [];
  }

  /** Call `fn` on the first member of `group` that answers; the last error when none does. */
  private async first<T>(group: FleetMember[], fn: (s: TaskSource) => Promise<T>): Promise<T> {
    let last: unknown = new SourceError('no Mastra server to ask', 'unavailable');
    for (const m of group) {
      try {
        return await fn(m.source);
      } catch (error) {
        last = error;
        if (error instanceof SourceError && error.kind === 'unauthorized') throw error;
      }
    }
    throw last;
  }

  // TaskSource.

  run(_sink: SourceSink, _signal: AbortSignal): Promise<void> {
    return Promise.reject(new Error('a fleet runs one session per server: use start()'));
  }

  async getTask(taskId: string, signal?: AbortSignal): Promise<TaskRecord | null> {
    const groups = this.route();
    if (groups.length === 0) throw new SourceError('no Mastra server to ask', 'unavailable');
    let failure: unknown;
    for (const group of groups) {
      try {
        const r = await this.first(group, (s) => s.getTask(taskId, signal));
        if (r) return r;
      } catch (error) {
        failure = error;
      }
    }
    // Not found where every store answered; a store that could not answer may hold it.
    if (failure !== undefined) throw failure;
    return null;
  }

  async listTasks(query: TaskQuery, signal?: AbortSignal): Promise<TaskPage> {
    const groups = this.route();
    if (groups.length === 0) throw new SourceError('no Mastra server to ask', 'unavailable');
    if (groups.length === 1) return this.first(groups[0]!, (s) => s.listTasks(query, signal));
    const out: TaskPage = { tasks: [], total: 0, invalid: 0 };
    // Ids are unique per store: a repeat is a tentative member answering for a store already asked (see route()).
    const seen = new Set<string>();
    for (const group of groups) {
      const page = await this.first(group, (s) => s.listTasks(query, signal));
      out.total += page.total;
      out.invalid += page.invalid;
      for (const t of page.tasks) {
        if (seen.has(t.id)) out.total--;
        else {
          seen.add(t.id);
          out.tasks.push(t);
        }
      }
    }
    return out;
  }

  async findToolCallSpan(runId: string, toolCallId: string, signal?: AbortSignal, startedAt?: number): Promise<SpanRef | null | undefined> {
    const groups = this.route();
    let answer: SpanRef | null | undefined;
    for (const group of groups) {
      const r = await this.first(group, (s) => s.findToolCallSpan(runId, toolCallId, signal, startedAt)).catch(() => null);
      if (r) return r;
      if (r === null) answer = null;
    }
    return answer;
  }
}
