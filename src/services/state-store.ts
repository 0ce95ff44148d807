/**
 * Where services keep state that must survive a restart (pending requests,
 * sessions): Redis when configured, memory otherwise. Failures are not
 * hidden: losing state silently would lose requests.
 */
import { Redis } from 'ioredis';

export interface StateStore {
  get<T>(key: string): Promise<T | undefined>;
  set<T>(key: string, value: T, ttlMs?: number): Promise<void>;
  delete(key: string): Promise<void>;
  /** Keys starting with prefix. */
  keys(prefix: string): Promise<string[]>;
  close(): Promise<void>;
}

export class MemoryStateStore implements StateStore {
  private readonly map = new Map<string, { json: string; expiresAt: number }>();

  async get<T>(key: string): Promise<T | undefined> {
    const e = this.map.get(key);
    if (!e) return undefined;
    if (e.expiresAt <= Date.now()) {
      this.map.delete(key);
      return undefined;
    }
    return JSON.parse(e.json) as T;
  }

  async set<T>(key: string, value: T, ttlMs?: number): Promise<void> {
    this.map.set(key, { json: JSON.stringify(value), expiresAt: ttlMs === undefined ? Infinity : Date.now() + ttlMs });
  }

  async delete(key: string): Promise<void> {
    this.map.delete(key);
  }

  async keys(prefix: string): Promise<string[]> {
    const now = Date.now();
    return [...this.map.entries()].filter(([k, e]) => k.startsWith(prefix) && e.expiresAt > now).map(([k]) => k);
  }

  async close(): Promise<void> {}
}

export class RedisStateStore implements StateStore {
  private readonly client: Redis;

  constructor(
    url: string,
    private readonly prefix = 'whale:state:',
  ) {
    this.client = new Redis(url, { maxRetriesPerRequest: 2, commandTimeout: 2000 });
    this.client.on('error', () => undefined); // reported by the failing command
  }

  async get<T>(key: string): Promise<T | undefined> {
    const v = await this.client.get(this.prefix + key);
    return v === null ? undefined : (JSON.parse(v) as T);
  }

  async set<T>(key: string, value: T, ttlMs?: number): Promise<void> {
    const json = JSON.stringify(value);
    if (ttlMs === undefined) await this.client.set(this.prefix + key, json);
    else await this.client.set(this.prefix + key, json, 'PX', Math.max(1, Math.ceil(ttlMs)));
  }

  async delete(key: string): Promise<void> {
    await this.client.del(this.prefix + key);
  }

  async keys(prefix: string): Promise<string[]> {
    const out: string[] = [];
    let cursor = '0';
    do {
      const [next, batch] = await this.client.scan(cursor, 'MATCH', `${this.prefix}${prefix}*`, 'COUNT', 500);
      cursor = next;
      for (const k of batch) out.push(k.slice(this.prefix.length));
    } while (cursor !== '0');
    return out;
  }

  async close(): Promise<void> {
    await this.client.quit().catch(() => this.client.disconnect());
  }
}
