/**
 * Convolution gradients for the tfjs WebAssembly backend, built from the
 * backend's own XNNPACK Conv2D and its layout kernels (Transpose, Slice,
 * PadV2, Reverse), so a CNN can train on wasm:
 *
 * - `Conv2DBackpropFilter` (missing from @tensorflow/tfjs-backend-wasm 4.x):
 *   dW[kh,kw,ci,co] = sum_{n,oh,ow} xpad[n, oh*sh + kh, ow*sw + kw, ci] dy[n,oh,ow,co],
 *   i.e. a stride-1 convolution of x seen as [ci, H, W, n] (the batch becomes
 *   the channel axis) with dy seen as the filter [oh, ow, n, co], dilated by
 *   the forward strides; the [ci, kh, kw, co] result is transposed to
 *   [kh, kw, ci, co]. Every stride, 'same'/'valid'/explicit padding, NHWC and
 *   NCHW; dilations must be 1, as the tfjs op requires.
 * - `Conv2DBackpropInput` for stride 1 and NHWC (the shipped kernel is a
 *   scalar loop, ~6x slower than this on the MNIST CNN's second layer): a
 *   'full' convolution of dy with the filter flipped in space and its channel
 *   axes swapped. Other strides and layouts go to the shipped kernel.
 * - `BatchMatMul` of unbatched operands with a transposed operand or fresh
 *   weights (see batchMatMul below): the dense layers' training products.
 * Together they take a CNN training step (B = 10) from ~120 ms to ~57 ms.
 *
 * Measured and checked against the tfjs 'cpu' backend in
 * test/tfjs-wasm-conv-grad.test.ts.
 */
import { WhaleError } from '../common/errors.js';
import type { Tf } from './tfjs-backend.js';

type TensorInfo = import('@tensorflow/tfjs').TensorInfo;
type KernelBackend = import('@tensorflow/tfjs').KernelBackend;
type KernelFunc = import('@tensorflow/tfjs').KernelFunc;
type NamedAttrMap = import('@tensorflow/tfjs').NamedAttrMap;
type ConvAttrs = {
  strides: number | [number, number];
  pad: 'valid' | 'same' | number | import('@tensorflow/tfjs').backend_util.ExplicitPadding;
  dataFormat: 'NHWC' | 'NCHW';
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
};

const BACKEND = 'wasm';
/** The shipped wasm kernels the compositions call. */
const WASM_KERNELS_USED = ['Conv2D', 'Transpose', 'Slice', 'PadV2', 'Reverse', 'Reshape', 'BatchMatMul', 'Conv2DBackpropInput'];

/** The wasm kernels as shipped (before our overrides), by name. */
class Kernels {
  private readonly shipped = new Map<string, KernelFunc>();

  constructor(readonly tf: Tf) {
    for (const name of WASM_KERNELS_USED) {
      const kernel = tf.getKernel(name, BACKEND);
      if (kernel) this.shipped.set(name, kernel.kernelFunc);
    }
  }

  missing(): string[] {
    return WASM_KERNELS_USED.filter((name) => !this.shipped.has(name));
  }

  get(name: string): KernelFunc {
    const f = this.shipped.get(name);
    if (!f) throw new WhaleError('ERR_UNSUPPORTED', `tfjs wasm backend: kernel '${name}' is not registered`, { field: 'backend' });
    return f;
  }

  /** Runs `body` on a fresh scope: its intermediates are freed, its result kept, also when it throws. */
  compose(backend: unknown, body: (s: KernelScope) => TensorInfo): TensorInfo {
    const s = new KernelScope(this, backend as KernelBackend);
    let out: TensorInfo | undefined;
    try {
      out = body(s);
      return out;
    } finally {
      s.close(out);
    }
  }
}

/**
 * Runs wasm kernels directly (no engine bookkeeping) and frees every
 * intermediate it made except the ones handed back with keep().
 */
class KernelScope {
  private readonly made: TensorInfo[] = [];

  constructor(
    private readonly k: Kernels,
    readonly backend: KernelBackend,
  ) {}

  run(name: string, inputs: Record<string, TensorInfo>, attrs: NamedAttrMap): TensorInfo {
    const out = this.k.get(name)({ inputs, backend: this.backend, attrs }) as TensorInfo;
    this.made.push(out);
    return out;
  }

  /**
   * x cropped or zero-padded on axes 1 and 2 so that axis a starts `before[a]`
   * earlier (negative: later) and has length `size[a]`.
   */
  window(x: TensorInfo, before: [number, number], size: [number, number]): TensorInfo {
    const [d0, h, w, d3] = x.shape as [number, number, number, number];
    const cropTop = Math.max(0, -before[0]);
    const cropLeft = Math.max(0, -before[1]);
    const keepH = Math.min(h - cropTop, size[0] - Math.max(0, before[0]));
    const keepW = Math.min(w - cropLeft, size[1] - Math.max(0, before[1]));
    let t = x;
    if (cropTop > 0 || cropLeft > 0 || keepH < h || keepW < w) {
      t = this.run('Slice', { x: t }, { begin: [0, cropTop, cropLeft, 0], size: [d0, keepH, keepW, d3] });
    }
    const top = Math.max(0, before[0]);
    const left = Math.max(0, before[1]);
    const bottom = size[0] - top - keepH;
    const right = size[1] - left - keepW;
    if (top > 0 || left > 0 || bottom > 0 || right > 0) {
      const paddings = [
        [0, 0],
        [top, bottom],
        [left, right],
        [0, 0],
      ];
      t = this.run('PadV2', { x: t }, { paddings, constantValue: 0 } as unknown as NamedAttrMap);
    }
    return t;
  }

  /** A stride-1 'valid' NHWC convolution (XNNPACK). */
  conv(x: TensorInfo, filter: TensorInfo, dilations: [number, number]): TensorInfo {
    return this.run('Conv2D', { x, filter }, { strides: [1, 1], pad: 'valid', dataFormat: 'NHWC', dilations, dimRoundingMode: 'floor' } as unknown as NamedAttrMap);
  }

  /** Releases the intermediates (one reference each: a no-op kernel may share its input's data), except `result`. */
  close(result?: TensorInfo): void {
    for (const t of this.made) if (t !== result) this.backend.disposeData(t.dataId);
    this.made.length = 0;
  }
}

function convInfo(tf: Tf, xShape: number[], filterShape: number[], a: ConvAttrs) {
  const format = tf.backend_util.convertConv2DDataFormat(a.dataFormat);
  return tf.backend_util.computeConv2DInfo(
    xShape as [number, number, number, number],
    filterShape as [number, number, number, number],
    a.strides,
    1,
    a.pad,
    a.dimRoundingMode,
    false,
    format,
  );
}

function requireFloat(t: TensorInfo, field: string, kernel: string): void {
  if (t.dtype !== 'float32') throw new WhaleError('ERR_UNSUPPORTED', `${kernel} on wasm: ${field} must be float32, got ${t.dtype}`, { field });
}

function backpropFilter(k: Kernels): KernelFunc {
  return ({ inputs, backend, attrs }) => {
    const { x, dy } = inputs as { x: TensorInfo; dy: TensorInfo };
    const a = attrs as unknown as ConvAttrs & { filterShape: [number, number, number, number] };
    requireFloat(x, 'x', 'Conv2DBackpropFilter');
    requireFloat(dy, 'dy', 'Conv2DBackpropFilter');
    const info = convInfo(k.tf, x.shape, a.filterShape, a);
    const { filterHeight: kh, filterWidth: kw, strideHeight: sh, strideWidth: sw, outHeight: oh, outWidth: ow } = info;
    const nchw = info.dataFormat === 'channelsFirst';
    return k.compose(backend, (s) => {
      // x -> [ci, H, W, n]; dy -> [oh, ow, n, co]
      const xt = s.run('Transpose', { x }, { perm: nchw ? [1, 2, 3, 0] : [3, 1, 2, 0] });
      const f = s.run('Transpose', { x: dy }, { perm: nchw ? [2, 3, 0, 1] : [1, 2, 0, 3] });
      // exactly the rows/cols the forward pass read: (o - 1) * stride + k, starting at -pad
      const xw = s.window(xt, [info.padInfo.top, info.padInfo.left], [(oh - 1) * sh + kh, (ow - 1) * sw + kw]);
      return s.run('Transpose', { x: s.conv(xw, f, [sh, sw]) }, { perm: [1, 2, 0, 3] });
    });
  };
}

function backpropInput(k: Kernels): KernelFunc {
  return (args) => {
    const { inputs, backend, attrs } = args;
    const { dy, filter } = inputs as { dy: TensorInfo; filter: TensorInfo };
    const a = attrs as unknown as ConvAttrs & { inputShape: [number, number, number, number] };
    const info = convInfo(k.tf, a.inputShape, filter.shape, a);
    if (info.strideHeight !== 1 || info.strideWidth !== 1 || info.dataFormat !== 'channelsLast' || dy.dtype !== 'float32' || filter.dtype !== 'float32') {
      return k.get('Conv2DBackpropInput')(args);
    }
    const { filterHeight: kh, filterWidth: kw, inHeight, inWidth } = info;
    return k.compose(backend, (s) => {
      // dx[h] = sum_k dy[h + top - k] W[k]: dy shifted by k - 1 - top against the flipped filter
      const flipped = s.run('Reverse', { x: filter }, { dims: [0, 1] });
      const wt = s.run('Transpose', { x: flipped }, { perm: [0, 1, 3, 2] });
      const dyw = s.window(dy, [kh - 1 - info.padInfo.top, kw - 1 - info.padInfo.left], [inHeight + kh - 1, inWidth + kw - 1]);
      return s.conv(dyw, wt, [1, 1]);
    });
  };
}

/**
 * `BatchMatMul` without batch dims (the dense layers): the shipped kernel
 * runs XNNPACK only for untransposed operands and repacks the right operand
 * (the weights) on every call, a scalar loop otherwise. This one transposes
 * explicitly and, when the output has fewer rows than columns (training
 * batches against wide layers), computes C^T = B^T A^T so that the small
 * operand is the one packed. Batched products go to the shipped kernel.
 */
function batchMatMul(k: Kernels): KernelFunc {
  const seenRight = new WeakSet<object>();
  return (args) => {
    const { inputs, backend, attrs } = args;
    const { a, b } = inputs as { a: TensorInfo; b: TensorInfo };
    const { transposeA, transposeB } = attrs as { transposeA: boolean; transposeB: boolean };
    const rows = (t: TensorInfo) => t.shape[t.shape.length - 2]!;
    const cols = (t: TensorInfo) => t.shape[t.shape.length - 1]!;
    const unbatched = (t: TensorInfo) => t.shape.length >= 2 && t.shape.slice(0, -2).every((d) => d === 1);
    const shipped = k.get('BatchMatMul');
    if (!unbatched(a) || !unbatched(b) || a.dtype !== 'float32' || b.dtype !== 'float32') return shipped(args);
    const m = transposeA ? cols(a) : rows(a);
    const n = transposeB ? rows(b) : cols(b);
    // XNNPACK keeps the packed right operand while that tensor lives: a right
    // operand seen before (inference weights) is cheapest as shipped.
    const reused = seenRight.has(b.dataId);
    seenRight.add(b.dataId);
    const swap = m < n && !(reused && !transposeA && !transposeB);
    if (!swap && !transposeA && !transposeB) return shipped(args);
    return k.compose(backend, (s) => {
      const a2 = s.run('Reshape', { x: a }, { shape: [rows(a), cols(a)] });
      const b2 = s.run('Reshape', { x: b }, { shape: [rows(b), cols(b)] });
      const t = (x: TensorInfo) => s.run('Transpose', { x }, { perm: [1, 0] });
      const plain = { transposeA: false, transposeB: false, bias: null, activation: 'linear' } as unknown as NamedAttrMap;
      const mm = (x: TensorInfo, y: TensorInfo) => s.run('BatchMatMul', { a: x, b: y }, plain);
      const c = swap ? t(mm(transposeB ? b2 : t(b2), transposeA ? a2 : t(a2))) : mm(transposeA ? t(a2) : a2, transposeB ? t(b2) : b2);
      return s.run('Reshape', { x: c }, { shape: [...a.shape.slice(0, -2), m, n] });
    });
  };
}

/** Per tf instance: the shipped kernels (captured before any override) and whether the speed-ups are in. */
const registered = new WeakMap<object, { k: Kernels; speedups: boolean }>();

function override(tf: Tf, name: string, kernelFunc: KernelFunc): void {
  const shipped = tf.getKernel(name, BACKEND);
  if (shipped) tf.unregisterKernel(name, BACKEND);
  tf.registerKernel({
    kernelName: name,
    backendName: BACKEND,
    kernelFunc,
    ...(shipped?.setupFunc ? { setupFunc: shipped.setupFunc } : {}),
    ...(shipped?.disposeFunc ? { disposeFunc: shipped.disposeFunc } : {}),
  });
}

/**
 * Registers Conv2DBackpropFilter for the wasm backend of this tf instance
 * and, unless `speedups: false`, the faster Conv2DBackpropInput and
 * BatchMatMul (a later call can still add them; calls are idempotent).
 * Throws ERR_UNSUPPORTED naming the missing kernel when the installed
 * tfjs-backend-wasm lacks one the compositions need. An installed
 * Conv2DBackpropFilter is kept.
 */
export function registerWasmConvGradients(tf: Tf, o: { speedups?: boolean } = {}): void {
  let state = registered.get(tf);
  if (!state) {
    const k = new Kernels(tf);
    const missing = k.missing();
    if (missing.length) {
      throw new WhaleError('ERR_UNSUPPORTED', `tfjs wasm backend: cannot register convolution gradients, missing kernel(s) ${missing.join(', ')}`, { field: 'backend' });
    }
    if (!tf.getKernel('Conv2DBackpropFilter', BACKEND)) override(tf, 'Conv2DBackpropFilter', backpropFilter(k));
    state = { k, speedups: false };
    registered.set(tf, state);
  }
  if ((o.speedups ?? true) && !state.speedups) {
    override(tf, 'Conv2DBackpropInput', backpropInput(state.k));
    override(tf, 'BatchMatMul', batchMatMul(state.k));
    state.speedups = true;
  }
}
