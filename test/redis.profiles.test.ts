import { describe, expect, it } from 'vitest';

import { connectRedis, REDIS_PROFILES, redisOptions, type RedisProfileName } from '../src/transport/redis.js';

describe('Redis connection profiles', () => {
  it("keeps each former call site's settings", () => {
    expect(redisOptions('cache')).toMatchObject({
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      commandTimeout: 250,
      connectTimeout: 1000,
    });
    expect(redisOptions('cache', { commandTimeoutMs: 100 }).commandTimeout).toBe(100);
    expect(redisOptions('quota')).toMatchObject({
      lazyConnect: false,
      enableOfflineQueue: true,
      maxRetriesPerRequest: 2,
    });
    expect(redisOptions('quota').commandTimeout).toBeUndefined();
    expect(redisOptions('state')).toMatchObject({ maxRetriesPerRequest: 2, commandTimeout: 2000 });
    expect(redisOptions('health')).toMatchObject({
      lazyConnect: true,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      connectTimeout: 1000,
    });
    expect(redisOptions('health').retryStrategy?.(7)).toBe(500);
    expect(redisOptions('knowledge')).toMatchObject({
      lazyConnect: true,
      maxRetriesPerRequest: 1,
      commandTimeout: 2000,
      connectTimeout: 2000,
    });
    expect(redisOptions('kv')).toMatchObject({ lazyConnect: false, maxRetriesPerRequest: 3, connectTimeout: 2000 });
    // ioredis's default reconnect delay where a call site set none; doubling to 2 s where it did
    expect(redisOptions('kv').retryStrategy?.(3)).toBe(150);
    expect(redisOptions('cache').retryStrategy?.(3)).toBe(400);
    expect(redisOptions('cache').retryStrategy?.(30)).toBe(2000);
  });

  it('always attaches an error listener', () => {
    for (const name of Object.keys(REDIS_PROFILES) as RedisProfileName[]) {
      const errors: Error[] = [];
      const c = connectRedis('redis://127.0.0.1:1', name, name === 'cache' ? { onError: (e) => errors.push(e) } : {});
      expect(c.listenerCount('error')).toBe(1);
      c.disconnect();
    }
  });
});
