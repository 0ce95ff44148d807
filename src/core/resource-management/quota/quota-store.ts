/**
 * Where rate-limit and concurrency state lives: in this process, or in Redis
 * so that several `whale start` nodes enforce one quota (and share the quota
 * settings changed at run time: shareSetting / watchSettings).
 */
import { TokenBucket, type TakeResult } from './token-bucket.js';

export interface QuotaStore {
  readonly kind: 'local' | 'redis';
  /** One token from the bucket `key` (rate tokens/s, up to burst). */
  take(key: string, rate: number, burst: number): TakeResult | Promise<TakeResult>;
  /** One concurrency slot of `key` if fewer than `limit` are held. */
  acquire(key: string, limit: number): boolean | Promise<boolean>;
  release(key: string): void | Promise<void>;
  /** Slots of `key` held now (across nodes for Redis). */
  held(key: string): number | Promise<number>;
  close(): Promise<void>;
  /** Shared stores (Redis): saves a quota setting for every node and announces the change. */
  shareSetting?(key: string, value: unknown): Promise<void>;
  /**
   * Shared stores: calls `onChange` for each setting announced from now on (by any node, this one included)
   * and resolves with the settings saved so far.
   */
  watchSettings?(onChange: (key: string, value: unknown) => void): Promise<Record<string, unknown>>;
}

export class LocalQuotaStore implements QuotaStore {
  readonly kind = 'local';
  private readonly buckets = new Map<string, { bucket: TokenBucket; rate: number; burst: number }>();
  private readonly slots = new Map<string, number>();

  constructor(private readonly now: () => number = Date.now) {}

  take(key: string, rate: number, burst: number): TakeResult {
    const now = this.now();
    let b = this.buckets.get(key);
    if (!b) {
      b = { bucket: new TokenBucket(rate, burst, now), rate, burst };
      this.buckets.set(key, b);
    } else if (b.rate !== rate || b.burst !== burst) {
      b.bucket.reconfigure(rate, burst, now);
      b.rate = rate;
      b.burst = burst;
    }
    return b.bucket.take(now);
  }

  acquire(key: string, limit: number): boolean {
    const n = this.slots.get(key) ?? 0;
    if (n >= limit) return false;
    this.slots.set(key, n + 1);
    return true;
  }

  release(key: string): void {
    const n = this.slots.get(key) ?? 0;
    if (n <= 1) this.slots.delete(key);
    else this.slots.set(key, n - 1);
  }

  held(key: string): number {
    return this.slots.get(key) ?? 0;
  }

  async close(): Promise<void> {}
}
