/**
 * Where federation blobs (claim-checked tensors) and checkpoints live: the
 * disk tier by default (one directory every process on the machine shares),
 * Redis when configured (learners on other machines), memory for tests.
 */
import { Redis } from 'ioredis';

import { WhaleError } from '../../base/errors.js';
import { DiskTier } from '../../memory/disk-tier.js';

export interface KeyValueStore {
  readonly kind: 'disk' | 'redis' | 'memory';
  get(key: string): Promise<Uint8Array | undefined>;
  set(key: string, value: Uint8Array): Promise<void>;
  delete(key: string): Promise<void>;
  close(): Promise<void>;
}

export class MemoryKv implements KeyValueStore {
  readonly kind = 'memory' as const;
  private readonly map = new Map<string, Uint8Array>();
  async get(key: string): Promise<Uint8Array | undefined> {
    return this.map.get(key)?.slice();
  }
  async set(key: string, value: Uint8Array): Promise<void> {
    this.map.set(key, value.slice());
  }
  async delete(key: string): Promise<void> {
    this.map.delete(key);
  }
  get size(): number {
    return this.map.size;
  }
  async close(): Promise<void> {}
}

/** Authenticated files (HMAC, atomic rename) under `dir`, least recently used evicted past maxBytes. */
export class DiskKv implements KeyValueStore {
  readonly kind = 'disk' as const;
  private readonly tier: DiskTier;

  constructor(readonly dir: string, maxBytes = 4 * 2 ** 30) {
    this.tier = new DiskTier({ dir, maxBytes });
  }

  async init(): Promise<void> {
    await this.tier.init();
  }

  async get(key: string): Promise<Uint8Array | undefined> {
    const r = await this.tier.get(key);
    if (r.status === 'corrupt') throw new WhaleError('ERR_CORRUPT', `${key}: stored entry failed its integrity check (${r.reason})`, { field: key });
    return r.status === 'hit' ? new Uint8Array(r.data.buffer, r.data.byteOffset, r.data.byteLength) : undefined;
  }

  async set(key: string, value: Uint8Array): Promise<void> {
    await this.tier.set(key, value);
  }

  async delete(key: string): Promise<void> {
    await this.tier.delete(key);
  }

  async close(): Promise<void> {}
}

export class RedisKv implements KeyValueStore {
  readonly kind = 'redis' as const;
  private readonly client: Redis;

  constructor(url: string, private readonly prefix = 'whale:fed:') {
    this.client = new Redis(url, { maxRetriesPerRequest: 3, connectTimeout: 2000, lazyConnect: false });
    this.client.on('error', () => undefined); // commands report their own failures
  }

  async get(key: string): Promise<Uint8Array | undefined> {
    const v = await this.client.getBuffer(this.prefix + key);
    return v === null ? undefined : new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
  }

  async set(key: string, value: Uint8Array): Promise<void> {
    await this.client.set(this.prefix + key, Buffer.from(value.buffer, value.byteOffset, value.byteLength));
  }

  async delete(key: string): Promise<void> {
    await this.client.del(this.prefix + key);
  }

  async close(): Promise<void> {
    this.client.disconnect();
  }
}

/** Redis when `redisUrl` is given, else the disk tier in `dir`. */
export async function openKv(o: { dir: string; redisUrl?: string | undefined }): Promise<KeyValueStore> {
  if (o.redisUrl) return new RedisKv(o.redisUrl);
  const kv = new DiskKv(o.dir);
  await kv.init();
  return kv;
}
