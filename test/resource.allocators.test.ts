// CPU and memory allocators, the load balancer and the optimizer.
import { describe, expect, it } from 'vitest';

import { CpuAllocator } from '../src/core/resource-management/allocator/cpu-allocator.js';
import { fairShares } from '../src/core/resource-management/allocator/fair-share.js';
import { MemoryAllocator } from '../src/core/resource-management/allocator/memory-allocator.js';
import type { MonitorTick } from '../src/core/resource-management/monitor/resource-monitor.js';
import { LoadBalancer } from '../src/core/resource-management/optimizer/load-balancer.js';
import { ResourceOptimizer } from '../src/core/resource-management/optimizer/resource-optimizer.js';
import { expectWhaleError, rng } from './helpers.js';

describe('CpuAllocator', () => {
  it('max-min fair shares: asks that fit are met, the rest split what remains', () => {
    expect(
      Object.fromEntries(
        fairShares(
          new Map([
            ['a', 1],
            ['b', 2],
          ]),
          4,
        ),
      ),
    ).toEqual({ a: 1, b: 2 });
    expect(
      Object.fromEntries(
        fairShares(
          new Map([
            ['a', 1],
            ['b', 4],
            ['c', 4],
          ]),
          4,
        ),
      ),
    ).toEqual({ a: 1, b: 1.5, c: 1.5 });
    const cpu = new CpuAllocator({ totalUnits: 2 });
    cpu.allocate('a', 2);
    expect(cpu.share('a')).toBe(2);
    cpu.allocate('b', 0.5);
    expect([cpu.share('a'), cpu.share('b')]).toEqual([1.5, 0.5]);
    expect(cpu.threadsFor('a')).toBe(1);
    cpu.release('b');
    expect(cpu.share('a')).toBe(2);
  });

  it('under contention a model never runs more than its share of slot time', async () => {
    let now = 0;
    const cpu = new CpuAllocator({ totalUnits: 1, clock: () => now, windowMs: 100 });
    cpu.allocate('hog', 0.5);
    cpu.allocate('light', 0.5);
    const busy = { hog: 0, light: 0 };
    // Both always have batches queued (3 in flight each); hog's take 30 ms, light's 10 ms. Simulate 10 s.
    const loop = async (m: 'hog' | 'light', ms: number) => {
      while (now < 10_000) {
        const lease = await cpu.acquire(m);
        now += ms;
        busy[m] += ms;
        lease.release();
        await Promise.resolve();
      }
    };
    await Promise.all([1, 2, 3].flatMap(() => [loop('hog', 30), loop('light', 10)]));
    const hogShare = busy.hog / (busy.hog + busy.light);
    expect(hogShare).toBeGreaterThan(0.4);
    expect(hogShare).toBeLessThan(0.6); // slot order alone (alternation) would give hog 75%
  });

  it('idle capacity is not withheld; bad asks are typed errors', async () => {
    const cpu = new CpuAllocator({ totalUnits: 4 });
    cpu.allocate('only', 0.25);
    for (let i = 0; i < 5; i++) (await cpu.acquire('only')).release();
    expect(cpu.snapshot().models.only).toMatchObject({ running: 0, waiting: 0 });
    (await cpu.acquire('ungranted')).release();
    await expectWhaleError(() => cpu.allocate('x', 0), 'ERR_INVALID_ARG', 'cpuUnits');
    await expectWhaleError(() => cpu.allocate('', 1), 'ERR_INVALID_ARG', 'modelId');
    await expectWhaleError(() => new CpuAllocator({ totalUnits: 0 }), 'ERR_INVALID_OPTION', 'totalUnits');
  });
});

describe('MemoryAllocator', () => {
  it('budgets per model: over the budget is ERR_QUOTA_EXCEEDED naming model and resource; others proceed', async () => {
    const mem = new MemoryAllocator(10_000);
    mem.setBudget('a', 1000);
    const w = mem.reserve('a', 600, 'weights');
    const e = await expectWhaleError(() => mem.reserve('a', 500, 'batch'), 'ERR_QUOTA_EXCEEDED', 'memory');
    expect(e.details).toMatchObject({ model: 'a', resource: 'memory' });
    expect(e.message).toContain("'a'");
    const b = mem.reserve('b', 5000, 'batch');
    await expectWhaleError(() => mem.reserve('c', 5000, 'batch'), 'ERR_QUOTA_EXCEEDED', 'memory'); // node limit
    b.release();
    b.release();
    expect(mem.snapshot().used).toBe(600);
    expect(mem.usage('a')).toMatchObject({ used: 600, peak: 600, refused: 1, byKind: { weights: 600 } });
    w.release();
    mem.reserve('a', 700, 'batch');
    expect(mem.remove('a')).toBe(700); // still held at removal: reported as a leak
  });
});

describe('LoadBalancer', () => {
  it('least-loaded spreads evenly and respects free memory', () => {
    const lb = new LoadBalancer({ policy: 'least-loaded' });
    const p = lb.distributeLoad(
      [{ id: 'm1', memoryBytes: 60 }, { id: 'm2', memoryBytes: 60 }, { id: 'm3' }, { id: 'huge', memoryBytes: 1000 }],
      [
        { id: 'gpu0', load: 0, freeBytes: 100 },
        { id: 'gpu1', load: 0.5, freeBytes: 100 },
      ],
    );
    expect(new Set([p.placements.m1, p.placements.m2])).toEqual(new Set(['gpu0', 'gpu1']));
    expect(p.unplaced).toEqual([{ task: 'huge', reason: 'no target has 1000 bytes free' }]);
  });

  it('power-of-two choices keeps the maximum load near the mean over many requests', () => {
    const targets = Array.from({ length: 16 }, (_, i) => ({ id: `n${i}`, load: 0, freeBytes: Infinity }));
    const tasks = Array.from({ length: 1600 }, (_, i) => ({ id: `r${i}` }));
    const p2 = new LoadBalancer({ policy: 'power-of-two', seed: 42 }).distributeLoad(tasks, targets);
    const loads = Object.values(p2.loads);
    expect(Math.max(...loads)).toBeLessThanOrEqual(100 + 6); // mean 100; random placement would be ~ +25
    const r = rng(3);
    const random: number[] = new Array(16).fill(0);
    for (let i = 0; i < 1600; i++) random[Math.floor(r.uniform() * 16)]!++;
    expect(Math.max(...loads)).toBeLessThan(Math.max(...random));
    expect(() => new LoadBalancer({ policy: 'least-loaded' }).distributeLoad([], [])).toThrow(/targets/);
  });
});

describe('ResourceOptimizer', () => {
  it('proposes changes from the trends, each with its reason', () => {
    const tick = (t: number, cpuMs: number, batches: number, rows: number, mem: number, rss: number): MonitorTick => ({
      sample: {
        timestamp: t,
        cpu: { load: 0.5, perCore: [], cores: 2, process: 0.5 },
        memory: {
          total: 1e9,
          used: 5e8,
          available: 5e8,
          process: { rss, heapUsed: 0, heapTotal: 0, external: 0, arrayBuffers: 0 },
        },
        disks: [],
        network: [],
        gpus: [],
      },
      models: { m: { batches, rows, wallMs: cpuMs, cpuMs, memoryBytes: mem, gpuBytes: 0 } },
      costMs: 1,
    });
    const ticks = Array.from({ length: 12 }, (_, i) =>
      tick(i * 10_000, i * 8_000, i * 100, i * 100, 950, 1e8 + i * 2e7),
    );
    const out = new ResourceOptimizer().propose(ticks, {
      memoryBudgets: { m: 1000 },
      cpuModelsWithGpuPath: ['m'],
      gpuAvailable: true,
      maxBatchSize: { m: 64 },
    });
    expect(out.map((p) => p.kind).sort()).toEqual([
      'increase-batch-size',
      'investigate-memory-growth',
      'move-to-gpu',
      'raise-memory-quota',
    ]);
    for (const p of out) expect(p.reason.length).toBeGreaterThan(10);
  });
});
