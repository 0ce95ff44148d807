// Bad input gets a typed error naming the field (or client); never a crash.
import { describe, expect, it } from 'vitest';

import { Aggregator } from '../src/core/federation/learning/aggregator.js';
import { fedavgRef, medianRef } from '../src/core/federation/learning/reference.js';
import type { Strategy } from '../src/core/federation/learning/types.js';
import { native } from '../src/native/loader.js';
import { expectClose, expectWhaleError, randomRows } from './helpers.js';

const STRATEGIES: Strategy[] = ['fedavg', 'median', 'trimmed-mean', 'krum', 'multi-krum'];

describe('argument errors', () => {
  const rows = randomRows(5, 64, 1);

  it.each(STRATEGIES)('%s: empty client list', async (strategy) => {
    await expectWhaleError(() => new Aggregator({ strategy }).aggregateSync([]), 'ERR_NO_CLIENTS', 'clients');
    await expectWhaleError(() => new Aggregator({ strategy }).aggregate([]), 'ERR_NO_CLIENTS', 'clients');
  });

  it('mismatched lengths name the client', async () => {
    const bad = [...rows.slice(0, 2), new Float32Array(63), ...rows.slice(3)];
    const e = await expectWhaleError(
      () => new Aggregator({ strategy: 'fedavg' }).aggregateSync(bad),
      'ERR_SHAPE_MISMATCH',
      'clients[2]',
    );
    expect(e.client).toBe(2);
  });

  it('zero-length updates and wrong contiguous shapes', async () => {
    await expectWhaleError(
      () => new Aggregator({ strategy: 'median' }).aggregateSync([new Float32Array(0)]),
      'ERR_SHAPE_MISMATCH',
      'clients',
    );
    await expectWhaleError(
      () => new Aggregator({ strategy: 'median' }).aggregateSync({ data: new Float32Array(10), clients: 3, params: 4 }),
      'ERR_SHAPE_MISMATCH',
      'clients.data',
    );
    await expectWhaleError(
      () => new Aggregator({ strategy: 'median' }).aggregateSync({ data: new Float32Array(10), clients: 0, params: 4 }),
      'ERR_NO_CLIENTS',
      'clients.clients',
    );
  });

  it('a client that is not a Float32Array', async () => {
    const bad = [rows[0]!, new Float64Array(64) as unknown as Float32Array];
    await expectWhaleError(
      () => new Aggregator({ strategy: 'fedavg' }).aggregateSync(bad),
      'ERR_INVALID_ARG',
      'clients[1]',
    );
  });

  it.each([
    [[1, 0, 1, 1, 1], 'weights[1]'],
    [[1, 1, -2, 1, 1], 'weights[2]'],
    [[1, 1, 1, NaN, 1], 'weights[3]'],
    [[1, 1, 1, 1, Infinity], 'weights[4]'],
    [[1, 1], 'weights'],
  ])('weights %j are rejected (%s)', async (weights, field) => {
    await expectWhaleError(
      () => new Aggregator({ strategy: 'fedavg' }).aggregateSync(rows, weights),
      'ERR_INVALID_WEIGHT',
      field,
    );
  });

  it('Krum needs n >= 2f + 3', async () => {
    await expectWhaleError(
      () => new Aggregator({ strategy: 'krum', f: 2 }).aggregateSync(rows),
      'ERR_INVALID_OPTION',
      'options.f',
    );
    await expectWhaleError(
      () => new Aggregator({ strategy: 'multi-krum', f: 1, m: 6 }).aggregateSync(rows),
      'ERR_INVALID_OPTION',
      'options.m',
    );
    expect(new Aggregator({ strategy: 'krum', f: 1 }).aggregateSync(rows).selected).toHaveLength(1);
  });

  it.each([
    [{ strategy: 'trimmed-mean', beta: 0.5 }, 'options.beta'],
    [{ strategy: 'trimmed-mean', beta: -0.1 }, 'options.beta'],
    [{ strategy: 'trimmed-mean', beta: null }, 'options.beta'], // was silently the default (hardening round 2, item 21)
    [{ strategy: 'krum', f: null }, 'options.f'],
    [{ strategy: 'krum', f: 1.5 }, 'options.f'],
    [{ strategy: 'multi-krum', m: 0 }, 'options.m'],
    [{ strategy: 'mean' }, 'options.strategy'],
    [{ strategy: 'fedavg', nonFinite: 'ignore' }, 'options.nonFinite'],
    [{ strategy: 'fedavg', device: 'gpu' }, 'options.device'],
    [{ strategy: 'fedavg', device: 'cuda:x' }, 'options.device'],
  ])('options %j are rejected', async (opts, field) => {
    await expectWhaleError(() => new Aggregator(opts as never), 'ERR_INVALID_OPTION', field);
  });
});

describe('non-finite values', () => {
  const n = 6,
    p = 1000;
  const make = (value: number): Float32Array[] => {
    const rows = randomRows(n, p, 3);
    rows[2]![417] = value;
    return rows;
  };

  it.each(STRATEGIES.flatMap((s) => [NaN, Infinity, -Infinity].map((v) => [s, v] as const)))(
    '%s rejects %f by default, naming the client',
    async (strategy, value) => {
      const e = await expectWhaleError(
        () => new Aggregator({ strategy, f: 1 }).aggregateSync(make(value)),
        'ERR_NON_FINITE',
        'clients[2]',
      );
      expect(e.client).toBe(2);
      expect(e.message).toMatch(/first at index 417/);
    },
  );

  it('the async path rejects too', async () => {
    await expectWhaleError(
      () => new Aggregator({ strategy: 'fedavg', asyncThresholdBytes: 0 }).aggregate(make(NaN)),
      'ERR_NON_FINITE',
      'clients[2]',
    );
  });

  it("policy 'skip' drops the client and reports it", async () => {
    const rows = make(NaN);
    const rest = rows.filter((_, i) => i !== 2);
    const weights = [1, 2, 3, 4, 5, 6];
    const r = await new Aggregator({ strategy: 'fedavg', nonFinite: 'skip' }).aggregate(rows, weights);
    expect(r.skipped).toEqual([2]);
    expect(r.used).toEqual([0, 1, 3, 4, 5]);
    expectClose(r.params, fedavgRef(rest, [1, 2, 4, 5, 6]), 1e-6, 1e-6);
    const m = new Aggregator({ strategy: 'median', nonFinite: 'skip' }).aggregateSync(rows);
    expect(m.params).toEqual(medianRef(rest));
    const k = new Aggregator({ strategy: 'krum', f: 1, nonFinite: 'skip' }).aggregateSync(rows);
    expect(k.selected![0]).not.toBe(2);
    expect(k.used).not.toContain(2);
  });

  it("policy 'skip' with every client bad is an error", async () => {
    const rows = [new Float32Array([NaN, 1]), new Float32Array([1, Infinity])];
    await expectWhaleError(
      () => new Aggregator({ strategy: 'fedavg', nonFinite: 'skip' }).aggregateSync(rows),
      'ERR_NO_CLIENTS',
      'clients',
    );
  });
});

describe('the binding itself refuses malformed calls without crashing', () => {
  const call = (opts: unknown) => () => native().aggregate(opts as never, false);
  it.each([
    [undefined, /options/],
    [{ strategy: 'fedavg' }, /clients/],
    [{ strategy: 'fedavg', clients: [new Float32Array(2)], weights: [1] }, /weights/],
    [{ strategy: 'nope', clients: [], weights: new Float64Array(0) }, /strategy/],
    [
      { strategy: 'fedavg', clients: [new Float32Array(2)], weights: new Float64Array([1]), out: new Float32Array(3) },
      /out/,
    ],
  ])('%j', (opts, pattern) => {
    let err: unknown;
    try {
      call(opts)();
    } catch (e) {
      err = e;
    }
    expect((err as { code?: string }).code).toBe('ERR_INVALID_ARG');
    expect((err as Error).message).toMatch(pattern);
  });
});
