/**
 * The served model as a federation sees it: a dense ONNX network (Gemm layers with ReLU/softmax, such as
 * the shipped MNIST 2NN that denseNetToOnnx wrote) read back into its layers, its weights as one flat
 * vector in the trainers' order (kernel inputs×units, then bias, per layer: the 2NN preset's layout),
 * new weights written as ONNX again, and a model evaluated on the coordinator's held-out set.
 */
import onnxProto from 'onnx-proto';

import { WhaleError } from '../../common/errors.js';
import { denseNetToOnnx, type DenseActivation, type DenseLayer } from '../../models/onnx-export.js';
import { OnnxModel } from '../../models/onnx-model.js';
import { MNIST_CLASSES, MNIST_PIXELS, readMnist } from '../../models/mnist-idx.js';
import type { HeldOutConfig } from '../../config/federations.js';

const { onnx } = onnxProto;
type Tensor = ReturnType<typeof onnx.TensorProto.create>;

export interface DenseNet {
  layers: DenseLayer[];
  inputName: string;
  outputName: string;
  graphName: string;
  metadata: Record<string, string>;
}

export interface HeldOut {
  x: Float32Array;
  labels: Uint8Array | Int32Array;
  count: number;
  width: number;
}

function unsupported(why: string): WhaleError {
  return new WhaleError(
    'ERR_UNSUPPORTED',
    `model: ${why} (a federation in the service trains dense ONNX networks: Gemm + Relu/Softmax)`,
    {
      field: 'model',
    },
  );
}

function floats(t: Tensor): Float32Array {
  if (t.dataType !== onnx.TensorProto.DataType.FLOAT) throw unsupported(`weight '${t.name}' is not float32`);
  if (t.floatData && t.floatData.length > 0) return Float32Array.from(t.floatData);
  const raw = t.rawData;
  if (!raw || raw.length % 4 !== 0) throw unsupported(`weight '${t.name}' has no float32 data`);
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  return Float32Array.from({ length: raw.length / 4 }, (_, i) => view.getFloat32(i * 4, true));
}

/** The dense layers of an ONNX model (ERR_UNSUPPORTED naming what is not a plain dense network). */
export function readDenseOnnx(bytes: Uint8Array): DenseNet {
  const m = onnx.ModelProto.decode(bytes);
  const g = m.graph;
  if (!g?.node?.length) throw unsupported('the graph has no nodes');
  const inits = new Map((g.initializer ?? []).map((t) => [t.name ?? '', t as Tensor]));
  const inputs = (g.input ?? []).filter((i) => !inits.has(i.name ?? ''));
  if (inputs.length !== 1 || g.output?.length !== 1) throw unsupported('it needs one input and one output');
  const layers: DenseLayer[] = [];
  let current = inputs[0]!.name ?? '';
  for (const node of g.node) {
    const [x, w, b] = node.input ?? [];
    if (node.opType === 'Gemm') {
      if (x !== current) throw unsupported(`node '${node.name}' does not follow the previous layer`);
      const bad = (node.attribute ?? []).find((a) =>
        a.name === 'transA' || a.name === 'transB' ? Number(a.i) !== 0 : a.f !== 1,
      );
      if (bad) throw unsupported(`Gemm '${node.name}' sets ${bad.name}`);
      const wt = inits.get(w ?? '');
      const bt = inits.get(b ?? '');
      if (!wt || !bt || wt.dims?.length !== 2)
        throw unsupported(`Gemm '${node.name}' needs a 2-D weight and a bias initializer`);
      const [inputsN, units] = (wt.dims as Array<number | { toNumber(): number }>).map(Number);
      layers.push({ kernel: floats(wt), bias: floats(bt), inputs: inputsN!, units: units!, activation: 'linear' });
    } else if (node.opType === 'Relu' || node.opType === 'Softmax') {
      const last = layers.at(-1);
      if (!last || x !== current || last.activation !== 'linear')
        throw unsupported(`${node.opType} '${node.name}' is not after a Gemm`);
      last.activation = node.opType.toLowerCase() as DenseActivation;
    } else throw unsupported(`operator ${node.opType} ('${node.name}')`);
    current = node.output?.[0] ?? '';
  }
  if (current !== g.output[0]!.name) throw unsupported('the last node is not the graph output');
  return {
    layers,
    inputName: inputs[0]!.name ?? 'input',
    outputName: current,
    graphName: g.name ?? 'dense',
    metadata: Object.fromEntries((m.metadataProps ?? []).map((p) => [p.key ?? '', p.value ?? ''])),
  };
}

/** The weights as one vector: per layer its kernel (inputs×units, row-major) then its bias. */
export function flattenDense(net: DenseNet): Float32Array {
  const n = net.layers.reduce((s, l) => s + l.kernel.length + l.bias.length, 0);
  const out = new Float32Array(n);
  let at = 0;
  for (const l of net.layers) {
    out.set(l.kernel, at);
    out.set(l.bias, (at += l.kernel.length));
    at += l.bias.length;
  }
  return out;
}

/** The network with new weights (the flattenDense layout) as ONNX bytes, `metadata` added to the model's. */
export function denseWithWeights(
  net: DenseNet,
  weights: Float32Array,
  metadata: Record<string, string> = {},
): Uint8Array {
  const total = net.layers.reduce((s, l) => s + l.kernel.length + l.bias.length, 0);
  if (weights.length !== total)
    throw new WhaleError('ERR_SHAPE_MISMATCH', `weights: ${weights.length} values, the model has ${total}`, {
      field: 'weights',
    });
  let at = 0;
  const take = (n: number) => weights.subarray(at, (at += n));
  const layers = net.layers.map((l) => ({ ...l, kernel: take(l.kernel.length), bias: take(l.bias.length) }));
  return denseNetToOnnx(layers, {
    inputName: net.inputName,
    outputName: net.outputName,
    graphName: net.graphName,
    metadata: { ...net.metadata, ...metadata },
  });
}

/** The held-out examples (pixels / 255, the digit as the class). */
export function loadHeldOut(c: HeldOutConfig): HeldOut {
  const s = readMnist('test', { offset: c.offset, count: c.count });
  return { x: s.images, labels: s.labels, count: s.count, width: MNIST_PIXELS };
}

/** Accuracy and mean cross-entropy of ONNX bytes on the held-out set (softmax applied when the model ends linear). */
export async function evaluateOnnx(
  bytes: Uint8Array,
  net: DenseNet,
  held: HeldOut,
): Promise<{ accuracy: number; loss: number }> {
  const model = new OnnxModel({ name: 'held-out', bytes, executionProviders: 'cpu', intraOpThreads: 1 });
  await model.load();
  try {
    const classes = net.layers.at(-1)!.units;
    if (classes !== MNIST_CLASSES || net.layers[0]!.inputs !== held.width)
      throw unsupported(`its shape (${net.layers[0]!.inputs} → ${classes}) does not fit the held-out set`);
    const softmaxed = net.layers.at(-1)!.activation === 'softmax';
    let correct = 0;
    let loss = 0;
    const rows = 1000;
    for (let at = 0; at < held.count; at += rows) {
      const n = Math.min(rows, held.count - at);
      const out = await model.process({
        [net.inputName]: {
          name: net.inputName,
          datatype: 'FP32',
          shape: [n, held.width],
          data: held.x.subarray(at * held.width, (at + n) * held.width),
        },
      });
      const scores = out[net.outputName]!.data as Float32Array;
      for (let r = 0; r < n; r++) {
        const row = scores.subarray(r * classes, (r + 1) * classes);
        let best = 0;
        for (let c = 1; c < classes; c++) if (row[c]! > row[best]!) best = c;
        const label = held.labels[at + r]!;
        if (best === label) correct++;
        loss -= Math.log(Math.max(1e-12, softmaxed ? row[label]! : softmaxAt(row, label)));
      }
    }
    return { accuracy: correct / held.count, loss: loss / held.count };
  } finally {
    await model.unload();
  }
}

function softmaxAt(row: Float32Array, k: number): number {
  let max = -Infinity;
  for (const v of row) max = Math.max(max, v);
  let sum = 0;
  for (const v of row) sum += Math.exp(v - max);
  return Math.exp(row[k]! - max) / sum;
}
