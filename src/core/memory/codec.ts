/**
 * Quantized tensor codecs (native engine): blockwise absmax int8/int4, fp16,
 * bf16, and lossless f32, in a self-describing checksummed blob that decodes
 * on its own or fails with a typed error (never garbage).
 */
import { WhaleError } from '../../common/errors.js';
import type { NativeBlobInfo, NativeCodec, NativeDecodeOptions, NativeEncodeOptions } from '../../native/binding.js';
import { callNative, callNativeAsync } from '../../native/call.js';
import { parseDevice, type DeviceSpec } from '../../native/device.js';
import { native } from '../../native/loader.js';

export type TensorCodec = NativeCodec;
export type TensorBlobInfo = NativeBlobInfo;

export const TENSOR_CODECS: readonly TensorCodec[] = ['f32', 'int8', 'int4', 'fp16', 'bf16'];

export interface EncodeOptions {
  /** Default 'int8'. */
  codec?: TensorCodec;
  /** int8/int4 block size: an even number in [32, 4096]. Default 64. */
  blockSize?: number;
  /** NaN/±Infinity: 'error' (default, ERR_NON_FINITE naming the index) or 'zero' (encoded as 0). */
  nonFinite?: 'error' | 'zero';
  /**
   * fp16 only: values beyond ±65504, or nonzero values so small they become 0
   * (|x| <= 2^-25). 'clamp' (default) clamps/flushes them and records it in the
   * blob (inspectTensor: `saturated`, `flushedToZero`); 'error' refuses with
   * ERR_INVALID_ARG naming the value.
   */
  outOfRange?: 'clamp' | 'error';
  /** Default 'cpu' (the CUDA path pays for transfers; use 'auto' or 'cuda:N' for big tensors on a GPU). */
  device?: DeviceSpec;
  /** Use every core for large tensors (default true). */
  parallel?: boolean;
}

export interface DecodeOptions {
  device?: DeviceSpec;
  /** Decode into this array (its length must equal the blob's). */
  out?: Float32Array;
  parallel?: boolean;
}

function requireOptions(o: unknown): void {
  if (typeof o !== 'object' || o === null) {
    throw new WhaleError(
      'ERR_INVALID_OPTION',
      `options: expected an object or nothing, got ${o === null ? 'null' : typeof o}`,
      { field: 'options' },
    );
  }
}

function encodeOptions(values: Float32Array, o: EncodeOptions): NativeEncodeOptions {
  if (!(values instanceof Float32Array))
    throw new WhaleError('ERR_INVALID_ARG', 'values: expected a Float32Array', { field: 'values' });
  requireOptions(o);
  const codec = o.codec ?? 'int8';
  if (!TENSOR_CODECS.includes(codec)) {
    throw new WhaleError(
      'ERR_INVALID_OPTION',
      `options.codec: expected one of ${TENSOR_CODECS.join(', ')}, got ${JSON.stringify(codec)}`,
      {
        field: 'options.codec',
      },
    );
  }
  const blockSize = o.blockSize ?? 64;
  if (!Number.isInteger(blockSize) || blockSize < 32 || blockSize > 4096 || blockSize % 2 !== 0) {
    throw new WhaleError(
      'ERR_INVALID_OPTION',
      `options.blockSize: must be an even integer in [32, 4096], got ${blockSize}`,
      {
        field: 'options.blockSize',
      },
    );
  }
  const nonFinite = o.nonFinite ?? 'error';
  if (nonFinite !== 'error' && nonFinite !== 'zero') {
    throw new WhaleError('ERR_INVALID_OPTION', `options.nonFinite: must be 'error' or 'zero'`, {
      field: 'options.nonFinite',
    });
  }
  const outOfRange = o.outOfRange ?? 'clamp';
  if (outOfRange !== 'clamp' && outOfRange !== 'error') {
    throw new WhaleError('ERR_INVALID_OPTION', `options.outOfRange: must be 'clamp' or 'error'`, {
      field: 'options.outOfRange',
    });
  }
  const parallel = o.parallel ?? true;
  if (typeof parallel !== 'boolean')
    throw new WhaleError('ERR_INVALID_OPTION', 'options.parallel: must be a boolean', { field: 'options.parallel' });
  return {
    values,
    codec,
    blockSize,
    nonFinite,
    outOfRange,
    parallel,
    ...parseDevice(o.device ?? 'cpu', 'options.device'),
  };
}

function decodeOptions(blob: Uint8Array, o: DecodeOptions): NativeDecodeOptions {
  if (!(blob instanceof Uint8Array))
    throw new WhaleError('ERR_INVALID_ARG', 'blob: expected a Uint8Array or Buffer', { field: 'blob' });
  requireOptions(o);
  const parallel = o.parallel ?? true;
  if (typeof parallel !== 'boolean')
    throw new WhaleError('ERR_INVALID_OPTION', 'options.parallel: must be a boolean', { field: 'options.parallel' });
  const opts: NativeDecodeOptions = { blob, parallel, ...parseDevice(o.device ?? 'cpu', 'options.device') };
  if (o.out !== undefined) {
    if (!(o.out instanceof Float32Array))
      throw new WhaleError('ERR_INVALID_ARG', 'options.out: expected a Float32Array', { field: 'options.out' });
    opts.out = o.out;
  }
  return opts;
}

export function encodeTensor(values: Float32Array, options: EncodeOptions = {}): Uint8Array {
  const opts = encodeOptions(values, options);
  return callNative(() => native().quantEncode(opts, false));
}

/** Off the JS thread; `values` is copied before it returns, so it may change (or be transferred) meanwhile. */
export function encodeTensorAsync(values: Float32Array, options: EncodeOptions = {}): Promise<Uint8Array> {
  const opts = encodeOptions(values, options);
  return callNativeAsync(() => native().quantEncode(opts, true));
}

export function decodeTensor(blob: Uint8Array, options: DecodeOptions = {}): Float32Array {
  const opts = decodeOptions(blob, options);
  return callNative(() => native().quantDecode(opts, false));
}

/** Off the JS thread; the blob is copied first. With `out`, the values are copied into it when the job is done. */
export function decodeTensorAsync(blob: Uint8Array, options: DecodeOptions = {}): Promise<Float32Array> {
  const opts = decodeOptions(blob, options);
  return callNativeAsync(() => native().quantDecode(opts, true));
}

/** Validates a blob (size, magic, version, codec, checksum) and returns its header. */
export function inspectTensor(blob: Uint8Array): TensorBlobInfo {
  if (!(blob instanceof Uint8Array))
    throw new WhaleError('ERR_INVALID_ARG', 'blob: expected a Uint8Array or Buffer', { field: 'blob' });
  return callNative(() => native().quantInspect(blob));
}
