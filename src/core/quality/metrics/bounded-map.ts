/**
 * A map that keeps at most `capacity` entries, forgetting the least recently
 * set one. Eviction walks a ring of keys (O(1)), not the Map's iteration
 * order: evicting through `map.keys().next()` after many deletions is slow in
 * V8 (deleted entries stay in the table until it is rebuilt).
 */
export class BoundedMap<K, V> {
  private readonly entries = new Map<K, { value: V; slot: number }>();
  private readonly ring: (K | undefined)[];
  private next = 0;

  constructor(readonly capacity: number) {
    this.ring = new Array<K | undefined>(capacity);
  }

  get(key: K): V | undefined {
    return this.entries.get(key)?.value;
  }

  has(key: K): boolean {
    return this.entries.has(key);
  }

  set(key: K, value: V): void {
    const slot = this.next;
    const old = this.ring[slot];
    if (old !== undefined && this.entries.get(old)?.slot === slot) this.entries.delete(old);
    this.ring[slot] = key;
    this.entries.set(key, { value, slot });
    this.next = (slot + 1) % this.capacity;
  }

  delete(key: K): boolean {
    return this.entries.delete(key);
  }

  get size(): number {
    return this.entries.size;
  }

  *keys(): IterableIterator<K> {
    yield* this.entries.keys();
  }
}
