/**
 * Remembers the nonces seen within a time window: a message older than the
 * window (or too far in the future) is stale, a nonce seen again is a replay.
 * Memory is bounded by the window (expired nonces are swept on insert) and by
 * `maxEntries` (beyond it the window shrinks: old messages become stale, never accepted twice).
 */
export type ReplayVerdict = 'ok' | 'replay' | 'stale';

export class ReplayGuard {
  private readonly seen = new Map<string, number>();
  private floor = -Infinity;

  constructor(
    readonly windowMs = 5 * 60_000,
    private readonly maxEntries = 1_000_000,
    private readonly now: () => number = Date.now,
  ) {}

  check(nonce: string, timestamp: number): ReplayVerdict {
    const t = this.now();
    if (!(Math.abs(t - timestamp) <= this.windowMs) || timestamp < this.floor) return 'stale';
    if (this.seen.has(nonce)) return 'replay';
    this.sweep(t);
    this.seen.set(nonce, timestamp);
    return 'ok';
  }

  private sweep(t: number): void {
    // Map keeps insertion order, which is close to timestamp order: stop at the first fresh entry.
    for (const [n, ts] of this.seen) {
      if (ts >= t - this.windowMs && this.seen.size < this.maxEntries) break;
      this.seen.delete(n);
      if (ts > this.floor) this.floor = ts;
    }
  }

  get size(): number {
    return this.seen.size;
  }
}
