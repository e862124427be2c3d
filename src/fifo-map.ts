// A Map bounded by size, oldest entries dropped first: the bookkeeping under the tracker's finished and evicted ids
// and the task API's span index.
//
// Why not just a Map and its first key: V8 leaves deleted entries as holes at the front of a Map until it rehashes,
// and every new iterator walks over them, so "delete the first entry" costs O(deleted so far) — tens of µs per call
// once a cap is reached (see bench/). The age order is kept instead in an array of keys beside the map, with a head
// index. A key set again moves to the newest end; a key deleted leaves its slot behind. Such stale slots are counted
// per key and skipped when they reach the head, and compacted away when they outnumber the live ones.

export class FifoMap<K, V> {
  private readonly map = new Map<K, V>();
  private order: K[] = [];
  private head = 0;
  /** Per key, how many of its slots in `order` are stale (an older set, or a deleted entry). */
  private readonly stale = new Map<K, number>();

  /** `max`: the most entries kept; setting one more drops the oldest. */
  constructor(private readonly max: number) {}

  get size(): number {
    return this.map.size;
  }

  /** Slots in the age order, stale ones included (tests: it stays within a small multiple of `size`). */
  get slots(): number {
    return this.order.length - this.head;
  }

  get(key: K): V | undefined {
    return this.map.get(key);
  }

  has(key: K): boolean {
    return this.map.has(key);
  }

  /** Sets the entry as the newest, then drops the oldest while more than `max` are kept. */
  set(key: K, value: V): void {
    if (this.map.has(key)) this.markStale(key);
    this.map.set(key, value);
    this.order.push(key);
    this.dropOldestWhile(() => this.map.size > this.max);
  }

  delete(key: K): boolean {
    if (!this.map.delete(key)) return false;
    this.markStale(key);
    this.compact();
    return true;
  }

  /** Drops the oldest entries as long as `drop(value, key)` says so for the oldest one. */
  dropOldestWhile(drop: (value: V, key: K) => boolean): void {
    while (this.head < this.order.length) {
      const key = this.order[this.head] as K;
      const n = this.stale.size > 0 ? this.stale.get(key) : undefined;
      if (n !== undefined) {
        if (n > 1) this.stale.set(key, n - 1);
        else this.stale.delete(key);
      } else {
        if (!drop(this.map.get(key) as V, key)) break;
        this.map.delete(key);
      }
      this.head++;
    }
    this.compact();
  }

  private markStale(key: K): void {
    this.stale.set(key, (this.stale.get(key) ?? 0) + 1);
  }

  private compact(): void {
    const live = this.map.size;
    if (this.order.length - this.head > 2 * live + 1024) {
      // Mostly stale: keep each live key's newest slot, in order.
      const kept: K[] = [];
      const seen = new Set<K>();
      for (let i = this.order.length - 1; i >= this.head; i--) {
        const key = this.order[i] as K;
        if (!seen.has(key) && this.map.has(key)) kept.push(key);
        seen.add(key);
      }
      this.order = kept.reverse();
      this.head = 0;
      this.stale.clear();
    } else if (this.head > 1024 && this.head * 2 > this.order.length) {
      this.order = this.order.slice(this.head);
      this.head = 0;
    }
  }
}
