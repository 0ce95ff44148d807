// What the cache accepts, and that every tier returns an equal, independent value of the same type.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

import { WhaleError } from '../src/common/errors.js';

import { silentLogger } from '../src/common/logger.js';
import { TieredCache, type Tier } from '../src/core/memory/tiered-cache.js';
import { deserializeValue, serializeValue, type CacheValue } from '../src/core/memory/value-codec.js';
import { expectWhaleError, rng } from './helpers.js';
import { acceptedValues, expectSame } from './support/cache-values.js';

const dir = () => mkdtempSync(join(tmpdir(), 'whale-values-'));

describe('accepted values round-trip with their types', () => {
  for (const tier of ['l1', 'l3'] as Tier[]) {
    it(`from ${tier}`, async () => {
      const d = dir();
      const opts = { diskDir: d, logger: silentLogger, redisUrl: '', namespaces: { n: { tiers: [tier] } } };
      const w = new TieredCache(opts);
      const values = acceptedValues();
      for (const [name, v] of values) await w.set('n', name, v);
      const r = tier === 'l1' ? w : new TieredCache(opts);
      for (const [name, v] of values) expectSame(await r.get('n', name), v, name);
      const many = await r.getMany(
        'n',
        values.map(([name]) => name),
      );
      many.forEach((got, i) => expectSame(got, values[i]![1], values[i]![0]));
    });
  }

  it('a value promoted from disk to L1 keeps its type', async () => {
    const d = dir();
    await new TieredCache({ diskDir: d, logger: silentLogger, redisUrl: '' }).set(
      'n',
      'k',
      new Float64Array([1.5, 2.5]),
    );
    const r = new TieredCache({ diskDir: d, logger: silentLogger, redisUrl: '' });
    expectSame(await r.get('n', 'k'), new Float64Array([1.5, 2.5])); // L3, then promoted
    expectSame(await r.get('n', 'k'), new Float64Array([1.5, 2.5])); // L1
    expect(r.stats().l1.hits).toBe(1);
  });

  it('a top-level Float32Array stays a Float32Array (quantized with the namespace codec below L1, exact with f32)', async () => {
    const d = dir();
    const t = Float32Array.from({ length: 256 }, (_, i) => Math.sin(i));
    const opts = {
      diskDir: d,
      logger: silentLogger,
      redisUrl: '',
      namespaces: { exact: { tensor: { codec: 'f32' as const } } },
    };
    await new TieredCache(opts).set('exact', 'k', t);
    expectSame(await new TieredCache(opts).get('exact', 'k'), t);
  });
});

describe('returned values are independent of the cache', () => {
  for (const tiers of [['l1'], ['l1', 'l3']] as Tier[][]) {
    it(`mutating what was set or what was got does not change the cache (${tiers.join('+')})`, async () => {
      const c = new TieredCache({ diskDir: dir(), logger: silentLogger, redisUrl: '', namespaces: { n: { tiers } } });
      const obj = { list: [1, 2], bytes: new Uint8Array([1, 2]), map: new Map([['a', { x: 1 }]]) };
      const tensor = new Float32Array([1, 2, 3]);
      await c.set('n', 'obj', obj);
      await c.set('n', 't', tensor);
      obj.list.push(3);
      obj.bytes[0] = 99;
      obj.map.get('a')!.x = 42;
      tensor[0] = 99;
      const got = (await c.get('n', 'obj')) as typeof obj;
      expect(got).toEqual({ list: [1, 2], bytes: new Uint8Array([1, 2]), map: new Map([['a', { x: 1 }]]) });
      got.list.length = 0;
      got.bytes[1] = 77;
      got.map.clear();
      (got as Record<string, unknown>).extra = true;
      const [again] = await c.getMany('n', ['obj']);
      expect(again).toEqual({ list: [1, 2], bytes: new Uint8Array([1, 2]), map: new Map([['a', { x: 1 }]]) });
      expect(again).not.toBe(got);
      const t1 = (await c.get('n', 't')) as Float32Array;
      expect(Array.from(t1)).toEqual([1, 2, 3]);
      t1.fill(0);
      expect(Array.from((await c.get('n', 't')) as Float32Array)).toEqual([1, 2, 3]);
    });
  }
});

describe('values the cache refuses', () => {
  class Point {
    constructor(readonly x: number) {}
  }
  const circular: Record<string, unknown> = { a: 1 };
  circular.self = circular;
  let deep: unknown = 1;
  for (let i = 0; i < 100_000; i++) deep = [deep];
  const cases: Array<[string, unknown, string]> = [
    ['function', () => 1, 'value'],
    ['symbol', Symbol('s'), 'value'],
    ['undefined', undefined, 'value'],
    ['class instance', new Point(1), 'value'],
    ['nested function', { a: { f() {} } }, 'value.a.f'],
    ['function in an array', [1, () => 2], 'value[1]'],
    ['symbol in a Map', new Map([['k', Symbol('x')]]), 'value.values()[0]'],
    ['RegExp', /x/, 'value'],
    ['Error', new Error('e'), 'value'],
    ['Promise', Promise.resolve(1), 'value'],
    ['WeakMap', new WeakMap(), 'value'],
    ['ArrayBuffer', new ArrayBuffer(4), 'value'],
    ['DataView', new DataView(new ArrayBuffer(4)), 'value'],
    ['boxed string', Object('s'), 'value'],
    ['symbol-keyed property', { [Symbol('k')]: 1 }, 'value'],
    ['array with a named property', { list: Object.assign([1, 2], { extra: true }) }, 'value.list'],
    ['null-prototype object', Object.create(null), 'value'],
    ['circular', circular, 'value.self'],
    ['too deep', deep, /^value(\[0\])+$/],
  ] as Array<[string, unknown, string]>;
  for (const [name, v, field] of cases) {
    it(`${name} → ERR_INVALID_ARG naming the field, in every tier configuration`, async () => {
      const c = new TieredCache({ diskDir: dir(), logger: silentLogger, redisUrl: '' });
      const l1 = new TieredCache({ diskDir: false, logger: silentLogger, redisUrl: '' });
      const f = field as string | RegExp;
      await expectWhaleError(() => c.set('n', 'k', v as CacheValue), 'ERR_INVALID_ARG', f);
      await expectWhaleError(() => l1.set('n', 'k', v as CacheValue), 'ERR_INVALID_ARG', f);
      await expectWhaleError(
        () =>
          l1.setMany('n', [
            ['ok', 1],
            ['k', v as CacheValue],
          ]),
        'ERR_INVALID_ARG',
        f,
      );
      expect(await l1.get('n', 'ok')).toBeUndefined(); // setMany validates every entry before writing any
      expect(c.stats().l3).toMatchObject({ files: 0 });
    });
  }
});

describe('stored values read back from a damaged tier', () => {
  it('20,000 mutated or truncated structured values: each decodes to an accepted value or is ERR_CORRUPT, never a crash', () => {
    const stored = serializeValue(
      {
        a: [1, 'x', new Float64Array([1, 2])],
        m: new Map([[1, new Set([2n])]]),
        d: new Date(4),
        b: Buffer.from([1, 2, 3]),
      },
      {},
    ).data;
    const r = rng(7);
    const pick = (n: number) => Math.floor(r.uniform() * n);
    let decoded = 0;
    let refused = 0;
    for (let i = 0; i < 20_000; i++) {
      const b = Buffer.from(stored);
      for (let j = 0, n = 1 + pick(4); j < n; j++) b[1 + pick(b.length - 1)] = pick(256);
      try {
        deserializeValue(r.uniform() < 0.3 ? b.subarray(0, 1 + pick(b.length)) : b);
        decoded++;
      } catch (err) {
        expect(err).toBeInstanceOf(WhaleError);
        expect((err as WhaleError).code).toMatch(
          /^ERR_(CORRUPT|TRUNCATED|BAD_MAGIC|UNKNOWN_VERSION|UNKNOWN_CODEC|CHECKSUM)$/,
        );
        refused++;
      }
    }
    expect(decoded + refused).toBe(20_000);
    expect(refused).toBeGreaterThan(0);
  });
});
