// The native caching pool through the addon (host backend; the CUDA backend
// where a GPU is present): random allocation sequences against a plain
// reference, caps, statistics, fragmentation, and the GpuAllocator's shares.
import { describe, expect, it } from 'vitest';

import { GpuAllocator } from '../src/core/resource-management/allocator/gpu-allocator.js';
import { native } from '../src/native/loader.js';
import { expectWhaleError, hasGpu, rng } from './helpers.js';

const KiB = 1024;
const MiB = 1024 * KiB;

function code(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return (err as { code?: string }).code;
  }
  return undefined;
}

describe('native caching pool (host backend)', () => {
  it('random sequences: no overlap, caps never exceeded, statistics exact, every byte freed', () => {
    for (const seed of [1, 7, 99]) {
      const cap = 24 * MiB;
      const pool = new (native().NativeMemoryPool)({ backend: 'host', capBytes: cap });
      const ownerCaps = [Infinity, 3 * MiB, 512 * KiB];
      ownerCaps.forEach((c, o) => pool.setOwnerCap(o, c));
      const r = rng(seed);
      const live = new Map<number, { size: number; owner: number }>();
      const held = [0, 0, 0];
      let total = 0;
      let peak = 0;
      for (let step = 0; step < 3000; step++) {
        if (live.size === 0 || r.uniform() < 0.55) {
          const owner = Math.floor(r.uniform() * 3);
          const bytes = 1 + Math.floor(r.uniform() < 0.1 ? r.uniform() * 3 * MiB : r.uniform() * 64 * KiB);
          const size = Math.ceil(bytes / 512) * 512;
          let addr = 0;
          const c = code(() => (addr = pool.allocate(owner, bytes)));
          if (c === 'ERR_QUOTA_EXCEEDED') {
            expect(held[owner]! + size).toBeGreaterThan(ownerCaps[owner]!);
            continue;
          }
          if (c === 'ERR_OUT_OF_MEMORY') {
            expect(pool.stats().reserved + size).toBeGreaterThan(cap - 2 * MiB);
            continue;
          }
          expect(c).toBeUndefined();
          let overlaps = false;
          for (const [a, l] of live) if (!(addr + size <= a || a + l.size <= addr)) overlaps = true;
          expect(overlaps).toBe(false);
          expect(pool.blockSize(addr)).toBe(size);
          live.set(addr, { size, owner });
          held[owner]! += size;
          total += size;
          peak = Math.max(peak, total);
        } else {
          const keys = [...live.keys()];
          const addr = keys[Math.floor(r.uniform() * keys.length)]!;
          const l = live.get(addr)!;
          pool.free(addr);
          live.delete(addr);
          held[l.owner]! -= l.size;
          total -= l.size;
        }
        const s = pool.stats();
        const owners = [0, 1, 2].map((o) => pool.owner(o).allocated);
        if (
          s.allocated !== total ||
          s.peakAllocated !== peak ||
          s.reserved > cap ||
          owners.some((b, o) => b !== held[o])
        ) {
          expect({ allocated: s.allocated, peak: s.peakAllocated, owners, capped: s.reserved <= cap }).toEqual({
            allocated: total,
            peak,
            owners: held,
            capped: true,
          });
        }
      }
      for (const a of live.keys()) pool.free(a);
      expect(pool.stats()).toMatchObject({ allocated: 0, liveBlocks: 0 });
      pool.releaseCached();
      expect(pool.stats()).toMatchObject({ reserved: 0, segments: 0 });
    }
  });

  it('splits and coalesces; fragmentation is 1 - largest free / cached', () => {
    const pool = new (native().NativeMemoryPool)({ backend: 'host' });
    const blocks = [0, 1, 2, 3].map(() => pool.allocate(1, 512 * KiB)); // fill one 2 MiB small-pool segment
    expect(pool.stats()).toMatchObject({
      segments: 1,
      reserved: 2 * MiB,
      allocated: 2 * MiB,
      cacheMisses: 1,
      cacheHits: 3,
    });
    pool.free(blocks[0]!);
    pool.free(blocks[2]!);
    expect(pool.stats()).toMatchObject({ freeBlocks: 2, largestFree: 512 * KiB, fragmentation: 0.5 });
    pool.free(blocks[1]!);
    expect(pool.stats()).toMatchObject({ freeBlocks: 1, largestFree: 1.5 * MiB, fragmentation: 0 });
    expect(pool.allocate(2, 1 * MiB)).toBe(blocks[0]); // best fit reuses the coalesced block
    expect(code(() => pool.free(blocks[2]!))).toBe('ERR_INVALID_ARG'); // inside a live block now: not a block start
    expect(code(() => pool.allocate(1, 0))).toBe('ERR_INVALID_ARG');
    expect(code(() => pool.allocate(1, -1))).toBe('ERR_INVALID_ARG');
    expect(code(() => pool.allocate(-1, 10))).toBe('ERR_INVALID_ARG');
  });

  it('the CUDA backend is used only where a GPU is present', () => {
    const probe = native().cudaPoolAvailable(0);
    expect(probe.available).toBe(hasGpu);
    if (hasGpu) {
      const pool = new (native().NativeMemoryPool)({ backend: 'cuda', device: 0 });
      const a = pool.allocate(1, 10 * MiB);
      expect(pool.stats()).toMatchObject({ backend: 'cuda', allocated: 10 * MiB });
      pool.free(a);
    } else {
      expect(probe.reason.length).toBeGreaterThan(0);
      expect(code(() => new (native().NativeMemoryPool)({ backend: 'cuda', device: 0 }))).toBe(
        'ERR_DEVICE_UNAVAILABLE',
      );
    }
  });
});

describe('GpuAllocator shares (host-backed devices)', () => {
  const devices = [
    { id: 'gpu:a', index: 0, totalBytes: 64 * MiB },
    { id: 'gpu:b', index: 1, totalBytes: 64 * MiB },
  ];

  it('a model gets at most its memory fraction; others proceed; release frees and reports leaks', async () => {
    const g = new GpuAllocator({ devices, backend: 'host' });
    g.allocate('small', 'gpu:a', 0.25);
    g.allocate('big', 'gpu:a', 0.5);
    const held: number[] = [];
    for (let i = 0; i < 4; i++) held.push(g.allocateMemory('small', 4 * MiB));
    await expectWhaleError(() => g.allocateMemory('small', 1 * MiB), 'ERR_QUOTA_EXCEEDED', 'gpu');
    expect(g.allocateMemory('big', 20 * MiB)).toBeGreaterThan(0);
    expect(g.usage('small')).toMatchObject({
      device: 'gpu:a',
      fraction: 0.25,
      allocated: 16 * MiB,
      cap: 16 * MiB,
      blocks: 4,
    });
    g.freeMemory('small', held.pop()!);
    expect(g.usage('small')!.allocated).toBe(12 * MiB);
    expect(g.release('small')).toBe(12 * MiB); // three blocks were never freed: a visible leak
    expect(g.stats()['gpu:a']).toMatchObject({ allocated: 20 * MiB });
    await expectWhaleError(() => g.allocate('x', 'gpu:z', 0.5), 'ERR_DEVICE_UNAVAILABLE', 'device');
    await expectWhaleError(() => g.allocate('x', 'gpu:a', 1.5), 'ERR_INVALID_ARG', 'gpu');
    await expectWhaleError(() => g.allocateMemory('nobody', 10), 'ERR_QUOTA_EXCEEDED', 'gpu');
  });

  it('kernel time: two half shares of one device take turns', async () => {
    let now = 0;
    const g = new GpuAllocator({ devices, backend: 'host', clock: () => now });
    g.allocate('a', 'gpu:b', 0.5);
    g.allocate('b', 'gpu:b', 0.5);
    const first = await g.acquireKernelTime('a');
    let bStarted = false;
    const b = g.acquireKernelTime('b').then((l) => {
      bStarted = true;
      return l;
    });
    await Promise.resolve();
    expect(bStarted).toBe(false); // one device slot: b waits while a runs
    now += 10;
    first.release();
    (await b).release();
    expect(bStarted).toBe(true);
  });
});
