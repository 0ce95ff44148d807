/** TfjsTrainer: any tfjs LayersModel as a federation Trainer (built by a function or loaded from model.json). */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import { createTfjsTrainer, inMemoryDataset, layoutSize, type FitOptions } from '../src/index.js';
import { tfjsRuntime, type Tf } from '../src/models/tfjs-backend.js';
import { tfjsFileHandler } from '../src/models/tfjs-files.js';

const dir = mkdtempSync(join(tmpdir(), 'whale-tfjs-trainer-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// Three separable classes of 4 features (a [2, 2] "image" per example, reshaped to the model's [4] input), 60 examples.
const n = 60;
const x = new Float32Array(n * 4);
const y = new Int32Array(n);
for (let i = 0; i < n; i++) {
  y[i] = i % 3;
  for (let j = 0; j < 4; j++) x[i * 4 + j] = (j === y[i] ? 2 : 0) + Math.sin(i * 7 + j) * 0.3;
}
const data = inMemoryDataset({ img: { data: x, shape: [2, 2] }, label: { data: y } });
const fit: FitOptions = { epochs: 5, batchSize: 10, learningRate: 0.3, seed: 3 };

const build = (tf: Tf, seed: number, softmax = true) =>
  tf.sequential({
    layers: [
      tf.layers.dense({
        inputShape: [4],
        units: 3,
        kernelInitializer: tf.initializers.glorotUniform({ seed }),
        ...(softmax ? { activation: 'softmax' } : {}),
      }),
    ],
  });

describe('TfjsTrainer', () => {
  it('trains an author-built model: delta in the layout, loss down, accuracy up, init from the seed', async () => {
    const t = await createTfjsTrainer({ build: (tf, seed) => build(tf, seed), inputs: ['img'], target: 'label' });
    expect(t.layout.map((l) => l.shape)).toEqual([[4, 3], [3]]);
    expect(layoutSize(t.layout)).toBe(15);
    const w0 = t.init(7);
    expect(t.init(7)).toEqual(w0);
    expect(t.init(8)).not.toEqual(w0);
    const before = await t.evaluate(w0, data);
    const r = await t.fit(w0, data, fit);
    expect(r.delta).toHaveLength(15);
    expect(r.examples).toBe(n);
    const w1 = w0.map((v, i) => v + r.delta[i]!);
    const after = await t.evaluate(w1, data);
    expect(after.loss!).toBeLessThan(before.loss!);
    expect(after.accuracy!).toBeGreaterThan(0.9);
    // Same weights and seed, same result (the shuffle is seeded).
    expect((await t.fit(w0, data, fit)).delta).toEqual(r.delta);
    // FedProx keeps the trained model nearer the received one.
    const prox = await t.fit(w0, data, { ...fit, proximalMu: 5 });
    const norm = (d: Float32Array) => Math.hypot(...d);
    expect(norm(prox.delta)).toBeLessThan(norm(r.delta));
  });

  it('loads a saved model.json (its weights are the initial model); logits models train on softmax cross-entropy', async () => {
    const { tf } = await tfjsRuntime();
    const m = build(tf, 5, false);
    await m.save(tfjsFileHandler(join(dir, 'logits')));
    const saved = new Float32Array(m.getWeights().flatMap((w) => [...(w.dataSync() as Float32Array)]));
    m.dispose();
    const t = await createTfjsTrainer({
      modelPath: join(dir, 'logits', 'model.json'),
      inputs: ['img'],
      target: 'label',
    });
    expect(t.init(1)).toEqual(saved);
    const r = await t.fit(saved, data, fit);
    const after = await t.evaluate(
      saved.map((v, i) => v + r.delta[i]!),
      data,
    );
    expect(after.accuracy!).toBeGreaterThan(0.9);
  });

  it('names the field at fault', async () => {
    const t = await createTfjsTrainer({ build: (tf, seed) => build(tf, seed), inputs: ['img'], target: 'label' });
    const w = t.init(1);
    await expect(
      t.fit(w, inMemoryDataset({ pixels: { data: x, shape: [4] }, label: { data: y } }), fit),
    ).rejects.toThrow(/inputs\[0\]: the dataset has no field 'img'/);
    await expect(
      t.evaluate(w, inMemoryDataset({ img: { data: x, shape: [4] }, label: { data: y.map((v) => v + 1) } })),
    ).rejects.toThrow(/label: class 3 outside 0\.\.2/);
    await expect(
      t.fit(w, inMemoryDataset({ img: { data: x.subarray(0, 60 * 2), shape: [2] }, label: { data: y } }), fit),
    ).rejects.toMatchObject({
      code: 'ERR_SHAPE_MISMATCH',
    });
    await expect(t.fit(new Float32Array(3), data, fit)).rejects.toMatchObject({
      code: 'ERR_SHAPE_MISMATCH',
      field: 'weights',
    });
    await expect(createTfjsTrainer({ modelPath: join(dir, 'absent') })).rejects.toMatchObject({
      code: 'ERR_MODEL_LOAD',
      field: 'modelPath',
    });
    await expect(createTfjsTrainer({})).rejects.toThrow(/model: give exactly one of build/);
  });
});
