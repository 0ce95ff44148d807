// Quotas: a model at its limit gets typed errors while others proceed, token
// buckets within tolerance (fake clock), run-time changes, tenant limits, and
// one quota shared by two processes through a real Redis.
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { QuotaManager } from '../src/core/resource-management/quota/quota-manager.js';
import { LocalQuotaStore } from '../src/core/resource-management/quota/quota-store.js';
import { RedisQuotaStore } from '../src/core/resource-management/quota/redis-quota-store.js';
import { TokenBucket } from '../src/core/resource-management/quota/token-bucket.js';
import { expectWhaleError } from './helpers.js';
import { RedisServer } from './support/redis-server.js';

const viteNode = createRequire(import.meta.url).resolve('vite-node/vite-node.mjs');

describe('token bucket', () => {
  it('admits burst + rate x elapsed over a long run (within 1%), with an exact retry hint', () => {
    let now = 0;
    const b = new TokenBucket(100, 10, now);
    let admitted = 0;
    for (; now <= 10_000; now += 1) for (let k = 0; k < 3; k++) if (b.take(now).ok) admitted++;
    expect(Math.abs(admitted - (10 + 100 * 10))).toBeLessThanOrEqual(0.01 * 1010);
    const fresh = new TokenBucket(2, 1, 0);
    expect(fresh.take(0).ok).toBe(true);
    expect(fresh.take(0)).toEqual({ ok: false, retryAfterMs: 500 });
    expect(fresh.take(500).ok).toBe(true);
  });
});

describe('QuotaManager (local store)', () => {
  it('a model at its rate limit gets ERR_QUOTA_EXCEEDED with retryAfterMs while others proceed', async () => {
    let now = 0;
    const q = new QuotaManager(new LocalQuotaStore(() => now));
    q.setRateLimit('model', 'limited', { requestsPerSecond: 5, burst: 2 });
    (await q.admit('limited')).release();
    (await q.admit('limited')).release();
    const e = await expectWhaleError(() => q.admit('limited'), 'ERR_QUOTA_EXCEEDED', 'model');
    expect(e.retriable).toBe(true);
    expect(e.details).toMatchObject({ model: 'limited', resource: 'requests_per_second', retryAfterMs: 200 });
    for (let i = 0; i < 50; i++) (await q.admit('free')).release(); // no limit: never refused
    now += 200;
    (await q.admit('limited')).release();
  });

  it('concurrency: ERR_OVERLOADED at maxConcurrent, slots come back on release (once)', async () => {
    const q = new QuotaManager();
    q.setRateLimit('model', 'm', { maxConcurrent: 2 });
    const a = await q.admit('m');
    const b = await q.admit('m');
    const e = await expectWhaleError(() => q.admit('m'), 'ERR_OVERLOADED', 'model');
    expect(e.details).toMatchObject({ resource: 'concurrent_requests', retryAfterMs: expect.any(Number) });
    a.release();
    a.release(); // a second release frees nothing more
    const c = await q.admit('m');
    await expectWhaleError(() => q.admit('m'), 'ERR_OVERLOADED', 'model');
    b.release();
    c.release();
    expect((await q.snapshot()).models.m).toMatchObject({ inFlight: 0 });
  });

  it('tenant limits apply across models; a refused request holds no slot; limits change at run time', async () => {
    let now = 0;
    const q = new QuotaManager(new LocalQuotaStore(() => now));
    q.setRateLimit('tenant', 'acme', { requestsPerSecond: 1, burst: 1, maxConcurrent: 5 });
    (await q.admit('m1', 'acme')).release();
    await expectWhaleError(() => q.admit('m2', 'acme'), 'ERR_QUOTA_EXCEEDED', 'tenant');
    expect((await q.snapshot()).tenants.acme!.inFlight).toBe(0);
    (await q.admit('m2', 'other')).release();
    q.setRateLimit('tenant', 'big', { requestsPerSecond: 1000, burst: 1000 });
    for (let i = 0; i < 5; i++) (await q.admit('m2', 'big')).release();
    q.setRateLimit('tenant', 'big', { requestsPerSecond: 1, burst: 1 }); // lowered at run time: 995 banked tokens capped to 1
    (await q.admit('m2', 'big')).release();
    await expectWhaleError(() => q.admit('m2', 'big'), 'ERR_QUOTA_EXCEEDED', 'tenant');
    now += 1000;
    (await q.admit('m2', 'big')).release();
    q.setRateLimit('tenant', 'acme', {});
    expect(q.getRateLimit('tenant', 'acme')).toBeUndefined();
  });

  it('resource quotas: validated, changed at run time, listeners told', () => {
    const q = new QuotaManager();
    const seen: unknown[] = [];
    q.onQuotaChange((m, quota) => seen.push([m, quota]));
    expect(q.setQuota('m', 1.5, 1024, 0.25)).toEqual({ cpu: 1.5, memory: 1024, gpu: 0.25 });
    q.setQuota('m', 2, 2048, 0);
    expect(q.getQuota('m')).toEqual({ cpu: 2, memory: 2048, gpu: 0 });
    expect(seen).toHaveLength(2);
    expect(() => q.setQuota('m', -1, 0, 0)).toThrow(/cpu/);
    expect(() => q.setQuota('m', 1, Number.NaN, 0)).toThrow(/memory/);
    expect(() => q.setQuota('', 1, 1, 0)).toThrow(/modelId/);
    expect(() => q.setRateLimit('model', 'm', { requestsPerSecond: 0 })).toThrow(/requestsPerSecond/);
    expect(() => q.setRateLimit('model', 'm', { maxConcurrent: 1.5 })).toThrow(/maxConcurrent/);
  });
});

describe('quotas shared through Redis', () => {
  let redis: RedisServer;
  beforeAll(async () => {
    redis = await RedisServer.start();
  });
  afterAll(() => redis?.stop());

  it('one store: concurrency slots and buckets are shared between managers', async () => {
    const a = new QuotaManager(new RedisQuotaStore({ url: redis.url, prefix: 'whale:t1:' }));
    const b = new QuotaManager(new RedisQuotaStore({ url: redis.url, prefix: 'whale:t1:' }));
    for (const q of [a, b]) q.setRateLimit('model', 'm', { maxConcurrent: 2 });
    const p1 = await a.admit('m');
    const p2 = await b.admit('m');
    await expectWhaleError(() => a.admit('m'), 'ERR_OVERLOADED', 'model');
    await expectWhaleError(() => b.admit('m'), 'ERR_OVERLOADED', 'model');
    p1.release();
    await new Promise((r) => setTimeout(r, 20)); // release is fire-and-forget to Redis
    const p3 = await b.admit('m');
    p2.release();
    p3.release();
    await a.close();
    await b.close();
  });

  it('two processes enforce one requests/s quota (total within 15% of burst + rate x time)', async () => {
    const rps = 100;
    const burst = 10;
    const startAt = Date.now() + 6_000; // both children are up by then (vite-node start-up)
    const endAt = startAt + 2_000;
    const run = () =>
      new Promise<{ admitted: number; refused: number }>((resolve, reject) => {
        const p = spawn(
          process.execPath,
          [
            viteNode,
            'test/resource.quota.child.ts',
            redis.url,
            String(startAt),
            String(endAt),
            String(rps),
            String(burst),
          ],
          {
            stdio: ['ignore', 'pipe', 'pipe'],
          },
        );
        let out = '';
        let err = '';
        p.stdout.on('data', (d) => (out += d));
        p.stderr.on('data', (d) => (err += d));
        p.on('exit', (code) =>
          code === 0
            ? resolve(JSON.parse(out.trim().split('\n').pop()!))
            : reject(new Error(`child exited ${code}: ${err}`)),
        );
      });
    const [x, y] = await Promise.all([run(), run()]);
    expect(Date.now()).toBeGreaterThan(endAt); // the children really ran the whole window
    const expected = burst + (rps * (endAt - startAt)) / 1000;
    const total = x.admitted + y.admitted;
    expect(Math.abs(total - expected) / expected).toBeLessThan(0.15);
    expect(x.admitted).toBeGreaterThan(0);
    expect(y.admitted).toBeGreaterThan(0);
    expect(x.refused + y.refused).toBeGreaterThan(total); // both pushed far past the shared limit
  }, 30_000);
});
