/**
 * TfjsModel on the same trained net as the shipped ONNX model
 * (models/mnist-tfjs), on the WebAssembly backend; backend choice; file handler.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync, copyFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { NamedTensors } from '../src/core/base/tensor.js';
import {
  OnnxModel,
  TfjsModel,
  pickTfjsRuntime,
  tfjsBackendInfo,
  tfjsFileHandler,
  tfjsRuntime,
} from '../src/models/index.js';
import { MNIST_CLASSES, MNIST_PIXELS, argmaxRows, readMnist, type MnistSplit } from '../src/models/mnist-idx.js';
import { expectClose, expectWhaleError } from './helpers.js';

const ROOT = join(import.meta.dirname, '..');
const TFJS_DIR = join(ROOT, 'models', 'mnist-tfjs');
const metrics = JSON.parse(readFileSync(join(ROOT, 'models', 'mnist', 'metrics.json'), 'utf8')) as {
  tfjsTestAccuracy: number;
  onnxVsTfjsMaxAbsDiff: number;
};

function images(set: MnistSplit, from: number, count: number): NamedTensors {
  const data = set.images.slice(from * MNIST_PIXELS, (from + count) * MNIST_PIXELS);
  return { input: { name: 'input', datatype: 'FP32', shape: [count, MNIST_PIXELS], data } };
}

let test: MnistSplit;
let tfjs: TfjsModel;
let onnx: OnnxModel;
const scratch = mkdtempSync(join(tmpdir(), 'whale-tfjs-'));

beforeAll(async () => {
  test = readMnist('test', { count: 1000 });
  tfjs = new TfjsModel({ name: 'mnist-tfjs', path: TFJS_DIR });
  onnx = new OnnxModel({ name: 'mnist', path: join(ROOT, 'models', 'mnist', 'model.onnx'), executionProviders: 'cpu' });
  await Promise.all([tfjs.load(), onnx.load()]);
});

afterAll(async () => {
  await Promise.all([tfjs.unload(), onnx.unload()]);
  rmSync(scratch, { recursive: true, force: true });
});

describe('TfjsModel on the shipped net', () => {
  it('has the same signature as the ONNX export', () => {
    expect(tfjs.platform).toBe('tensorflowjs');
    expect(tfjs.inputs).toEqual(onnx.inputs);
    expect(tfjs.outputs).toEqual(onnx.outputs);
  });

  it('runs on the wasm backend when tfjs-node is not installed, and says so', async () => {
    const d = tfjs.describe();
    const info = await tfjsBackendInfo();
    expect(d.provider).toBe(info.backend);
    expect(d.format).toBe('layers-model');
    if (info.backend === 'wasm') expect(info.note).toMatch(/tfjs-node not installed/);
    else expect(info.package).toMatch(/tfjs-node/);
  });

  it('agrees with onnxruntime on 1000 real test images (same predictions, scores within 1e-5)', async () => {
    const req = images(test, 0, 1000);
    const [a, b] = [await tfjs.process(req), await onnx.process(req)];
    expectClose(a.scores!.data as Float32Array, b.scores!.data as Float32Array, 0, 1e-5);
    expect(argmaxRows(a.scores!.data as Float32Array, MNIST_CLASSES)).toEqual(
      argmaxRows(b.scores!.data as Float32Array, MNIST_CLASSES),
    );
    const acc =
      argmaxRows(a.scores!.data as Float32Array, MNIST_CLASSES).filter((p, i) => p === test.labels[i]).length / 1000;
    expect(acc).toBeGreaterThanOrEqual(metrics.tfjsTestAccuracy - 0.02);
    expect(metrics.onnxVsTfjsMaxAbsDiff).toBeLessThanOrEqual(1e-5);
  });

  it('processBatch gives each request what process gives it alone', async () => {
    const sizes = [2, 1, 5];
    let at = 100;
    const requests = sizes.map((n) => {
      const r = images(test, at, n);
      at += n;
      return r;
    });
    const batched = await tfjs.processBatch(requests);
    for (const [i, req] of requests.entries()) {
      expect(batched[i]!.scores!.shape).toEqual([sizes[i], MNIST_CLASSES]);
      expectClose(
        batched[i]!.scores!.data as Float32Array,
        (await tfjs.process(req)).scores!.data as Float32Array,
        1e-5,
        1e-6,
      );
    }
  });
});

describe('TfjsModel failures', () => {
  it('a directory that does not exist: typed error, status failed', async () => {
    const m = new TfjsModel({ name: 'gone', path: join(scratch, 'nope') });
    await expectWhaleError(() => m.load(), 'ERR_MODEL_LOAD', 'path');
    expect(m.status).toBe('failed');
  });

  it('a corrupt model.json or missing weights: typed error, status failed', async () => {
    const bad = join(scratch, 'bad');
    mkdirSync(bad);
    writeFileSync(join(bad, 'model.json'), '{"modelTopology": ');
    const m = new TfjsModel({ name: 'bad', path: bad });
    await expectWhaleError(() => m.load(), 'ERR_MODEL_LOAD', 'path');
    expect(m.status).toBe('failed');

    const noWeights = join(scratch, 'no-weights');
    mkdirSync(noWeights);
    copyFileSync(join(TFJS_DIR, 'model.json'), join(noWeights, 'model.json'));
    const n = new TfjsModel({ name: 'no-weights', path: join(noWeights, 'model.json') });
    const e = await expectWhaleError(() => n.load(), 'ERR_MODEL_LOAD', 'path');
    expect(e.message).toContain('weights.bin');
    expect(n.status).toBe('failed');
  });

  it('truncated weights: typed error, status failed', async () => {
    const short = join(scratch, 'short');
    mkdirSync(short);
    copyFileSync(join(TFJS_DIR, 'model.json'), join(short, 'model.json'));
    writeFileSync(join(short, 'weights.bin'), readFileSync(join(TFJS_DIR, 'weights.bin')).subarray(0, 1000));
    const m = new TfjsModel({ name: 'short', path: short });
    await expectWhaleError(() => m.load(), 'ERR_MODEL_LOAD', 'path');
    expect(m.status).toBe('failed');
  });

  it('weight paths may not leave the model directory', async () => {
    const evil = join(scratch, 'evil');
    mkdirSync(evil);
    const json = JSON.parse(readFileSync(join(TFJS_DIR, 'model.json'), 'utf8'));
    json.weightsManifest[0].paths = ['../../etc/passwd'];
    writeFileSync(join(evil, 'model.json'), JSON.stringify(json));
    const e = await expectWhaleError(
      () => new TfjsModel({ name: 'evil', path: evil }).load(),
      'ERR_MODEL_LOAD',
      'path',
    );
    expect(e.message).toContain('leaves the model directory');
  });

  it('rejects a missing path and an unknown backend', async () => {
    await expectWhaleError(() => new TfjsModel({ name: 'x', path: '' }), 'ERR_INVALID_ARG', 'path');
    await expectWhaleError(() => pickTfjsRuntime('gpu' as never), 'ERR_INVALID_OPTION', 'backend');
  });
});

describe('tfjs runtime choice', () => {
  it('auto prefers an installed tfjs-node and names it', async () => {
    const calls: string[] = [];
    const fakeNode = { setBackend: async (b: string) => b === 'tensorflow', ready: async () => undefined };
    const rt = await pickTfjsRuntime('auto', async (name) => {
      calls.push(name);
      if (name === '@tensorflow/tfjs-node') return fakeNode;
      throw new Error(`Cannot find package '${name}'`);
    });
    expect(calls).toEqual(['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node']);
    expect(rt).toMatchObject({ backend: 'tensorflow', package: '@tensorflow/tfjs-node' });
    expect(rt.tf).toBe(fakeNode);
  });

  it("'tensorflow' without tfjs-node is ERR_DEVICE_UNAVAILABLE naming the packages", async () => {
    const e = await expectWhaleError(
      () => pickTfjsRuntime('tensorflow', async (name) => Promise.reject(new Error(`Cannot find package '${name}'`))),
      'ERR_DEVICE_UNAVAILABLE',
      'backend',
    );
    expect(e.message).toContain('@tensorflow/tfjs-node-gpu');
  });

  it('one backend per process: a different explicit backend is refused', async () => {
    const rt = await tfjsRuntime();
    const other = rt.backend === 'cpu' ? 'wasm' : 'cpu';
    await expectWhaleError(() => tfjsRuntime(other), 'ERR_INVALID_OPTION', 'backend');
    expect(await tfjsRuntime(rt.backend as 'wasm')).toBe(rt);
  });
});

describe('tfjsFileHandler', () => {
  it('saves and loads a model without network or tfjs-node', async () => {
    const { tf } = await tfjsRuntime();
    const net = tf.sequential({ layers: [tf.layers.dense({ inputShape: [3], units: 2, name: 'out' })] });
    const dir = join(scratch, 'saved');
    const saved = await net.save(tfjsFileHandler(dir));
    expect(saved.modelArtifactsInfo.weightDataBytes).toBe((3 * 2 + 2) * 4);
    const back = await tf.loadLayersModel(tfjsFileHandler(dir));
    const x = tf.tensor2d([[1, 2, 3]]);
    const [a, b] = [net.predict(x) as ReturnType<typeof tf.tensor>, back.predict(x) as ReturnType<typeof tf.tensor>];
    expect(Array.from(await b.data())).toEqual(Array.from(await a.data()));
    tf.dispose([x, a, b]);
    net.dispose();
    back.dispose();
  });
});
