/**
 * Cache bench: get/set ops/s and hit latency (p50/p99) per tier, with and
 * without Redis (a throwaway redis-server on loopback, as in the tests).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { silentLogger } from '../src/common/logger.js';
import { TieredCache, type Tier } from '../src/core/memory/tiered-cache.js';
import type { CacheValue } from '../src/core/memory/value-codec.js';
import { RedisServer } from '../test/support/redis-server.js';
import { fmt, percentile, table } from './stats.js';

interface Case {
  name: string;
  tiers: Tier[];
  value: () => CacheValue;
}

async function measure(cache: TieredCache, c: Case, ops: number): Promise<string[]> {
  const ns = `bench-${c.name}`;
  const keys = Array.from({ length: 256 }, (_, i) => `k${i}`);
  const value = c.value();
  const t0 = performance.now();
  for (let i = 0; i < ops; i++) await cache.set(ns, keys[i % keys.length]!, value);
  const setOps = ops / ((performance.now() - t0) / 1e3);
  const lat: number[] = [];
  const t1 = performance.now();
  for (let i = 0; i < ops; i++) {
    const s = performance.now();
    const v = await cache.get(ns, keys[i % keys.length]!);
    lat.push((performance.now() - s) * 1000);
    if (v === undefined) throw new Error(`bench: unexpected miss in ${c.name}`);
  }
  const getOps = ops / ((performance.now() - t1) / 1e3);
  lat.sort((a, b) => a - b);
  return [
    c.name,
    c.tiers.join('+'),
    fmt(setOps, 0),
    fmt(getOps, 0),
    fmt(percentile(lat, 0.5), 1),
    fmt(percentile(lat, 0.99), 1),
  ];
}

export async function benchCache(opts: { quick: boolean }): Promise<{ text: string }> {
  const ops = opts.quick ? 2000 : 20000;
  const tensor = () => Float32Array.from({ length: 1024 }, (_, i) => Math.sin(i));
  const text1k = () => 'x'.repeat(1024);
  // A typical structured value: L1 validates it on set and copies it on set and get.
  const record = () => ({
    id: 'doc-42',
    tags: ['a', 'b', 'c'],
    score: 0.93,
    at: new Date(0),
    emb: new Float32Array(64),
  });
  const redis = await RedisServer.start();
  const dir = mkdtempSync(join(tmpdir(), 'whale-bench-cache-'));
  const cases: Case[] = [
    { name: 'l1 string 1KB', tiers: ['l1'], value: text1k },
    { name: 'l1 tensor 1024f', tiers: ['l1'], value: tensor },
    { name: 'l1 record', tiers: ['l1'], value: record },
    { name: 'l2 string 1KB', tiers: ['l2'], value: text1k },
    { name: 'l2 tensor 1024f', tiers: ['l2'], value: tensor },
    { name: 'l3 string 1KB', tiers: ['l3'], value: text1k },
    { name: 'l3 tensor 1024f', tiers: ['l3'], value: tensor },
    { name: 'l3 record', tiers: ['l3'], value: record },
    { name: 'l1+l2+l3 tensor', tiers: ['l1', 'l2', 'l3'], value: tensor },
  ];
  const rows: string[][] = [];
  try {
    for (const c of cases) {
      const cache = new TieredCache({
        redisUrl: c.tiers.includes('l2') ? redis.url : '',
        diskDir: c.tiers.includes('l3') ? dir : false,
        logger: silentLogger,
        namespaces: { [`bench-${c.name}`]: { tiers: c.tiers } },
      });
      await cache.ready();
      rows.push(await measure(cache, c, c.tiers.includes('l3') ? Math.min(ops, 5000) : ops));
      await cache.close();
    }
  } finally {
    await redis.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  const text = [
    table(['case', 'tiers', 'set ops/s', 'get ops/s', 'get p50 µs', 'get p99 µs'], rows),
    '',
    'Sequential awaited calls from one client (latency-bound); a get hits the listed tier(s).',
    'Tensor values are 1024 float32 stored int8 below L1; Redis is a local redis-server on loopback.',
    'record: { id, tags[3], score, Date, Float32Array(64) }; L1 stores and returns private copies (copy cost included).',
  ].join('\n');
  return { text };
}
