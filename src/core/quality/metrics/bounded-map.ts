/**
 * A map that keeps at most `capacity` entries and, optionally, at most
 * `maxBytes` of estimated size (keys and values a client chose: ids, sessions),
 * forgetting the least recently set entries first. Eviction walks a ring of
 * keys (O(1) amortised), not the Map's iteration order: evicting through
 * `map.keys().next()` after many deletions is slow in V8 (deleted entries stay
 * in the table until it is rebuilt).
 */
export interface BoundedMapOptions<K, V> {
  /** Estimated bytes of all entries kept (default: no byte bound). */
  maxBytes?: number;
  /** Estimated bytes of one entry (default: approxBytes of key and value). */
  sizeOf?: (key: K, value: V) => number;
}

export class BoundedMap<K, V> {
  private readonly entries = new Map<K, { value: V; slot: number; bytes: number }>();
  private readonly ring: (K | undefined)[];
  /** Sets so far: set number s lives in slot s % capacity. */
  private seq = 0;
  /** Every set before this one has been evicted or overwritten. */
  private evictedTo = 0;
  private held = 0;
  private readonly maxBytes: number;
  private readonly sizeOf: (key: K, value: V) => number;

  constructor(
    readonly capacity: number,
    o: BoundedMapOptions<K, V> = {},
  ) {
    this.ring = new Array<K | undefined>(capacity);
    this.maxBytes = o.maxBytes ?? Infinity;
    this.sizeOf = o.sizeOf ?? ((k, v) => approxBytes(k) + approxBytes(v));
  }

  get(key: K): V | undefined {
    return this.entries.get(key)?.value;
  }

  has(key: K): boolean {
    return this.entries.has(key);
  }

  set(key: K, value: V): void {
    const slot = this.seq % this.capacity;
    this.dropSlot(slot);
    const prev = this.entries.get(key);
    if (prev) this.held -= prev.bytes;
    const bytes = this.sizeOf(key, value);
    this.ring[slot] = key;
    this.entries.set(key, { value, slot, bytes });
    this.held += bytes;
    this.seq++;
    // Over the byte bound: forget the oldest entries (never the one just set).
    let s = Math.max(this.evictedTo, this.seq - this.capacity);
    while (this.held > this.maxBytes && s < this.seq - 1) this.dropSlot(s++ % this.capacity);
    this.evictedTo = Math.max(this.evictedTo, s);
  }

  delete(key: K): boolean {
    const e = this.entries.get(key);
    if (!e) return false;
    this.held -= e.bytes;
    return this.entries.delete(key);
  }

  get size(): number {
    return this.entries.size;
  }

  /** Estimated bytes held. */
  get bytes(): number {
    return this.held;
  }

  *keys(): IterableIterator<K> {
    yield* this.entries.keys();
  }

  private dropSlot(slot: number): void {
    const old = this.ring[slot];
    this.ring[slot] = undefined;
    if (old === undefined) return;
    const e = this.entries.get(old);
    if (e?.slot === slot) {
      this.held -= e.bytes;
      this.entries.delete(old);
    }
  }
}

/** A rough size in bytes: strings 2 per UTF-16 unit, typed arrays their bytes, objects the sum of their fields plus 32. */
export function approxBytes(v: unknown, depth = 0): number {
  if (typeof v === 'string') return 16 + 2 * v.length;
  if (v === null || typeof v !== 'object') return 8;
  if (ArrayBuffer.isView(v)) return 64 + v.byteLength;
  if (depth > 3) return 32;
  let n = 32;
  for (const x of Object.values(v as Record<string, unknown>)) n += 8 + approxBytes(x, depth + 1);
  return n;
}
