// Secure aggregation: exact sums under dropouts at every phase (complete graph and SecAgg+ neighbourhoods),
// masked inputs indistinguishable from uniform, below-threshold rounds abandoned without a sum, native = node:crypto.
import { describe, expect, it } from 'vitest';

import { SecAggClient } from '../src/core/federation/privacy/secagg/client.js';
import { runSecAggRound, type DropPlan } from '../src/core/federation/privacy/secagg/in-process.js';
import {
  addMasks,
  expandSeed,
  FixedPoint,
  nativeMasksAvailable,
  sumRows,
} from '../src/core/federation/privacy/secagg/ring.js';
import { SecAggServer } from '../src/core/federation/privacy/secagg/server.js';
import { combine, split } from '../src/core/federation/privacy/secagg/shamir.js';
import { expectWhaleError, randomRows, rng } from './helpers.js';

function inputs(n: number, length: number, fp: FixedPoint, seed = 1): Map<string, Uint32Array> {
  const rows = randomRows(n, length, seed, 0.3);
  return new Map(rows.map((r, i) => [`c${String(i).padStart(3, '0')}`, fp.encode(r).ring]));
}

function plainSum(all: Map<string, Uint32Array>, ids: readonly string[], bits: number): Uint32Array {
  const mod = 2 ** bits,
    n = all.values().next().value!.length,
    out = new Uint32Array(n);
  for (const id of ids) {
    const x = all.get(id)!;
    for (let i = 0; i < n; i++) out[i] = (out[i]! + x[i]!) % mod;
  }
  return out;
}

describe('secure aggregation', () => {
  const fp = new FixedPoint({ range: 1, maxClients: 30, bits: 32 });
  const ids = (m: Map<string, Uint32Array>) => [...m.keys()];

  it('Shamir: any t shares recover the secret, fewer do not', () => {
    const secret = new Uint8Array(32).map((_, i) => i * 7 + 1);
    const shares = split(secret, [1, 2, 3, 4, 5, 6, 7], 4);
    expect([...combine([shares[6]!, shares[0]!, shares[3]!, shares[2]!])]).toEqual([...secret]);
    expect([...combine(shares.slice(2, 6))]).toEqual([...secret]);
    expect([...combine(shares.slice(0, 3))]).not.toEqual([...secret]);
  });

  it('fixed point: clips to the range, and a sum of maxClients encodings decodes within n/(2·scale)', () => {
    const f = new FixedPoint({ range: 2, maxClients: 10, bits: 24 });
    const { ring, clipped } = f.encode(Float32Array.of(-3, -1.5, 0, 0.25, 5));
    expect(clipped).toBe(2);
    const back = f.decode(sumRows(Array(10).fill(ring), 24));
    [-20, -15, 0, 2.5, 20].forEach((v, i) =>
      expect(Math.abs(back[i]! - v)).toBeLessThanOrEqual(10 / (2 * f.scale) + 1e-12),
    );
  });

  const phases: Array<[string, (d: string[]) => DropPlan]> = [
    ['after advertising keys', (d) => ({ afterAdvertise: d })],
    ['after sharing keys', (d) => ({ afterShare: d })],
    ['after sending the masked input', (d) => ({ afterMasked: d })],
  ];

  it.each(phases)('recovers the exact sum of the survivors when 1/3 drop %s', (_name, plan) => {
    const all = inputs(12, 5000, fp);
    const dropped = ids(all).filter((_, i) => i % 3 === 1);
    const r = runSecAggRound({ inputs: all, threshold: 7, bits: 32, drops: plan(dropped) });
    // Clients dropping after their masked input arrived are still in the sum (their self masks are recovered).
    const included = plan(dropped).afterMasked ? ids(all) : ids(all).filter((id) => !dropped.includes(id));
    expect(r.included.sort()).toEqual(included);
    expect(r.sum).toEqual(plainSum(all, included, 32));
  });

  it('recovers the exact sum with dropouts spread over all phases, in a 16-bit ring and with SecAgg+ neighbourhoods', () => {
    const f16 = new FixedPoint({ range: 1, maxClients: 30, bits: 16 });
    const all = inputs(30, 3001, f16, 2);
    const list = ids(all);
    const drops = { afterAdvertise: list.slice(0, 3), afterShare: list.slice(3, 7), afterMasked: list.slice(7, 10) };
    const survivors = list.filter((id) => !drops.afterAdvertise.includes(id) && !drops.afterShare.includes(id));
    const full = runSecAggRound({ inputs: all, threshold: 12, bits: 16, drops });
    expect(full.sum).toEqual(plainSum(all, survivors, 16));
    // The neighbourhood graph is random: with 7 of the 27 advertised clients gone by the unmask
    // phase, a client keeps at least 13 - 7 = 6 >= t share holders (itself + 12 neighbours) in any
    // graph, so the round cannot be abandoned (degree 10 would leave 4 < 5 in unlucky graphs).
    const plus = runSecAggRound({ inputs: all, threshold: 5, bits: 16, degree: 12, drops });
    expect(plus.sum).toEqual(plainSum(all, survivors, 16));
    expect(plus.traffic.up.share).toBeLessThan(full.traffic.up.share / 2); // shares go to 12 neighbours, not 29
    // And the decoded sum is the float sum within the quantization error.
    const rows = randomRows(30, 3001, 2, 0.3);
    const decoded = f16.decode(plus.sum);
    for (let i = 0; i < 3001; i += 97) {
      const exact = survivors.reduce((s, id) => s + rows[list.indexOf(id)]![i]!, 0);
      expect(Math.abs(decoded[i]! - exact)).toBeLessThanOrEqual(survivors.length / (2 * f16.scale) + 1e-9);
    }
  });

  it('a single masked input is indistinguishable from uniform (chi-square on its top byte and low byte)', () => {
    const all = new Map(Array.from({ length: 5 }, (_, i) => [`c${i}`, new Uint32Array(200_000)])); // all-zero inputs
    const list = all.get('c0')!;
    const server = new SecAggServer({ threshold: 3, length: list.length, bits: 32 });
    const clients = [...all.keys()].map((id) => new SecAggClient(id, { bits: 32 }));
    const keys = server.receiveKeys(clients.map((c) => c.advertise()));
    const fwd = server.receiveShares(clients.map((c) => c.shareKeys(keys)));
    const y = clients[0]!.maskedInput(fwd.get('c0')!, all.get('c0')!).y;
    // χ² with 255 degrees of freedom; the 0.1% critical value from the Wilson–Hilferty approximation.
    const df = 255,
      z = 3.090232;
    const critical = df * (1 - 2 / (9 * df) + z * Math.sqrt(2 / (9 * df))) ** 3;
    for (const shift of [24, 0]) {
      const bins = new Float64Array(256);
      for (const v of y) bins[(v >>> shift) & 0xff]!++;
      const e = y.length / 256;
      const chi2 = bins.reduce((s, o) => s + (o - e) ** 2 / e, 0);
      expect(chi2, `byte at bit ${shift}`).toBeLessThan(critical);
    }
  });

  it('abandons a round below the threshold with ERR_BELOW_THRESHOLD and no sum', async () => {
    const all = inputs(9, 100, fp);
    const list = ids(all);
    await expectWhaleError(
      () => runSecAggRound({ inputs: all, threshold: 7, bits: 32, drops: { afterShare: list.slice(0, 3) } }),
      'ERR_BELOW_THRESHOLD',
      'u3',
    );
    await expectWhaleError(
      () => runSecAggRound({ inputs: all, threshold: 7, bits: 32, drops: { afterMasked: list.slice(0, 3) } }),
      'ERR_BELOW_THRESHOLD',
    );
    await expectWhaleError(
      () => runSecAggRound({ inputs: all, threshold: 7, bits: 32, drops: { afterAdvertise: list.slice(0, 3) } }),
      'ERR_BELOW_THRESHOLD',
      'u2',
    );
    await expectWhaleError(
      () => new SecAggServer({ threshold: 1, length: 10, bits: 32 }),
      'ERR_INVALID_OPTION',
      'threshold',
    );
  });

  it('the native mask expansion equals node:crypto ChaCha20, and the JS and native paths give the same masked sums', () => {
    expect(nativeMasksAvailable()).toBe(true);
    const r = rng(9);
    const seeds = Array.from({ length: 4 }, () => Uint8Array.from({ length: 32 }, () => Math.floor(r.uniform() * 256)));
    const n = 100_003;
    const viaNative = new Uint32Array(n);
    addMasks(viaNative, [seeds[0]!], [1], 32, 'native');
    expect(viaNative).toEqual(expandSeed(seeds[0]!, n));
    for (const bits of [32, 20]) {
      const a = Uint32Array.from({ length: n }, (_, i) => (i * 2654435761) % 2 ** bits),
        b = a.slice();
      addMasks(a, seeds, [1, -1, -1, 1], bits, 'native');
      addMasks(b, seeds, [1, -1, -1, 1], bits, 'js');
      expect(a).toEqual(b);
      expect(sumRows([a, b, a], bits, 'native')).toEqual(sumRows([a, b, a], bits, 'js'));
    }
  });

  it('refuses bad arguments with typed errors', async () => {
    await expectWhaleError(
      () => addMasks(new Uint32Array(4), [new Uint8Array(31)], [1], 32),
      'ERR_INVALID_ARG',
      'seeds[0]',
    );
    await expectWhaleError(
      () => addMasks(new Uint32Array(4), [new Uint8Array(32)], [0], 32),
      'ERR_INVALID_ARG',
      'signs[0]',
    );
    await expectWhaleError(
      () => sumRows([new Uint32Array(3), new Uint32Array(4)], 32),
      'ERR_SHAPE_MISMATCH',
      'rows[1]',
    );
    await expectWhaleError(() => new FixedPoint({ range: 1, maxClients: 1e9, bits: 16 }), 'ERR_INVALID_OPTION', 'bits');
    await expectWhaleError(() => fp.encode(Float32Array.of(NaN)), 'ERR_NON_FINITE', 'values[0]');
  });
});
