// The CUDA path against the CPU path. Runs on a machine with a GPU: npm test
// includes this folder when `whale info` finds one, and npm run test:gpu
// always does (and fails when no GPU is usable).
import { describe, expect, it } from 'vitest';

import { Aggregator } from '../../src/core/federation/learning/aggregator.js';
import { ServerOptimizer } from '../../src/core/federation/learning/server-optimizer.js';
import type { Strategy } from '../../src/core/federation/learning/types.js';
import { engine } from '../../src/native/engine.js';
import { native } from '../../src/native/loader.js';
import { expectClose, expectWhaleError, hasGpu, randomRows } from '../helpers.js';

it('a CUDA device is usable', () => {
  expect(engine.devices().gpuUnavailableReason).toBeUndefined();
  expect(hasGpu).toBe(true);
});

describe('CUDA path matches the CPU path', () => {
  const cases: Array<[number, number]> = [
    [1, 17],
    [3, 4099],
    [10, 100_003],
    [100, 20_001],
    [257, 1001],
  ];
  describe.each(cases)('N=%i P=%i', (n, p) => {
    const rows = randomRows(n, p, n + p);
    const weights = Array.from({ length: n }, (_, i) => 1 + (i % 5) * 100);
    it.each<[Strategy, number]>([
      ['fedavg', 1e-6],
      ['median', 0],
      ['trimmed-mean', 1e-6],
    ])('%s (rel tol %f)', async (strategy, tol) => {
      const cpu = await new Aggregator({ strategy, beta: 0.2, device: 'cpu' }).aggregate(rows, weights);
      const gpu = await new Aggregator({ strategy, beta: 0.2, device: 'cuda:0' }).aggregate(rows, weights);
      expect(gpu.device).toBe('cuda:0');
      expectClose(gpu.params, cpu.params, tol, tol === 0 ? 0 : 1e-6);
    });
  });

  it('distances and Krum selection', () => {
    const rows = randomRows(40, 50_001, 8);
    const cpu = new Float64Array(1600),
      gpu = new Float64Array(1600);
    native().distances({ clients: rows, device: 'cpu', deviceIndex: 0, checkFinite: true, out: cpu }, false);
    native().distances({ clients: rows, device: 'cuda', deviceIndex: 0, checkFinite: true, out: gpu }, false);
    expectClose(gpu, cpu, 1e-5, 1e-9);
    const a = new Aggregator({ strategy: 'multi-krum', f: 5, device: 'cpu' }).aggregateSync(rows);
    const b = new Aggregator({ strategy: 'multi-krum', f: 5, device: 'cuda:0' }).aggregateSync(rows);
    expect(b.selected).toEqual(a.selected);
    expectClose(b.params, a.params, 1e-6, 1e-6);
  });

  it('non-finite input is rejected on the GPU path too', async () => {
    const rows = randomRows(5, 1000, 1);
    rows[3]![10] = NaN;
    for (const strategy of ['fedavg', 'median', 'krum'] as const) {
      await expectWhaleError(
        () => new Aggregator({ strategy, f: 1, device: 'cuda:0' }).aggregateSync(rows),
        'ERR_NON_FINITE',
        'clients[3]',
      );
    }
  });

  it.each(['fedavgm', 'fedadam', 'fedyogi', 'fedadagrad'] as const)('server optimizer %s', async (optimizer) => {
    const [g0, agg] = randomRows(2, 100_003, 3) as [Float32Array, Float32Array];
    const gc = g0.slice(),
      gg = g0.slice();
    const oc = new ServerOptimizer({ optimizer, device: 'cpu' });
    const og = new ServerOptimizer({ optimizer, device: 'cuda:0' });
    for (let round = 0; round < 3; round++) {
      await oc.step(gc, agg);
      expect(await og.step(gg, agg)).toBe('cuda:0');
    }
    expectClose(gg, gc, 1e-5, 1e-6);
  });
});
