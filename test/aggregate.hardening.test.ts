// Extreme scales, overflowing weights, malformed calls, and how aggregate()
// chooses the JS thread or the pool (issue 7: items 12, 14, 16 and the raw
// exceptions).
import { afterEach, describe, expect, it } from 'vitest';

import { Aggregator } from '../src/core/federation/learning/aggregator.js';
import { fedavgRef, krumRef } from '../src/core/federation/learning/reference.js';
import type { ClientUpdates } from '../src/core/federation/learning/types.js';
import type { NativeAggregateOptions, NativeBinding } from '../src/native/binding.js';
import { injectNative, native } from '../src/native/loader.js';
import { expectClose, expectWhaleError, randomRows } from './helpers.js';

describe('weights whose sum overflows', () => {
  const rows = randomRows(3, 257, 21);

  it('FedAvg with [1e308, 1e308, 1e308] is the plain mean, like the reference', async () => {
    const weights = [1e308, 1e308, 1e308];
    const ref = fedavgRef(rows, weights);
    expectClose(ref, fedavgRef(rows, [1, 1, 1]), 1e-12, 0);
    const r = await new Aggregator({ strategy: 'fedavg' }).aggregate(rows, weights);
    expectClose(r.params, ref, 1e-6, 1e-7);
    expect(r.params.some((x) => x !== 0)).toBe(true);
  });

  it('Multi-Krum averages its selection with overflowing weights', () => {
    const many = randomRows(7, 100, 22);
    const weights = [1e308, 1.5e308, 1e308, 1.7e308, 1e308, 1e308, 1e308];
    const r = new Aggregator({ strategy: 'multi-krum', f: 1, m: 4 }).aggregateSync(many, weights);
    const ref = krumRef(many, weights, 1, 4);
    expect(r.selected).toEqual(ref.selected);
    expectClose(r.params, ref.params, 1e-6, 1e-7);
  });
});

describe('Krum at extreme scales picks what the double reference picks', () => {
  // Honest clients near one point, the outlier at index 0 (float32 distances
  // used to overflow to Infinity or underflow to 0, and ties went to index 0).
  const clients = (scale: number): Float32Array[] =>
    randomRows(9, 300, 23).map((row, i) => row.map((x) => (1 + (i === 0 ? 5 : 0.01) * x) * scale));

  it.each([1e19, 1e25, 1e30, 1e-25, 1e-30, 1e-36])('|x| ~ %f', (scale) => {
    const rows = clients(scale);
    const ref = krumRef(rows, new Array(9).fill(1), 2, 3);
    const r = new Aggregator({ strategy: 'multi-krum', f: 2, m: 3 }).aggregateSync(rows);
    expect(ref.selected).not.toContain(0);
    expect(r.selected).toEqual(ref.selected);
    expectClose(r.scores!, ref.scores, 1e-9, 0);
  });

  it('many clients (no per-thread matrices) agree with the reference', () => {
    const rows = randomRows(2100, 3, 24);
    rows[5] = rows[5]!.map((x) => x + 40);
    const ref = krumRef(rows, new Array(2100).fill(1), 100, 1);
    const r = new Aggregator({ strategy: 'krum', f: 100 }).aggregateSync(rows);
    expect(r.selected).toEqual(ref.selected);
    expectClose(r.scores!, ref.scores, 1e-9, 1e-12);
  });
});

describe('malformed calls are typed errors', () => {
  const rows = randomRows(3, 8, 25);

  it.each([undefined, null, 42, 'rows'])('aggregate(%j)', async (bad) => {
    const agg = new Aggregator({ strategy: 'fedavg' });
    await expectWhaleError(() => agg.aggregate(bad as unknown as ClientUpdates), 'ERR_INVALID_ARG', 'clients');
    await expectWhaleError(() => agg.aggregateSync(bad as unknown as ClientUpdates), 'ERR_INVALID_ARG', 'clients');
  });

  it('a hole in a sparse update array is named, not skipped', async () => {
    const sparse = [, rows[1]!] as unknown as Float32Array[];
    const e = await expectWhaleError(
      () => new Aggregator({ strategy: 'fedavg' }).aggregate(sparse),
      'ERR_INVALID_ARG',
      'clients[0]',
    );
    expect(e.client).toBe(0);
    const later = [rows[0]!, rows[1]!, , rows[2]!] as unknown as Float32Array[];
    await expectWhaleError(
      () => new Aggregator({ strategy: 'median' }).aggregateSync(later),
      'ERR_INVALID_ARG',
      'clients[2]',
    );
  });

  it("the string '13' is not the weights [1, 3]", async () => {
    await expectWhaleError(
      () => new Aggregator({ strategy: 'fedavg' }).aggregateSync(rows.slice(0, 2), '13' as never),
      'ERR_INVALID_WEIGHT',
      'weights',
    );
  });

  it.each<[unknown, string]>([
    ['113', 'weights'],
    [['1', '2', '3'], 'weights[0]'],
    [[1, 2, ,], 'weights[2]'],
    [[1, 2, null], 'weights[2]'],
    [{ length: 3 }, 'weights'],
  ])('weights %j', async (weights, field) => {
    await expectWhaleError(
      () => new Aggregator({ strategy: 'fedavg' }).aggregateSync(rows, weights as ArrayLike<number>),
      'ERR_INVALID_WEIGHT',
      field,
    );
  });

  it.each<[Record<string, unknown>, string]>([
    [{ strategy: 'trimmed-mean', beta: '0.2' }, 'options.beta'],
    [{ strategy: 'krum', f: '1' }, 'options.f'],
    [{ strategy: 'multi-krum', m: '2' }, 'options.m'],
    [{ strategy: 'fedavg', asyncThresholdBytes: '0' }, 'options.asyncThresholdBytes'],
    [{ strategy: 'fedavg', maxMemoryBytes: -1 }, 'options.maxMemoryBytes'],
  ])('options %j', async (opts, field) => {
    await expectWhaleError(() => new Aggregator(opts as never), 'ERR_INVALID_OPTION', field);
  });
});

describe('sync or async by estimated work, memory bounded before allocating', () => {
  const calls: boolean[] = [];
  const spy = (): void => {
    const real = native();
    const wrapped: NativeBinding = Object.create(real) as NativeBinding;
    wrapped.aggregate = ((opts: NativeAggregateOptions, async: boolean) => {
      calls.push(async);
      return async ? real.aggregate(opts, true) : real.aggregate(opts, false);
    }) as NativeBinding['aggregate'];
    injectNative(wrapped);
  };
  afterEach(() => {
    injectNative(undefined);
    calls.length = 0;
  });

  it('Krum over 600 one-value clients (2 KiB of input, O(n^2) work) runs off the JS thread; FedAvg stays on it', async () => {
    spy();
    const rows = randomRows(600, 1, 26);
    const krum = await new Aggregator({ strategy: 'krum', f: 10 }).aggregate(rows);
    await new Aggregator({ strategy: 'fedavg' }).aggregate(rows);
    expect(calls).toEqual([true, false]);
    expect(krum.selected).toEqual(krumRef(rows, new Array(600).fill(1), 10, 1).selected);
  });

  it("Krum's n x n distances beyond maxMemoryBytes fail before allocating", async () => {
    const rows = randomRows(4000, 1, 27);
    const e = await expectWhaleError(
      () => new Aggregator({ strategy: 'krum', f: 1, maxMemoryBytes: 64 << 20 }).aggregate(rows),
      'ERR_OUT_OF_MEMORY',
      'options.maxMemoryBytes',
    );
    expect(e.message).toMatch(/Krum over 4000 clients needs/);
    await expectWhaleError(
      () => new Aggregator({ strategy: 'krum', f: 1, maxMemoryBytes: 64 << 20 }).aggregateSync(rows),
      'ERR_OUT_OF_MEMORY',
      'options.maxMemoryBytes',
    );
  });

  it('the copy an async call makes counts against the bound', async () => {
    const rows = randomRows(4, 1 << 16, 28);
    await expectWhaleError(
      () =>
        new Aggregator({ strategy: 'fedavg', asyncThresholdBytes: 0, maxMemoryBytes: (1 << 20) - 1 }).aggregate(rows),
      'ERR_OUT_OF_MEMORY',
      'options.maxMemoryBytes',
    );
    const r = await new Aggregator({ strategy: 'fedavg', asyncThresholdBytes: 0, maxMemoryBytes: 1 << 20 }).aggregate(
      rows,
    );
    expectClose(r.params, fedavgRef(rows, [1, 1, 1, 1]), 1e-6, 1e-7);
  });
});
