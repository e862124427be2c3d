// A short-TTL, size-bounded cache of task lookups in front of the source, with single flight: identical lookups in
// flight share one upstream call. It exists to protect Mastra from a busy dashboard or a script polling the API.
//
// Written here (about 50 lines) rather than taken from toad-cache, which is only a transitive dependency of
// @fastify/rate-limit: an API we do not declare could change under us, and we need single flight and
// expiry-from-completion, which a plain LRU does not give.
//
// An entry expires `ttlMs` after its lookup settles (not after it starts), so a slow answer is still reused; a failed
// lookup is dropped at once, so errors are never cached. Eviction is least recently used (Map insertion order), by
// entries and by bytes: a settled answer is weighed with `sizeOf` (its JSON length by default), so a few huge pages
// cannot hold the memory many small answers would share (an answer alone over the budget is not kept).

interface Entry<V> {
  value: Promise<V>;
  expiresAt: number;
  bytes: number;
}

export class LookupCache<V> {
  private readonly entries = new Map<string, Entry<V>>();
  private totalBytes = 0;

  constructor(
    private readonly ttlMs: number,
    private readonly maxEntries: number,
    private readonly now: () => number = Date.now,
    private readonly maxBytes: number = Number.POSITIVE_INFINITY,
    private readonly sizeOf: (value: V) => number = (v) => JSON.stringify(v ?? null).length,
  ) {}

  get size(): number {
    return this.entries.size;
  }

  /** Bytes of the settled answers held. */
  get bytes(): number {
    return this.totalBytes;
  }

  private drop(key: string): void {
    const e = this.entries.get(key);
    if (e === undefined) return;
    this.entries.delete(key);
    this.totalBytes -= e.bytes;
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
    if (found) this.drop(key);
    const entry: Entry<V> = { value: load(), expiresAt: Number.POSITIVE_INFINITY, bytes: 0 };
    this.entries.set(key, entry);
    entry.value.then(
      (v) => {
        entry.expiresAt = this.now() + this.ttlMs;
        if (this.entries.get(key) !== entry) return;
        let bytes: number;
        try {
          bytes = this.sizeOf(v);
        } catch {
          bytes = Number.POSITIVE_INFINITY;
        }
        if (bytes > this.maxBytes) {
          this.drop(key);
          return;
        }
        entry.bytes = bytes;
        this.totalBytes += bytes;
        while (this.totalBytes > this.maxBytes) this.drop(this.entries.keys().next().value as string);
      },
      () => {
        if (this.entries.get(key) === entry) this.drop(key);
      },
    );
    while (this.entries.size > this.maxEntries) this.drop(this.entries.keys().next().value as string);
    return { value: entry.value, hit: false };
  }
}
