// A short-TTL, size-bounded cache of task lookups in front of the source, with single flight: identical lookups in
// flight share one upstream call. It exists to protect Mastra from a busy dashboard or a script polling the API.
//
// Written here (about 50 lines) rather than taken from toad-cache, which is only a transitive dependency of
// @fastify/rate-limit: an API we do not declare could change under us, and we need single flight and
// expiry-from-completion, which a plain LRU does not give.
//
// An entry expires `ttlMs` after its lookup settles (not after it starts), so a slow answer is still reused; a failed
// lookup is dropped at once, so errors are never cached. Eviction is least recently used (Map insertion order).

export class LookupCache<V> {
  private readonly entries = new Map<string, { value: Promise<V>; expiresAt: number }>();

  constructor(
    private readonly ttlMs: number,
    private readonly maxEntries: number,
    private readonly now: () => number = Date.now,
  ) {}

  get size(): number {
    return this.entries.size;
  }

  /** The cached (or in-flight) value for `key`, or `load()`'s; `hit` says which. */
  get(key: string, load: () => Promise<V>): { value: Promise<V>; hit: boolean } {
    if (this.ttlMs <= 0) return { value: load(), hit: false };
    const found = this.entries.get(key);
    if (found && found.expiresAt > this.now()) {
      // Refresh recency.
      this.entries.delete(key);
      this.entries.set(key, found);
      return { value: found.value, hit: true };
    }
    if (found) this.entries.delete(key);
    const entry = { value: load(), expiresAt: Number.POSITIVE_INFINITY };
    this.entries.set(key, entry);
    entry.value.then(
      () => {
        entry.expiresAt = this.now() + this.ttlMs;
      },
      () => {
        if (this.entries.get(key) === entry) this.entries.delete(key);
      },
    );
    while (this.entries.size > this.maxEntries) {
      const oldest = this.entries.keys().next().value as string;
      this.entries.delete(oldest);
    }
    return { value: entry.value, hit: false };
  }
}
