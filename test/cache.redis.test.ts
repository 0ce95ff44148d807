// The tiered cache against a real redis-server started for this file,
// including killing it mid-test and bringing it back.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { serialize } from 'node:v8';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { Logger } from '../src/common/logger.js';
import { TieredCache } from '../src/core/memory/tiered-cache.js';
import { rng, until } from './helpers.js';
import { acceptedValues, expectSame } from './support/cache-values.js';
import { RedisServer } from './support/redis-server.js';

let server: RedisServer;
let raw: Redis;

beforeAll(async () => {
  server = await RedisServer.start();
  raw = new Redis(server.url, { maxRetriesPerRequest: 1, enableOfflineQueue: true });
});

afterAll(async () => {
  raw.disconnect();
  await server.stop();
});

function recordingLogger(): Logger & { lines: Array<{ level: string; msg: string }> } {
  const lines: Array<{ level: string; msg: string }> = [];
  const at = (level: string) => (msg: string) => void lines.push({ level, msg });
  return { lines, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

const vec = (n: number) => {
  const r = rng(n);
  return Float32Array.from({ length: n }, () => r.normal());
};

describe('L2 on a real redis-server', () => {
  it('stores codec blobs under prefix:namespace:key with TTL, read back by a fresh process', async () => {
    const a = new TieredCache({ redisUrl: server.url, diskDir: false, keyPrefix: 'tst', logger: recordingLogger() });
    expect(await a.ready()).toEqual({ l2: true });
    const t = vec(4096);
    await a.set('model-a/emb', 'k1', t, { ttlMs: 60_000 });
    const stored = await raw.getBuffer('tst:model-a/emb:k1');
    expect(stored).not.toBeNull();
    expect(stored!.length).toBeLessThan(t.byteLength / 3); // int8: ~4x smaller
    const pttl = await raw.pttl('tst:model-a/emb:k1');
    expect(pttl).toBeGreaterThan(50_000);
    const b = new TieredCache({ redisUrl: server.url, diskDir: false, keyPrefix: 'tst', logger: recordingLogger() });
    await b.ready();
    const got = (await b.get('model-a/emb', 'k1')) as Float32Array;
    expect(got.length).toBe(4096);
    expect(got.reduce((m, v, i) => Math.max(m, Math.abs(v - t[i]!)), 0)).toBeLessThan(0.05);
    expect(b.stats().l2).toMatchObject({ enabled: true, hits: 1, available: true });
    await Promise.all([a.close(), b.close()]);
  });

  it('TTL expiry in Redis', async () => {
    const c = new TieredCache({
      redisUrl: server.url,
      diskDir: false,
      keyPrefix: 'ttl',
      logger: recordingLogger(),
      namespaces: { n: { tiers: ['l2'] } },
    });
    await c.ready();
    await c.set('n', 'k', 'v', { ttlMs: 80 });
    expect(await c.get('n', 'k')).toBe('v');
    await new Promise((r) => setTimeout(r, 150));
    expect(await c.get('n', 'k')).toBeUndefined();
    await c.close();
  });

  it('getMany/setMany use one round trip each (pipeline, MGET)', async () => {
    const c = new TieredCache({
      redisUrl: server.url,
      diskDir: false,
      keyPrefix: 'many',
      logger: recordingLogger(),
      namespaces: { n: { tiers: ['l2'] } },
    });
    await c.ready();
    const before = Number((await raw.info('stats')).match(/total_commands_processed:(\d+)/)![1]);
    await c.setMany(
      'n',
      Array.from({ length: 50 }, (_, i) => [`k${i}`, i] as const),
    );
    const values = await c.getMany(
      'n',
      Array.from({ length: 52 }, (_, i) => `k${i}`),
    );
    const after = Number((await raw.info('stats')).match(/total_commands_processed:(\d+)/)![1]);
    expect(values.slice(0, 50)).toEqual(Array.from({ length: 50 }, (_, i) => i));
    expect(values.slice(50)).toEqual([undefined, undefined]);
    // 50 SETs in one pipeline + 1 MGET + our 1 INFO; far fewer round trips than 100 GET/SETs.
    expect(after - before).toBeLessThanOrEqual(53);
    await c.close();
  });

  it('an undecodable value in Redis is a miss plus a counted corruption', async () => {
    const c = new TieredCache({ redisUrl: server.url, diskDir: false, keyPrefix: 'bad', logger: recordingLogger() });
    await c.ready();
    await raw.set('bad:n:k', Buffer.from('T-not-a-blob'));
    await raw.set('bad:n:j', Buffer.from('J{broken'));
    expect(await c.get('n', 'k')).toBeUndefined();
    expect(await c.getMany('n', ['j'])).toEqual([undefined]);
    expect(c.stats().corruptions).toBe(2);
    expect(await until(async () => (await raw.exists('bad:n:k')) === 0, 2000)).toBe(true);
    await c.close();
  });

  it('a slow Redis (past the command timeout) degrades to a miss, not an error', async () => {
    const c = new TieredCache({
      redisUrl: server.url,
      diskDir: false,
      keyPrefix: 'slow',
      redisCommandTimeoutMs: 100,
      logger: recordingLogger(),
      namespaces: { n: { tiers: ['l2'] } },
    });
    await c.ready();
    await c.set('n', 'k', 'v');
    const blocker = new Redis(server.url);
    const sleeping = blocker.call('DEBUG', 'SLEEP', '0.5');
    await new Promise((r) => setTimeout(r, 30));
    const t0 = Date.now();
    expect(await c.get('n', 'k')).toBeUndefined();
    expect(Date.now() - t0).toBeLessThan(400);
    await sleeping;
    blocker.disconnect();
    expect(await until(async () => (await c.get('n', 'k')) === 'v', 3000)).toBe(true);
    expect(c.stats().l2).toMatchObject({ available: true });
    await c.close();
  });
});

describe('L2: ids, expiry and value types', () => {
  const sleepUntil = (t: number) => new Promise((r) => setTimeout(r, Math.max(0, t - Date.now())));

  it("namespace 'model-a/emb' + 'doc:42' and 'model-a/emb:doc' + '42' are different Redis keys", async () => {
    const opts = { redisUrl: server.url, diskDir: false as const, keyPrefix: 'ids', logger: recordingLogger() };
    const c = new TieredCache({
      ...opts,
      namespaces: { 'model-a/emb': { tiers: ['l2'] }, 'model-a/emb:doc': { tiers: ['l2'] } },
    });
    await c.ready();
    await c.set('model-a/emb', 'doc:42', 'first');
    await c.set('model-a/emb:doc', '42', 'second');
    expect(await c.get('model-a/emb', 'doc:42')).toBe('first');
    expect(await c.get('model-a/emb:doc', '42')).toBe('second');
    expect((await raw.keys('ids:*')).sort()).toEqual(['ids:model-a/emb%3Adoc:42', 'ids:model-a/emb:doc:42']);
    await c.close();
  });

  it('a 300 ms entry promoted from Redis to L1 expires 300 ms after its write (get and getMany)', async () => {
    const writer = new TieredCache({
      redisUrl: server.url,
      diskDir: false,
      keyPrefix: 'pttl',
      logger: recordingLogger(),
    });
    const reader = new TieredCache({
      redisUrl: server.url,
      diskDir: false,
      keyPrefix: 'pttl',
      logger: recordingLogger(),
      namespaces: { n: { ttlMs: 60_000 } },
    });
    await Promise.all([writer.ready(), reader.ready()]);
    const t0 = Date.now();
    await writer.setMany(
      'n',
      [
        ['a', 'A'],
        ['b', 'B'],
      ],
      { ttlMs: 300 },
    );
    await sleepUntil(t0 + 150);
    expect(await reader.get('n', 'a')).toBe('A');
    expect(await reader.getMany('n', ['b'])).toEqual(['B']);
    expect(reader.stats().l2).toMatchObject({ hits: 2 });
    await sleepUntil(t0 + 450);
    expect(await reader.getMany('n', ['a', 'b'])).toEqual([undefined, undefined]);
    expect(reader.stats().l1.expirations).toBe(2); // L1 dropped them itself
    await Promise.all([writer.close(), reader.close()]);
  });

  it('every accepted value comes back from Redis with its type', async () => {
    const opts = {
      redisUrl: server.url,
      diskDir: false as const,
      keyPrefix: 'types',
      logger: recordingLogger(),
      namespaces: { n: { tiers: ['l2' as const] } },
    };
    const w = new TieredCache(opts);
    const r = new TieredCache(opts);
    await Promise.all([w.ready(), r.ready()]);
    const values = acceptedValues();
    await w.setMany(
      'n',
      values.map(([name, v]) => [name, v] as const),
    );
    for (const [name, v] of values) expectSame(await r.get('n', name), v, name);
    const many = await r.getMany(
      'n',
      values.map(([name]) => name),
    );
    many.forEach((got, i) => expectSame(got, values[i]![1], values[i]![0]));
    await Promise.all([w.close(), r.close()]);
  });

  it('a structured value of a type the cache refuses, or a damaged one, is a corruption, not a hit', async () => {
    const c = new TieredCache({
      redisUrl: server.url,
      diskDir: false,
      keyPrefix: 'foreign',
      logger: recordingLogger(),
    });
    await c.ready();
    await raw.set('foreign:n:re', Buffer.concat([Buffer.from('V'), serialize({ re: /x/ })]));
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    await raw.set('foreign:n:cycle', Buffer.concat([Buffer.from('V'), serialize(cyclic)]));
    await raw.set('foreign:n:cut', Buffer.concat([Buffer.from('V'), serialize({ a: 'long enough' }).subarray(0, 6)]));
    expect(await c.getMany('n', ['re', 'cycle', 'cut'])).toEqual([undefined, undefined, undefined]);
    expect(c.stats().corruptions).toBe(3);
    await c.close();
  });
});

describe('Redis outage and recovery', () => {
  it('keeps serving from L1/L3, logs once per outage, reconnects by itself', async () => {
    const own = await RedisServer.start();
    const log = recordingLogger();
    const c = new TieredCache({
      redisUrl: own.url,
      diskDir: mkdtempSync(join(tmpdir(), 'whale-outage-')),
      l1MaxBytes: 1 << 20,
      logger: log,
    });
    expect(await c.ready()).toEqual({ l2: true });
    await c.set('n', 'a', 'A');
    await c.set('n', 'b', vec(256));

    await own.kill(); // mid-test outage
    expect(await c.get('n', 'a')).toBe('A'); // L1
    await c.set('n', 'c', 'C'); // L2 write fails quietly; L1 + L3 take it
    const fresh = new TieredCache({
      redisUrl: own.url,
      diskDir: (c as unknown as { l3: { dir: string } }).l3.dir,
      logger: recordingLogger(),
    });
    expect(await fresh.get('n', 'c')).toBe('C'); // L3, with Redis down
    expect((await fresh.getMany('n', ['a', 'b'])).map((v) => v !== undefined)).toEqual([true, true]);
    for (let i = 0; i < 20; i++) await c.get('n', `miss${i}`);
    const down = c.stats().l2;
    expect(down).toMatchObject({ enabled: true, available: false, outages: 1 });
    expect(down.enabled && down.errors).toBeGreaterThan(0);
    const warnings = log.lines.filter((l) => l.level === 'warn' && /redis unavailable/.test(l.msg));
    expect(warnings).toHaveLength(1);

    await own.launch(); // back on the same port
    expect(await until(() => c.stats().l2.enabled && (c.stats().l2 as { available: boolean }).available, 8000)).toBe(
      true,
    );
    expect(log.lines.some((l) => l.level === 'info' && /redis recovered/.test(l.msg))).toBe(true);
    await c.set('n', 'd', 'D');
    const direct = new Redis(own.url);
    expect((await direct.getBuffer('whale:n:d'))?.subarray(1).toString()).toBe('D');
    direct.disconnect();
    await Promise.all([c.close(), fresh.close()]);
    await own.stop();
  });
});
