// VectorIndex (native/vindex) against a plain-TS brute force: ties by label, filters before top-k, deletes, IVF, typed errors.
import { describe, expect, it } from 'vitest';

import { NO_LABEL, VectorIndex, type VectorMetric } from '../src/core/federation/knowledge-sharing/index.js';
import { decodeTensor, encodeTensor } from '../src/core/memory/codec.js';
import { expectWhaleError, rng } from './helpers.js';

function data(n: number, dim: number, seed: number, integers: boolean): Float32Array {
  const r = rng(seed);
  return Float32Array.from({ length: n * dim }, () => (integers ? Math.round(r.uniform() * 8 - 4) : r.normal()));
}

function refDistance(m: VectorMetric, q: Float32Array, x: Float32Array): number {
  let dot = 0,
    qn = 0,
    xn = 0,
    l2 = 0;
  for (let j = 0; j < q.length; j++) {
    dot += q[j]! * x[j]!;
    qn += q[j]! * q[j]!;
    xn += x[j]! * x[j]!;
    l2 += (q[j]! - x[j]!) ** 2;
  }
  return m === 'l2' ? l2 : m === 'ip' ? -dot : 1 - dot / Math.sqrt(qn * xn);
}

/** The reference: every allowed row, sorted by (distance, label). */
function refTopK(
  m: VectorMetric,
  q: Float32Array,
  rows: Float32Array,
  dim: number,
  k: number,
  ok: (l: number) => boolean = () => true,
): number[] {
  const all: Array<[number, number]> = [];
  for (let l = 0; l < rows.length / dim; l++)
    if (ok(l)) all.push([refDistance(m, q, rows.subarray(l * dim, (l + 1) * dim)), l]);
  all.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  return all.slice(0, k).map((x) => x[1]);
}

const labels = (n: number, from = 0) => Uint32Array.from({ length: n }, (_, i) => i + from);
const row = (x: Float32Array, i: number, dim: number) => x.subarray(i * dim, (i + 1) * dim);

describe('VectorIndex exact search', () => {
  const dim = 24,
    n = 1500,
    nq = 20,
    k = 9;
  for (const metric of ['l2', 'ip', 'cosine'] as const) {
    it(`f32 ${metric}: equals the brute force exactly on integer data (many ties)`, async () => {
      const rows = data(n, dim, 1, true),
        qs = data(nq, dim, 2, true);
      const index = new VectorIndex({ dim, metric });
      index.add(labels(n), rows);
      const r = await index.search(qs, { k });
      for (let q = 0; q < nq; q++) {
        expect([...r.labels.subarray(q * k, (q + 1) * k)]).toEqual(refTopK(metric, row(qs, q, dim), rows, dim, k));
      }
      // The sync path and a single-threaded run give the same answer.
      const s = index.searchSync(qs, { k, parallel: false });
      expect(s.labels).toEqual(r.labels);
      expect(s.distances).toEqual(r.distances);
    });

    it(`int8 ${metric}: the codes' distances match the brute force over the decoded rows`, async () => {
      const rows = data(n, dim, 3, false),
        qs = data(nq, dim, 4, false);
      const index = new VectorIndex({ dim, metric, storage: 'int8', blockSize: 32 });
      index.add(labels(n), rows);
      const decoded = new Float32Array(n * dim);
      for (let i = 0; i < n; i++)
        decoded.set(decodeTensor(encodeTensor(row(rows, i, dim), { codec: 'int8', blockSize: 32 })), i * dim);
      const r = await index.search(qs, { k });
      let same = 0;
      for (let q = 0; q < nq; q++) {
        const want = refTopK(metric, row(qs, q, dim), decoded, dim, k);
        for (let i = 0; i < k; i++) {
          const label = r.labels[q * k + i]!;
          same += label === want[i] ? 1 : 0;
          const d = refDistance(metric, row(qs, q, dim), row(decoded, label, dim));
          expect(Math.abs(r.distances[q * k + i]! - d)).toBeLessThanOrEqual(
            2e-3 * (1 + Math.abs(d)) * (metric === 'l2' ? 10 : 1),
          );
        }
      }
      // Only the query's 14-bit rounding separates them: near-ties may swap, nothing more.
      expect(same).toBeGreaterThanOrEqual(Math.floor(nq * k * 0.97));
      const f32 = new VectorIndex({ dim, metric });
      f32.add(labels(n), rows);
      expect(index.memoryBytes).toBeLessThan(f32.memoryBytes * 0.7);
    });
  }

  it('filters apply before top-k, deleted rows never come back, replaced rows move', async () => {
    const rows = data(n, dim, 5, true),
      qs = data(nq, dim, 6, true);
    const index = new VectorIndex({ dim, metric: 'l2' });
    index.add(labels(n), rows);
    const gone = Uint32Array.from({ length: n / 3 }, (_, i) => i * 3);
    expect(index.remove(gone)).toBe(gone.length);
    expect(index.remove(gone)).toBe(0);
    const allow = new Uint8Array((n >> 3) + 1);
    const ok = (l: number) => l % 3 !== 0 && l % 5 !== 0;
    for (let l = 0; l < n; l++) if (l % 5 !== 0) allow[l >> 3]! |= 1 << (l & 7);
    const r = await index.search(qs, { k: 30, allow });
    for (let q = 0; q < nq; q++) {
      expect([...r.labels.subarray(q * 30, (q + 1) * 30)]).toEqual(refTopK('l2', row(qs, q, dim), rows, dim, 30, ok));
    }
    // Fewer allowed rows than k: the rest is padded.
    const one = new Uint8Array((n >> 3) + 1);
    one[1] = 0b100; // label 10
    const few = await index.search(qs.subarray(0, dim), { k: 3, allow: one });
    expect([...few.labels]).toEqual([10, NO_LABEL, NO_LABEL]);
    expect(Number.isNaN(few.distances[1])).toBe(true);
    const far = new Float32Array(dim).fill(1000);
    index.add(Uint32Array.of(1), far);
    const near = await index.search(far, { k: 1 });
    expect(near.labels[0]).toBe(1);
    expect(index.size).toBe(n - gone.length);
  });

  it('blobs of the memory module are the same rows as their floats', async () => {
    const rows = data(50, dim, 7, false);
    const a = new VectorIndex({ dim, storage: 'int8', blockSize: 32 });
    const b = new VectorIndex({ dim, storage: 'int8', blockSize: 32 });
    a.add(labels(50), rows);
    b.addBlobs(
      labels(50),
      Array.from({ length: 50 }, (_, i) => encodeTensor(row(rows, i, dim), { codec: 'int8', blockSize: 32 })),
    );
    const qa = await a.search(rows, { k: 5 }),
      qb = await b.search(rows, { k: 5 });
    expect(qb.labels).toEqual(qa.labels);
    expect(qb.distances).toEqual(qa.distances);
  });
});

describe('VectorIndex inverted lists', () => {
  it('nprobe = nlist equals exact, smaller nprobe trades recall, rebuilds are identical, saved centroids restore', async () => {
    const dim = 16,
      n = 3000,
      nq = 40,
      k = 10;
    const rows = data(n, dim, 8, false),
      qs = data(nq, dim, 9, false);
    const build = async () => {
      const ix = new VectorIndex({ dim, metric: 'l2', nlist: 24, nprobe: 3 });
      ix.add(labels(n), rows);
      await ix.train({ seed: 7 });
      return ix;
    };
    const ivf = await build();
    expect(ivf.trained).toBe(true);
    const exact = await ivf.search(qs, { k, exact: true });
    const all = await ivf.search(qs, { k, nprobe: 24 });
    expect(all.labels).toEqual(exact.labels);
    const some = await ivf.search(qs, { k });
    let hits = 0;
    for (let q = 0; q < nq; q++) {
      const want = new Set(exact.labels.subarray(q * k, (q + 1) * k));
      for (const l of some.labels.subarray(q * k, (q + 1) * k)) hits += want.has(l) ? 1 : 0;
    }
    expect(hits).toBeLessThan(nq * k);
    expect(hits).toBeGreaterThan(nq * k * 0.3);
    expect((await (await build()).search(qs, { k })).labels).toEqual(some.labels);
    const restored = new VectorIndex({ dim, metric: 'l2', nlist: 24, nprobe: 3 });
    await restored.train({ samples: ivf.centroids(), iterations: 0 });
    restored.add(labels(n), rows);
    expect((await restored.search(qs, { k })).labels).toEqual(some.labels);
    // Adds after training land in a list; deletes are never returned.
    ivf.add(Uint32Array.of(5000), row(qs, 0, dim));
    expect((await ivf.search(row(qs, 0, dim), { k: 1 })).labels[0]).toBe(5000);
    ivf.remove(Uint32Array.of(5000));
    expect((await ivf.search(row(qs, 0, dim), { k: 1, nprobe: 24 })).labels[0]).not.toBe(5000);
  });
});

describe('VectorIndex errors', () => {
  it('bad vectors and options are typed errors naming the item', async () => {
    const ix = new VectorIndex({ dim: 4 });
    const nan = Float32Array.of(1, 2, 3, 4, 1, NaN, 0, 0);
    const e = await expectWhaleError(() => ix.add(labels(2), nan), 'ERR_NON_FINITE', 'vectors[1]');
    expect(e.message).toContain('value 1 is NaN');
    expect(ix.size).toBe(0);
    await expectWhaleError(() => ix.add(labels(2), new Float32Array(7)), 'ERR_INVALID_ARG', 'vectors');
    await expectWhaleError(() => ix.add(labels(1), new Float32Array(4)), 'ERR_INVALID_ARG', 'vectors[0]'); // cosine: zero vector
    await expectWhaleError(
      () => ix.add(Uint32Array.of(3, 3), Float32Array.of(1, 1, 1, 1, 2, 2, 2, 2)),
      'ERR_INVALID_ARG',
      'labels[1]',
    );
    await expectWhaleError(() => ix.search(new Float32Array(5), { k: 1 }), 'ERR_INVALID_ARG', 'queries');
    await expectWhaleError(
      () => ix.search(Float32Array.of(1, Infinity, 0, 0), { k: 1 }),
      'ERR_NON_FINITE',
      'queries[0]',
    );
    await expectWhaleError(() => ix.search(new Float32Array(4).fill(1), { k: 0 }), 'ERR_INVALID_ARG', 'k');
    const blob = encodeTensor(Float32Array.of(1, 2, 3, 4), { codec: 'int8', blockSize: 32 });
    blob[30] ^= 0xff;
    await expectWhaleError(() => ix.addBlobs(labels(1), [blob]), 'ERR_CHECKSUM', 'blobs[0]');
    await expectWhaleError(
      () => ix.addBlobs(labels(1), [encodeTensor(new Float32Array(5).fill(1))]),
      'ERR_INVALID_ARG',
      'blobs[0]',
    );
    await expectWhaleError(() => new VectorIndex({ dim: 0 }), 'ERR_INVALID_OPTION', 'options.dim');
    await expectWhaleError(
      () => new VectorIndex({ dim: 8, storage: 'int8', blockSize: 33 }),
      'ERR_INVALID_OPTION',
      'options.blockSize',
    );
    await expectWhaleError(
      () => new VectorIndex({ dim: 8, nlist: 4 }).train({ samples: new Float32Array(8 * 3).fill(1) }),
      'ERR_INVALID_ARG',
      'samples',
    );
  });
});
