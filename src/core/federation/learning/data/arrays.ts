/**
 * Parsers of the binary array files a dataset directory may hold: NumPy's
 * .npy (format versions 1-3, little- or big-endian, C order) and IDX (the
 * MNIST files' format, big-endian). Integers come out as Int32Array, floats
 * as Float32Array; the first dimension is the example count.
 */
import { WhaleError } from '../../../../common/errors.js';

export interface ParsedArray {
  data: Float32Array | Int32Array;
  /** Full shape, examples first. */
  shape: number[];
}

function bad(file: string, message: string): WhaleError {
  return new WhaleError('ERR_INVALID_ARG', `${file}: ${message}`, { field: file, file });
}

const NPY_TYPES: Record<
  string,
  { bytes: number; float: boolean; read: (v: DataView, at: number, le: boolean) => number }
> = {
  f4: { bytes: 4, float: true, read: (v, at, le) => v.getFloat32(at, le) },
  f8: { bytes: 8, float: true, read: (v, at, le) => v.getFloat64(at, le) },
  i1: { bytes: 1, float: false, read: (v, at) => v.getInt8(at) },
  u1: { bytes: 1, float: false, read: (v, at) => v.getUint8(at) },
  b1: { bytes: 1, float: false, read: (v, at) => v.getUint8(at) },
  i2: { bytes: 2, float: false, read: (v, at, le) => v.getInt16(at, le) },
  u2: { bytes: 2, float: false, read: (v, at, le) => v.getUint16(at, le) },
  i4: { bytes: 4, float: false, read: (v, at, le) => v.getInt32(at, le) },
  i8: { bytes: 8, float: false, read: (v, at, le) => Number(v.getBigInt64(at, le)) },
  u4: { bytes: 4, float: false, read: (v, at, le) => v.getUint32(at, le) },
};

function convert(
  file: string,
  buf: Uint8Array,
  offset: number,
  count: number,
  type: (typeof NPY_TYPES)[string],
  littleEndian: boolean,
): Float32Array | Int32Array {
  if (buf.length - offset < count * type.bytes)
    throw bad(
      file,
      `truncated: ${count} values of ${type.bytes} bytes need ${count * type.bytes} bytes, ${buf.length - offset} left`,
    );
  const view = new DataView(buf.buffer, buf.byteOffset + offset, count * type.bytes);
  const out = type.float ? new Float32Array(count) : new Int32Array(count);
  for (let i = 0; i < count; i++) {
    const v = type.read(view, i * type.bytes, littleEndian);
    if (!type.float && (v > 2147483647 || v < -2147483648))
      throw bad(file, `value ${v} at index ${i} does not fit int32`);
    out[i] = v;
  }
  return out;
}

/** A .npy file (numpy.save). */
export function parseNpy(buf: Uint8Array, file: string): ParsedArray {
  const magic = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY
  if (buf.length < 10 || magic.some((b, i) => buf[i] !== b)) throw bad(file, 'not a .npy file (no \\x93NUMPY magic)');
  const major = buf[6]!;
  const view = new DataView(buf.buffer, buf.byteOffset, buf.length);
  if (major < 1 || major > 3) throw bad(file, `unsupported .npy format version ${major}`);
  const headerLen = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  const start = major === 1 ? 10 : 12;
  if (buf.length < start + headerLen) throw bad(file, 'truncated header');
  const header = new TextDecoder(major === 3 ? 'utf-8' : 'latin1').decode(buf.subarray(start, start + headerLen));
  const descr = /'descr'\s*:\s*'([<>|=])([a-z])(\d+)'/.exec(header);
  const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(header);
  const shape = /'shape'\s*:\s*\(([^)]*)\)/.exec(header);
  if (!descr || !fortran || !shape) throw bad(file, `malformed header ${JSON.stringify(header.trim())}`);
  if (fortran[1] === 'True') throw bad(file, 'Fortran-ordered arrays are not supported (save with order C)');
  const type = NPY_TYPES[`${descr[2]}${descr[3]}`];
  if (!type)
    throw bad(
      file,
      `unsupported dtype '${descr[1]}${descr[2]}${descr[3]}' (float32/64, int8/16/32/64, uint8/16/32, bool)`,
    );
  const dims = shape[1]!
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '')
    .map(Number);
  if (dims.length === 0) throw bad(file, 'a scalar array has no examples (the first dimension is the example count)');
  const count = dims.reduce((a, b) => a * b, 1);
  return { data: convert(file, buf, start + headerLen, count, type, descr[1] !== '>'), shape: dims };
}

const IDX_TYPES: Record<number, (typeof NPY_TYPES)[string]> = {
  0x08: NPY_TYPES.u1!,
  0x09: NPY_TYPES.i1!,
  0x0b: NPY_TYPES.i2!,
  0x0c: NPY_TYPES.i4!,
  0x0d: NPY_TYPES.f4!,
  0x0e: NPY_TYPES.f8!,
};

/** An IDX file (LeCun's MNIST format: 0 0 type ndim, big-endian uint32 dimensions, big-endian values). */
export function parseIdx(buf: Uint8Array, file: string): ParsedArray {
  if (buf.length < 4 || buf[0] !== 0 || buf[1] !== 0)
    throw bad(file, 'not an IDX file (magic must start with two zero bytes)');
  const type = IDX_TYPES[buf[2]!];
  if (!type) throw bad(file, `unknown IDX element type 0x${buf[2]!.toString(16)}`);
  const ndim = buf[3]!;
  if (ndim < 1) throw bad(file, 'an IDX file with no dimensions has no examples');
  if (buf.length < 4 + 4 * ndim) throw bad(file, 'truncated header');
  const view = new DataView(buf.buffer, buf.byteOffset, buf.length);
  const dims = Array.from({ length: ndim }, (_, i) => view.getUint32(4 + 4 * i, false));
  const count = dims.reduce((a, b) => a * b, 1);
  return { data: convert(file, buf, 4 + 4 * ndim, count, type, false), shape: dims };
}

/** A .npy file (format 1.0, little-endian, C order) of float32 or int32 values, examples first. */
export function encodeNpy(data: Float32Array | Int32Array | Uint8Array, shape: readonly number[]): Uint8Array {
  const count = shape.reduce((a, b) => a * b, 1);
  if (count !== data.length)
    throw new WhaleError(
      'ERR_SHAPE_MISMATCH',
      `shape: [${shape.join(', ')}] holds ${count} values, data has ${data.length}`,
      {
        field: 'shape',
      },
    );
  const descr = data instanceof Float32Array ? '<f4' : data instanceof Int32Array ? '<i4' : '|u1';
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': (${shape.join(', ')}${shape.length === 1 ? ',' : ''}), }`;
  header += `${' '.repeat(63 - ((10 + header.length) % 64))}\n`;
  const out = new Uint8Array(10 + header.length + data.byteLength);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0, header.length & 255, header.length >> 8]);
  for (let i = 0; i < header.length; i++) out[10 + i] = header.charCodeAt(i);
  out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), 10 + header.length);
  return out;
}
