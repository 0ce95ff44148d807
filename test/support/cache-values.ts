/** Values of every kind the cache accepts, and a type-strict comparison, shared by the cache tests. */
import { expect } from 'vitest';

import type { CacheValue } from '../../src/core/memory/value-codec.js';

/** Lossless values of every accepted kind (top-level Float32Array is quantized below L1; see the tensor test). */
export function acceptedValues(): Array<[string, CacheValue]> {
  return [
    ['Uint8Array', new Uint8Array([1, 2, 255])],
    ['Buffer', Buffer.from([9, 8, 7])],
    ['Float64Array', new Float64Array([Math.PI, -0, 1e300, NaN])],
    ['Int32Array', new Int32Array([-(2 ** 31), 7, 2 ** 31 - 1])],
    ['Uint16Array', new Uint16Array([0, 65535])],
    ['BigInt64Array', new BigInt64Array([-(2n ** 63n), 5n])],
    [
      'Map',
      new Map<unknown, unknown>([
        ['a', 1],
        [2, { b: [new Date(0)] }],
      ]),
    ],
    ['Set', new Set([1, 'two', 3n])],
    ['Date', new Date(1_700_000_000_123)],
    ['number NaN', NaN],
    ['number -0', -0],
    ['number Infinity', Infinity],
    ['bigint', 2n ** 70n],
    ['boolean', false],
    ['null', null],
    ['string', 'héllo ✓'],
    ['array with hole and undefined', [1, , undefined, 'x']],
    [
      'nested',
      {
        emb: new Float32Array([0.1, 0.2]),
        ids: new Int32Array([4, 5]),
        when: new Date(3),
        tags: new Set(['a']),
        meta: { deep: [{ n: 1 }] },
      },
    ],
  ] as Array<[string, CacheValue]>;
}

/** Deep equality that also requires the same constructor at every level (Buffer is not Uint8Array). */
export function expectSame(got: unknown, want: unknown, path = 'value'): void {
  if (want === null || typeof want !== 'object') {
    expect(Object.is(got, want), `${path}: ${String(got)} vs ${String(want)}`).toBe(true);
    return;
  }
  expect((got as object | null)?.constructor, path).toBe((want as object).constructor);
  if (ArrayBuffer.isView(want)) {
    expect(
      Buffer.from((got as Uint8Array).buffer, (got as Uint8Array).byteOffset, (got as Uint8Array).byteLength),
    ).toEqual(Buffer.from(want.buffer, want.byteOffset, want.byteLength));
  } else if (want instanceof Date) {
    expect(Object.is((got as Date).getTime(), want.getTime()), path).toBe(true);
  } else if (want instanceof Map || want instanceof Set) {
    expectSame([...(got as Map<unknown, unknown>).entries()], [...want.entries()], path);
  } else {
    expect(Object.keys(got as object), path).toEqual(Object.keys(want));
    if (Array.isArray(want)) expect((got as unknown[]).length).toBe(want.length);
    for (const k of Object.keys(want))
      expectSame((got as Record<string, unknown>)[k], (want as Record<string, unknown>)[k], `${path}.${k}`);
  }
}
