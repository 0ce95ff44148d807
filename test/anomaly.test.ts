import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

import { describe, expect, it } from 'vitest';

import { isWhaleError } from '../src/common/errors.js';
import {
  ANOMALY_DEFAULTS,
  AnomalyDetector,
  AnomalyDetectorBank,
} from '../src/core/monitoring/health/anomaly-detector.js';
import { ReferenceAnomalyDetector } from '../src/core/monitoring/health/anomaly-detector-reference.js';

/** Native and reference do the same double operations in the same order; this bounds any libm difference. */
const TOLERANCE = 1e-12;

const NAB_DIR = [process.env.WHALE_NAB_DIR, resolve('../shared/data/nab-dev'), '/work/shared/data/nab-dev'].find(
  (d): d is string => d !== undefined && existsSync(join(d, 'data')),
);

function nabFiles(): Array<{ name: string; values: Float64Array }> {
  if (!NAB_DIR) throw new Error('NAB dev data not found: set WHALE_NAB_DIR to the nab-dev folder');
  const out: Array<{ name: string; values: Float64Array }> = [];
  for (const cat of readdirSync(join(NAB_DIR, 'data')).sort()) {
    for (const f of readdirSync(join(NAB_DIR, 'data', cat)).sort()) {
      const rows = readFileSync(join(NAB_DIR, 'data', cat, f), 'utf8')
        .trim()
        .split('\n')
        .slice(1);
      const values = Float64Array.from(rows, (r) => Number(r.split(',')[1]));
      out.push({ name: `${cat}/${f}`, values });
    }
  }
  return out;
}

function reference(
  values: ArrayLike<number>,
  options?: ConstructorParameters<typeof ReferenceAnomalyDetector>[0],
): Float64Array {
  const r = new ReferenceAnomalyDetector(options);
  return Float64Array.from(Array.from(values, (v) => r.update(v)));
}

function maxDiff(a: Float64Array, b: Float64Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

/** Deterministic pseudo-random normal noise. */
function noise(n: number, seed: number): Float64Array {
  let s = seed >>> 0;
  const u = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) + 1) / 4294967297;
  return Float64Array.from({ length: n }, () => Math.sqrt(-2 * Math.log(u())) * Math.cos(2 * Math.PI * u()));
}

function expectCode(fn: () => unknown, code: string, field: string): void {
  try {
    fn();
  } catch (err) {
    expect(isWhaleError(err)).toBe(true);
    expect((err as { code: string }).code).toBe(code);
    expect((err as { field: string }).field).toBe(field);
    return;
  }
  throw new Error('expected a WhaleError');
}

describe('AnomalyDetector: native against the TS reference', () => {
  it('matches on every NAB dev series, batched and point by point', () => {
    const files = nabFiles();
    expect(files.length).toBeGreaterThan(0);
    for (const f of files) {
      const ref = reference(f.values);
      // No timestamps here: machine_temperature_system_failure.csv has one row out of time order.
      const { scores, anomalies } = new AnomalyDetector().updateBatch(f.values);
      expect(maxDiff(scores, ref), f.name).toBeLessThanOrEqual(TOLERANCE);
      for (let i = 0; i < ref.length; i++)
        expect(anomalies[i], `${f.name}[${i}]`).toBe(ref[i]! >= ANOMALY_DEFAULTS.threshold ? 1 : 0);
      const single = new AnomalyDetector();
      const n = Math.min(f.values.length, 1500);
      const one = Float64Array.from({ length: n }, (_, i) => single.update(f.values[i]!).score);
      expect(maxDiff(one, ref.subarray(0, n)), f.name).toBeLessThanOrEqual(TOLERANCE);
    }
  });

  it('matches with non-default options', () => {
    const x = noise(5000, 3).map((v, i) => v + (i > 4000 ? 4 : 0) + Math.sin(i / 20));
    const options = {
      window: 5,
      codebookSize: 7,
      levels: 2,
      vigilance: 0.2,
      spread: 2,
      rateHorizon: 300,
      warmupPoints: 50,
      refractoryPoints: 10,
      threshold: 0.8,
    };
    const d = new AnomalyDetector(options);
    expect(maxDiff(d.updateBatch(x).scores, reference(x, options))).toBeLessThanOrEqual(TOLERANCE);
  });
});

describe('AnomalyDetector: behaviour', () => {
  it('stays quiet on constant and on learned periodic noisy series, reports a level shift and a spike once', () => {
    const flat = new Float64Array(3000).fill(45);
    const r1 = new AnomalyDetector().updateBatch(flat);
    expect(r1.anomalies.every((a) => a === 0)).toBe(true);
    expect(r1.scores.every((s) => s === 0)).toBe(true);

    const n = 8000;
    const base = noise(n, 11).map((v, i) => 10 + 5 * Math.sin((2 * Math.PI * i) / 288) + 0.3 * v);
    const shifted = base.map((v, i) => (i >= 6000 ? v + 8 : v));
    const r2 = new AnomalyDetector().updateBatch(shifted);
    const hits = [...r2.anomalies.keys()].filter((i) => r2.anomalies[i] === 1 && i >= 1500);
    expect(hits.filter((i) => i < 6000)).toEqual([]);
    expect(hits.length).toBeGreaterThanOrEqual(1);
    expect(hits[0]).toBeGreaterThanOrEqual(6000);
    expect(hits[0]).toBeLessThan(6050);

    const spiked = base.slice();
    spiked[7000]! += 15;
    const r3 = new AnomalyDetector().updateBatch(spiked);
    expect(r3.anomalies[7000]).toBe(1);
    expect(r3.scores.every((s) => s >= 0 && s <= 1)).toBe(true);
  });

  it('detects a change of variance in a noisy series', () => {
    const x = noise(8000, 5).map((v, i) => 50 + v * (i >= 6000 ? 6 : 1));
    const r = new AnomalyDetector().updateBatch(x);
    const first = r.anomalies.indexOf(1, 6000);
    expect(first).toBeGreaterThanOrEqual(6000);
    expect(first).toBeLessThan(6100);
  });

  it('reports a missing daily peak (a change of the periodic pattern, inside the seen range) within that day', () => {
    const day = 288;
    const skipped = 11 * day;
    const z = noise(14 * day, 1);
    const x = z.map((v, i) => {
      const phase = i % day;
      const high = phase >= 100 && phase < 180 && !(i >= skipped && i < skipped + day);
      return (high ? 80 : 20) + 1.5 * v;
    });
    const r = new AnomalyDetector().updateBatch(x);
    const hits = [...r.anomalies.keys()].filter((i) => r.anomalies[i] === 1 && i >= 1000);
    expect(hits.length).toBeGreaterThanOrEqual(1);
    expect(hits[0]).toBeGreaterThanOrEqual(skipped + 100);
    expect(hits[0]).toBeLessThan(skipped + 180);
    expect(Array.from(r.scores.subarray(skipped + 100, skipped + 180)).some((s) => s > 0 && s < 1)).toBe(true);
  });

  it('irregular spikes that recur (shape, timing and height vary) are not reported again and again', () => {
    const n = 8000;
    const z = noise(n, 7);
    const u = noise(n, 8);
    const x = z.map((v, i) => {
      const k = i % 250;
      const at = Math.floor(Math.abs(u[i - k]!) * 3); // timing jitter 0-2+ points
      const wide = u[i - k + 1]! > 0; // one or two points wide
      const spike = i > 250 && (k === at || (wide && k === at + 1));
      return 20 + 3 * Math.sin((2 * Math.PI * i) / 50) + v + (spike ? 9 + 3 * Math.abs(u[i - k + 2]!) : 0);
    });
    const r = new AnomalyDetector().updateBatch(x);
    const hits = [...r.anomalies.keys()].filter((i) => r.anomalies[i] === 1 && i >= 1000);
    // 28 spikes after point 1000; only the few that set a new maximum (range excursions) may be reported.
    expect(hits.length).toBeLessThanOrEqual(4);
  });

  it('a level shift beyond the range is reported once, not again by the slower time scales', () => {
    const x = noise(4000, 12).map((v, i) => 30 + 0.5 * v + 4 * Math.sin(i / 15) + (i >= 3000 ? 20 : 0));
    const r = new AnomalyDetector().updateBatch(x);
    const hits = [...r.anomalies.keys()].filter((i) => r.anomalies[i] === 1 && i >= 2000);
    expect(hits).toEqual([3000]);
  });

  it('a single point scores 0; warm-up points score 0', () => {
    expect(new AnomalyDetector().update(1e6)).toEqual({ score: 0, anomaly: false });
    const r = new AnomalyDetector({ warmupPoints: 100 }).updateBatch(noise(100, 1).map((v) => v * 1e3));
    expect(r.scores.every((s) => s === 0)).toBe(true);
  });

  it('huge and tiny magnitudes give the same scores as the unscaled series', () => {
    const x = noise(4000, 9).map((v, i) => v + (i > 3000 ? 5 : 0) + 3 * Math.sin(i / 40));
    const ref = new AnomalyDetector().updateBatch(x).anomalies;
    for (const k of [1e290, 1e-290]) {
      const r = new AnomalyDetector().updateBatch(x.map((v) => v * k));
      expect(r.scores.every(Number.isFinite)).toBe(true);
      expect(Array.from(r.anomalies)).toEqual(Array.from(ref));
    }
  });

  it('NaN, Infinity, > 1e300, bad types and out-of-order timestamps are typed errors that change nothing', () => {
    const d = new AnomalyDetector();
    expectCode(() => d.update(NaN), 'ERR_NON_FINITE', 'value');
    expectCode(() => d.update(Infinity), 'ERR_NON_FINITE', 'value');
    expectCode(() => d.update(2e300), 'ERR_INVALID_ARG', 'value');
    expectCode(() => d.update('3' as unknown as number), 'ERR_INVALID_ARG', 'value');
    expectCode(() => d.updateBatch(Float64Array.of(1, 2, NaN)), 'ERR_NON_FINITE', 'values[2]');
    expectCode(() => d.updateBatch([1, 2] as unknown as Float64Array), 'ERR_INVALID_ARG', 'values');
    expectCode(() => d.updateBatch(Float64Array.of(1, 2), Float64Array.of(5, 4)), 'ERR_INVALID_ARG', 'timestampsMs[1]');
    expectCode(() => d.updateBatch(Float64Array.of(1, 2), Float64Array.of(5)), 'ERR_INVALID_ARG', 'timestampsMs');
    d.update(1, 1000);
    expectCode(() => d.update(1, 999), 'ERR_INVALID_ARG', 'timestampMs');
    // Nothing but the one good point was applied: the stream continues as in a fresh detector.
    const x = noise(3000, 2).map((v, i) => v + (i > 2500 ? 6 : 0));
    const fresh = new AnomalyDetector();
    fresh.update(1, 1000);
    expect(Array.from(d.updateBatch(x).scores)).toEqual(Array.from(fresh.updateBatch(x).scores));
  });

  it('bad options are ERR_INVALID_OPTION naming the option', () => {
    expectCode(() => new AnomalyDetector({ threshold: 0 }), 'ERR_INVALID_OPTION', 'options.threshold');
    expectCode(() => new AnomalyDetector({ window: 2.5 }), 'ERR_INVALID_OPTION', 'options.window');
    expectCode(() => new AnomalyDetector({ codebookSize: NaN }), 'ERR_INVALID_OPTION', 'options.codebookSize');
    expectCode(() => new AnomalyDetector({ nope: 1 } as never), 'ERR_INVALID_OPTION', 'options.nope');
  });

  it('reset() starts over', () => {
    const x = noise(2500, 4).map((v, i) => v + (i > 2000 ? 9 : 0));
    const d = new AnomalyDetector();
    const a = d.updateBatch(x).scores;
    d.reset();
    expect(Array.from(d.updateBatch(x).scores)).toEqual(Array.from(a));
  });
});

describe('AnomalyDetectorBank', () => {
  it('keeps series apart; update and updateMany agree with one detector per series', () => {
    const names = ['cpu', 'mem', 'latency', 'queue'];
    const n = 3000;
    const data = names.map((_, s) =>
      noise(n, 20 + s).map((v, i) => 100 * s + v + Math.sin(i / (10 + s)) * 4 + (i === 2500 + s ? 30 : 0)),
    );
    const bank = new AnomalyDetectorBank();
    const many = new AnomalyDetectorBank();
    const series: string[] = [];
    const values = new Float64Array(n * names.length);
    for (let i = 0; i < n; i++)
      names.forEach((name, s) => {
        series.push(name);
        values[i * names.length + s] = data[s]![i]!;
      });
    const batched = many.updateMany(series, values);
    names.forEach((name, s) => {
      const single = new AnomalyDetector().updateBatch(data[s]!).scores;
      for (let i = 0; i < n; i++) {
        expect(bank.update(name, data[s]![i]!).score).toBe(single[i]);
        expect(batched.scores[i * names.length + s]).toBe(single[i]);
      }
    });
    expect(bank.series()).toEqual(names);
    expect(bank.stateBytes()).toBeGreaterThan(0);
  });

  it('updateMany is all or nothing and names the point at fault', () => {
    const bank = new AnomalyDetectorBank();
    expectCode(() => bank.updateMany(['a', 'b', 'a'], Float64Array.of(1, 2, Infinity)), 'ERR_NON_FINITE', 'values[2]');
    expectCode(() => bank.updateMany(['a', ''], Float64Array.of(1, 2)), 'ERR_INVALID_ARG', 'series[1]');
    expectCode(
      () => bank.updateMany(['a', 'a'], Float64Array.of(1, 2), Float64Array.of(2, 1)),
      'ERR_INVALID_ARG',
      'timestampsMs[1]',
    );
    expectCode(() => bank.update('', 1), 'ERR_INVALID_ARG', 'series');
    const fresh = new AnomalyDetector();
    const x = noise(500, 8);
    for (let i = 0; i < x.length; i++) expect(bank.update('a', x[i]!).score).toBe(fresh.update(x[i]!).score);
  });
});
