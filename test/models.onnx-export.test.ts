/** denseNetToOnnx against a plain-TS forward pass, run by onnxruntime-node. */
import { describe, expect, it } from 'vitest';

import { OnnxModel, denseNetToOnnx, type DenseLayer } from '../src/models/index.js';
import { expectClose, expectWhaleError, rng } from './helpers.js';

function randomLayer(inputs: number, units: number, activation: DenseLayer['activation'], seed: number): DenseLayer {
  const r = rng(seed);
  return {
    inputs,
    units,
    activation,
    kernel: Float32Array.from({ length: inputs * units }, () => r.normal() * 0.5),
    bias: Float32Array.from({ length: units }, () => r.normal() * 0.1),
  };
}

/** y = act(x · W + b), row by row, in float64. */
function reference(layers: DenseLayer[], x: Float32Array, rows: number): number[] {
  let cur = Array.from(x);
  for (const l of layers) {
    const next: number[] = [];
    for (let r = 0; r < rows; r++) {
      const out = Array.from({ length: l.units }, (_, u) => {
        let s = l.bias[u]!;
        for (let i = 0; i < l.inputs; i++) s += cur[r * l.inputs + i]! * l.kernel[i * l.units + u]!;
        return l.activation === 'relu' ? Math.max(0, s) : s;
      });
      if (l.activation === 'softmax') {
        const m = Math.max(...out);
        const e = out.map((v) => Math.exp(v - m));
        const z = e.reduce((a, b) => a + b, 0);
        next.push(...e.map((v) => v / z));
      } else next.push(...out);
    }
    cur = next;
  }
  return cur;
}

describe('denseNetToOnnx', () => {
  it.each([
    ['relu → softmax', [randomLayer(5, 4, 'relu', 1), randomLayer(4, 3, 'softmax', 2)]],
    ['relu → linear', [randomLayer(6, 8, 'relu', 3), randomLayer(8, 2, 'linear', 4)]],
    ['single softmax layer', [randomLayer(3, 3, 'softmax', 5)]],
  ] as const)('%s matches the reference forward pass', async (_, layers) => {
    const bytes = denseNetToOnnx(layers as unknown as DenseLayer[], {
      inputName: 'x',
      outputName: 'y',
      metadata: { purpose: 'test' },
    });
    const m = new OnnxModel({ name: 'dense', bytes, executionProviders: 'cpu' });
    await m.load();
    const first = layers[0]!;
    const last = layers[layers.length - 1]!;
    expect(m.inputs).toEqual([{ name: 'x', datatype: 'FP32', shape: [-1, first.inputs] }]);
    expect(m.outputs).toEqual([{ name: 'y', datatype: 'FP32', shape: [-1, last.units] }]);
    const rows = 7;
    const r = rng(99);
    const x = Float32Array.from({ length: rows * first.inputs }, () => r.normal());
    const out = await m.process({ x: { name: 'x', datatype: 'FP32', shape: [rows, first.inputs], data: x } });
    expectClose(out.y!.data as Float32Array, reference(layers as unknown as DenseLayer[], x, rows), 1e-5, 1e-5);
    await m.unload();
  });

  it('rejects layers that do not chain or whose weights have the wrong size', async () => {
    await expectWhaleError(() => denseNetToOnnx([]), 'ERR_INVALID_ARG', 'layers');
    await expectWhaleError(
      () => denseNetToOnnx([randomLayer(3, 4, 'relu', 1), randomLayer(5, 2, 'linear', 2)]),
      'ERR_INVALID_ARG',
      'layers[1].inputs',
    );
    const short = { ...randomLayer(3, 4, 'relu', 1), kernel: new Float32Array(11) };
    await expectWhaleError(() => denseNetToOnnx([short]), 'ERR_INVALID_ARG', 'layers[0].kernel');
    const bias = { ...randomLayer(3, 4, 'relu', 1), bias: new Float32Array(3) };
    await expectWhaleError(() => denseNetToOnnx([bias]), 'ERR_INVALID_ARG', 'layers[0].bias');
    const act = { ...randomLayer(3, 4, 'relu', 1), activation: 'tanh' as never };
    await expectWhaleError(() => denseNetToOnnx([act]), 'ERR_INVALID_ARG', 'layers[0].activation');
  });
});
