// Codecs at the edges of float32 and blobs the encoder could never write
// (issue 7, item 13), plus option errors that used to escape as TypeErrors.
import { describe, expect, it } from 'vitest';

import {
  decodeTensor,
  decodeTensorAsync,
  encodeTensor,
  inspectTensor,
  type TensorCodec,
} from '../src/core/memory/codec.js';
import { decodeInt8Ref, encodeInt8Ref, relativeL2Error } from '../src/core/memory/codec-reference.js';
import { TopKCompressor } from '../src/core/memory/topk.js';
import { expectWhaleError, rng } from './helpers.js';

const FLT_MAX = 3.4028234663852886e38;

function normals(n: number, seed: number, scale = 1): Float32Array {
  const r = rng(seed);
  return Float32Array.from({ length: n }, () => r.normal() * scale);
}

/** CRC-32C (Castagnoli), as the blob trailer uses. */
function crc32c(bytes: Uint8Array): number {
  let crc = ~0;
  for (const b of bytes) {
    crc ^= b;
    for (let k = 0; k < 8; k++) crc = crc & 1 ? (crc >>> 1) ^ 0x82f63b78 : crc >>> 1;
  }
  return ~crc >>> 0;
}

/** A copy of blob with bytes written at `at` and a valid checksum. */
function forged(blob: Uint8Array, at: number, bytes: number[]): Uint8Array {
  const b = blob.slice();
  b.set(bytes, at);
  new DataView(b.buffer).setUint32(b.length - 4, crc32c(b.subarray(0, b.length - 4)), true);
  return b;
}

describe('extreme scales', () => {
  it.each<TensorCodec>(['int8', 'int4'])('%s: FLT_MAX and -FLT_MAX decode finite', (codec) => {
    const x = new Float32Array([FLT_MAX, -FLT_MAX, 1e38, -2e38, 0, 1]);
    const y = decodeTensor(encodeTensor(x, { codec, blockSize: 32 }));
    expect(y.every(Number.isFinite)).toBe(true);
    // int4's top level is 7 of 7.5 scale steps: 0.93 x absmax at best.
    expect(y[0]!).toBeGreaterThan((codec === 'int8' ? 0.99 : 0.9) * FLT_MAX);
    expect(y[1]!).toBeLessThan(-0.9 * FLT_MAX);
  });

  it.each([1e20, 1e30, 1e36, 1e-30, 1e-35])('int4 relative L2 <= 10%% and int8 <= 0.7%% at |x| ~ %f', (scale) => {
    const x = normals(50_000, 41, scale);
    expect(relativeL2Error(x, decodeTensor(encodeTensor(x, { codec: 'int4' })))).toBeLessThanOrEqual(0.1);
    expect(relativeL2Error(x, decodeTensor(encodeTensor(x, { codec: 'int8' })))).toBeLessThanOrEqual(0.007);
  });

  it.each([FLT_MAX / 4, 1e-39, 1e-44])('int8 matches the plain-TS reference bit for bit at |x| ~ %f', (scale) => {
    const x = normals(4099, 42, scale);
    x[17] = scale; // the block's absmax exactly
    const blob = encodeTensor(x, { codec: 'int8', blockSize: 64 });
    expect(decodeTensor(blob)).toEqual(decodeInt8Ref(encodeInt8Ref(x, 64), 64));
    const y = decodeTensor(blob);
    expect(y.every(Number.isFinite)).toBe(true);
  });

  it('subnormal blocks keep their sign and order of magnitude (no 0 -> -absmax)', () => {
    const x = new Float32Array(64).fill(0);
    x[0] = 1e-40;
    x[1] = -5e-41;
    const y = decodeTensor(encodeTensor(x, { codec: 'int8' }));
    expect(y[2]).toBe(0);
    expect(y[0]!).toBeGreaterThan(0.9e-40);
    expect(y[1]!).toBeLessThan(0);
  });
});

describe('fp16 out of range', () => {
  it('clamps and flushes by default, and the blob says so', () => {
    const plain = inspectTensor(encodeTensor(normals(1000, 43), { codec: 'fp16' }));
    expect(plain.saturated).toBe(false);
    expect(plain.flushedToZero).toBe(false);
    const big = encodeTensor(new Float32Array([70_000, 1]), { codec: 'fp16' });
    expect(inspectTensor(big)).toMatchObject({ saturated: true, flushedToZero: false });
    expect(Array.from(decodeTensor(big))).toEqual([65504, 1]);
    const tiny = encodeTensor(new Float32Array([1e-9, 1]), { codec: 'fp16' });
    expect(inspectTensor(tiny)).toMatchObject({ saturated: false, flushedToZero: true });
    expect(decodeTensor(tiny)[0]).toBe(0);
    expect(inspectTensor(encodeTensor(new Float32Array([1e-9]), { codec: 'bf16' })).saturated).toBeUndefined();
  });

  it("outOfRange: 'error' refuses, naming the value", async () => {
    const x = normals(100, 44);
    x[40] = -1e5;
    await expectWhaleError(
      () => encodeTensor(x, { codec: 'fp16', outOfRange: 'error' }),
      'ERR_INVALID_ARG',
      'values[40]',
    );
    x[40] = 0;
    x[60] = 2e-8;
    const e = await expectWhaleError(
      () => encodeTensor(x, { codec: 'fp16', outOfRange: 'error' }),
      'ERR_INVALID_ARG',
      'values[60]',
    );
    expect(e.message).toMatch(/would become 0/);
    x[60] = 6e-8; // rounds to fp16's smallest subnormal, not to 0
    expect(inspectTensor(encodeTensor(x, { codec: 'fp16', outOfRange: 'error' })).flushedToZero).toBe(false);
    await expectWhaleError(
      () => encodeTensor(x, { codec: 'fp16', outOfRange: 'wrap' as never }),
      'ERR_INVALID_OPTION',
      'options.outOfRange',
    );
  });
});

describe('blobs the encoder could never write are ERR_CORRUPT, checksum or not', () => {
  const x = normals(100, 45);
  const int8 = encodeTensor(x, { codec: 'int8', blockSize: 32 }); // 4 scales at 24..39, values from 40
  const f32 = new Float32Array(4);
  const bits = (v: number): number[] => Array.from(new Uint8Array(new Float32Array([v]).buffer));

  it.each<[string, () => Uint8Array]>([
    ['a NaN scale', () => forged(int8, 24, bits(NaN))],
    ['an Infinite scale', () => forged(int8, 28, bits(Infinity))],
    ['a negative scale', () => forged(int8, 32, bits(-0.01))],
    ['a scale whose 127 multiple overflows', () => forged(int8, 36, bits(FLT_MAX))],
    ['an int8 value of -128', () => forged(int8, 40 + 17, [0x80])],
    ['an unknown flag bit', () => forged(int8, 6, [0x00, 0x01])],
    ['an fp16 flag on an int8 blob', () => forged(int8, 6, [0x04, 0x00])],
    ['a nonzero reserved field', () => forged(int8, 12, [1])],
    ['a NaN f32 value', () => forged(encodeTensor(f32, { codec: 'f32' }), 24 + 8, bits(NaN))],
    ['an Infinite fp16 value', () => forged(encodeTensor(f32, { codec: 'fp16' }), 24 + 2, [0x00, 0x7c])],
    ['a NaN bf16 value', () => forged(encodeTensor(f32, { codec: 'bf16' }), 24 + 4, [0xc1, 0x7f])],
    [
      'an int4 scale whose 7 multiple overflows (5e37 decoded levels of +-7 to Infinity)',
      () => forged(encodeTensor(normals(64, 47), { codec: 'int4', blockSize: 64 }), 24, bits(5e37)),
    ],
    [
      'a nonzero int4 padding nibble',
      () => forged(encodeTensor(new Float32Array(33), { codec: 'int4', blockSize: 32 }), 24 + 8 + 16, [0x10]),
    ],
  ])('%s', async (_, make) => {
    const blob = make();
    await expectWhaleError(() => decodeTensor(blob), 'ERR_CORRUPT', 'blob');
    await expectWhaleError(() => decodeTensorAsync(blob), 'ERR_CORRUPT', 'blob');
    await expectWhaleError(() => inspectTensor(blob), 'ERR_CORRUPT', 'blob');
  });

  it('the forging itself is sound: rewriting a byte with its own value still decodes', () => {
    expect(decodeTensor(forged(int8, 40, [int8[40]!]))).toEqual(decodeTensor(int8));
  });
});

describe('option errors are typed', () => {
  const x = normals(10, 46);

  it('null options', async () => {
    await expectWhaleError(() => encodeTensor(x, null as never), 'ERR_INVALID_OPTION', 'options');
    await expectWhaleError(() => decodeTensor(encodeTensor(x), null as never), 'ERR_INVALID_OPTION', 'options');
    await expectWhaleError(() => decodeTensorAsync(encodeTensor(x), null as never), 'ERR_INVALID_OPTION', 'options');
  });

  it.each<[unknown, string]>([
    [-1, 'length'],
    [1.5, 'length'],
    ['3', 'length'],
    [2 ** 33, 'length'],
  ])('TopKCompressor.decompress with length %j', async (length, field) => {
    await expectWhaleError(
      () =>
        TopKCompressor.decompress({
          indices: new Uint32Array(0),
          values: new Float32Array(0),
          length: length as number,
        }),
      'ERR_INVALID_ARG',
      field,
    );
  });

  it('TopKCompressor.decompress with mismatched or missing arrays', async () => {
    await expectWhaleError(
      () => TopKCompressor.decompress({ indices: new Uint32Array(2), values: new Float32Array(1), length: 4 }),
      'ERR_INVALID_ARG',
      'values',
    );
    await expectWhaleError(
      () => TopKCompressor.decompress({ indices: [1] as never, values: new Float32Array(1), length: 4 }),
      'ERR_INVALID_ARG',
      'indices',
    );
    await expectWhaleError(() => TopKCompressor.decompress(null as never), 'ERR_INVALID_ARG', 'update');
  });
});
