/** The model-agnostic contracts: in-memory datasets, the CSV/JSONL/NPY/IDX readers (typed errors naming the file), defineTrainer. */
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import { defineTrainer, inMemoryDataset, joinWeights, readDataset, splitWeights, trainerLayout } from '../src/index.js';

const dir = mkdtempSync(join(tmpdir(), 'whale-datasets-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function npy(descr: string, shape: number[], bytes: Uint8Array): Buffer {
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': (${shape.join(', ')}${shape.length === 1 ? ',' : ''}), }`;
  header += ' '.repeat(63 - ((10 + header.length) % 64)) + '\n';
  const pre = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0, header.length & 255, header.length >> 8]);
  return Buffer.concat([
    pre,
    Buffer.from(header, 'latin1'),
    Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength),
  ]);
}

function idx(type: number, dims: number[], body: Uint8Array): Buffer {
  const head = Buffer.alloc(4 + 4 * dims.length);
  head[2] = type;
  head[3] = dims.length;
  dims.forEach((d, i) => head.writeUInt32BE(d, 4 + 4 * i));
  return Buffer.concat([head, Buffer.from(body)]);
}

function sub(name: string, files: Record<string, string | Buffer>): string {
  const d = join(dir, name);
  mkdirSync(d, { recursive: true });
  for (const [f, body] of Object.entries(files)) writeFileSync(join(d, f), body);
  return d;
}

describe('ClientDataset', () => {
  it('serves seeded shuffled batches of named tensors', () => {
    const ds = inMemoryDataset({
      x: { data: Float32Array.from({ length: 20 }, (_, i) => i), shape: [2] },
      y: { data: Uint8Array.from({ length: 10 }, (_, i) => i) },
    });
    expect(ds.size).toBe(10);
    expect(ds.fields).toEqual({ x: { shape: [2], dtype: 'float32' }, y: { shape: [], dtype: 'int32' } });
    const a = [...ds.batches(4, { seed: 7 })];
    expect(a.map((b) => b.y!.shape[0])).toEqual([4, 4, 2]);
    expect(a[0]!.x!.shape).toEqual([4, 2]);
    // Rows stay together and the same seed gives the same order; another seed another one.
    const ys = a.flatMap((b) => [...b.y!.data]);
    a.forEach((b) =>
      b.y!.data.forEach((y, i) => expect([...b.x!.data.subarray(2 * i, 2 * i + 2)]).toEqual([2 * y, 2 * y + 1])),
    );
    expect([...ys].sort((p, q) => p - q)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect([...ds.batches(4, { seed: 7 })].flatMap((b) => [...b.y!.data])).toEqual(ys);
    expect([...ds.batches(4, { seed: 8 })].flatMap((b) => [...b.y!.data])).not.toEqual(ys);
    expect([...ds.batches(0, { shuffle: false })][0]!.y!.data).toEqual(Int32Array.from([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]));
    expect(() => inMemoryDataset({ x: { data: new Float32Array(6), shape: [2] }, y: { data: [1, 2] } })).toThrow(
      /dataset\.y: 2 examples, the other fields have 3/,
    );
  });
});

describe('readDataset', () => {
  it('reads CSV (label column), JSON Lines, NPY and IDX into the same fields', async () => {
    const csv = sub('csv', { 'a.csv': 'f0,f1,label\n0.5,1,3\n2,3.5,1\n', 'b.csv': 'f0,f1,label\n4,5,0\n' });
    const ds = await readDataset(csv);
    expect(ds.size).toBe(3);
    expect(ds.field('x').data).toEqual(Float32Array.from([0.5, 1, 2, 3.5, 4, 5]));
    expect(ds.field('y').data).toEqual(Int32Array.from([3, 1, 0]));

    const jl = sub('jsonl', { 'part.jsonl': '{"x":[[1,2],[3,4]],"y":2}\n\n{"x":[[5,6],[7,8]],"y":0}\n' });
    const j = await readDataset(jl);
    expect(j.fields).toEqual({ x: { shape: [2, 2], dtype: 'float32' }, y: { shape: [], dtype: 'int32' } });

    const x = Float32Array.from([1, 2, 3, 4, 5, 6]);
    const n = sub('npy', {
      'x.npy': npy('<f4', [3, 2], new Uint8Array(x.buffer)),
      'y.npy': npy('<i8', [3], new Uint8Array(BigInt64Array.from([1n, 0n, 2n]).buffer)),
    });
    const nd = await readDataset(n);
    expect(nd.field('x').data).toEqual(x);
    expect(nd.field('y').data).toEqual(Int32Array.from([1, 0, 2]));

    const i = sub('idx', {
      'x.idx3-ubyte': idx(0x08, [2, 2, 2], Uint8Array.from([0, 255, 51, 102, 1, 2, 3, 4])),
      'y.idx': idx(0x08, [2], Uint8Array.from([7, 9])),
    });
    const id = await readDataset(i, { scale: { x: 1 / 255 } });
    expect(id.fields.x).toEqual({ shape: [2, 2], dtype: 'float32' });
    expect(id.field('x').data[1]).toBeCloseTo(1);
    expect(id.field('y').data).toEqual(Int32Array.from([7, 9]));
  });

  it('names the file, line and field of a bad file', async () => {
    const fail = (p: string) =>
      readDataset(p).then(
        () => undefined,
        (e: Error & { code?: string; details?: unknown }) => e,
      );
    const e1 = await fail(sub('bad-csv', { 'a.csv': 'f0,label\n1,2\n1,x\n' }));
    expect(e1).toMatchObject({ code: 'ERR_INVALID_ARG', field: 'label' });
    expect(e1!.message).toMatch(/a\.csv:3: column 'label': not a number: "x"/);
    expect((await fail(sub('nolabel', { 'a.csv': 'f0,f1\n1,2\n' })))!.message).toMatch(/a\.csv:1: no 'label' column/);
    expect((await fail(sub('ragged', { 'a.jsonl': '{"x":[1,2],"y":1}\n{"x":[1],"y":1}\n' })))!.message).toMatch(
      /a\.jsonl:2: field 'x' has shape \[1\]/,
    );
    expect((await fail(sub('badnpy', { 'x.npy': Buffer.from('hello world') })))!.message).toMatch(
      /x\.npy: not a \.npy file/,
    );
    const short = npy('<f4', [3, 2], new Uint8Array(8));
    expect((await fail(sub('shortnpy', { 'x.npy': short })))!.message).toMatch(/x\.npy: truncated/);
    expect(
      (await fail(sub('mixed', { 'a.csv': 'f,label\n1,1\n', 'y.npy': npy('<i4', [1], new Uint8Array(4)) })))!.message,
    ).toMatch(/mixes csv and npy/);
    const mism = sub('mism', {
      'x.npy': npy('<f4', [2], new Uint8Array(8)),
      'y.npy': npy('<i4', [3], new Uint8Array(12)),
    });
    expect(await fail(mism)).toMatchObject({ code: 'ERR_SHAPE_MISMATCH' });
    expect(await fail(join(dir, 'absent'))).toMatchObject({ code: 'ERR_NOT_FOUND' });
  });
});

describe('defineTrainer', () => {
  it('turns init/fit/evaluate over named weights into a flat-weights Trainer with a delta', async () => {
    const trainer = defineTrainer({
      init: (seed) => ({ w: { shape: [2, 2], data: [seed, 0, 0, 1] }, b: { shape: [2], data: [0, 0] } }),
      fit: (w, ds, o) => {
        w.b![0]! += o.learningRate * ds.size;
        return { weights: w, metrics: { loss: 1 } };
      },
      evaluate: (w) => ({ accuracy: w.b![0]!, loss: 0 }),
    });
    expect(await trainerLayout(trainer)).toEqual([
      { name: 'w', shape: [2, 2] },
      { name: 'b', shape: [2] },
    ]);
    const w0 = await trainer.init(3);
    expect([...w0]).toEqual([3, 0, 0, 1, 0, 0]);
    const ds = inMemoryDataset({ x: { data: [1, 2, 3] } });
    const r = await trainer.fit(w0, ds, { epochs: 1, batchSize: 1, learningRate: 0.5 });
    expect([...r.delta]).toEqual([0, 0, 0, 0, 1.5, 0]);
    expect(r.examples).toBe(3);
    expect([...w0]).toEqual([3, 0, 0, 1, 0, 0]); // the caller's weights are not touched
    expect(await trainer.evaluate(w0, ds)).toEqual({ accuracy: 0, loss: 0 });
    await expect(
      trainer.fit(new Float32Array(5), ds, { epochs: 1, batchSize: 1, learningRate: 1 }),
    ).rejects.toMatchObject({
      code: 'ERR_SHAPE_MISMATCH',
    });
    const named = splitWeights(w0, trainer.layout);
    expect(joinWeights(named, trainer.layout)).toEqual(w0);
    expect(() => joinWeights({ w: [1, 2, 3, 4] }, trainer.layout)).toThrow(/weights\.b: expected 2 values/);
  });
});
