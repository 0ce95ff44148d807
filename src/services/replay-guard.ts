/**
 * Replay protection for encrypted knowledge: a message is accepted only if
 * its (authenticated) send time lies within [now - maxAgeMs, now + maxSkewMs]
 * and its id was not delivered on this node before. Ids are remembered in the
 * state store for as long as the time check would still accept the message,
 * so the record stays bounded and survives a restart with Redis.
 */
import type { StateStore } from './state-store.js';
import { requireTimeout } from './validate.js';

export interface ReplayWindowOptions {
  /** Oldest message accepted (default 5 min). */
  maxAgeMs?: number;
  /** How far a sender's clock may run ahead (default 30 s). */
  maxSkewMs?: number;
}

export type ReplayVerdict = 'ok' | 'too-old' | 'from-the-future' | 'replayed';

export class ReplayGuard {
  readonly maxAgeMs: number;
  readonly maxSkewMs: number;

  constructor(
    private readonly store: () => StateStore,
    private readonly scope: string,
    o: ReplayWindowOptions = {},
  ) {
    this.maxAgeMs = requireTimeout(o.maxAgeMs ?? 5 * 60_000, 'options.replay.maxAgeMs');
    const skew = o.maxSkewMs ?? 30_000;
    // 0 is allowed here (no clock may run ahead); requireTimeout wants > 0.
    this.maxSkewMs = skew === 0 ? 0 : requireTimeout(skew, 'options.replay.maxSkewMs');
  }

  async check(messageId: string, sentAt: number, now = Date.now()): Promise<ReplayVerdict> {
    if (sentAt < now - this.maxAgeMs) return 'too-old';
    if (sentAt > now + this.maxSkewMs) return 'from-the-future';
    return (await this.store().get<number>(this.key(messageId))) === undefined ? 'ok' : 'replayed';
  }

  /** Called once the message was delivered (a failed delivery may be retried). */
  async remember(messageId: string, sentAt: number, now = Date.now()): Promise<void> {
    const acceptedUntil = sentAt + this.maxAgeMs;
    await this.store().set(this.key(messageId), sentAt, Math.max(1, acceptedUntil - now) + 1_000);
  }

  private key(messageId: string): string {
    return `fed-seen:${this.scope}:${messageId}`;
  }
}
