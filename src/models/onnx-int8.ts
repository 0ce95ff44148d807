/**
 * Dynamic int8 quantization of a dense ONNX model (such as the one
 * denseNetToOnnx writes): every Gemm whose weight is a float initializer
 * becomes the graph ONNX Runtime's own dynamic quantization produces,
 *   DynamicQuantizeLinear(x) → MatMulInteger(x_q, W_q, x_zero) → Cast →
 *   Mul(x_scale · w_scale[column]) → Add(bias),
 * so the product runs in integer arithmetic. The weights are quantized by our
 * codec (native engine, int8 blockwise absmax) on the transposed kernel with
 * one block per output column: a symmetric scale per column, zero point 0.
 * The int8 values and scales are read from the codec's documented blob layout
 * (native/quant/codec.h). Nothing else in the graph changes.
 */
import onnxProto from 'onnx-proto';

import { WhaleError } from '../common/errors.js';
import { encodeTensor, inspectTensor } from '../core/memory/codec.js';

const { onnx } = onnxProto;

type Tensor = ReturnType<typeof onnx.TensorProto.create>;
type Node = ReturnType<typeof onnx.NodeProto.create>;

/** Blob header bytes before the scales (native/quant/codec.h: kHeaderBytes). */
const BLOB_HEADER = 24;

export interface QuantizedLayer {
  node: string;
  inputs: number;
  units: number;
}

export interface Int8Quantized {
  bytes: Uint8Array;
  layers: QuantizedLayer[];
}

function bad(field: string, message: string): WhaleError {
  return new WhaleError('ERR_INVALID_ARG', `${field}: ${message}`, { field });
}

function floatsOf(t: Tensor, field: string): Float32Array {
  if (t.dataType !== onnx.TensorProto.DataType.FLOAT) throw bad(field, `weight '${t.name}' is not float32`);
  if (t.floatData && t.floatData.length > 0) return Float32Array.from(t.floatData);
  const raw = t.rawData;
  if (!raw || raw.length % 4 !== 0) throw bad(field, `weight '${t.name}' has no float32 data`);
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  const out = new Float32Array(raw.length / 4);
  for (let i = 0; i < out.length; i++) out[i] = view.getFloat32(i * 4, true);
  return out;
}

function attrIs(node: Node, name: string, dflt: number): boolean {
  const a = node.attribute?.find((x) => x.name === name);
  if (!a) return true;
  const v = a.type === onnx.AttributeProto.AttributeType.FLOAT ? a.f : Number(a.i);
  return v === dflt;
}

/** W (k×n, row-major) → int8 values k×n and one scale per column, through the codec. */
function quantizeColumns(w: Float32Array, k: number, n: number, field: string): { q: Int8Array; scales: Float32Array } {
  if (!(k % 2 === 0 && k >= 32 && k <= 4096)) throw bad(field, `${k} inputs: one codec block per column needs an even count in [32, 4096]`);
  const wt = new Float32Array(k * n);
  for (let r = 0; r < k; r++) for (let c = 0; c < n; c++) wt[c * k + r] = w[r * n + c]!;
  const blob = encodeTensor(wt, { codec: 'int8', blockSize: k });
  const info = inspectTensor(blob);
  if (info.codec !== 'int8' || info.blockSize !== k || info.length !== k * n) throw bad(field, 'codec returned an unexpected blob');
  const view = new DataView(blob.buffer, blob.byteOffset, blob.byteLength);
  const scales = new Float32Array(n);
  for (let c = 0; c < n; c++) scales[c] = view.getFloat32(BLOB_HEADER + 4 * c, true);
  const payload = new Int8Array(blob.buffer, blob.byteOffset + BLOB_HEADER + 4 * n, k * n);
  const q = new Int8Array(k * n);
  for (let c = 0; c < n; c++) for (let r = 0; r < k; r++) q[r * n + c] = payload[c * k + r]!;
  return { q, scales };
}

function initializer(name: string, dims: number[], dataType: number, bytes: Uint8Array): Tensor {
  return onnx.TensorProto.create({ name, dims, dataType, rawData: bytes });
}

function floatBytes(v: Float32Array): Uint8Array {
  const out = new Uint8Array(v.length * 4);
  const view = new DataView(out.buffer);
  v.forEach((x, i) => view.setFloat32(i * 4, x, true));
  return out;
}

/** The nodes that replace one Gemm (input x, weight k×n, optional bias) and the initializers they need. */
function quantizedGemm(node: Node, name: string, q: Int8Array, scales: Float32Array, k: number, n: number): { nodes: Node[]; inits: Tensor[] } {
  const [x, , bias] = node.input!;
  const out = node.output![0]!;
  const p = (s: string) => `${name}.${s}`;
  const mk = (step: string, opType: string, input: string[], output: string[], attribute: ReturnType<typeof onnx.AttributeProto.create>[] = []) =>
    onnx.NodeProto.create({ name: p(step), opType, input, output, attribute });
  const toFloat = onnx.AttributeProto.create({ name: 'to', type: onnx.AttributeProto.AttributeType.INT, i: onnx.TensorProto.DataType.FLOAT });
  const nodes = [
    mk('quantize_x', 'DynamicQuantizeLinear', [x!], [p('x_q'), p('x_scale'), p('x_zero')]),
    mk('matmul', 'MatMulInteger', [p('x_q'), p('w_q'), p('x_zero')], [p('acc')]),
    mk('cast', 'Cast', [p('acc')], [p('acc_f')], [toFloat]),
    mk('scale', 'Mul', [p('x_scale'), p('w_scale')], [p('scale')]),
    mk('rescale', 'Mul', [p('acc_f'), p('scale')], [bias ? p('product') : out]),
  ];
  if (bias) nodes.push(mk('bias', 'Add', [p('product'), bias], [out]));
  const inits = [
    initializer(p('w_q'), [k, n], onnx.TensorProto.DataType.INT8, new Uint8Array(q.buffer, q.byteOffset, q.byteLength)),
    initializer(p('w_scale'), [n], onnx.TensorProto.DataType.FLOAT, floatBytes(scales)),
  ];
  return { nodes, inits };
}

/** Rewrites every Gemm of an ONNX model into its dynamic int8 form (see the file comment). */
export function quantizeDenseOnnxInt8(bytes: Uint8Array): Int8Quantized {
  if (!(bytes instanceof Uint8Array)) throw bad('bytes', 'expected a Uint8Array holding an ONNX model');
  let model: ReturnType<typeof onnx.ModelProto.decode>;
  try {
    model = onnx.ModelProto.decode(bytes);
  } catch (err) {
    throw new WhaleError('ERR_INVALID_ARG', `bytes: not an ONNX model (${(err as Error).message})`, { field: 'bytes', cause: err });
  }
  const graph = model.graph;
  if (!graph?.node?.length) throw bad('bytes', 'the ONNX model has no graph nodes');
  const inits = new Map((graph.initializer ?? []).map((t) => [t.name!, t as Tensor]));
  const layers: QuantizedLayer[] = [];
  const nodes: Node[] = [];
  const dropped = new Set<string>();
  graph.node.forEach((raw, i) => {
    const node = raw as Node;
    const weight = node.opType === 'Gemm' ? inits.get(node.input?.[1] ?? '') : undefined;
    if (!weight) {
      nodes.push(node);
      return;
    }
    const name = node.name || `gemm${i}`;
    const field = `graph.node[${i}] (${name})`;
    if (!(attrIs(node, 'transA', 0) && attrIs(node, 'transB', 0) && attrIs(node, 'alpha', 1) && attrIs(node, 'beta', 1))) {
      throw bad(field, 'only Gemm with transA = transB = 0 and alpha = beta = 1 can be quantized');
    }
    const dims = (weight.dims ?? []).map(Number);
    if (dims.length !== 2) throw bad(field, `weight '${weight.name}' must be 2-D, has shape [${dims.join(', ')}]`);
    const [k, n] = dims as [number, number];
    const { q, scales } = quantizeColumns(floatsOf(weight, field), k, n, field);
    const rewritten = quantizedGemm(node, name, q, scales, k, n);
    nodes.push(...rewritten.nodes);
    graph.initializer!.push(...rewritten.inits);
    dropped.add(weight.name!);
    layers.push({ node: name, inputs: k, units: n });
  });
  if (layers.length === 0) throw bad('bytes', 'the model has no Gemm with a float weight initializer to quantize');
  const stillUsed = new Set(nodes.flatMap((n) => n.input ?? []));
  graph.node = nodes;
  graph.initializer = graph.initializer!.filter((t) => !(dropped.has(t.name!) && !stillUsed.has(t.name!)));
  model.metadataProps = [...(model.metadataProps ?? []), { key: 'whale.quantization', value: 'int8 weights per output column (whale codec), dynamic uint8 activations' }];
  return { bytes: onnx.ModelProto.encode(model).finish(), layers };
}
