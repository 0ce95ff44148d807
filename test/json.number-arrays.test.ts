/**
 * V2 JSON bodies with their `data` number arrays parsed natively (issue 25, src/transport/json-number-arrays.ts):
 * the same document as JSON.parse gives, arrays as Float64Array, on every number notation JSON allows; the same
 * error for a body that is not JSON; placeholders a client cannot forge; and the V2 decoder's answers and refusals
 * unchanged. native/tests/json_test.cpp checks the scanner's values against strtod.
 */
import { describe, expect, it } from 'vitest';

import { WhaleError } from '../src/common/errors.js';
import { injectNative, native } from '../src/native/loader.js';
import { exceptInferRoutes, type HttpRouteHandler } from '../src/server/http-server.js';
import { toTensor } from '../src/server/v2-tensors.js';
import { MIN_NUMBER_ARRAY, parseJsonNumberArrays } from '../src/transport/json-number-arrays.js';

/** JSON.parse's document with every Float64Array turned back into an array (so toEqual compares the values, -0 included). */
function plain(v: unknown): unknown {
  if (v instanceof Float64Array) return Array.from(v);
  if (Array.isArray(v)) return v.map(plain);
  if (v !== null && typeof v === 'object')
    return Object.fromEntries(Object.entries(v as Record<string, unknown>).map(([k, x]) => [k, plain(x)]));
  return v;
}

function numberTexts(n: number, seed: number): string[] {
  let s = seed;
  const rnd = () => (s = (s * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    const v = (rnd() - 0.5) * 10 ** Math.floor(rnd() * 60 - 30);
    const forms = [
      String(v),
      String(Math.fround(v)),
      v.toExponential(3),
      v.toExponential(3).toUpperCase(),
      String(Math.round(v * 1e6)),
      v.toFixed(8),
      '-0',
      '0',
      '0.000001e-3',
      '123456789012345678901234567890',
    ];
    out.push(forms[i % forms.length]!);
  }
  return out;
}

describe('parseJsonNumberArrays', () => {
  it('gives JSON.parse’s document, data arrays as Float64Array with bit-equal values', () => {
    for (const seed of [1, 2, 3]) {
      const a = numberTexts(1000, seed);
      const b = numberTexts(MIN_NUMBER_ARRAY, seed + 10);
      const text = `{"id":"r","inputs":[{"name":"x","datatype":"FP64","shape":[1000],"data":[${a.join(',')}]},
        {"name":"y","data" : [ ${b.join(' , ')} ],"parameters":{"data":"data","note":"\\"data\\":[1,2]"}}],
        "outputs":[{"name":"data","data":[1,2,3]}]}`;
      const got = parseJsonNumberArrays(Buffer.from(text), 'data') as {
        inputs: Array<{ data: unknown }>;
        outputs: Array<{ data: unknown }>;
      };
      expect(got.inputs[0]!.data).toBeInstanceOf(Float64Array);
      expect(got.inputs[1]!.data).toBeInstanceOf(Float64Array);
      expect(Array.isArray(got.outputs[0]!.data)).toBe(true); // shorter than MIN_NUMBER_ARRAY: JSON.parse's
      expect(plain(got)).toEqual(JSON.parse(text));
      const values = got.inputs[0]!.data as Float64Array;
      a.forEach((t, i) => expect(Object.is(values[i], Number(t))).toBe(true));
    }
  });

  it('leaves to JSON.parse what the scanner does not take: nesting, strings, values beyond the double range', () => {
    const long = (x: string) => `[${Array.from({ length: 20 }, () => x).join(',')}]`;
    for (const data of [`[${long('1')},${long('2')}]`, long('"1"'), long('1e400'), long('true')]) {
      const text = `{"inputs":[{"data":${data}}]}`;
      expect(parseJsonNumberArrays(Buffer.from(text), 'data')).toEqual(JSON.parse(text));
    }
  });

  it('throws JSON.parse’s own error for the original text', () => {
    const nums = Array.from({ length: 40 }, (_, i) => i).join(',');
    for (const text of [`{"data":[${nums}],}`, `{"data":[${nums}] "x":1}`, `{"data":[${nums}]`, `["data":[${nums}]]`]) {
      let expected = '';
      try {
        JSON.parse(text);
      } catch (err) {
        expected = (err as Error).message;
      }
      expect(expected).not.toBe('');
      expect(() => parseJsonNumberArrays(Buffer.from(text), 'data')).toThrow(expected);
    }
  });

  it('keeps a client’s look-alike placeholder as the object it is, and `__proto__` as an own property', () => {
    const nums = Array.from({ length: 32 }, (_, i) => i / 4).join(',');
    const text = `{"a":{"\\u0000whale:0123":0},"__proto__":{"data":[${nums}]},"b":{"data":[${nums}]}}`;
    const got = parseJsonNumberArrays(Buffer.from(text), 'data') as Record<string, unknown>;
    expect(plain(got)).toEqual(JSON.parse(text));
    expect(Object.getPrototypeOf(got)).toBe(Object.prototype);
    expect(Object.hasOwn(got, '__proto__')).toBe(true);
  });

  it('parses the whole document with JSON.parse when the addon has no scanner', () => {
    const real = native();
    const { jsonNumberArrays: _absent, ...rest } = real;
    injectNative(rest as typeof real);
    try {
      const text = `{"data":[${Array.from({ length: 64 }, (_, i) => i).join(',')}]}`;
      const got = parseJsonNumberArrays(Buffer.from(text), 'data') as { data: unknown };
      expect(Array.isArray(got.data)).toBe(true);
      expect(got).toEqual(JSON.parse(text));
    } finally {
      injectNative(undefined);
    }
  });
});

describe('V2 tensors from natively parsed data', () => {
  const decode = (data: unknown, datatype = 'FP32', shape = [20]) => {
    try {
      return toTensor({ name: 'x', datatype, shape, data } as Parameters<typeof toTensor>[0], 'inputs[0]');
    } catch (err) {
      expect(err).toBeInstanceOf(WhaleError);
      return (err as WhaleError).message;
    }
  };
  const values = Array.from({ length: 20 }, (_, i) => (i - 10) / 3);

  it('decodes a Float64Array as the array it was parsed from (FP32 rounded once, integers exact)', () => {
    expect(decode(Float64Array.from(values))).toEqual(decode(values));
    expect(decode(Float64Array.from(values, Math.round), 'INT32')).toEqual(decode(values.map(Math.round), 'INT32'));
    expect(decode(Float64Array.from(values), 'FP64')).toEqual(decode(values, 'FP64'));
  });

  it.each([
    ['a wrong count', values.slice(0, 19), 'FP32'],
    ['a fraction for INT32', values, 'INT32'],
    ['beyond the int8 range', values.map((v) => v * 100), 'INT8'],
    ['numbers for BYTES', values, 'BYTES'],
    ['numbers for INT64 that are not integers', values, 'INT64'],
  ])('refuses %s with the same message as for the array', (_what, data, datatype) => {
    const fromArray = decode(data, datatype);
    expect(typeof fromArray).toBe('string');
    expect(decode(Float64Array.from(data), datatype)).toBe(fromArray);
  });
});

describe('exceptInferRoutes', () => {
  it('skips a route handler for V2 infer paths only', () => {
    const seen: string[] = [];
    const h: HttpRouteHandler = (_req, _res, url) => {
      seen.push(url.pathname);
      return false;
    };
    const gated = exceptInferRoutes(h);
    const call = (p: string) => gated({} as never, {} as never, new URL(p, 'http://x'));
    for (const p of ['/v2/models/m/infer', '/v2/models/m/versions/2/infer']) expect(call(p)).toBe(false);
    for (const p of [
      '/v2/models/m/stats',
      '/v2/models/m/generate',
      '/v2/models/%6D/infer',
      '/v1/tasks/t/infer',
      '/metrics',
    ])
      call(p);
    expect(seen).toEqual([
      '/v2/models/m/stats',
      '/v2/models/m/generate',
      '/v2/models/%6D/infer',
      '/v1/tasks/t/infer',
      '/metrics',
    ]);
  });
});
