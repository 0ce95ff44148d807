/**
 * The tiered cache: L1 in-process (byte-bounded LRU), L2 Redis (when
 * REDIS_URL or redisUrl is set), L3 a private directory on disk. Top-level
 * Float32Array values are stored below L1 as quantized tensor blobs.
 *
 * Every tier uses the same unambiguous id (cache-key.ts) and the same
 * absolute expiry, fixed at the write: a value promoted from L2/L3 to L1
 * keeps the time it has left. L1 keeps and hands out private copies, so
 * callers never share memory with the cache or with each other.
 *
 * Failures of L2/L3 never reach get/set as exceptions: an outage or an
 * undecodable value is a miss, counted in stats(); only bad arguments throw
 * (ready() reports an unusable disk directory).
 */
import { isWhaleError, WhaleError } from '../../common/errors.js';
import { createLogger, type Logger } from '../../common/logger.js';
import { ByteLru } from './byte-lru.js';
import { cacheId, checkNamespace } from './cache-key.js';
import {
  checkCacheOptions,
  checkTtlArg,
  type NamespacePolicy,
  type Tier,
  type TieredCacheOptions,
} from './cache-options.js';
import { checkValue, copyValue, type CacheValue } from './cache-value.js';
import { defaultCacheDir } from './disk-dir.js';
import { DiskTier } from './disk-tier.js';
import { RedisTier } from './redis-tier.js';
import { deserializeValue, serializeValue, type Serialized } from './value-codec.js';

export { MAX_TTL_MS, type NamespacePolicy, type Tier, type TieredCacheOptions } from './cache-options.js';

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

/** A value read from L2/L3: freshly decoded (owned by no one), its L1 size and its absolute expiry. */
interface Found {
  value: CacheValue;
  bytes: number;
  expiresAt: number;
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
  private readonly loading = new Map<string, Promise<CacheValue | undefined>>();
  private l3Failing = false;
  private corruptions = 0;
  private loads = 0;
  private rawBytes = 0;
  private storedBytes = 0;

  constructor(o: TieredCacheOptions = {}) {
    checkCacheOptions(o);
    this.logger = o.logger ?? createLogger('cache');
    this.prefix = o.keyPrefix ?? 'whale';
    this.policies = o.namespaces ?? {};
    this.l1 = new ByteLru(o.l1MaxBytes ?? 64 << 20);
    const redisUrl = o.redisUrl;
    if (redisUrl) {
      this.l2 = new RedisTier({
        url: redisUrl,
        logger: this.logger,
        ...(o.redisCommandTimeoutMs ? { commandTimeoutMs: o.redisCommandTimeoutMs } : {}),
      });
    }
    if (o.diskDir !== false) {
      this.l3 = new DiskTier({
        dir: o.diskDir ?? defaultCacheDir(),
        maxBytes: o.diskMaxBytes ?? 1 << 30,
        ...(o.diskKey ? { key: o.diskKey } : {}),
      });
    }
  }

  /**
   * Opens the disk directory (a WhaleError ERR_INVALID_OPTION, field
   * options.diskDir, if it is unusable or unsafe; the tier keeps retrying
   * with backoff) and waits for Redis (if configured) up to timeoutMs.
   */
  async ready(timeoutMs = 2000): Promise<{ l2: boolean }> {
    await this.l3?.init();
    return { l2: this.l2 ? await this.l2.waitReady(timeoutMs) : false };
  }

  /** The cached value (a copy the caller owns), or undefined. */
  async get(ns: string, key: string): Promise<CacheValue | undefined> {
    const [v] = await this.lookup(ns, [key]);
    if (v !== undefined) return v;
    const policy = this.policy(ns);
    const loader = policy.loader;
    if (!loader) return undefined;
    // Concurrent misses of one key share one loader call; each caller gets its own copy.
    const id = cacheId(this.prefix, ns, key);
    let pending = this.loading.get(id);
    if (!pending) {
      pending = (async () => {
        const loaded = await loader(key);
        this.loads++;
        if (loaded !== undefined) await this.set(ns, key, loaded);
        return loaded;
      })().finally(() => this.loading.delete(id));
      this.loading.set(id, pending);
    }
    const loaded = await pending;
    return loaded === undefined ? undefined : copyValue(loaded);
  }

  async getMany(ns: string, keys: readonly string[]): Promise<Array<CacheValue | undefined>> {
    if (!Array.isArray(keys))
      throw new WhaleError('ERR_INVALID_ARG', 'keys: must be an array of strings', { field: 'keys' });
    return this.lookup(ns, keys);
  }

  /** Stores a private copy; ttlMs (default: the namespace's) is counted from now in every tier. */
  async set(ns: string, key: string, value: CacheValue, opts: { ttlMs?: number } = {}): Promise<void> {
    await this.setMany(ns, [[key, value]], opts);
  }

  /** Every entry is validated before any is written. */
  async setMany(
    ns: string,
    entries: ReadonlyArray<readonly [string, CacheValue]>,
    opts: { ttlMs?: number } = {},
  ): Promise<void> {
    const policy = this.policy(ns);
    if (typeof opts !== 'object' || opts === null)
      throw new WhaleError('ERR_INVALID_ARG', 'options: must be an object', { field: 'options' });
    const ttlMs = checkTtlArg(opts.ttlMs) ?? policy.ttlMs;
    if (!Array.isArray(entries))
      throw new WhaleError('ERR_INVALID_ARG', 'entries: must be an array of [key, value] pairs', { field: 'entries' });
    const rows = entries.map((e, i) => {
      if (!Array.isArray(e))
        throw new WhaleError('ERR_INVALID_ARG', `entries[${i}]: must be a [key, value] pair`, {
          field: `entries[${i}]`,
        });
      const [key, value] = e as [string, CacheValue];
      const id = cacheId(this.prefix, ns, key);
      return { id, value, bytes: checkValue(value) };
    });
    const lower = (this.l2 && this.uses(policy, 'l2')) || (this.l3 && this.uses(policy, 'l3'));
    const serialized: Serialized[] = lower ? rows.map((r) => serializeValue(r.value, policy.tensor ?? {})) : [];
    const expiresAt = ttlMs === undefined ? Infinity : Date.now() + ttlMs;
    if (this.uses(policy, 'l1')) {
      for (const r of rows) this.l1.setUntil(r.id, copyValue(r.value), r.bytes, expiresAt);
    }
    if (!lower) return;
    for (const s of serialized) {
      this.rawBytes += s.rawBytes;
      this.storedBytes += s.data.length;
    }
    const write = this.writeLower(
      policy,
      rows.map((r, i) => ({ id: r.id, data: serialized[i]!.data })),
      expiresAt,
    );
    if (policy.write === 'behind') this.track(write);
    else await write;
  }

  async delete(ns: string, key: string): Promise<void> {
    const policy = this.policy(ns);
    const id = cacheId(this.prefix, ns, key);
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
    checkNamespace(ns);
    return Object.hasOwn(this.policies, ns) ? this.policies[ns]! : {};
  }

  private uses(p: NamespacePolicy, tier: Tier): boolean {
    return p.tiers === undefined || p.tiers.includes(tier);
  }

  /** L1, then L2 for what is missing, then L3; hits below L1 are promoted with their remaining TTL. */
  private async lookup(ns: string, keys: readonly string[]): Promise<Array<CacheValue | undefined>> {
    const policy = this.policy(ns);
    const ids = keys.map((k) => cacheId(this.prefix, ns, k));
    const out: Array<CacheValue | undefined> = ids.map((id) => {
      if (!this.uses(policy, 'l1')) return undefined;
      const v = this.l1.get(id);
      this.count.l1[v === undefined ? 'misses' : 'hits']++;
      return v === undefined ? undefined : copyValue(v);
    });
    let missing = ids.flatMap((_, i) => (out[i] === undefined ? [i] : []));
    if (missing.length > 0 && this.l2 && this.uses(policy, 'l2')) {
      const found = await this.l2Read(
        missing.map((i) => ids[i]!),
        this.uses(policy, 'l1'),
      );
      missing.forEach((i, j) => {
        if (found[j]) out[i] = this.promote(policy, ids[i]!, found[j]);
      });
      missing = missing.filter((i) => out[i] === undefined);
    }
    if (this.l3 && this.uses(policy, 'l3')) {
      for (const i of missing) {
        const f = await this.l3Read(ids[i]!);
        if (f) out[i] = this.promote(policy, ids[i]!, f);
      }
    }
    return out;
  }

  private promote(policy: NamespacePolicy, id: string, f: Found): CacheValue {
    if (!this.uses(policy, 'l1')) return f.value;
    this.l1.setUntil(id, f.value, f.bytes, f.expiresAt);
    return copyValue(f.value);
  }

  /** withExpiry: also ask Redis how long each entry has left (needed only to promote). */
  private async l2Read(ids: string[], withExpiry: boolean): Promise<Array<Found | undefined>> {
    let raw: Array<{ data: Buffer; expiresAt: number } | null>;
    try {
      if (withExpiry) raw = await this.l2!.mgetWithExpiry(ids);
      else {
        const data = ids.length === 1 ? [await this.l2!.get(ids[0]!)] : await this.l2!.mget(ids);
        raw = data.map((d) => (d === null ? null : { data: d, expiresAt: Infinity }));
      }
    } catch {
      this.count.l2.errors++;
      return ids.map(() => undefined); // an outage: a miss, already logged by the tier
    }
    return raw.map((r, j) => {
      if (r === null) {
        this.count.l2.misses++;
        return undefined;
      }
      try {
        const d = deserializeValue(r.data);
        this.count.l2.hits++;
        return { ...d, expiresAt: r.expiresAt };
      } catch (err) {
        this.corrupt('l2', ids[j]!, err);
        this.track(this.l2!.del([ids[j]!]).catch(() => undefined));
        return undefined;
      }
    });
  }

  private async l3Read(id: string): Promise<Found | undefined> {
    let read;
    try {
      read = await this.l3!.get(id);
      this.l3Ok();
    } catch (err) {
      this.l3Error('read', err);
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
      const d = deserializeValue(read.data);
      this.count.l3.hits++;
      return { ...d, expiresAt: read.expiresAt };
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

  /** Counts every disk failure; logs when the tier goes down and when it is back, not on every call. */
  private l3Error(op: 'read' | 'write', err: unknown): void {
    this.count.l3.errors++;
    if (this.l3Failing) return;
    this.l3Failing = true;
    this.logger.warn(`disk tier ${op} failed; serving from the other tiers`, { reason: (err as Error).message });
  }

  private l3Ok(): void {
    if (!this.l3Failing) return;
    this.l3Failing = false;
    this.logger.info('disk tier recovered');
  }

  private async writeLower(
    policy: NamespacePolicy,
    rows: Array<{ id: string; data: Buffer }>,
    expiresAt: number,
  ): Promise<void> {
    const jobs: Array<Promise<void>> = [];
    if (this.l2 && this.uses(policy, 'l2')) {
      const ttlMs = expiresAt === Infinity ? undefined : Math.max(1, expiresAt - Date.now());
      const entries = rows.map((r) =>
        ttlMs === undefined ? { key: r.id, data: r.data } : { key: r.id, data: r.data, ttlMs },
      );
      jobs.push(this.l2.mset(entries).catch(() => void this.count.l2.errors++));
    }
    if (this.l3 && this.uses(policy, 'l3')) {
      const l3 = this.l3;
      jobs.push(
        (async () => {
          for (const r of rows) {
            try {
              await l3.set(r.id, r.data, expiresAt);
              this.l3Ok();
            } catch (err) {
              if (isWhaleError(err, 'ERR_INVALID_ARG')) {
                this.count.l3.errors++; // this value is over the tier's budget; the tier itself is fine
                this.logger.warn('value not written to the disk tier', { key: r.id, reason: err.message });
              } else this.l3Error('write', err);
            }
          }
        })(),
      );
    }
    await Promise.all(jobs);
  }

  private track(p: Promise<unknown>): void {
    const done: Promise<void> = p
      .then(
        () => undefined,
        () => undefined,
      )
      .finally(() => this.pending.delete(done));
    this.pending.add(done);
  }
}
