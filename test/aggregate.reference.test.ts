// Native CPU results against the plain-TS double-precision reference.
import { describe, expect, it } from 'vitest';

import { Aggregator } from '../src/core/federation/learning/aggregator.js';
import {
  fedavgRef,
  krumRef,
  medianRef,
  pairwiseSqDistancesRef,
  trimmedMeanRef,
} from '../src/core/federation/learning/reference.js';
import { native } from '../src/native/loader.js';
import { expectClose, randomRows } from './helpers.js';

// Sizes cover N = 1, even/odd N, and P not a multiple of any vector width or block.
const SIZES: Array<[number, number]> = [
  [1, 1],
  [1, 17],
  [2, 1000],
  [3, 4099],
  [10, 1003],
  [33, 2051],
  [100, 3001],
];

function unequalWeights(n: number): number[] {
  return Array.from({ length: n }, (_, i) => (i % 4 === 0 ? 1e6 : 1 + i));
}

// Tolerances: both sides accumulate in double; the native output is rounded to
// float32 once, so FedAvg/trimmed mean agree to ~1 ulp (we allow 1e-6 rel +
// 1e-6 abs). Median picks input values, so it must match exactly.
describe.each(SIZES)('native CPU vs reference, N=%i P=%i', (n, p) => {
  const rows = randomRows(n, p, n * 1000 + p);
  const weights = unequalWeights(n);

  it('fedavg with very unequal weights', () => {
    const r = new Aggregator({ strategy: 'fedavg', device: 'cpu' }).aggregateSync(rows, weights);
    expect(r.device).toBe('cpu');
    expectClose(r.params, fedavgRef(rows, weights), 1e-6, 1e-6);
  });

  it('coordinate-wise median', () => {
    const r = new Aggregator({ strategy: 'median', device: 'cpu' }).aggregateSync(rows);
    expect(Array.from(r.params)).toEqual(Array.from(medianRef(rows)));
  });

  it.each([0, 0.1, 0.25, 0.49])('trimmed mean beta=%f', (beta) => {
    const r = new Aggregator({ strategy: 'trimmed-mean', beta, device: 'cpu' }).aggregateSync(rows);
    expectClose(r.params, trimmedMeanRef(rows, beta), 1e-6, 1e-6);
  });

  it('pairwise squared distances', () => {
    const out = new Float64Array(n * n);
    native().distances({ clients: rows, device: 'cpu', deviceIndex: 0, checkFinite: true, out }, false);
    // Float partial sums over 512-element blocks: relative error well under 1e-5.
    expectClose(out, pairwiseSqDistancesRef(rows), 1e-5, 1e-9);
  });
});

describe.each([
  [5, 1, 1003],
  [12, 2, 2049],
  [50, 10, 1000],
])('Krum N=%i f=%i P=%i', (n, f, p) => {
  const rows = randomRows(n, p, n + f + p);
  const weights = unequalWeights(n);

  it('krum selects the same client and averages it', () => {
    const ref = krumRef(rows, weights, f, 1);
    const r = new Aggregator({ strategy: 'krum', f, device: 'cpu' }).aggregateSync(rows, weights);
    expect(r.selected).toEqual(ref.selected);
    expectClose(r.scores!, ref.scores, 1e-5, 1e-9);
    expect(Array.from(r.params)).toEqual(Array.from(rows[ref.selected[0]!]!));
  });

  it('multi-krum (default m = n - f) matches the reference', () => {
    const ref = krumRef(rows, weights, f, n - f);
    const r = new Aggregator({ strategy: 'multi-krum', f, device: 'cpu' }).aggregateSync(rows, weights);
    expect(r.selected).toEqual(ref.selected);
    expectClose(r.params, ref.params, 1e-6, 1e-6);
  });
});

describe('input forms and paths', () => {
  const n = 7,
    p = 5003;
  const rows = randomRows(n, p, 99);
  const data = new Float32Array(n * p);
  rows.forEach((r, i) => data.set(r, i * p));

  it('a contiguous N x P buffer gives the same result as separate rows', () => {
    const agg = new Aggregator({ strategy: 'trimmed-mean', beta: 0.2, device: 'cpu' });
    const a = agg.aggregateSync(rows);
    const b = agg.aggregateSync({ data, clients: n, params: p });
    expect(Array.from(b.params)).toEqual(Array.from(a.params));
  });

  it.each(['fedavg', 'median', 'trimmed-mean', 'multi-krum'] as const)(
    'async path (%s) equals the sync path',
    async (strategy) => {
      const sync = new Aggregator({ strategy, f: 1, device: 'cpu' }).aggregateSync(rows);
      const agg = new Aggregator({ strategy, f: 1, device: 'cpu', asyncThresholdBytes: 0 });
      const results = await Promise.all([agg.aggregate(rows), agg.aggregate({ data, clients: n, params: p })]);
      for (const r of results) expect(Array.from(r.params)).toEqual(Array.from(sync.params));
    },
  );

  it('huge input: 3 x 5,000,003 floats match the reference', async () => {
    const p = 5_000_003;
    const big = [0, 1, 2].map((i) => {
      const row = new Float32Array(p);
      for (let j = 0; j < p; j++) row[j] = Math.sin(j * 0.001 + i) * (i + 1);
      return row;
    });
    const w = [1, 2, 3];
    const r = await new Aggregator({ strategy: 'fedavg', device: 'cpu' }).aggregate(big, w);
    expectClose(r.params, fedavgRef(big, w), 1e-6, 1e-6);
    const m = await new Aggregator({ strategy: 'median', device: 'cpu' }).aggregate(big);
    const [a, b, c] = big as [Float32Array, Float32Array, Float32Array];
    let mismatches = 0;
    for (let j = 0; j < p; j++) {
      const med = Math.max(Math.min(a[j]!, b[j]!), Math.min(Math.max(a[j]!, b[j]!), c[j]!));
      if (m.params[j] !== med) mismatches++;
    }
    expect(mismatches).toBe(0);
  }, 60_000);

  it('leaves the inputs untouched', () => {
    const copy = rows.map((r) => r.slice());
    new Aggregator({ strategy: 'median', device: 'cpu' }).aggregateSync(rows);
    new Aggregator({ strategy: 'krum', f: 1, device: 'cpu' }).aggregateSync(rows);
    rows.forEach((r, i) => expect(r).toEqual(copy[i]));
  });
});
