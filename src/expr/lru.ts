/**
 * An approximately least-recently-used cache in two generations: entries live in `young` or
 * `old`; a hit in `old` moves the entry to `young`; when `young` is full it becomes `old` and
 * the previous `old` is dropped. A hit in `young` (the hot path) is a single Map lookup, and
 * the cache never holds more than `capacity` entries.
 */
export class Lru<K, V> {
  private young = new Map<K, V>();
  private old = new Map<K, V>();
  private readonly half: number;
  constructor(capacity: number) {
    this.half = Math.max(1, Math.floor(capacity / 2));
  }
  get(key: K): V | undefined {
    const v = this.young.get(key);
    if (v !== undefined) return v;
    const o = this.old.get(key);
    if (o !== undefined) {
      this.old.delete(key);
      this.set(key, o);
    }
    return o;
  }
  set(key: K, value: V): void {
    if (!this.young.has(key) && this.young.size >= this.half) {
      this.old = this.young;
      this.young = new Map();
    }
    this.young.set(key, value);
  }
  get size(): number {
    return this.young.size + this.old.size;
  }
}
