/**
 * The tiered cache: L1 in-process (byte-bounded LRU), L2 Redis (when
 * REDIS_URL or redisUrl is set), L3 a directory on disk. Float32Array values
 * are stored below L1 as quantized tensor blobs.
 *
 * Failures of L2/L3 never reach the caller as exceptions: an outage or an
 * undecodable value is a miss, counted in stats(); only bad arguments throw.
 */
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { WhaleError } from '../base/errors.js';
import { createLogger, type Logger } from '../base/logger.js';
import { ByteLru } from './byte-lru.js';
import type { EncodeOptions } from './codec.js';
import { DiskTier } from './disk-tier.js';
import { RedisTier } from './redis-tier.js';
import { deserializeValue, serializeValue, valueBytes, type CacheValue, type Serialized } from './value-codec.js';

export type Tier = 'l1' | 'l2' | 'l3';

export interface NamespacePolicy {
  /** Default TTL of the namespace's entries (none: they live until evicted). */
  ttlMs?: number;
  /** Tiers used by this namespace (default: every configured tier). */
  tiers?: Tier[];
  /** 'through' (default): set() resolves once every tier has it; 'behind': L1 now, the rest in the background. */
  write?: 'through' | 'behind';
  /** Read-through: called on a miss in every tier; its value is stored and returned. */
  loader?: (key: string) => Promise<CacheValue | undefined>;
  /** How Float32Array values are encoded for L2/L3 (default int8, block 64). */
  tensor?: EncodeOptions;
}

export interface TieredCacheOptions {
  /** L1 budget in bytes (default 64 MiB). */
  l1MaxBytes?: number;
  /** Redis URL for L2 (default $REDIS_URL; without one there is no L2). */
  redisUrl?: string;
  redisCommandTimeoutMs?: number;
  /** L3 directory (default $WHALE_CACHE_DIR or <tmp>/smart-whale-cache); false for none. */
  diskDir?: string | false;
  /** L3 budget in bytes (default 1 GiB). */
  diskMaxBytes?: number;
  /** Prefix of every L2/L3 key (default 'whale'): keys are prefix:namespace:key. */
  keyPrefix?: string;
  namespaces?: Record<string, NamespacePolicy>;
  logger?: Logger;
}

interface Counters {
  hits: number;
  misses: number;
  errors: number;
}

export interface CacheStats {
  l1: ReturnType<ByteLru<CacheValue>['stats']> & Counters;
  l2: (ReturnType<RedisTier['stats']> & Counters & { enabled: true }) | { enabled: false };
  l3: (ReturnType<DiskTier['stats']> & Counters & { enabled: true }) | { enabled: false };
  corruptions: number;
  loads: number;
  compression: { rawBytes: number; storedBytes: number; ratio: number };
}

const counters = (): Counters => ({ hits: 0, misses: 0, errors: 0 });

export class TieredCache {
  private readonly l1: ByteLru<CacheValue>;
  private readonly l2: RedisTier | undefined;
  private readonly l3: DiskTier | undefined;
  private readonly logger: Logger;
  private readonly prefix: string;
  private readonly policies: Record<string, NamespacePolicy>;
  private readonly count = { l1: counters(), l2: counters(), l3: counters() };
  private readonly pending = new Set<Promise<void>>();
  private corruptions = 0;
  private loads = 0;
  private rawBytes = 0;
  private storedBytes = 0;

  constructor(o: TieredCacheOptions = {}) {
    this.logger = o.logger ?? createLogger('cache');
    this.prefix = o.keyPrefix ?? 'whale';
    this.policies = o.namespaces ?? {};
    this.l1 = new ByteLru(o.l1MaxBytes ?? 64 << 20);
    const redisUrl = o.redisUrl ?? process.env.REDIS_URL;
    if (redisUrl) {
      this.l2 = new RedisTier({ url: redisUrl, logger: this.logger, ...(o.redisCommandTimeoutMs ? { commandTimeoutMs: o.redisCommandTimeoutMs } : {}) });
    }
    if (o.diskDir !== false) {
      const dir = o.diskDir ?? process.env.WHALE_CACHE_DIR ?? join(tmpdir(), 'smart-whale-cache');
      this.l3 = new DiskTier(dir, o.diskMaxBytes ?? 1 << 30);
    }
  }

  /** Waits for Redis (if configured) up to timeoutMs; the cache works without it meanwhile. */
  async ready(timeoutMs = 2000): Promise<{ l2: boolean }> {
    await this.l3?.init();
    return { l2: this.l2 ? await this.l2.waitReady(timeoutMs) : false };
  }

  async get(ns: string, key: string): Promise<CacheValue | undefined> {
    const policy = this.policy(ns);
    const id = this.id(ns, key);
    if (this.uses(policy, 'l1')) {
      const v = this.l1.get(id);
      if (v !== undefined) {
        this.count.l1.hits++;
        return v;
      }
      this.count.l1.misses++;
    }
    if (this.l2 && this.uses(policy, 'l2')) {
      const v = this.decodedL2(id, await this.l2Get(id));
      if (v !== undefined) return this.promote(policy, id, v);
    }
    if (this.l3 && this.uses(policy, 'l3')) {
      const v = await this.l3Get(id);
      if (v !== undefined) return this.promote(policy, id, v);
    }
    if (!policy.loader) return undefined;
    const loaded = await policy.loader(key);
    this.loads++;
    if (loaded !== undefined) await this.set(ns, key, loaded);
    return loaded;
  }

  async getMany(ns: string, keys: readonly string[]): Promise<Array<CacheValue | undefined>> {
    const policy = this.policy(ns);
    const ids = keys.map((k) => this.id(ns, k));
    const out: Array<CacheValue | undefined> = ids.map((id) => {
      if (!this.uses(policy, 'l1')) return undefined;
      const v = this.l1.get(id);
      this.count.l1[v === undefined ? 'misses' : 'hits']++;
      return v;
    });
    let missing = ids.flatMap((id, i) => (out[i] === undefined ? [i] : []));
    if (missing.length > 0 && this.l2 && this.uses(policy, 'l2')) {
      let raw: Array<Buffer | null> | undefined;
      try {
        raw = await this.l2.mget(missing.map((i) => ids[i]!));
      } catch {
        this.count.l2.errors++;
      }
      missing.forEach((i, j) => {
        const v = this.decodedL2(ids[i]!, raw ? raw[j] ?? null : undefined);
        if (v !== undefined) out[i] = this.promote(policy, ids[i]!, v);
      });
      missing = missing.filter((i) => out[i] === undefined);
    }
    if (this.l3 && this.uses(policy, 'l3')) {
      for (const i of missing) {
        const v = await this.l3Get(ids[i]!);
        if (v !== undefined) out[i] = this.promote(policy, ids[i]!, v);
      }
    }
    return out;
  }

  async set(ns: string, key: string, value: CacheValue, opts: { ttlMs?: number } = {}): Promise<void> {
    await this.setMany(ns, [[key, value]], opts);
  }

  async setMany(ns: string, entries: ReadonlyArray<readonly [string, CacheValue]>, opts: { ttlMs?: number } = {}): Promise<void> {
    const policy = this.policy(ns);
    const ttlMs = opts.ttlMs ?? policy.ttlMs;
    if (ttlMs !== undefined && !(ttlMs > 0)) throw new WhaleError('ERR_INVALID_ARG', `ttlMs: must be > 0, got ${ttlMs}`, { field: 'ttlMs' });
    const rows = entries.map(([key, value]) => {
      if (value === undefined) throw new WhaleError('ERR_INVALID_ARG', `value of '${key}': undefined cannot be cached`, { field: 'value' });
      return { id: this.id(ns, key), value };
    });
    const lower = (this.l2 && this.uses(policy, 'l2')) || (this.l3 && this.uses(policy, 'l3'));
    const serialized: Serialized[] = lower ? rows.map((r) => serializeValue(r.value, policy.tensor ?? {})) : [];
    if (this.uses(policy, 'l1')) {
      for (const r of rows) {
        const v = r.value instanceof Float32Array ? r.value.slice() : r.value;
        this.l1.set(r.id, v, valueBytes(v), ttlMs);
      }
    }
    if (!lower) return;
    for (const s of serialized) {
      this.rawBytes += s.rawBytes;
      this.storedBytes += s.data.length;
    }
    const write = this.writeLower(policy, rows.map((r, i) => ({ key: r.id, data: serialized[i]!.data, ttlMs })));
    if (policy.write === 'behind') this.track(write);
    else await write;
  }

  async delete(ns: string, key: string): Promise<void> {
    const policy = this.policy(ns);
    const id = this.id(ns, key);
    this.l1.delete(id);
    if (this.l2 && this.uses(policy, 'l2')) await this.l2.del([id]).catch(() => void this.count.l2.errors++);
    if (this.l3 && this.uses(policy, 'l3')) await this.l3.delete(id).catch(() => void this.count.l3.errors++);
  }

  stats(): CacheStats {
    const ratio = this.storedBytes > 0 ? this.rawBytes / this.storedBytes : 1;
    return {
      l1: { ...this.l1.stats(), ...this.count.l1 },
      l2: this.l2 ? { enabled: true, ...this.l2.stats(), ...this.count.l2 } : { enabled: false },
      l3: this.l3 ? { enabled: true, ...this.l3.stats(), ...this.count.l3 } : { enabled: false },
      corruptions: this.corruptions,
      loads: this.loads,
      compression: { rawBytes: this.rawBytes, storedBytes: this.storedBytes, ratio },
    };
  }

  /** Waits for write-behind work, then disconnects from Redis. */
  async close(): Promise<void> {
    await Promise.allSettled([...this.pending]);
    await this.l2?.close();
  }

  private policy(ns: string): NamespacePolicy {
    if (typeof ns !== 'string' || ns.length === 0) throw new WhaleError('ERR_INVALID_ARG', 'namespace: must be a non-empty string', { field: 'namespace' });
    return this.policies[ns] ?? {};
  }

  private id(ns: string, key: string): string {
    if (typeof key !== 'string' || key.length === 0) throw new WhaleError('ERR_INVALID_ARG', 'key: must be a non-empty string', { field: 'key' });
    return `${this.prefix}:${ns}:${key}`;
  }

  private uses(p: NamespacePolicy, tier: Tier): boolean {
    return p.tiers === undefined || p.tiers.includes(tier);
  }

  private promote(policy: NamespacePolicy, id: string, v: CacheValue): CacheValue {
    if (this.uses(policy, 'l1')) this.l1.set(id, v, valueBytes(v), policy.ttlMs);
    return v;
  }

  private async l2Get(id: string): Promise<Buffer | null | undefined> {
    try {
      return await this.l2!.get(id);
    } catch {
      this.count.l2.errors++;
      return undefined; // an outage: a miss, already logged by the tier
    }
  }

  /** Decodes an L2 value; undefined for a miss, an outage (raw undefined) or corruption. */
  private decodedL2(id: string, raw: Buffer | null | undefined): CacheValue | undefined {
    if (raw === undefined) return undefined;
    if (raw === null) {
      this.count.l2.misses++;
      return undefined;
    }
    try {
      const v = deserializeValue(raw);
      this.count.l2.hits++;
      return v;
    } catch (err) {
      this.corrupt('l2', id, err);
      this.track(this.l2!.del([id]).catch(() => undefined));
      return undefined;
    }
  }

  private async l3Get(id: string): Promise<CacheValue | undefined> {
    let read;
    try {
      read = await this.l3!.get(id);
    } catch (err) {
      this.count.l3.errors++;
      this.logger.warn('disk tier read failed', { key: id, reason: (err as Error).message });
      return undefined;
    }
    if (read.status === 'corrupt') {
      this.corrupt('l3', id, new Error(read.reason));
      return undefined;
    }
    if (read.status === 'miss') {
      this.count.l3.misses++;
      return undefined;
    }
    try {
      const v = deserializeValue(read.data);
      this.count.l3.hits++;
      return v;
    } catch (err) {
      this.corrupt('l3', id, err);
      await this.l3!.delete(id).catch(() => undefined);
      return undefined;
    }
  }

  private corrupt(tier: 'l2' | 'l3', id: string, err: unknown): void {
    this.corruptions++;
    this.count[tier].misses++;
    this.logger.warn('undecodable cache value dropped', { tier, key: id, reason: (err as Error).message });
  }

  private async writeLower(policy: NamespacePolicy, rows: Array<{ key: string; data: Buffer; ttlMs: number | undefined }>): Promise<void> {
    const jobs: Array<Promise<void>> = [];
    if (this.l2 && this.uses(policy, 'l2')) {
      jobs.push(this.l2.mset(rows.map((r) => (r.ttlMs === undefined ? { key: r.key, data: r.data } : r))).catch(() => void this.count.l2.errors++));
    }
    if (this.l3 && this.uses(policy, 'l3')) {
      const l3 = this.l3;
      jobs.push(
        (async () => {
          for (const r of rows) {
            try {
              await l3.set(r.key, r.data, r.ttlMs);
            } catch (err) {
              this.count.l3.errors++;
              this.logger.warn('disk tier write failed', { key: r.key, reason: (err as Error).message });
            }
          }
        })(),
      );
    }
    await Promise.all(jobs);
  }

  private track(p: Promise<unknown>): void {
    const done: Promise<void> = p.then(
      () => undefined,
      () => undefined,
    ).finally(() => this.pending.delete(done));
    this.pending.add(done);
  }
}
