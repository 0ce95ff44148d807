import { describe, expect, it } from 'vitest';

import {
  decodeTensor,
  decodeTensorAsync,
  encodeTensor,
  encodeTensorAsync,
  inspectTensor,
  type TensorCodec,
} from '../src/core/memory/codec.js';
import { decodeInt8Ref, encodeInt8Ref, relativeL2Error } from '../src/core/memory/codec-reference.js';
import { WhaleError } from '../src/common/errors.js';
import { expectWhaleError, rng } from './helpers.js';

function normals(n: number, seed: number): Float32Array {
  const r = rng(seed);
  return Float32Array.from({ length: n }, () => r.normal());
}

const X = normals(200_003, 1); // not a multiple of any block size

describe('error targets on N(0,1) data', () => {
  it.each<[TensorCodec, number, number]>([
    ['int8', 64, 0.007],
    ['int8', 4096, 0.02],
    ['int4', 64, 0.1],
    ['fp16', 64, 0.0005],
    ['bf16', 64, 0.004],
    ['f32', 64, 0],
  ])('%s @ block %i: relative L2 <= %f', (codec, blockSize, bound) => {
    const y = decodeTensor(encodeTensor(X, { codec, blockSize }));
    expect(relativeL2Error(X, y)).toBeLessThanOrEqual(bound);
    if (codec === 'f32') expect(y).toEqual(X);
  });

  it.each([32, 64, 100, 4096])('int8 @ block %i: every element within absmax/254 of its block', (bs) => {
    const y = decodeTensor(encodeTensor(X, { codec: 'int8', blockSize: bs }));
    let worst = 0;
    for (let lo = 0; lo < X.length; lo += bs) {
      const hi = Math.min(X.length, lo + bs);
      let absmax = 0;
      for (let j = lo; j < hi; j++) absmax = Math.max(absmax, Math.abs(X[j]!));
      for (let j = lo; j < hi; j++) worst = Math.max(worst, Math.abs(y[j]! - X[j]!) / (absmax / 254));
    }
    // float32 rounding of the product and the scale may add ~1e-6 relative.
    expect(worst).toBeLessThanOrEqual(1 + 1e-5);
  });

  it('int8 blocks match the plain-TS reference bit for bit', () => {
    const x = normals(10_007, 2);
    const blob = encodeTensor(x, { codec: 'int8', blockSize: 64 });
    expect(decodeTensor(blob)).toEqual(decodeInt8Ref(encodeInt8Ref(x, 64), 64));
  });

  it.each<TensorCodec>(['int8', 'int4', 'fp16', 'bf16', 'f32'])(
    '%s: lengths 0, 1, 63, 65 and an all-zero block',
    (codec) => {
      for (const n of [0, 1, 63, 65]) {
        const x = normals(n, n);
        const y = decodeTensor(encodeTensor(x, { codec }));
        expect(y.length).toBe(n);
        if (n > 0) expect(relativeL2Error(x, y)).toBeLessThan(0.12);
      }
      expect(decodeTensor(encodeTensor(new Float32Array(100), { codec }))).toEqual(new Float32Array(100));
    },
  );

  it('fp16 saturates at 65504, bf16 keeps range', () => {
    const x = new Float32Array([1e6, -1e6, 3.0e38, 1e-3]);
    const h = decodeTensor(encodeTensor(x, { codec: 'fp16' }));
    expect(Array.from(h.slice(0, 3))).toEqual([65504, -65504, 65504]);
    const b = decodeTensor(encodeTensor(x, { codec: 'bf16' }));
    expect(relativeL2Error(x, b)).toBeLessThan(0.004);
    expect(Number.isFinite(b[2]!)).toBe(true);
  });

  it('parallel and single-threaded encodes are identical; async equals sync', async () => {
    // Byte-wise comparison: toEqual on 200k-element arrays takes seconds on a loaded machine.
    const bytes = (v: ArrayBufferView) => Buffer.from(v.buffer, v.byteOffset, v.byteLength);
    const same = (x: ArrayBufferView, y: ArrayBufferView) =>
      x.constructor === y.constructor && bytes(x).equals(bytes(y));
    for (const codec of ['int8', 'int4', 'fp16', 'bf16'] as const) {
      const a = encodeTensor(X, { codec, parallel: false });
      expect(same(encodeTensor(X, { codec }), a), `${codec}: parallel encode`).toBe(true);
      expect(same(await encodeTensorAsync(X, { codec }), a), `${codec}: async encode`).toBe(true);
      expect(same(await decodeTensorAsync(a), decodeTensor(a, { parallel: false })), `${codec}: async decode`).toBe(
        true,
      );
    }
  });
});

describe('non-finite input', () => {
  const x = normals(1000, 3);
  x[123] = NaN;
  x[500] = -Infinity;

  it.each<TensorCodec>(['int8', 'int4', 'fp16', 'bf16', 'f32'])(
    '%s: a typed error naming the first index',
    async (codec) => {
      const e = await expectWhaleError(() => encodeTensor(x, { codec }), 'ERR_NON_FINITE', 'values[123]');
      expect(e.message).toMatch(/nonFinite: 'zero'/);
    },
  );

  it.each<TensorCodec>(['int8', 'int4', 'fp16', 'bf16', 'f32'])(
    "%s: nonFinite 'zero' maps them to 0 and says so",
    (codec) => {
      const blob = encodeTensor(x, { codec, nonFinite: 'zero' });
      expect(inspectTensor(blob).nonFiniteZeroed).toBe(true);
      const y = decodeTensor(blob);
      expect(y[123]).toBe(0);
      expect(y[500]).toBe(0);
      expect(Math.abs(y[7]! - x[7]!)).toBeLessThan(0.5);
    },
  );
});

describe('blob format', () => {
  const small = normals(100, 4);
  const blob = encodeTensor(small, { codec: 'int8', blockSize: 32 });

  it('is self-describing', () => {
    expect(inspectTensor(blob)).toEqual({ codec: 'int8', blockSize: 32, length: 100, nonFiniteZeroed: false });
    expect(blob.length).toBe(24 + 4 * 4 + 100 + 4);
    expect(Buffer.from(blob.subarray(0, 4)).toString()).toBe('SWQT');
  });

  it('every truncation length is ERR_TRUNCATED', async () => {
    for (let len = 0; len < blob.length; len++) {
      await expectWhaleError(() => decodeTensor(blob.slice(0, len)), 'ERR_TRUNCATED', 'blob');
    }
  });

  it('every single flipped byte is a typed error, never data', () => {
    const codes = new Set<string>();
    for (let i = 0; i < blob.length; i++) {
      for (const mask of [0x01, 0x80, 0xff]) {
        const bad = blob.slice();
        bad[i]! ^= mask;
        let caught: unknown;
        try {
          decodeTensor(bad);
        } catch (e) {
          caught = e;
        }
        expect(caught, `byte ${i} ^ ${mask}`).toBeInstanceOf(WhaleError);
        codes.add((caught as WhaleError).code);
      }
    }
    expect(
      [...codes].every((c) =>
        [
          'ERR_BAD_MAGIC',
          'ERR_UNKNOWN_VERSION',
          'ERR_UNKNOWN_CODEC',
          'ERR_CORRUPT',
          'ERR_TRUNCATED',
          'ERR_CHECKSUM',
        ].includes(c),
      ),
    ).toBe(true);
    expect(codes).toContain('ERR_CHECKSUM');
    expect(codes).toContain('ERR_BAD_MAGIC');
  });

  it('names the failure: version, codec, trailing bytes, foreign data', async () => {
    const v = blob.slice();
    v[4] = 2;
    await expectWhaleError(() => decodeTensor(v), 'ERR_UNKNOWN_VERSION');
    const c = blob.slice();
    c[5] = 9;
    await expectWhaleError(() => decodeTensor(c), 'ERR_UNKNOWN_CODEC');
    const longer = new Uint8Array(blob.length + 1);
    longer.set(blob);
    await expectWhaleError(() => decodeTensor(longer), 'ERR_CORRUPT');
    await expectWhaleError(
      () => decodeTensor(Buffer.from('{"json": true, "padding": "................"}')),
      'ERR_BAD_MAGIC',
    );
  });

  it('decodes from an unaligned Buffer view (as Redis hands them out)', () => {
    const backing = Buffer.alloc(blob.length + 3);
    backing.set(blob, 3);
    expect(decodeTensor(backing.subarray(3))).toEqual(decodeTensor(blob));
  });

  it('decodes into a caller buffer, checking its length', async () => {
    const out = new Float32Array(100);
    expect(decodeTensor(blob, { out })).toBe(out);
    let err: unknown;
    try {
      decodeTensor(blob, { out: new Float32Array(99) });
    } catch (e) {
      err = e;
    }
    expect((err as WhaleError).code).toBe('ERR_INVALID_ARG');
  });

  it('rejects bad options with the field named', async () => {
    await expectWhaleError(
      () => encodeTensor(small, { codec: 'int3' as TensorCodec }),
      'ERR_INVALID_OPTION',
      'options.codec',
    );
    await expectWhaleError(() => encodeTensor(small, { blockSize: 31 }), 'ERR_INVALID_OPTION', 'options.blockSize');
    await expectWhaleError(() => encodeTensor(small, { blockSize: 8192 }), 'ERR_INVALID_OPTION', 'options.blockSize');
    await expectWhaleError(() => encodeTensor([1, 2] as unknown as Float32Array), 'ERR_INVALID_ARG', 'values');
    await expectWhaleError(() => decodeTensor('SWQT' as unknown as Uint8Array), 'ERR_INVALID_ARG', 'blob');
  });
});
