/**
 * quantizeDenseOnnxInt8 on the shipped MNIST 2NN: the int8 graph loads in
 * onnxruntime-node, keeps the float model's test accuracy within half a point
 * on all 10,000 test images, its weights are the codec's (symmetric, one scale
 * per output column, error at most half a step), and bad input fails typed.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import onnxProto from 'onnx-proto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { OnnxModel } from '../src/models/onnx-model.js';
import { quantizeDenseOnnxInt8 } from '../src/models/onnx-int8.js';
import { denseNetToOnnx } from '../src/models/onnx-export.js';
import { MNIST_CLASSES, MNIST_PIXELS, argmaxRows, readMnist, type MnistSplit } from '../src/models/mnist-idx.js';
import { expectWhaleError } from './helpers.js';

const { onnx } = onnxProto;
const ROOT = join(import.meta.dirname, '..');
const FLOAT_BYTES = readFileSync(join(ROOT, 'models', 'mnist', 'model.onnx'));
const metrics = JSON.parse(readFileSync(join(ROOT, 'models', 'mnist', 'metrics.json'), 'utf8')) as {
  onnxTestAccuracy: number;
};

function floats(t: ReturnType<typeof onnx.TensorProto.decode>): Float32Array {
  const raw = t.rawData!;
  return new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength));
}

let test: MnistSplit;
let int8: OnnxModel;
let quantized: ReturnType<typeof quantizeDenseOnnxInt8>;

beforeAll(async () => {
  test = readMnist('test');
  quantized = quantizeDenseOnnxInt8(FLOAT_BYTES);
  int8 = new OnnxModel({ name: 'mnist-int8', bytes: quantized.bytes, executionProviders: 'cpu', intraOpThreads: 1 });
  await int8.load();
});

afterAll(async () => {
  await int8.unload();
});

describe('quantizeDenseOnnxInt8 on the shipped 2NN', () => {
  it('rewrites the three Gemms into integer matmuls and is about a quarter of the size', () => {
    expect(quantized.layers).toEqual([
      { node: 'dense0', inputs: 784, units: 200 },
      { node: 'dense1', inputs: 200, units: 200 },
      { node: 'dense2', inputs: 200, units: 10 },
    ]);
    const g = onnx.ModelProto.decode(quantized.bytes).graph!;
    const ops = g.node!.map((n) => n.opType);
    expect(ops).not.toContain('Gemm');
    expect(ops.filter((o) => o === 'MatMulInteger')).toHaveLength(3);
    expect(ops.filter((o) => o === 'DynamicQuantizeLinear')).toHaveLength(3);
    expect(
      g.initializer!.filter((t) => t.dataType === onnx.TensorProto.DataType.INT8).map((t) => t.dims!.map(Number)),
    ).toEqual([
      [784, 200],
      [200, 200],
      [200, 10],
    ]);
    expect(quantized.bytes.length).toBeLessThan(0.3 * FLOAT_BYTES.length);
    expect(int8.inputs).toEqual([{ name: 'input', datatype: 'FP32', shape: [-1, MNIST_PIXELS] }]);
    expect(int8.outputs).toEqual([{ name: 'scores', datatype: 'FP32', shape: [-1, MNIST_CLASSES] }]);
  });

  it('stores symmetric per-column int8 weights within half a step of the float ones', () => {
    const fg = onnx.ModelProto.decode(FLOAT_BYTES).graph!;
    const qg = onnx.ModelProto.decode(quantized.bytes).graph!;
    const w = floats(fg.initializer!.find((t) => t.name === 'dense0.weight')!);
    const qt = qg.initializer!.find((t) => t.name === 'dense0.w_q')!;
    const q = new Int8Array(
      qt.rawData!.buffer.slice(qt.rawData!.byteOffset, qt.rawData!.byteOffset + qt.rawData!.byteLength),
    );
    const s = floats(qg.initializer!.find((t) => t.name === 'dense0.w_scale')!);
    expect(s).toHaveLength(200);
    let worst = 0; // largest |q·s − w| in units of the column's step
    for (let c = 0; c < 200; c++) {
      let absmax = 0;
      let qmax = 0;
      for (let r = 0; r < 784; r++) {
        absmax = Math.max(absmax, Math.abs(w[r * 200 + c]!));
        qmax = Math.max(qmax, Math.abs(q[r * 200 + c]!));
        worst = Math.max(worst, Math.abs(q[r * 200 + c]! * s[c]! - w[r * 200 + c]!) / s[c]!);
      }
      expect(qmax).toBe(127);
      expect(s[c]!).toBeCloseTo(absmax / 127, 6);
    }
    expect(worst).toBeLessThanOrEqual(0.5 + 1e-4);
    expect(worst).toBeGreaterThan(0.4);
    expect(qg.initializer!.some((t) => t.name === 'dense0.weight')).toBe(false);
  });

  it('keeps the test accuracy of the float model within 0.5 points on all 10,000 images', async () => {
    const out = await int8.process({
      input: { name: 'input', datatype: 'FP32', shape: [test.count, MNIST_PIXELS], data: test.images },
    });
    const scores = out.scores!.data as Float32Array;
    expect(out.scores!.shape).toEqual([test.count, MNIST_CLASSES]);
    const predicted = argmaxRows(scores, MNIST_CLASSES);
    const accuracy = predicted.filter((p, i) => p === test.labels[i]).length / test.count;
    expect(Math.abs(accuracy - metrics.onnxTestAccuracy)).toBeLessThan(0.005);
    // Still a softmax: each row sums to 1.
    for (let r = 0; r < 10; r++)
      expect(scores.subarray(r * 10, r * 10 + 10).reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
  });

  it('quantizes a Gemm without bias and a single-layer model', async () => {
    const kernel = Float32Array.from({ length: 64 * 3 }, (_, i) => Math.sin(i));
    const bytes = denseNetToOnnx([{ kernel, bias: new Float32Array(3), inputs: 64, units: 3, activation: 'linear' }]);
    const g = onnx.ModelProto.decode(bytes);
    g.graph!.node![0]!.input = g.graph!.node![0]!.input!.slice(0, 2);
    const { bytes: q, layers } = quantizeDenseOnnxInt8(onnx.ModelProto.encode(g).finish());
    expect(layers).toEqual([{ node: 'dense0', inputs: 64, units: 3 }]);
    const m = new OnnxModel({ name: 'lin', bytes: q, executionProviders: 'cpu', intraOpThreads: 1 });
    await m.load();
    const x = Float32Array.from({ length: 64 }, (_, i) => (i % 7) / 7);
    const y = (await m.process({ input: { name: 'input', datatype: 'FP32', shape: [1, 64], data: x } })).output!
      .data as Float32Array;
    await m.unload();
    // Worst case of rounding both factors: Σ |x|·sw/2 + |w|·sx/2 + sx·sw/4, with sx = max x / 255 (uint8) and sw = max |w| / 127.
    const sx = Math.max(...x) / 255;
    for (let c = 0; c < 3; c++) {
      let exact = 0;
      let bound = 0;
      let wmax = 0;
      for (let r = 0; r < 64; r++) wmax = Math.max(wmax, Math.abs(kernel[r * 3 + c]!));
      const sw = wmax / 127;
      for (let r = 0; r < 64; r++) {
        exact += x[r]! * kernel[r * 3 + c]!;
        bound += (Math.abs(x[r]!) * sw) / 2 + (Math.abs(kernel[r * 3 + c]!) * sx) / 2 + (sx * sw) / 4;
      }
      expect(Math.abs(y[c]! - exact)).toBeLessThanOrEqual(bound);
      expect(Math.abs(y[c]! - exact)).toBeLessThan(0.1 * Math.abs(exact) + 0.05);
    }
  });

  it('fails typed on bytes that are not ONNX, a model without Gemm and an unsupported Gemm', async () => {
    await expectWhaleError(
      () => quantizeDenseOnnxInt8(Uint8Array.of(0xff, 0xff, 0xff, 0xff, 0x0f)),
      'ERR_INVALID_ARG',
      'bytes',
    );
    const noGemm = onnx.ModelProto.encode(
      onnx.ModelProto.create({
        irVersion: 7,
        opsetImport: [{ domain: '', version: 13 }],
        graph: { name: 'g', node: [{ opType: 'Relu', input: ['a'], output: ['b'] }] },
      }),
    ).finish();
    await expectWhaleError(() => quantizeDenseOnnxInt8(noGemm), 'ERR_INVALID_ARG', 'bytes');
    const m = onnx.ModelProto.decode(FLOAT_BYTES);
    m.graph!.node![0]!.attribute = [
      onnx.AttributeProto.create({ name: 'transB', type: onnx.AttributeProto.AttributeType.INT, i: 1 }),
    ];
    await expectWhaleError(
      () => quantizeDenseOnnxInt8(onnx.ModelProto.encode(m).finish()),
      'ERR_INVALID_ARG',
      'graph.node[0] (dense0)',
    );
    const odd = denseNetToOnnx([
      { kernel: new Float32Array(33 * 2), bias: new Float32Array(2), inputs: 33, units: 2, activation: 'linear' },
    ]);
    await expectWhaleError(() => quantizeDenseOnnxInt8(odd), 'ERR_INVALID_ARG', 'graph.node[0] (dense0)');
  });
});
