// LocalBus retention: bounded by bytes, records and age; records a live group has not
// committed are never dropped (publish fails with a retriable ERR_OVERLOADED instead).
import { afterEach, describe, expect, it } from 'vitest';

import { createEnvelope, type Envelope } from '../src/transport/envelope.js';
import { LocalBus, type LocalBusOptions } from '../src/transport/local-bus.js';
import { expectWhaleError, until } from './helpers.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const msg = (payload: unknown) => createEnvelope({ type: 'blob', source: 'test', payload });
const buses: LocalBus[] = [];
const bus = (o: LocalBusOptions = {}) => {
  const b = new LocalBus(o);
  buses.push(b);
  return b;
};
afterEach(async () => {
  await Promise.all(buses.splice(0).map((b) => b.close()));
});

describe('LocalBus retention', () => {
  it('30 consumed 10 MB messages do not stay alive: retained bytes stay under maxBytes', async () => {
    const b = bus(); // default budget
    const big = 'x'.repeat(10 * 2 ** 20);
    let handled = 0;
    await b.subscribe('t.big', () => void handled++, { group: 'g' });
    for (let i = 0; i < 30; i++) {
      await b.publish('t.big', msg({ i, big }), { key: 'k' });
      await until(() => handled === i + 1, 5_000); // consumed before the next one
    }
    expect(handled).toBe(30);
    const s = b.stats();
    expect(s.retainedBytes).toBeLessThanOrEqual(s.maxBytes);
    expect(s.maxBytes).toBeLessThan(30 * big.length);
    expect(s.retainedRecords).toBeLessThan(30);
  }, 60_000);

  it('never drops what a live group has not committed: publish waits, is refused after maxBlockMs, then everything is delivered in order', async () => {
    const b = bus({ maxBytes: 64 * 1024, partitions: 1, maxBlockMs: 100 });
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const seen: number[] = [];
    await b.subscribe(
      't.slow',
      async (e) => {
        await gate;
        seen.push((e.payload as { i: number }).i);
      },
      { group: 'slow' },
    );
    const data = 'y'.repeat(1000);
    let accepted = 0;
    const err = await expectWhaleError(async () => {
      while (accepted < 10_000) {
        await b.publish('t.slow', msg({ i: accepted, data }), { key: 'k' });
        accepted++;
      }
    }, 'ERR_OVERLOADED');
    expect(err.retriable).toBe(true);
    expect(err.message).toContain('slow');
    expect(accepted).toBeGreaterThan(10);
    expect(b.stats().rejected).toBe(1);
    release();
    expect(await until(() => seen.length === accepted, 10_000), `delivered ${seen.length} of ${accepted}`).toBe(true);
    expect(seen).toEqual(Array.from({ length: accepted }, (_, i) => i));
    // Once committed, the records may go: publishing works again.
    await b.publish('t.slow', msg({ i: accepted, data }), { key: 'k' });
    expect(await until(() => seen.length === accepted + 1, 5_000)).toBe(true);
    expect(b.stats().retainedBytes).toBeLessThanOrEqual(64 * 1024);
  });

  it('the per-partition record bound also holds back for a live group, and trims once committed', async () => {
    const b = bus({ retention: 50, partitions: 1, maxBlockMs: 0 });
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let handled = 0;
    await b.subscribe(
      't.count',
      async () => {
        await gate;
        handled++;
      },
      { group: 'g' },
    );
    for (let i = 0; i < 50; i++) await b.publish('t.count', msg({ i }));
    await expectWhaleError(() => b.publish('t.count', msg({ i: 50 })), 'ERR_OVERLOADED');
    release();
    expect(await until(() => handled === 50, 5_000)).toBe(true);
    await sleep(20); // the commit follows the handler's return
    for (let i = 0; i < 50; i++) await b.publish('t.count', msg({ i }));
    expect(b.retained('t.count').length).toBeLessThanOrEqual(50);
  });

  it('a publisher faster than its consumer is slowed down to it, not failed, and order per key holds', async () => {
    const b = bus({ maxBytes: 32 * 1024, retention: 20, partitions: 2 });
    const seen = new Map<string, number[]>();
    await b.subscribe(
      't.fast',
      async (e) => {
        await sleep(0);
        const { k, i } = e.payload as { k: string; i: number };
        seen.set(k, [...(seen.get(k) ?? []), i]);
      },
      { group: 'g' },
    );
    const sends: Array<Promise<void>> = [];
    for (let i = 0; i < 400; i++) {
      const k = `k${i % 3}`;
      sends.push(b.publish('t.fast', msg({ k, i, pad: 'p'.repeat(500) }), { key: k })); // 400 in flight
    }
    await Promise.all(sends);
    expect(await until(() => [...seen.values()].reduce((n, v) => n + v.length, 0) === 400, 10_000)).toBe(true);
    for (let r = 0; r < 3; r++)
      expect(seen.get(`k${r}`)).toEqual(Array.from({ length: 400 }, (_, i) => i).filter((i) => i % 3 === r));
    expect(b.stats().rejected).toBe(0);
    expect(b.stats().retainedBytes).toBeLessThanOrEqual(32 * 1024);
  });

  it('keeps the newest records, in order, when nobody reads the topic', async () => {
    const b = bus({ retention: 1_000, partitions: 2 });
    for (let i = 0; i < 5_000; i++) await b.publish('t.unread', msg({ i }), { key: 'same' });
    const kept = b
      .retained('t.unread')
      .map((r) => (JSON.parse(r.data.toString()) as Envelope<{ i: number }>).payload.i);
    expect(kept).toEqual(Array.from({ length: 1_000 }, (_, i) => 4_000 + i));
    const got: number[] = [];
    await b.subscribe('t.unread', (e) => void got.push((e.payload as { i: number }).i), {
      group: 'late',
      fromBeginning: true,
    });
    expect(await until(() => got.length === 1_000, 5_000)).toBe(true);
    expect(got).toEqual(kept);
  });

  it('a group with no live member holds nothing; on its return it resumes at the oldest retained record and the gap is counted', async () => {
    const b = bus({ retention: 10, partitions: 1 });
    const got: number[] = [];
    const sub = await b.subscribe('t.gone', (e) => void got.push((e.payload as { i: number }).i), { group: 'g' });
    await sub.close();
    for (let i = 0; i < 25; i++) await b.publish('t.gone', msg({ i }));
    await b.subscribe('t.gone', (e) => void got.push((e.payload as { i: number }).i), { group: 'g' });
    expect(await until(() => got.length === 10, 5_000)).toBe(true);
    expect(got).toEqual(Array.from({ length: 10 }, (_, i) => 15 + i));
    expect(b.stats().skipped).toBe(15);
  });

  it('drops records older than retentionMs once consumed, but keeps unconsumed ones', async () => {
    const b = bus({ retentionMs: 40, partitions: 1 });
    let handled = 0;
    await b.subscribe('t.age', () => void handled++, { group: 'fast' });
    for (let i = 0; i < 20; i++) await b.publish('t.age', msg({ i }));
    expect(await until(() => handled === 20, 5_000)).toBe(true);
    expect(await until(() => b.stats().retainedRecords === 0, 2_000), `${b.stats().retainedRecords} left`).toBe(true);
    expect(b.stats().retainedBytes).toBe(0);

    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    await b.subscribe('t.age2', () => gate, { group: 'stuck' });
    await b.publish('t.age2', msg({ i: 0 }));
    await sleep(150);
    expect(b.retained('t.age2')).toHaveLength(1);
    release();
  });

  it('refuses a message larger than the whole budget, and bad options, with typed errors', async () => {
    const b = bus({ maxBytes: 4096 });
    await expectWhaleError(() => b.publish('t.huge', msg('z'.repeat(8192))), 'ERR_PAYLOAD_TOO_LARGE', 'data');
    await expectWhaleError(() => new LocalBus({ partitions: 0 }), 'ERR_INVALID_OPTION', 'options.partitions');
    await expectWhaleError(() => new LocalBus({ maxBytes: Infinity }), 'ERR_INVALID_OPTION', 'options.maxBytes');
    await expectWhaleError(() => new LocalBus({ retentionMs: -5 }), 'ERR_INVALID_OPTION', 'options.retentionMs');
    await expectWhaleError(() => new LocalBus({ maxBlockMs: Infinity }), 'ERR_INVALID_OPTION', 'options.maxBlockMs');
    await expectWhaleError(() => b.publishRaw('t', 'text' as unknown as Buffer), 'ERR_INVALID_ARG', 'data');
    await expectWhaleError(
      () => b.publishRaw('t', Buffer.from('x'), { key: 7 as unknown as string }),
      'ERR_INVALID_ARG',
      'options.key',
    );
  });

  it('its retention timer does not hold the event loop', async () => {
    const timers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    const before = timers();
    const b = bus({ retentionMs: 1_000 });
    await b.publish('t.timer', msg({}));
    expect(timers()).toBe(before);
  });
});
