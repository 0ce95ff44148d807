// MemoryStateStore: expired entries are swept without being read, the store is bounded,
// and what cannot be stored faithfully is refused with a typed error.
import { afterEach, describe, expect, it } from 'vitest';

import { MemoryStateStore, RedisStateStore } from '../src/services/state-store.js';
import { expectWhaleError, until } from './helpers.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const stores: MemoryStateStore[] = [];
const store = (o: ConstructorParameters<typeof MemoryStateStore>[0] = {}) => {
  const s = new MemoryStateStore(o);
  stores.push(s);
  return s;
};
afterEach(async () => {
  await Promise.all(stores.splice(0).map((s) => s.close()));
});

describe('MemoryStateStore: expiry', () => {
  it('removes 20,000 expired sessions that are never read again (timer sweep)', async () => {
    const s = store({ sweepIntervalMs: 20 });
    for (let i = 0; i < 20_000; i++) await s.set(`session:${i}`, { userId: `u${i}`, seq: i }, 30);
    expect(s.size).toBeGreaterThan(0);
    expect(await until(() => s.size === 0, 5_000), `${s.size} entries left`).toBe(true);
  });

  it('sweeps expired entries on writes too (no timer)', async () => {
    const s = store({ sweepIntervalMs: 0 });
    for (let i = 0; i < 20_000; i++) await s.set(`session:${i}`, { i }, 20);
    await sleep(40);
    for (let i = 0; i < 1_000; i++) await s.set(`fresh:${i}`, { i }, 60_000);
    expect(s.size).toBe(1_000);
    expect(await s.keys('fresh:')).toHaveLength(1_000);
    expect(await s.keys('session:')).toEqual([]);
  });

  it('its sweep timer does not hold the event loop', async () => {
    const timers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    const before = timers();
    const s = store({ sweepIntervalMs: 10 });
    await s.set('k', 1, 50);
    expect(timers()).toBe(before);
    expect(await until(() => s.size === 0, 2_000)).toBe(true); // and it does run
  });

  it('an overwritten key keeps its new expiry (the old deadline does not delete it)', async () => {
    const s = store({ sweepIntervalMs: 5 });
    await s.set('k', 'short', 20);
    await s.set('k', 'forever');
    await s.set('j', 'short', 20);
    await s.set('j', 'longer', 60_000);
    await sleep(80);
    expect(await s.get('k')).toBe('forever');
    expect(await s.get('j')).toBe('longer');
    expect(s.size).toBe(2);
  });

  it('expires at the deadline when read, and keys() lists only live entries', async () => {
    const s = store({ sweepIntervalMs: 0 });
    await s.set('a:1', { x: 1 }, 30);
    await s.set('a:2', { x: 2 });
    expect(await s.get('a:1')).toEqual({ x: 1 });
    await sleep(50);
    expect(await s.get('a:1')).toBeUndefined();
    expect(await s.keys('a:')).toEqual(['a:2']);
  });

  it('repeated overwrites do not grow memory without bound (stale deadlines are compacted)', async () => {
    const s = store({ sweepIntervalMs: 0 });
    for (let i = 0; i < 50_000; i++) await s.set(`k${i % 10}`, i, 60_000);
    expect(s.size).toBe(10);
    expect((s as unknown as { heap: unknown[] }).heap.length).toBeLessThanOrEqual(2 * 10 + 1024 + 1);
  });
});

describe('MemoryStateStore: bounds', () => {
  it('refuses a write past maxEntries with a retriable ERR_OVERLOADED, and accepts again once entries expire', async () => {
    const s = store({ maxEntries: 100, sweepIntervalMs: 0 });
    for (let i = 0; i < 100; i++) await s.set(`k${i}`, i, 40);
    const e = await expectWhaleError(() => s.set('one-more', 1), 'ERR_OVERLOADED', 'options.maxEntries');
    expect(e.retriable).toBe(true);
    expect(await s.get('k5')).toBe(5); // nothing was evicted to make room
    await s.set('k5', 'overwrite is fine when full', 40);
    await sleep(60);
    await s.set('one-more', 1);
    expect(await s.get('one-more')).toBe(1);
    expect(await s.keys('k')).toEqual([]);
    expect(s.size).toBeLessThan(100); // the write swept expired entries as it went
  });

  it('bounds bytes too', async () => {
    const s = store({ maxBytes: 10_000, sweepIntervalMs: 0 });
    const value = 'x'.repeat(1_000);
    let stored = 0;
    const e = await expectWhaleError(
      async () => {
        while (stored < 1_000) {
          await s.set(`k${stored}`, value);
          stored++;
        }
      },
      'ERR_OVERLOADED',
      'options.maxBytes',
    );
    expect(e.retriable).toBe(true);
    expect(stored).toBeGreaterThan(0);
    expect(stored * 2 * value.length).toBeLessThanOrEqual(10_000);
    await s.delete('k0');
    await s.set('again', value);
    await expectWhaleError(() => s.set('huge', 'y'.repeat(20_000)), 'ERR_PAYLOAD_TOO_LARGE', 'value');
  });

  it('rejects bad options', async () => {
    await expectWhaleError(() => new MemoryStateStore({ maxEntries: 0 }), 'ERR_INVALID_OPTION', 'options.maxEntries');
    await expectWhaleError(
      () => new MemoryStateStore({ maxBytes: Number.NaN }),
      'ERR_INVALID_OPTION',
      'options.maxBytes',
    );
    await expectWhaleError(
      () => new MemoryStateStore({ sweepIntervalMs: -1 }),
      'ERR_INVALID_OPTION',
      'options.sweepIntervalMs',
    );
  });
});

const circular = (): unknown => {
  const o: Record<string, unknown> = { a: 1 };
  o.self = o;
  return { session: o };
};

const badValues: Array<[string, () => unknown, string]> = [
  ['BigInt', () => ({ n: 10n }), 'value.n'],
  ['circular', circular, 'value.session.self'],
  ['NaN', () => ({ score: Number.NaN }), 'value.score'],
  ['Infinity in an array', () => [1, Infinity], 'value[1]'],
  ['Map', () => ({ m: new Map([[1, 2]]) }), 'value.m'],
  ['undefined', () => undefined, 'value'],
];

describe.each([
  ['memory', () => store()],
  ['redis (validated before any command)', () => new RedisStateStore('redis://127.0.0.1:1')],
] as const)('%s store: invalid input is a typed error', (_name, make) => {
  it.each(badValues)('value with %s', async (_what, value, field) => {
    const s = make();
    try {
      await expectWhaleError(() => s.set('k', value()), 'ERR_INVALID_ARG', field);
    } finally {
      await s.close();
    }
  });

  it('ttlMs must be a positive finite number', async () => {
    const s = make();
    try {
      for (const ttl of [Infinity, Number.NaN, -1, 0, '100' as unknown as number, 1e20]) {
        await expectWhaleError(() => s.set('k', 1, ttl), 'ERR_INVALID_ARG', 'ttlMs');
      }
      await expectWhaleError(() => s.set('', 1), 'ERR_INVALID_ARG', 'key');
      await expectWhaleError(() => s.get(42 as unknown as string), 'ERR_INVALID_ARG', 'key');
    } finally {
      await s.close();
    }
  });
});
