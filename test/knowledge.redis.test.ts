// KnowledgeManager with Redis: store of record (dir: false) rebuilt on restart, damaged values reported; mirror beside the disk.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { KnowledgeManager } from '../src/core/federation/knowledge-sharing/index.js';
import { RedisServer } from './support/redis-server.js';

let server: RedisServer;
let redis: Redis;
beforeAll(async () => {
  server = await RedisServer.start();
  redis = new Redis(server.url);
});
afterAll(async () => {
  redis.disconnect();
  await server.stop();
});

const emb = (i: number) => Float32Array.from({ length: 8 }, (_, j) => Math.cos(i * 3 + j));

describe('KnowledgeManager on Redis', () => {
  it('Redis as the store of record: a restart rebuilds the same results; a damaged value is skipped and reported', async () => {
    const opts = { dim: 8, dir: false as const, redis: { url: server.url, prefix: 'kt1' } };
    const m = await KnowledgeManager.open(opts);
    await m.store(
      Array.from({ length: 40 }, (_, i) => ({ id: `r${i}`, topic: i % 2 ? 'a' : 'b', data: { i }, embedding: emb(i) })),
    );
    await m.forget({ id: 'r3' });
    const before = await m.search({ vector: emb(100), k: 8, filter: { topic: 'a' } });
    await m.close();
    const again = await KnowledgeManager.open(opts);
    expect(again.recovery.items).toBe(39);
    const after = await again.search({ vector: emb(100), k: 8, filter: { topic: 'a' } });
    expect(after.map((h) => [h.item.id, h.distance])).toEqual(before.map((h) => [h.item.id, h.distance]));
    await again.close();
    const raw = await redis.getBuffer('kt1:item:r5');
    raw![raw!.length - 3]! ^= 0xff;
    await redis.set('kt1:item:r5', raw!);
    const third = await KnowledgeManager.open(opts);
    expect(third.recovery.items).toBe(38);
    expect(third.recovery.damaged).toEqual([
      expect.objectContaining({ source: 'redis', id: 'r5', code: 'ERR_CHECKSUM' }),
    ]);
    await third.close();
  });

  it('beside the disk, Redis mirrors every item (with its TTL) and deletes', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'whale-knowledge-redis-'));
    try {
      const m = await KnowledgeManager.open({ dim: 8, dir, redis: { url: server.url, prefix: 'kt2' } });
      await m.store({ id: 'keep', topic: 't', data: 1, embedding: emb(1) });
      await m.store({ id: 'brief', topic: 't', data: 2, embedding: emb(2), ttlMs: 60_000 });
      await m.store({ id: 'gone', topic: 't', data: 3 });
      await m.forget({ id: 'gone' });
      expect((await redis.smembers('kt2:ids')).sort()).toEqual(['brief', 'keep']);
      expect(await redis.pttl('kt2:item:brief')).toBeGreaterThan(50_000);
      expect(await redis.pttl('kt2:item:keep')).toBe(-1);
      expect(m.stats().redisErrors).toBe(0);
      await m.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
