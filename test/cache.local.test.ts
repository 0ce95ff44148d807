// The tiered cache without Redis: L1 + L3 (disk), the embedded default.
import { mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

import { silentLogger } from '../src/common/logger.js';
import { TieredCache } from '../src/core/memory/tiered-cache.js';
import { expectWhaleError, rng } from './helpers.js';

const dir = () => mkdtempSync(join(tmpdir(), 'whale-cache-'));
const vec = (n: number, seed = 1) => {
  const r = rng(seed);
  return Float32Array.from({ length: n }, () => r.normal());
};

describe('TieredCache, L1 + disk', () => {
  it('round-trips every value kind; tensors come back quantized from disk', async () => {
    const d = dir();
    const a = new TieredCache({ diskDir: d, logger: silentLogger, redisUrl: '' });
    const t = vec(1000);
    await a.set('emb', 'v', t);
    await a.set('emb', 's', 'hello');
    await a.set('emb', 'j', { a: [1, 2], b: 'x' });
    await a.set('emb', 'b', Buffer.from([1, 2, 3]));
    expect(await a.get('emb', 'v')).toEqual(t); // L1 holds the original
    const b = new TieredCache({ diskDir: d, logger: silentLogger, redisUrl: '' }); // fresh L1, same disk
    const fromDisk = (await b.get('emb', 'v')) as Float32Array;
    let worst = 0;
    fromDisk.forEach((v, i) => (worst = Math.max(worst, Math.abs(v - t[i]!))));
    expect(worst).toBeLessThan(0.05);
    expect(await b.get('emb', 's')).toBe('hello');
    expect(await b.get('emb', 'j')).toEqual({ a: [1, 2], b: 'x' });
    expect(Array.from((await b.get('emb', 'b')) as Buffer)).toEqual([1, 2, 3]);
    const s = b.stats();
    expect(s.l1.hits).toBe(0);
    expect(s.l3).toMatchObject({ enabled: true, hits: 4 });
    const promoted = await b.get('emb', 'v'); // promoted to L1, handed out as a copy the caller owns
    expect(promoted).toEqual(fromDisk);
    expect(promoted).not.toBe(fromDisk);
    expect(b.stats().l1.hits).toBe(1);
    expect(a.stats().compression.ratio).toBeGreaterThan(3);
    expect(b.stats().l2).toEqual({ enabled: false });
  });

  it('writes atomically (no temp files left) and evicts by the disk budget', async () => {
    const d = dir();
    const c = new TieredCache({
      diskDir: d,
      diskMaxBytes: 10_000,
      logger: silentLogger,
      redisUrl: '',
      namespaces: { x: { tiers: ['l3'] } },
    });
    for (let i = 0; i < 20; i++) await c.set('x', `k${i}`, Buffer.alloc(1000, i));
    const files = readdirSync(d);
    expect(files.some((f) => f.includes('.tmp-'))).toBe(false);
    const st = c.stats().l3;
    expect(st.enabled && st.bytes).toBeLessThanOrEqual(10_000);
    expect(st.enabled && st.evictions).toBeGreaterThan(0);
    expect(await c.get('x', 'k0')).toBeUndefined(); // oldest gone
    expect(Array.from(((await c.get('x', 'k19')) as Buffer).subarray(0, 2))).toEqual([19, 19]);
  });

  it('a corrupted disk file is a miss and a counted corruption, never a crash', async () => {
    const d = dir();
    const c = new TieredCache({ diskDir: d, logger: silentLogger, redisUrl: '', namespaces: { x: { tiers: ['l3'] } } });
    await c.set('x', 'k', vec(100));
    const [file] = readdirSync(d).filter((f) => f.endsWith('.swc')); // beside it: the cache's key file
    const path = join(d, file!);
    const { readFileSync } = await import('node:fs');
    const bytes = readFileSync(path);
    bytes[bytes.length - 10]! ^= 0xff; // inside the tensor blob
    writeFileSync(path, bytes);
    expect(await c.get('x', 'k')).toBeUndefined();
    expect(c.stats().corruptions).toBe(1);
    expect(readdirSync(d).filter((f) => f.endsWith('.swc'))).toHaveLength(0); // dropped
  });

  it('expires entries by TTL in L1 and on disk', async () => {
    const c = new TieredCache({ diskDir: dir(), logger: silentLogger, redisUrl: '' });
    await c.set('t', 'k', 'v', { ttlMs: 40 });
    expect(await c.get('t', 'k')).toBe('v');
    await new Promise((r) => setTimeout(r, 60));
    expect(await c.get('t', 'k')).toBeUndefined();
    expect(c.stats().l3).toMatchObject({ files: 0 });
  });

  it('read-through loads a miss once, write-behind flushes on close', async () => {
    let calls = 0;
    const d = dir();
    const c = new TieredCache({
      diskDir: d,
      logger: silentLogger,
      redisUrl: '',
      namespaces: { m: { loader: async (k) => (calls++, `loaded:${k}`), write: 'behind' } },
    });
    expect(await c.get('m', 'a')).toBe('loaded:a');
    expect(await c.get('m', 'a')).toBe('loaded:a');
    expect(calls).toBe(1);
    await c.close();
    const again = new TieredCache({ diskDir: d, logger: silentLogger, redisUrl: '' });
    expect(await again.get('m', 'a')).toBe('loaded:a');
  });

  it('concurrent misses of one key call the loader once, each caller getting its own copy (hardening round 2, item 21)', async () => {
    let calls = 0;
    const c = new TieredCache({
      diskDir: false,
      logger: silentLogger,
      redisUrl: '',
      namespaces: { m: { loader: async (k) => (calls++, await new Promise((r) => setTimeout(r, 20)), [k, 1]) } },
    });
    const got = await Promise.all(Array.from({ length: 20 }, () => c.get('m', 'x')));
    expect(calls).toBe(1);
    for (const v of got) expect(v).toEqual(['x', 1]);
    expect(new Set(got).size).toBe(20); // copies, not one shared array
    expect(await c.get('m', 'y')).toEqual(['y', 1]);
    expect(calls).toBe(2);
  });

  it('getMany / setMany across tiers', async () => {
    const d = dir();
    const a = new TieredCache({ diskDir: d, logger: silentLogger, redisUrl: '' });
    await a.setMany('n', [
      ['a', 1],
      ['b', 'two'],
      ['c', [3]],
    ]);
    const b = new TieredCache({ diskDir: d, logger: silentLogger, redisUrl: '' });
    await b.set('n', 'a', 'fresh');
    expect(await b.getMany('n', ['a', 'b', 'c', 'missing'])).toEqual(['fresh', 'two', [3], undefined]);
  });

  it('bad arguments are typed errors', async () => {
    const c = new TieredCache({ diskDir: false, logger: silentLogger, redisUrl: '' });
    await expectWhaleError(() => c.get('', 'k'), 'ERR_INVALID_ARG', 'namespace');
    await expectWhaleError(() => c.set('n', '', 1), 'ERR_INVALID_ARG', 'key');
    await expectWhaleError(() => c.set('n', 'k', undefined as never), 'ERR_INVALID_ARG', 'value');
    await expectWhaleError(() => c.set('n', 'k', 1, { ttlMs: -5 }), 'ERR_INVALID_ARG', 'ttlMs');
    // A tensor that cannot be encoded for the lower tiers is refused, unless the namespace maps NaN/Inf.
    const disk = new TieredCache({
      diskDir: dir(),
      logger: silentLogger,
      redisUrl: '',
      namespaces: { z: { tensor: { nonFinite: 'zero' } } },
    });
    await expectWhaleError(() => disk.set('n', 'k', vec(10).fill(NaN)), 'ERR_NON_FINITE', 'values[0]');
    await disk.set('z', 'k', vec(10).fill(NaN));
    const fresh = new TieredCache({
      diskDir: (disk as unknown as { l3: { dir: string } }).l3.dir,
      logger: silentLogger,
      redisUrl: '',
    });
    expect(await fresh.get('z', 'k')).toEqual(new Float32Array(10));
  });
});
