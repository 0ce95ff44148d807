/**
 * Where federation blobs (claim-checked tensors) and checkpoints live: a
 * directory by default (shared by every process on the machine),
 * Redis when configured (learners on other machines), memory for tests.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import { WhaleError } from '../../../common/errors.js';
import { connectRedis, type Redis } from '../../../transport/redis.js';

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

/**
 * One file per key in `dir`, written atomically (temp file + rename), read
 * fresh from disk on every get so that other processes' writes are seen.
 * Integrity is checked by the callers (claim-check blobs by their sha256,
 * checkpoints by the hash of their weights).
 */
export class DiskKv implements KeyValueStore {
  readonly kind = 'disk' as const;

  constructor(readonly dir: string) {}

  async init(): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
  }

  private file(key: string): string {
    if (!/^[A-Za-z0-9._/-]{1,400}$/.test(key) || key.includes('..')) {
      throw new WhaleError('ERR_INVALID_ARG', `key: ${JSON.stringify(key)} is not a valid store key`, { field: 'key' });
    }
    return join(this.dir, key.replaceAll('/', '~'));
  }

  async get(key: string): Promise<Uint8Array | undefined> {
    try {
      return new Uint8Array(await readFile(this.file(key)));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
  }

  async set(key: string, value: Uint8Array): Promise<void> {
    const target = this.file(key);
    const tmp = `${target}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
    try {
      await writeFile(tmp, value, { mode: 0o600, flag: 'wx' });
      await rename(tmp, target);
    } catch (err) {
      await rm(tmp, { force: true }).catch(() => undefined);
      throw err;
    }
  }

  async delete(key: string): Promise<void> {
    await rm(this.file(key), { force: true });
  }

  async close(): Promise<void> {}
}

export class RedisKv implements KeyValueStore {
  readonly kind = 'redis' as const;
  private readonly client: Redis;

  constructor(
    url: string,
    private readonly prefix = 'whale:fed:',
  ) {
    this.client = connectRedis(url, 'kv'); // commands report their own failures
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
