/**
 * The wasm convolution gradients and dense products (src/models/tfjs-wasm-conv-grad.ts)
 * against the tfjs 'cpu' backend's kernels on the same inputs, and one MNIST
 * CNN training step on wasm against the same step on cpu.
 *
 * Tolerance: every element within 1e-4 relative, or 1e-4 of the output's
 * largest magnitude (float32 sums in a different order).
 */
import { beforeAll, describe, expect, it } from 'vitest';

import { pickTfjsRuntime, type Tf } from '../src/models/tfjs-backend.js';
import { registerWasmConvGradients } from '../src/models/tfjs-wasm-conv-grad.js';
import { buildMnistModel } from '../src/apps/mnist/mnist-presets.js';
import { expectClose, rng } from './helpers.js';

type Tensor = import('@tensorflow/tfjs').Tensor;
type Attrs = Record<string, unknown>;

let tf: Tf;

beforeAll(async () => {
  tf = (await pickTfjsRuntime('wasm')).tf;
}, 60_000);

function random(n: number, seed: number): Float32Array {
  const r = rng(seed);
  return Float32Array.from({ length: n }, () => r.normal());
}

const size = (shape: number[]) => shape.reduce((a, b) => a * b, 1);
const maxAbs = (v: Float32Array) => v.reduce((m, x) => Math.max(m, Math.abs(x)), 0);

/** Runs one kernel on `backend` with fresh tensors made from the given arrays. */
async function runOn(
  backend: 'cpu' | 'wasm',
  kernel: string,
  inputs: Record<string, { shape: number[]; data: Float32Array }>,
  attrs: Attrs,
): Promise<{ shape: number[]; data: Float32Array }> {
  await tf.setBackend(backend);
  const ts: Record<string, Tensor> = {};
  for (const [k, v] of Object.entries(inputs)) ts[k] = tf.tensor(v.data, v.shape);
  const out = tf.engine().runKernel(kernel, ts, attrs as never) as Tensor;
  const res = { shape: out.shape, data: out.dataSync() as Float32Array };
  out.dispose();
  Object.values(ts).forEach((t) => t.dispose());
  return res;
}

/** Same kernel on cpu and wasm: same shape, values within tolerance, no wasm memory left behind. */
async function expectSameAsCpu(
  kernel: string,
  inputs: Record<string, number[]>,
  attrs: Attrs,
  seed: number,
): Promise<void> {
  const arrays = Object.fromEntries(
    Object.entries(inputs).map(([k, shape], i) => [k, { shape, data: random(size(shape), seed * 10 + i) }]),
  );
  const ref = await runOn('cpu', kernel, arrays, attrs);
  await tf.setBackend('wasm');
  const before = tf.engine().backend.numDataIds();
  const got = await runOn('wasm', kernel, arrays, attrs);
  expect(tf.engine().backend.numDataIds(), 'wasm intermediates freed').toBe(before);
  expect(got.shape).toEqual(ref.shape);
  expectClose(got.data, ref.data, 1e-4, 1e-4 * maxAbs(ref.data));
}

describe('Conv2DBackpropFilter on wasm', () => {
  it('is registered once the wasm runtime is picked, and registering again is a no-op', () => {
    const k = tf.getKernel('Conv2DBackpropFilter', 'wasm');
    expect(k).toBeDefined();
    registerWasmConvGradients(tf);
    expect(tf.getKernel('Conv2DBackpropFilter', 'wasm')!.kernelFunc).toBe(k!.kernelFunc);
  });

  const cases: Array<{
    name: string;
    x: number[];
    f: number[];
    strides: number | [number, number];
    pad: unknown;
    dataFormat?: 'NHWC' | 'NCHW';
    dimRoundingMode?: string;
  }> = [
    { name: 'MNIST CNN layer 1 (same, 1 channel)', x: [4, 28, 28, 1], f: [5, 5, 1, 32], strides: 1, pad: 'same' },
    { name: 'MNIST CNN layer 2 (same)', x: [3, 14, 14, 32], f: [5, 5, 32, 64], strides: 1, pad: 'same' },
    { name: 'valid, odd sizes', x: [2, 9, 11, 3], f: [3, 4, 3, 5], strides: 1, pad: 'valid' },
    { name: 'stride 2 same', x: [2, 10, 9, 4], f: [3, 3, 4, 6], strides: 2, pad: 'same' },
    {
      name: 'strides [2,3] valid, unused trailing rows',
      x: [2, 12, 13, 2],
      f: [3, 2, 2, 4],
      strides: [2, 3],
      pad: 'valid',
    },
    { name: 'stride 3, kernel smaller than stride', x: [1, 11, 11, 2], f: [2, 2, 2, 3], strides: 3, pad: 'same' },
    {
      name: 'explicit asymmetric padding',
      x: [2, 7, 8, 3],
      f: [3, 3, 3, 2],
      strides: [1, 2],
      pad: [
        [0, 0],
        [2, 0],
        [1, 3],
        [0, 0],
      ],
    },
    {
      name: 'numeric pad with ceil rounding',
      x: [2, 8, 8, 2],
      f: [3, 3, 2, 3],
      strides: 2,
      pad: 1,
      dimRoundingMode: 'ceil',
    },
    { name: 'NCHW', x: [2, 3, 9, 8], f: [3, 3, 3, 4], strides: [2, 1], pad: 'same', dataFormat: 'NCHW' },
  ];
  cases.forEach((c, i) => {
    it(`equals the cpu kernel: ${c.name}`, async () => {
      const attrs = {
        strides: c.strides,
        pad: c.pad,
        dataFormat: c.dataFormat ?? 'NHWC',
        dimRoundingMode: c.dimRoundingMode,
        filterShape: c.f,
      };
      await tf.setBackend('cpu');
      const dyShape = (
        tf.conv2d(
          tf.zeros(c.x) as never,
          tf.zeros(c.f) as never,
          c.strides,
          c.pad as never,
          c.dataFormat ?? 'NHWC',
          1,
          c.dimRoundingMode as never,
        ) as Tensor
      ).shape;
      await expectSameAsCpu('Conv2DBackpropFilter', { x: c.x, dy: dyShape }, attrs, i + 1);
    });
  });

  it('rejects non-float input with a typed error', async () => {
    await tf.setBackend('wasm');
    const x = tf.zeros([1, 4, 4, 1], 'int32');
    const dy = tf.zeros([1, 4, 4, 1]);
    expect(() =>
      tf.engine().runKernel('Conv2DBackpropFilter', { x, dy }, {
        strides: 1,
        pad: 'same',
        dataFormat: 'NHWC',
        filterShape: [1, 1, 1, 1],
      } as never),
    ).toThrow(/Conv2DBackpropFilter on wasm: x must be float32/);
    tf.dispose([x, dy]);
  });
});

describe('Conv2DBackpropInput and BatchMatMul on wasm', () => {
  const inputCases: Array<{ name: string; x: number[]; f: number[]; strides: number; pad: unknown }> = [
    { name: 'MNIST CNN layer 2 (same, composed)', x: [3, 14, 14, 32], f: [5, 5, 32, 64], strides: 1, pad: 'same' },
    { name: 'valid, composed', x: [2, 9, 7, 3], f: [3, 2, 3, 4], strides: 1, pad: 'valid' },
    {
      name: 'explicit pads beyond the kernel, composed',
      x: [2, 6, 6, 2],
      f: [3, 3, 2, 3],
      strides: 1,
      pad: [
        [0, 0],
        [3, 1],
        [0, 4],
        [0, 0],
      ],
    },
    { name: 'stride 2 (shipped kernel)', x: [2, 9, 9, 3], f: [3, 3, 3, 4], strides: 2, pad: 'same' },
  ];
  inputCases.forEach((c, i) => {
    it(`Conv2DBackpropInput equals the cpu kernel: ${c.name}`, async () => {
      await tf.setBackend('cpu');
      const dyShape = (tf.conv2d(tf.zeros(c.x) as never, tf.zeros(c.f) as never, c.strides, c.pad as never) as Tensor)
        .shape;
      await expectSameAsCpu(
        'Conv2DBackpropInput',
        { dy: dyShape, filter: c.f },
        { strides: c.strides, pad: c.pad, dataFormat: 'NHWC', inputShape: c.x },
        50 + i,
      );
    });
  });

  const mm: Array<[number[], number[], boolean, boolean]> = [
    [[10, 3136], [3136, 512], false, false],
    [[10, 3136], [10, 512], true, false],
    [[10, 512], [3136, 512], false, true],
    [[7, 5], [9, 7], true, true],
    [[40, 6], [6, 3], false, false],
    [[1, 4, 6], [1, 6, 9], false, false],
    [[3, 4, 6], [3, 9, 6], false, true],
  ];
  mm.forEach(([a, b, transposeA, transposeB], i) => {
    it(`BatchMatMul equals the cpu kernel: ${JSON.stringify(a)} x ${JSON.stringify(b)} tA=${transposeA} tB=${transposeB}`, async () => {
      await expectSameAsCpu('BatchMatMul', { a, b }, { transposeA, transposeB }, 80 + i);
    });
  });

  it('BatchMatMul with the same right operand twice (inference weights) gives the same product', async () => {
    await tf.setBackend('wasm');
    const x = tf.tensor(random(4 * 30, 7), [4, 30]);
    const w = tf.tensor(random(30 * 50, 8), [30, 50]);
    const first = tf.matMul(x, w).dataSync();
    const second = tf.matMul(x, w).dataSync();
    expectClose(second, first, 1e-5, 1e-5 * maxAbs(first as Float32Array));
    tf.dispose([x, w]);
  });
});

describe('MNIST CNN training step', () => {
  /** One SGD step (batch of 8, lr 0.1) from the same weights: the weight change divided by lr is the gradient. */
  async function step(
    backend: 'cpu' | 'wasm',
    weights: Float32Array[],
    images: Float32Array,
    labels: number[],
  ): Promise<Float32Array[]> {
    await tf.setBackend(backend);
    const model = buildMnistModel(tf, 'cnn', 3);
    model.setWeights(model.getWeights().map((w, i) => tf.tensor(weights[i]!, w.shape)));
    model.compile({
      optimizer: tf.train.sgd(0.1),
      loss: (y: Tensor, p: Tensor) => tf.losses.softmaxCrossEntropy(y, p),
    });
    const xs = tf.tensor4d(images, [labels.length, 28, 28, 1]);
    const ys = tf.oneHot(tf.tensor1d(labels, 'int32'), 10).toFloat();
    await model.trainOnBatch(xs, ys);
    const after = model
      .getWeights()
      .map((w, i) => Float32Array.from(w.dataSync() as Float32Array, (v, j) => (weights[i]![j]! - v) / 0.1));
    tf.dispose([xs, ys]);
    model.dispose();
    return after;
  }

  it('wasm gradients of every layer equal cpu', async () => {
    await tf.setBackend('cpu');
    const init = buildMnistModel(tf, 'cnn', 3);
    const weights = init.getWeights().map((w) => Float32Array.from(w.dataSync() as Float32Array));
    init.dispose();
    expect(weights.reduce((s, w) => s + w.length, 0)).toBe(1_663_370);
    const r = rng(11);
    const images = Float32Array.from({ length: 8 * 784 }, () => r.uniform());
    const labels = [0, 1, 2, 3, 4, 5, 6, 7];
    const cpu = await step('cpu', weights, images, labels);
    const wasm = await step('wasm', weights, images, labels);
    expect(wasm.length).toBe(8);
    cpu.forEach((g, i) => {
      expect(maxAbs(g), `layer weight ${i} has a gradient`).toBeGreaterThan(0);
      expectClose(wasm[i]!, g, 1e-3, 1e-3 * maxAbs(g));
    });
  }, 120_000);
});
