/**
 * LRU bounded in bytes (not entries), with per-entry expiry. A Map keeps
 * insertion order, so re-inserting on access makes the first key the LRU one.
 */
export interface ByteLruStats {
  entries: number;
  bytes: number;
  maxBytes: number;
  evictions: number;
  expirations: number;
}

interface Entry<V> {
  value: V;
  bytes: number;
  expiresAt: number; // ms since epoch; Infinity = never
}

export class ByteLru<V> {
  private readonly map = new Map<string, Entry<V>>();
  private bytes = 0;
  private evictions = 0;
  private expirations = 0;

  constructor(
    readonly maxBytes: number,
    private readonly now: () => number = Date.now,
  ) {}

  get(key: string): V | undefined {
    const e = this.map.get(key);
    if (!e) return undefined;
    if (e.expiresAt <= this.now()) {
      this.remove(key, e);
      this.expirations++;
      return undefined;
    }
    this.map.delete(key);
    this.map.set(key, e);
    return e.value;
  }

  /** Stores value unless it alone exceeds the budget (returns false then). */
  set(key: string, value: V, bytes: number, ttlMs?: number): boolean {
    return this.setUntil(key, value, bytes, ttlMs === undefined ? Infinity : this.now() + ttlMs);
  }

  /** Like set(), with an absolute expiry (ms since epoch; Infinity = never), e.g. one read from a lower tier. */
  setUntil(key: string, value: V, bytes: number, expiresAt: number): boolean {
    const old = this.map.get(key);
    if (old) this.remove(key, old);
    if (bytes > this.maxBytes || expiresAt <= this.now()) return false;
    this.map.set(key, { value, bytes, expiresAt });
    this.bytes += bytes;
    for (const [k, e] of this.map) {
      if (this.bytes <= this.maxBytes) break;
      this.remove(k, e);
      this.evictions++;
    }
    return true;
  }

  delete(key: string): boolean {
    const e = this.map.get(key);
    if (!e) return false;
    this.remove(key, e);
    return true;
  }

  clear(): void {
    this.map.clear();
    this.bytes = 0;
  }

  stats(): ByteLruStats {
    return {
      entries: this.map.size,
      bytes: this.bytes,
      maxBytes: this.maxBytes,
      evictions: this.evictions,
      expirations: this.expirations,
    };
  }

  private remove(key: string, e: Entry<V>): void {
    this.map.delete(key);
    this.bytes -= e.bytes;
  }
}
