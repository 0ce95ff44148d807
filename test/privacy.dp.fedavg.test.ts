// DP-FedAvg: clipping, the noise actually added (central and client-side), adaptive clipping, accounting, and `whale privacy`.
import { describe, expect, it } from 'vitest';

import { main } from '../src/cli/main.js';
import { clipInPlace, l2Norm } from '../src/core/federation/privacy/clipping.js';
import { DpFedAvg, updateNoiseMultiplier } from '../src/core/federation/privacy/dp-fedavg.js';
import { addGaussianNoise, seededWords } from '../src/core/federation/privacy/gaussian.js';
import { epsilonFor } from '../src/core/federation/privacy/rdp.js';
import { expectWhaleError, randomRows } from './helpers.js';

/** Sample standard deviation. */
function std(v: ArrayLike<number>): number {
  let s = 0,
    s2 = 0;
  for (let i = 0; i < v.length; i++) {
    s += v[i]!;
    s2 += v[i]! * v[i]!;
  }
  const m = s / v.length;
  return Math.sqrt(s2 / v.length - m * m);
}

describe('clipping and noise', () => {
  it('clips to the norm bound and leaves smaller updates alone', () => {
    const [big, small] = randomRows(2, 1000, 7, 1);
    const before = l2Norm(small!.map((x) => x * 0.001));
    const s = small!.map((x) => x * 0.001);
    expect(clipInPlace(s, 1).scale).toBe(1);
    expect(l2Norm(s)).toBe(before);
    const r = clipInPlace(big!, 2);
    expect(r.norm).toBeGreaterThan(2);
    expect(l2Norm(big!)).toBeLessThanOrEqual(2);
    expect(l2Norm(big!)).toBeGreaterThan(2 * (1 - 1e-5));
  });

  it('draws N(0, s²): sample moments within their sampling error', () => {
    const n = 200_000,
      s = 3;
    const v = new Float64Array(n);
    addGaussianNoise(v, s);
    let mean = 0,
      kurt = 0;
    for (const x of v) mean += x / n;
    const sd = std(v);
    for (const x of v) kurt += ((x - mean) / sd) ** 4 / n;
    expect(Math.abs(mean)).toBeLessThan((5 * s) / Math.sqrt(n)); // 5 standard errors
    expect(Math.abs(sd / s - 1)).toBeLessThan(5 / Math.sqrt(2 * n));
    expect(Math.abs(kurt - 3)).toBeLessThan(5 * Math.sqrt(24 / n));
  });
});

describe('DpFedAvg', () => {
  const clients = 20,
    params = 20_000;

  it('central: mean of clipped updates plus N(0, (σC)²)/m, and ε from the accountant', () => {
    const rows = randomRows(clients, params, 11, 0.05); // norms ≈ 7 > C
    const dp = new DpFedAvg({ clip: 1, noiseMultiplier: 1.5, sampleRate: 0.1, random: seededWords(3) });
    const r = dp.aggregate(rows);
    const exact = new Float64Array(params);
    for (const row of rows) {
      const c = Float32Array.from(row);
      clipInPlace(c, 1);
      for (let i = 0; i < params; i++) exact[i]! += c[i]! / clients;
    }
    const noise = r.mean.map((x, i) => x - exact[i]!);
    const expected = (1.5 * 1) / clients;
    expect(Math.abs(std(noise) / expected - 1)).toBeLessThan(5 / Math.sqrt(2 * params));
    expect(r.clipped).toBe(clients);
    expect(r.epsilon).toBeCloseTo(epsilonFor({ sampleRate: 0.1, noiseMultiplier: 1.5, steps: 1 }, 1e-5).epsilon, 12);
    dp.aggregate(rows);
    expect(dp.accountant.steps).toBe(2);
    expect(dp.accountant.getEpsilon(1e-5)).toBeCloseTo(
      epsilonFor({ sampleRate: 0.1, noiseMultiplier: 1.5, steps: 2 }, 1e-5).epsilon,
      12,
    );
  });

  it('client-side: every learner adds its share, the sum carries the same noise as central', () => {
    const rows = randomRows(clients, params, 12, 0.05);
    const dp = new DpFedAvg({ clip: 1, noiseMultiplier: 2, sampleRate: 0.1, mode: 'client', random: seededWords(4) });
    const exact = new Float64Array(params);
    const sent = rows.map((row) => {
      const c = Float32Array.from(row);
      clipInPlace(c, 1);
      for (let i = 0; i < params; i++) exact[i]! += c[i]! / clients;
      const u = Float32Array.from(row);
      expect(dp.privatize(u, clients)).toBe(false); // was clipped
      return u;
    });
    const r = dp.aggregate(
      sent,
      sent.map(() => false),
    );
    const noise = r.mean.map((x, i) => x - exact[i]!);
    expect(Math.abs(std(noise) / (2 / clients) - 1)).toBeLessThan(5 / Math.sqrt(2 * params));
    expect(r.clipped).toBe(clients);
  });

  it('adaptive clipping moves C to the target quantile of the norms (Andrew et al. 2021)', () => {
    // Norms spread between 1 and 10; the median norm is about 5.5.
    const rows = Array.from({ length: 101 }, (_, c) => {
      const v = new Float32Array(10);
      v[0] = 1 + (9 * c) / 100;
      return v;
    });
    const dp = new DpFedAvg({
      clip: 0.1,
      noiseMultiplier: 0,
      sampleRate: 1,
      adaptive: { targetQuantile: 0.5, learningRate: 0.2, countNoiseMultiplier: 1 },
    });
    for (let round = 0; round < 200; round++) dp.aggregate(rows);
    expect(Math.abs(dp.clip - 5.5)).toBeLessThan(0.3);
    // With noise, part of σ pays for the count: z_Δ = (z^-2 - (2σ_b)^-2)^(-1/2) > z.
    expect(updateNoiseMultiplier(1, 5)).toBeCloseTo((1 - 1 / 100) ** -0.5, 12);
    expect(
      new DpFedAvg({
        clip: 1,
        noiseMultiplier: 1,
        sampleRate: 0.1,
        adaptive: { targetQuantile: 0.5, learningRate: 0.2, countNoiseMultiplier: 5 },
      }).updateNoise,
    ).toBeGreaterThan(1);
  });

  it('refuses bad options and inputs with typed errors', async () => {
    await expectWhaleError(
      () => new DpFedAvg({ clip: 0, noiseMultiplier: 1, sampleRate: 0.1 }),
      'ERR_INVALID_OPTION',
      'clip',
    );
    await expectWhaleError(
      () => new DpFedAvg({ clip: 1, noiseMultiplier: NaN, sampleRate: 0.1 }),
      'ERR_INVALID_OPTION',
      'noiseMultiplier',
    );
    await expectWhaleError(
      () => new DpFedAvg({ clip: 1, noiseMultiplier: 1, sampleRate: 0 }),
      'ERR_INVALID_OPTION',
      'sampleRate',
    );
    await expectWhaleError(
      () =>
        new DpFedAvg({
          clip: 1,
          noiseMultiplier: 1,
          sampleRate: 0.1,
          adaptive: { targetQuantile: 0.5, learningRate: 0.2, countNoiseMultiplier: 0.4 },
        }),
      'ERR_INVALID_OPTION',
      'adaptive.countNoiseMultiplier',
    );
    const dp = new DpFedAvg({ clip: 1, noiseMultiplier: 1, sampleRate: 0.1 });
    await expectWhaleError(() => dp.aggregate([]), 'ERR_NO_CLIENTS', 'updates');
    await expectWhaleError(
      () => dp.aggregate([new Float32Array(3), new Float32Array(4)]),
      'ERR_SHAPE_MISMATCH',
      'updates[1]',
    );
    await expectWhaleError(() => dp.aggregate([Float32Array.of(1, NaN)]), 'ERR_NON_FINITE', 'update');
    expect(dp.accountant.steps).toBe(0); // nothing was spent by refused calls
  });
});

describe('whale privacy', () => {
  const run = async (...args: string[]) => {
    let out = '',
      err = '';
    const code = await main(['privacy', ...args], { out: (s) => void (out += s), err: (s) => void (err += s) });
    return { code, out, err };
  };

  it('prints ε and the optimal order for the compute_dp_sgd_privacy example', async () => {
    const r = await run('--sample-rate', '0.01', '--noise-multiplier', '1.1', '--steps', '10000', '--delta', '1e-5');
    expect(r.code).toBe(0);
    const { epsilon, order } = epsilonFor({ sampleRate: 0.01, noiseMultiplier: 1.1, steps: 10000 }, 1e-5);
    expect(r.out).toContain(`eps = ${Number(epsilon.toPrecision(6))} and delta = 0.00001`);
    expect(r.out).toContain(`The optimal RDP order is ${order}.`);
    const j = JSON.parse(
      (await run('--sample-rate', '0.01', '--noise-multiplier', '1.1', '--steps', '10000', '--delta', '1e-5', '--json'))
        .out,
    );
    expect(j.epsilon).toBe(epsilon);
  });

  it('prints the σ needed for a target ε', async () => {
    const r = await run('--sample-rate', '0.04', '--epsilon', '8', '--epochs', '90', '--delta', '1e-5', '--json');
    expect(r.code).toBe(0);
    const j = JSON.parse(r.out);
    expect(j.steps).toBe(2250);
    expect(Math.abs(j.noiseMultiplier - 1.416)).toBeLessThan(5e-5);
    expect(j.epsilon).toBeLessThanOrEqual(8);
  });

  it('exits 2 with one line naming the option on bad usage', async () => {
    for (const args of [
      ['--sample-rate', '2', '--noise-multiplier', '1', '--steps', '10'],
      ['--sample-rate', '0.1', '--steps', '10'],
      ['--sample-rate', '0.1', '--noise-multiplier', '1'],
      ['--bogus'],
    ]) {
      const r = await run(...args);
      expect(r.code).toBe(2);
      expect(r.err).toMatch(/^whale privacy: .+\n$/);
    }
    expect((await run('--sample-rate', '2', '--noise-multiplier', '1', '--steps', '10')).err).toContain(
      '--sample-rate',
    );
  });
});
