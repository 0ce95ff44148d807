/**
 * Writes a fully connected network (dense layers with ReLU, softmax or no
 * activation) as an ONNX model: one Gemm per layer, weights as float32
 * initializers, a symbolic batch dimension. Used to export the shipped MNIST
 * classifier trained with TensorFlow.js.
 */
import onnxProto from 'onnx-proto';

import { WhaleError } from '../common/errors.js';

const { onnx } = onnxProto;

export type DenseActivation = 'relu' | 'softmax' | 'linear';

export interface DenseLayer {
  /** inputs × units, row-major (TensorFlow.js Dense kernel layout). */
  kernel: Float32Array;
  bias: Float32Array;
  inputs: number;
  units: number;
  activation: DenseActivation;
}

export interface DenseExportOptions {
  inputName?: string;
  outputName?: string;
  graphName?: string;
  /** Free-form key/value metadata stored in the model (metadata_props). */
  metadata?: Record<string, string>;
}

const OPSET = 13;
const IR_VERSION = 7;

function bad(field: string, message: string): WhaleError {
  return new WhaleError('ERR_INVALID_ARG', `${field}: ${message}`, { field });
}

function floatInitializer(name: string, dims: number[], values: Float32Array) {
  const raw = new Uint8Array(values.byteLength);
  const view = new DataView(raw.buffer);
  values.forEach((v, i) => view.setFloat32(i * 4, v, true));
  return onnx.TensorProto.create({ name, dims, dataType: onnx.TensorProto.DataType.FLOAT, rawData: raw });
}

function floatValue(name: string, width: number) {
  return onnx.ValueInfoProto.create({
    name,
    type: {
      tensorType: {
        elemType: onnx.TensorProto.DataType.FLOAT,
        shape: { dim: [{ dimParam: 'batch' }, { dimValue: width }] },
      },
    },
  });
}

/** Encodes the network as ONNX bytes (input [batch, layers[0].inputs] → output [batch, last.units], float32). */
export function denseNetToOnnx(layers: readonly DenseLayer[], opts: DenseExportOptions = {}): Uint8Array {
  if (layers.length === 0) throw bad('layers', 'needs at least one layer');
  const inputName = opts.inputName ?? 'input';
  const outputName = opts.outputName ?? 'output';
  const nodes: ReturnType<typeof onnx.NodeProto.create>[] = [];
  const initializers: ReturnType<typeof onnx.TensorProto.create>[] = [];
  let current = inputName;
  layers.forEach((l, i) => {
    const at = `layers[${i}]`;
    if (i > 0 && l.inputs !== layers[i - 1]!.units) throw bad(`${at}.inputs`, `is ${l.inputs}, the previous layer has ${layers[i - 1]!.units} units`);
    if (l.kernel.length !== l.inputs * l.units) throw bad(`${at}.kernel`, `has ${l.kernel.length} values, needs ${l.inputs}×${l.units}`);
    if (l.bias.length !== l.units) throw bad(`${at}.bias`, `has ${l.bias.length} values, needs ${l.units}`);
    if (!['relu', 'softmax', 'linear'].includes(l.activation)) throw bad(`${at}.activation`, `must be relu, softmax or linear`);
    const last = i === layers.length - 1;
    const w = `dense${i}.weight`;
    const b = `dense${i}.bias`;
    initializers.push(floatInitializer(w, [l.inputs, l.units], l.kernel), floatInitializer(b, [l.units], l.bias));
    const gemmOut = last && l.activation === 'linear' ? outputName : `dense${i}.gemm`;
    nodes.push(onnx.NodeProto.create({ name: `dense${i}`, opType: 'Gemm', input: [current, w, b], output: [gemmOut] }));
    current = gemmOut;
    if (l.activation !== 'linear') {
      const actOut = last ? outputName : `dense${i}.${l.activation}`;
      const attribute =
        l.activation === 'softmax' ? [onnx.AttributeProto.create({ name: 'axis', type: onnx.AttributeProto.AttributeType.INT, i: 1 })] : [];
      const opType = l.activation === 'relu' ? 'Relu' : 'Softmax';
      nodes.push(onnx.NodeProto.create({ name: `dense${i}.${l.activation}`, opType, input: [current], output: [actOut], attribute }));
      current = actOut;
    }
  });
  const model = onnx.ModelProto.create({
    irVersion: IR_VERSION,
    producerName: 'smart-whale-core',
    opsetImport: [{ domain: '', version: OPSET }],
    metadataProps: Object.entries(opts.metadata ?? {}).map(([key, value]) => ({ key, value })),
    graph: {
      name: opts.graphName ?? 'dense',
      node: nodes,
      initializer: initializers,
      input: [floatValue(inputName, layers[0]!.inputs)],
      output: [floatValue(outputName, layers[layers.length - 1]!.units)],
    },
  });
  return onnx.ModelProto.encode(model).finish();
}
