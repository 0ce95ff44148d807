import { describe, expect, it } from 'vitest';

import { TopKCompressor } from '../src/core/memory/topk.js';
import { expectWhaleError, rng } from './helpers.js';

describe('TopKCompressor', () => {
  it('keeps the k largest magnitudes, indices ascending, ties to the lower index', () => {
    const c = new TopKCompressor({ k: 3 });
    const s = c.compress('a', new Float32Array([0.1, -5, 2, 2, 0, 4, -2]));
    expect(Array.from(s.indices)).toEqual([1, 2, 5]);
    expect(Array.from(s.values)).toEqual([-5, 2, 4]);
    expect(Array.from(c.residual('a')!)).toEqual([0.1, 0, 0, 2, 0, 0, -2].map(Math.fround));
  });

  it('error feedback: sent + residual equals the sum of updates over rounds', () => {
    const r = rng(7);
    const n = 10_000,
      rounds = 5;
    const c = new TopKCompressor({ ratio: 0.01 });
    const total = new Float64Array(n),
      sent = new Float64Array(n);
    for (let t = 0; t < rounds; t++) {
      const u = Float32Array.from({ length: n }, () => r.normal());
      u.forEach((v, j) => (total[j]! += v));
      const s = c.compress('m', u);
      expect(s.indices.length).toBe(100);
      const dense = TopKCompressor.decompress(s);
      dense.forEach((v, j) => (sent[j]! += v));
    }
    const res = c.residual('m')!;
    let worst = 0;
    for (let j = 0; j < n; j++) worst = Math.max(worst, Math.abs(sent[j]! + res[j]! - total[j]!));
    expect(worst).toBeLessThan(1e-5);
  });

  it('streams are independent and reset clears them', () => {
    const c = new TopKCompressor({ k: 1 });
    c.compress('a', new Float32Array([1, 2]));
    c.compress('b', new Float32Array([3, 1, 1]));
    expect(Array.from(c.residual('a')!)).toEqual([1, 0]);
    c.reset('a');
    expect(c.residual('a')).toBeUndefined();
    expect(c.residual('b')).toBeDefined();
  });

  it('typed errors', async () => {
    await expectWhaleError(() => new TopKCompressor({}), 'ERR_INVALID_OPTION', 'options');
    await expectWhaleError(() => new TopKCompressor({ k: 0 }), 'ERR_INVALID_OPTION', 'options.k');
    await expectWhaleError(() => new TopKCompressor({ ratio: 1.5 }), 'ERR_INVALID_OPTION', 'options.ratio');
    const c = new TopKCompressor({ k: 2 });
    c.compress('a', new Float32Array(4));
    await expectWhaleError(() => c.compress('a', new Float32Array(5)), 'ERR_SHAPE_MISMATCH', 'update');
    const e = await expectWhaleError(() => c.compress('z', new Float32Array([1, NaN])), 'ERR_NON_FINITE', 'update[1]');
    expect(e.message).toMatch(/NaN/);
    expect(c.residual('z')).toBeUndefined();
    await expectWhaleError(
      () => TopKCompressor.decompress({ indices: new Uint32Array([5]), values: new Float32Array([1]), length: 3 }),
      'ERR_CORRUPT',
    );
  });

  it('never emits Infinity when a residual plus an update overflows float32 (hardening round 2, item 19)', async () => {
    const c = new TopKCompressor({ k: 1 });
    const big = new Float32Array([3e38, 3e38]);
    const first = c.compress('s', big);
    expect(Array.from(first.values).every(Number.isFinite)).toBe(true);
    const before = c.residual('s')!;
    const e = await expectWhaleError(() => c.compress('s', big), 'ERR_NON_FINITE', 'update[1]');
    expect(e.message).toMatch(/overflows float32/);
    expect(Array.from(c.residual('s')!)).toEqual(Array.from(before)); // all or nothing
  });
});
