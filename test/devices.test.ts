// Device selection. Without a GPU, 'cuda' is a typed error and 'auto' is the
// CPU. The CUDA-vs-CPU comparisons live in test/gpu/ (npm run test:gpu).
import { describe, expect, it } from 'vitest';

import { Aggregator } from '../src/core/federation/learning/aggregator.js';
import { ServerOptimizer } from '../src/core/federation/learning/server-optimizer.js';
import { engine } from '../src/native/engine.js';
import { expectWhaleError, hasGpu, randomRows } from './helpers.js';

describe('engine.devices()', () => {
  const report = engine.devices();

  it('always lists the CPU first', () => {
    expect(report.devices[0]).toMatchObject({ id: 'cpu', kind: 'cpu' });
    expect((report.devices[0] as { threads: number }).threads).toBeGreaterThanOrEqual(1);
  });

  it('explains why no GPU is used, or lists the GPUs', () => {
    if (hasGpu) {
      expect(report.gpuUnavailableReason).toBeUndefined();
      expect(report.devices[1]).toMatchObject({ id: 'cuda:0', kind: 'cuda' });
    } else {
      expect(report.gpuUnavailableReason).toMatch(/\w+/);
      expect(report.devices).toHaveLength(1);
    }
  });

  it('reports NVML status without throwing', () => {
    expect(typeof report.nvml.loaded).toBe('boolean');
    if (!report.nvml.loaded) expect(report.nvml.error).toMatch(/libnvidia-ml|nvml/i);
  });

  it('build info says whether CUDA is compiled in', () => {
    const b = engine.build();
    expect(typeof b.cuda).toBe('boolean');
    expect(b.threads).toBeGreaterThanOrEqual(1);
    expect(b.addonPath).toMatch(/whale_native\.node$/);
  });
});

describe('device option', () => {
  const rows = randomRows(8, 3001, 4);

  it("'cpu' works everywhere", () => {
    expect(new Aggregator({ strategy: 'median', device: 'cpu' }).aggregateSync(rows).device).toBe('cpu');
  });

  it("'auto' runs small jobs on the CPU", () => {
    expect(new Aggregator({ strategy: 'fedavg', device: 'auto' }).aggregateSync(rows).device).toBe('cpu');
  });

  it("'cuda' without a GPU is ERR_DEVICE_UNAVAILABLE saying why; a bad ordinal always is", async () => {
    await expectWhaleError(
      () => new Aggregator({ strategy: 'fedavg', device: 'cuda:999' }).aggregateSync(rows),
      'ERR_DEVICE_UNAVAILABLE',
      'device',
    );
    if (hasGpu) {
      expect(new Aggregator({ strategy: 'fedavg', device: 'cuda' }).aggregateSync(rows).device).toBe('cuda:0');
      return;
    }
    const e = await expectWhaleError(
      () => new Aggregator({ strategy: 'fedavg', device: 'cuda' }).aggregateSync(rows),
      'ERR_DEVICE_UNAVAILABLE',
      'device',
    );
    expect(e.message).toMatch(/no CUDA device is usable: .+/);
    await expectWhaleError(
      () => new Aggregator({ strategy: 'median', device: 'cuda:1' }).aggregate(rows),
      'ERR_DEVICE_UNAVAILABLE',
    );
    await expectWhaleError(
      () =>
        new ServerOptimizer({ optimizer: 'fedadam', device: 'cuda' }).step(new Float32Array(4), new Float32Array(4)),
      'ERR_DEVICE_UNAVAILABLE',
    );
  });
});
