/**
 * Quota state in Redis: token buckets and concurrency counters updated by Lua
 * scripts (atomic, clocked by the Redis server's TIME so nodes with skewed
 * clocks agree). Concurrency slots expire after `slotTtlMs` so a node that
 * dies holding slots cannot block the quota for ever. Quota settings changed
 * at run time are saved in the hash `<prefix>settings` and announced on the
 * channel of the same name, so a quota set through one node holds on every node.
 */
import { connectRedis, type Redis } from '../../../transport/redis.js';

import type { QuotaStore } from './quota-store.js';
import type { TakeResult } from './token-bucket.js';

const TAKE = `
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local v = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(v[1]) or burst
local ts = tonumber(v[2]) or now
if now > ts then tokens = math.min(burst, tokens + (now - ts) * rate / 1000) else now = ts end
local ok = 0
local wait = 0
if tokens >= 1 then tokens = tokens - 1; ok = 1 else wait = math.ceil((1 - tokens) * 1000 / rate) end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst * 1000 / rate) + 1000)
return {ok, wait}
`;

const ACQUIRE = `
local n = redis.call('INCR', KEYS[1])
if n > tonumber(ARGV[1]) then redis.call('DECR', KEYS[1]); return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
`;

const RELEASE = `
local n = tonumber(redis.call('GET', KEYS[1]) or '0')
if n <= 1 then redis.call('DEL', KEYS[1]) else redis.call('DECR', KEYS[1]) end
return 1
`;

export interface RedisQuotaStoreOptions {
  url: string;
  /** Key prefix (default 'whale:quota:'); nodes sharing a quota use the same one. */
  prefix?: string;
  slotTtlMs?: number;
}

export class RedisQuotaStore implements QuotaStore {
  readonly kind = 'redis';
  private readonly redis: Redis;
  private readonly prefix: string;
  private readonly slotTtlMs: number;
  private readonly url: string;
  private subscriber: Redis | undefined;

  constructor(o: RedisQuotaStoreOptions) {
    this.url = o.url;
    this.redis = connectRedis(o.url, 'quota'); // errors surface as rejected commands
    this.prefix = o.prefix ?? 'whale:quota:';
    this.slotTtlMs = o.slotTtlMs ?? 60_000;
  }

  async take(key: string, rate: number, burst: number): Promise<TakeResult> {
    const [ok, wait] = (await this.redis.eval(TAKE, 1, `${this.prefix}rate:${key}`, rate, burst)) as [number, number];
    return { ok: ok === 1, retryAfterMs: Number(wait) };
  }

  async acquire(key: string, limit: number): Promise<boolean> {
    return (await this.redis.eval(ACQUIRE, 1, `${this.prefix}slots:${key}`, limit, this.slotTtlMs)) === 1;
  }

  async release(key: string): Promise<void> {
    await this.redis.eval(RELEASE, 1, `${this.prefix}slots:${key}`);
  }

  async held(key: string): Promise<number> {
    return Number((await this.redis.get(`${this.prefix}slots:${key}`)) ?? 0);
  }

  async shareSetting(key: string, value: unknown): Promise<void> {
    const channel = `${this.prefix}settings`;
    await this.redis
      .multi()
      .hset(channel, key, JSON.stringify(value))
      .publish(channel, JSON.stringify({ key, value }))
      .exec();
  }

  async watchSettings(onChange: (key: string, value: unknown) => void): Promise<Record<string, unknown>> {
    const channel = `${this.prefix}settings`;
    // A connection in subscriber mode takes no other command: its own.
    const sub = (this.subscriber ??= connectRedis(this.url, 'quota'));
    // ioredis's own resubscribe after a reconnect leaves its promise unhandled: a shutdown (quit) while it
    // is pending rejected it with "Connection is closed." and crashed the node (exit 1 on SIGINT after a
    // Redis outage). The channel is subscribed again here, with the rejection handled.
    sub.options.autoResubscribe = false;
    let subscribed = false;
    sub.on('ready', () => {
      if (subscribed) void sub.subscribe(channel).catch(() => undefined);
    });
    sub.on('message', (ch: string, text: string) => {
      if (ch !== channel) return;
      try {
        const m = JSON.parse(text) as { key: string; value: unknown };
        onChange(m.key, m.value);
      } catch {
        // not ours
      }
    });
    await sub.subscribe(channel);
    subscribed = true;
    const saved = await this.redis.hgetall(channel);
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(saved)) {
      try {
        out[k] = JSON.parse(v);
      } catch {
        // skip a value another writer left
      }
    }
    return out;
  }

  async close(): Promise<void> {
    const sub = this.subscriber;
    this.subscriber = undefined;
    await sub?.quit().catch(() => sub.disconnect());
    await this.redis.quit().catch(() => this.redis.disconnect());
  }
}
