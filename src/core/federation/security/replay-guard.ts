/**
 * Replay protection: a message is fresh if its (authenticated) send time lies
 * within [now - maxAgeMs, now + maxSkewMs] and its id (a nonce, a message id)
 * was not accepted before. Ids are remembered in one of two places:
 *  - in memory (`check`): an accepted id is recorded at once. Memory is bounded
 *    by the window (expired ids are swept on insert) and by `maxEntries`
 *    (beyond it the window shrinks: old messages become too old, never accepted twice).
 *    The MessageGuard of signed bus envelopes uses this.
 *  - in a store (`checkStored` + `remember`, e.g. the services' StateStore on
 *    Redis): an id is recorded once the message was delivered, and kept for as
 *    long as the time check would still accept the message, so the record stays
 *    bounded and survives a restart. Encrypted knowledge uses this.
 */
import { WhaleError } from '../../../common/errors.js';
import { intOption, requireTimeout } from '../../../common/validate.js';

export type ReplayVerdict = 'ok' | 'too-old' | 'from-the-future' | 'replayed';

export interface ReplayWindowOptions {
  /** Oldest message accepted (default 5 min). */
  maxAgeMs?: number;
  /** How far a sender's clock may run ahead (default 30 s; 0: not at all). */
  maxSkewMs?: number;
}

/** Where `checkStored`/`remember` keep ids (the services' StateStore is one). */
export interface ReplayStore {
  get<T>(key: string): Promise<T | undefined>;
  set<T>(key: string, value: T, ttlMs?: number): Promise<void>;
}

export interface ReplayGuardOptions extends ReplayWindowOptions {
  /** Ids held in memory at most (default 1,000,000). */
  maxEntries?: number;
  now?: () => number;
  /** The store of `checkStored`/`remember`, looked up at each call. */
  store?: () => ReplayStore;
  /** Keys in the store are `fed-seen:<scope>:<id>` (default 'default'). */
  scope?: string;
}

export class ReplayGuard {
  readonly maxAgeMs: number;
  readonly maxSkewMs: number;
  private readonly maxEntries: number;
  private readonly now: () => number;
  private readonly seen = new Map<string, number>();
  private floor = -Infinity;

  constructor(private readonly o: ReplayGuardOptions = {}) {
    this.maxAgeMs = requireTimeout(o.maxAgeMs ?? 5 * 60_000, 'options.maxAgeMs');
    const skew = o.maxSkewMs ?? 30_000;
    // 0 is allowed here (no clock may run ahead); requireTimeout wants > 0.
    this.maxSkewMs = skew === 0 ? 0 : requireTimeout(skew, 'options.maxSkewMs');
    this.maxEntries = intOption(o.maxEntries, 1_000_000, 'options.maxEntries');
    this.now = o.now ?? Date.now;
  }

  /** The time check alone. */
  age(sentAt: number, now = this.now()): ReplayVerdict {
    if (sentAt > now + this.maxSkewMs) return 'from-the-future';
    if (!(sentAt >= now - this.maxAgeMs)) return 'too-old';
    return 'ok';
  }

  /** Checks against the ids held in memory and records `id` when the verdict is 'ok'. */
  check(id: string, sentAt: number): ReplayVerdict {
    const t = this.now();
    const age = this.age(sentAt, t);
    if (age !== 'ok') return age;
    if (sentAt < this.floor) return 'too-old';
    if (this.seen.has(id)) return 'replayed';
    this.sweep(t);
    this.seen.set(id, sentAt);
    return 'ok';
  }

  /** Ids held in memory. */
  get size(): number {
    return this.seen.size;
  }

  /** Checks against the store; records nothing (call `remember` once the message was delivered). */
  async checkStored(id: string, sentAt: number, now = this.now()): Promise<ReplayVerdict> {
    const age = this.age(sentAt, now);
    if (age !== 'ok') return age;
    return (await this.store().get<number>(this.key(id))) === undefined ? 'ok' : 'replayed';
  }

  /** Records `id` in the store (a failed delivery may be retried, so not before it was delivered). */
  async remember(id: string, sentAt: number, now = this.now()): Promise<void> {
    const acceptedUntil = sentAt + this.maxAgeMs;
    await this.store().set(this.key(id), sentAt, Math.max(1, acceptedUntil - now) + 1_000);
  }

  private store(): ReplayStore {
    if (!this.o.store)
      throw new WhaleError(
        'ERR_INVALID_OPTION',
        'options.store: this ReplayGuard keeps ids in memory (check), it has no store',
        { field: 'options.store' },
      );
    return this.o.store();
  }

  private key(id: string): string {
    return `fed-seen:${this.o.scope ?? 'default'}:${id}`;
  }

  private sweep(t: number): void {
    // Map keeps insertion order, which is close to send-time order: stop at the first fresh entry.
    for (const [id, ts] of this.seen) {
      if (ts >= t - this.maxAgeMs && this.seen.size < this.maxEntries) break;
      this.seen.delete(id);
      if (ts > this.floor) this.floor = ts;
    }
  }
}
