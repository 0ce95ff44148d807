/**
 * The request path's fast paths (issue 25) decide exactly as the general code: flat numeric V2 data
 * decoded in one pass refuses the same values with the same message as the general path, and the
 * JSON depth check's bracket-counting shortcut never says "not too deep" for a body that is.
 */
import { describe, expect, it } from 'vitest';

import { WhaleError } from '../src/common/errors.js';
import { toTensor } from '../src/server/v2-tensors.js';
import { jsonTooDeep } from '../src/transport/http-json.js';

function decodeError(t: Parameters<typeof toTensor>[0]): string | undefined {
  try {
    toTensor(t, 'inputs[0]');
    return undefined;
  } catch (err) {
    expect(err).toBeInstanceOf(WhaleError);
    return (err as WhaleError).message;
  }
}

describe('V2 JSON tensors: flat numeric data', () => {
  it('decodes flat data into the typed array of its datatype, values as given (FP32 rounded)', () => {
    const t = toTensor({ name: 'x', datatype: 'FP32', shape: [1, 3], data: [0, 0.1, -2.5] }, 'inputs[0]');
    expect(t.data).toBeInstanceOf(Float32Array);
    expect(Array.from(t.data as Float32Array)).toEqual([0, Math.fround(0.1), -2.5]);
    expect(t.shape).toEqual([1, 3]);
    const i = toTensor({ name: 'y', datatype: 'INT16', shape: [2], data: [-32768, 32767] }, 'inputs[0]');
    expect(i.data).toBeInstanceOf(Int16Array);
    expect(Array.from(i.data as Int16Array)).toEqual([-32768, 32767]);
  });

  it('flat and nested data give the same tensor', () => {
    const flat = toTensor({ name: 'x', datatype: 'FP64', shape: [2, 2], data: [1, 2, 3, 4] }, 'inputs[0]');
    const nested = toTensor(
      {
        name: 'x',
        datatype: 'FP64',
        shape: [2, 2],
        data: [
          [1, 2],
          [3, 4],
        ],
      },
      'inputs[0]',
    );
    expect(nested).toEqual(flat);
  });

  it.each([
    ['FP32', 'a string', '"1"'],
    ['FP32', 'null', null],
    ['FP32', 'NaN', Number.NaN],
    ['FP32', 'Infinity', Number.POSITIVE_INFINITY],
    ['FP32', 'beyond the float32 range', 3.5e38],
    ['INT8', 'beyond the int8 range', 128],
    ['UINT8', 'negative', -1],
    ['INT32', 'a fraction', 1.5],
  ])('%s data holding %s is refused naming the element, as by the general path', (datatype, _what, bad) => {
    const flat = decodeError({ name: 'x', datatype, shape: [3], data: [0, bad, 0] });
    expect(flat).toMatch(/^inputs\[0\]\.data\[1\]: .* is not a valid /);
    // The same element nested (the general path) gets the same message.
    expect(decodeError({ name: 'x', datatype, shape: [3], data: [[0], [bad], [0]] })).toBe(flat);
  });

  it('a wrong element count is refused with the counts', () => {
    expect(decodeError({ name: 'x', datatype: 'FP32', shape: [1, 4], data: [1, 2, 3] })).toBe(
      'inputs[0].data: has 3 elements but shape [1, 4] needs 4',
    );
  });
});

describe('JSON depth check', () => {
  const deep = (n: number) => Buffer.from(`${'['.repeat(n)}1${']'.repeat(n)}`);

  it('a body with at most maxDepth brackets is never too deep; one nested deeper always is', () => {
    expect(jsonTooDeep(deep(64), 64)).toBe(false);
    expect(jsonTooDeep(deep(65), 64)).toBe(true);
    expect(jsonTooDeep(Buffer.from(`{"a":[${'{"b":1},'.repeat(200)}{"b":1}]}`), 3)).toBe(false);
  });

  it('brackets inside strings count for the shortcut but not for the depth', () => {
    const body = Buffer.from(JSON.stringify({ s: '[[[[[[[[[[', t: [1, 2] }));
    expect(jsonTooDeep(body, 4)).toBe(false);
    expect(jsonTooDeep(new Uint8Array(deep(10)), 9)).toBe(true);
  });
});
