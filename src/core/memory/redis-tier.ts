/**
 * L2: Redis through ioredis. Commands fail fast while Redis is down (no
 * offline queue, a command timeout) so the cache can fall back to L1/L3; the
 * client reconnects by itself with backoff. Each outage is logged once.
 */

import type { Logger } from '../../common/logger.js';
import { connectRedis, type Redis } from '../../transport/redis.js';

export interface RedisTierOptions {
  url: string;
  /** Per-command limit; a slow Redis counts as unavailable for that call. Default 250 ms. */
  commandTimeoutMs?: number;
  logger: Logger;
}

export interface RedisTierStats {
  available: boolean;
  outages: number;
  errors: number;
}

export class RedisTier {
  private readonly client: Redis;
  private readonly logger: Logger;
  private up = false;
  private everUp = false;
  private downSince = 0;
  private outages = 0;
  private errors = 0;

  constructor(o: RedisTierOptions) {
    this.logger = o.logger;
    this.client = connectRedis(o.url, 'cache', {
      ...(o.commandTimeoutMs === undefined ? {} : { commandTimeoutMs: o.commandTimeoutMs }),
      onError: (err) => this.markDown(err.message),
    });
    this.client.on('ready', () => this.markUp());
    this.client.on('close', () => this.markDown('connection closed'));
  }

  /** Resolves true once connected, false after timeoutMs. */
  async waitReady(timeoutMs = 2000): Promise<boolean> {
    if (this.up) return true;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.client.off('ready', onReady);
        resolve(false);
      }, timeoutMs);
      const onReady = () => {
        clearTimeout(timer);
        resolve(true);
      };
      this.client.once('ready', onReady);
    });
  }

  get available(): boolean {
    return this.up;
  }

  async get(key: string): Promise<Buffer | null> {
    return this.run(() => this.client.getBuffer(key));
  }

  async mget(keys: string[]): Promise<Array<Buffer | null>> {
    if (keys.length === 0) return [];
    return this.run(() => this.client.mgetBuffer(...keys));
  }

  /**
   * Values with their expiry (ms since epoch, Infinity = none), for promotion
   * to L1 with the time the entry has left: one round trip (MGET + PTTLs).
   */
  async mgetWithExpiry(keys: string[]): Promise<Array<{ data: Buffer; expiresAt: number } | null>> {
    if (keys.length === 0) return [];
    return this.run(async () => {
      const p = this.client.pipeline().mgetBuffer(...keys);
      for (const k of keys) p.pttl(k);
      const res = (await p.exec()) ?? [];
      const failed = res.find(([err]) => err);
      if (failed?.[0]) throw failed[0];
      const values = res[0]![1] as Array<Buffer | null>;
      const now = Date.now();
      return values.map((data, i) => {
        const pttl = res[i + 1]![1] as number;
        if (data === null || pttl === -2) return null; // -2: gone between the two commands
        return { data, expiresAt: pttl === -1 ? Infinity : now + pttl };
      });
    });
  }

  async set(key: string, data: Buffer, ttlMs?: number): Promise<void> {
    await this.run(() =>
      ttlMs === undefined
        ? this.client.set(key, data)
        : this.client.set(key, data, 'PX', Math.max(1, Math.ceil(ttlMs))),
    );
  }

  /** One round trip for many keys (a pipeline). */
  async mset(entries: Array<{ key: string; data: Buffer; ttlMs?: number }>): Promise<void> {
    if (entries.length === 0) return;
    await this.run(async () => {
      const p = this.client.pipeline();
      for (const e of entries) {
        if (e.ttlMs === undefined) p.set(e.key, e.data);
        else p.set(e.key, e.data, 'PX', Math.max(1, Math.ceil(e.ttlMs)));
      }
      const res = await p.exec();
      const failed = res?.find(([err]) => err);
      if (failed?.[0]) throw failed[0];
    });
  }

  async del(keys: string[]): Promise<void> {
    if (keys.length > 0) await this.run(() => this.client.del(...keys));
  }

  stats(): RedisTierStats {
    return { available: this.up, outages: this.outages, errors: this.errors };
  }

  async close(): Promise<void> {
    this.client.removeAllListeners('ready');
    this.client.removeAllListeners('close');
    this.up = false;
    try {
      await this.client.quit();
    } catch {
      this.client.disconnect();
    }
  }

  private async run<T>(fn: () => Promise<T>): Promise<T> {
    try {
      const result = await fn();
      if (!this.up) this.markUp(); // e.g. after a timeout on a connection that never dropped
      return result;
    } catch (err) {
      this.errors++;
      this.markDown((err as Error).message);
      throw err;
    }
  }

  private markUp(): void {
    if (this.everUp && !this.up) this.logger.info('redis recovered', { downMs: Date.now() - this.downSince });
    this.up = true;
    this.everUp = true;
  }

  private markDown(reason: string): void {
    if (!this.up && this.downSince !== 0) return;
    const wasUp = this.up;
    this.up = false;
    this.downSince = Date.now();
    if (wasUp || this.everUp) {
      this.outages++;
      this.logger.warn('redis unavailable; serving from the other tiers until it is back', { reason });
    } else {
      this.logger.warn('redis not reachable yet; serving from the other tiers', { reason });
    }
  }
}
