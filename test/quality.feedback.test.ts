// FeedbackAnalyzer: validation, joins with the routed request, intervals, drop detection; QualityOptimizer proposals; the latency sketch.
import { describe, expect, it } from 'vitest';

import { isWhaleError } from '../src/common/errors.js';
import { PerformanceMetrics } from '../src/core/monitoring/metrics/performance-metrics.js';
import { WhaleMetrics } from '../src/core/monitoring/metrics/whale-metrics.js';
import { LogSketch } from '../src/core/quality/metrics/log-sketch.js';
import { PerformanceWindows } from '../src/core/quality/metrics/performance-windows.js';
import { FeedbackAnalyzer, type QualityDrop } from '../src/core/quality/optimization/feedback-analyzer.js';
import { QualityOptimizer } from '../src/core/quality/optimization/quality-optimizer.js';
import { proportionDropP, wilson } from '../src/core/quality/optimization/stats.js';

function clock(start = 0) {
  const c = { t: start, now: () => c.t };
  return c;
}

describe('feedback', () => {
  it('joins feedback with the request it names', () => {
    const a = new FeedbackAnalyzer();
    a.recordRequest('r1', { model: 'cnn', version: '3', level: 'normal', task: 'digits' });
    const f = a.submitFeedback({ requestId: 'r1', thumbs: 'up', rating: 4 });
    expect(f).toMatchObject({ joined: true, route: { model: 'cnn', version: '3', level: 'normal', task: 'digits' } });
    expect(f.quality).toBeCloseTo((1 + 0.75) / 2, 12);
    const other = a.submitFeedback({ requestId: 'elsewhere', correction: 'seven', model: '2nn', version: '1' });
    expect(other).toMatchObject({ joined: false, route: { model: '2nn', version: '1' }, quality: 0 });
  });

  it('rejects what it cannot use with typed errors naming the field', () => {
    const a = new FeedbackAnalyzer();
    const cases: [unknown, string, string][] = [
      [{ requestId: 'x', rating: 6 }, 'ERR_INVALID_ARG', 'feedback.rating'],
      [{ requestId: 'x', thumbs: 'sideways' }, 'ERR_INVALID_ARG', 'feedback.thumbs'],
      [{ requestId: 'x' }, 'ERR_INVALID_ARG', 'feedback'],
      [{ thumbs: 'up' }, 'ERR_INVALID_ARG', 'feedback.requestId'],
      [{ requestId: 'x', thumbs: 'up', extra: 1 }, 'ERR_INVALID_ARG', 'feedback.extra'],
      ['nope', 'ERR_INVALID_ARG', 'feedback'],
      [{ requestId: 'unknown', thumbs: 'up' }, 'ERR_NOT_FOUND', 'feedback.requestId'],
    ];
    for (const [raw, code, field] of cases) {
      let err: unknown;
      try {
        a.submitFeedback(raw);
      } catch (e) {
        err = e;
      }
      expect(isWhaleError(err) && [err.code, err.field], JSON.stringify(raw)).toEqual([code, field]);
    }
  });

  it('Wilson intervals by hand and per-window stats', () => {
    const w = wilson(8, 10);
    expect(w.low).toBeCloseTo(0.4902, 4);
    expect(w.high).toBeCloseTo(0.9433, 4);
    expect(wilson(0, 0)).toMatchObject({ low: 0, high: 1 });
    const c = clock();
    const a = new FeedbackAnalyzer({ windowMs: 1000, now: c.now });
    for (let i = 0; i < 10; i++) {
      a.recordRequest(`r${i}`, { model: 'm', version: '1', level: 'normal' });
      a.submitFeedback({ requestId: `r${i}`, thumbs: i < 8 ? 'up' : 'down', rating: i < 5 ? 5 : 3 });
    }
    const s = a.stats('m').current;
    expect(s.thumbsUpRate.estimate).toBe(0.8);
    expect(s.thumbsUpRate.low).toBeCloseTo(w.low, 12);
    expect(s.rating.estimate).toBe(4);
    expect(s.rating.low).toBeLessThan(4);
    c.t = 1500;
    expect(a.stats('m').current.thumbsUpRate.n).toBe(0);
    expect(a.stats('m').previous.thumbsUpRate.n).toBe(10);
  });

  it('detects a significant drop against the previous window, once, and not a steady rate', () => {
    const c = clock();
    const a = new FeedbackAnalyzer({ windowMs: 1000, minSamples: 30, alpha: 0.01, now: c.now });
    const drops: QualityDrop[] = [];
    a.onQualityDrop((d) => drops.push(d));
    let id = 0;
    // Ups and downs spread evenly through the window (Bresenham-style), so every prefix has the window's rate.
    const send = (n: number, upShare: number) => {
      for (let i = 0; i < n; i++) {
        a.recordRequest(`q${id}`, { model: 'm', version: '2', level: 'normal' });
        const up = Math.floor((i + 1) * upShare) > Math.floor(i * upShare);
        a.submitFeedback({ requestId: `q${id++}`, thumbs: up ? 'up' : 'down' });
      }
    };
    send(100, 0.9);
    c.t = 1000;
    send(100, 0.88); // steady
    expect(drops).toEqual([]);
    c.t = 2000;
    send(80, 0.5);
    expect(drops).toHaveLength(1);
    // Raised as soon as the window holds minSamples (30) and the drop is significant: 15 of 30 up.
    expect(drops[0]).toMatchObject({
      model: 'm',
      version: '2',
      level: 'normal',
      metric: 'thumbsUpRate',
      previous: 0.88,
      current: 0.5,
    });
    expect(drops[0]!.pValue).toBeLessThan(0.01);
    expect(drops[0]!.pValue).toBeCloseTo(proportionDropP(88, 100, 15, 30), 12);
  });
});

describe('QualityOptimizer', () => {
  it('proposes concrete actions with reasons and applies only what the policy allows', async () => {
    const applied: string[] = [];
    const q = new QualityOptimizer({
      apply: ['shift-traffic', 'rollback-version'],
      qualityTarget: 0.8,
      minSamples: 30,
      latencyTargetMs: 50,
    });
    q.setApplier('shift-traffic', (p) => void applied.push(`${p.params.from}->${p.params.to}`));
    q.setApplier('rollback-version', () => {
      throw new Error('no previous build');
    });
    const proposals = await q.optimizeModelQuality('2nn', {
      quality: 0.6,
      low: 0.5,
      high: 0.7,
      samples: 100,
      version: '2',
      previousVersion: '1',
      level: 'normal',
      dropDetected: true,
      latencyP99Ms: 80,
      alternatives: [{ modelId: 'cnn', quality: 0.9, low: 0.85, high: 0.95, samples: 100 }],
    });
    expect(proposals.map((p) => p.action)).toEqual([
      'rollback-version',
      'shift-traffic',
      'change-level',
      'schedule-federated-round',
    ]);
    expect(proposals.every((p) => p.reason.length > 10)).toBe(true);
    expect(applied).toEqual(['2nn->cnn']);
    expect(proposals.find((p) => p.action === 'shift-traffic')!.applied).toBe(true);
    expect(proposals.find((p) => p.action === 'rollback-version')).toMatchObject({
      applied: false,
      note: 'applier failed: no previous build',
    });
    expect(proposals.find((p) => p.action === 'change-level')).toMatchObject({
      applied: false,
      note: 'not allowed by the policy',
      params: { to: 'deep' },
    });
    expect(q.recentProposals()).toHaveLength(4);
  });

  it('overlapping intervals or too few samples shift nothing', async () => {
    const q = new QualityOptimizer({ minSamples: 30 });
    const p = await q.optimizeModelQuality('a', {
      quality: 0.85,
      low: 0.8,
      high: 0.9,
      samples: 100,
      alternatives: [{ modelId: 'b', quality: 0.88, low: 0.83, high: 0.93, samples: 100 }],
    });
    expect(p.map((x) => x.action)).toEqual([]);
    const few = await q.optimizeModelQuality('a', {
      quality: 0.1,
      samples: 5,
      alternatives: [{ modelId: 'b', quality: 0.9, samples: 5 }],
    });
    expect(few).toEqual([]);
  });
});

describe('performance windows', () => {
  it('the sketch answers quantiles within its relative accuracy and merges', () => {
    const a = new LogSketch(0.01);
    const b = new LogSketch(0.01);
    const all: number[] = [];
    for (let i = 1; i <= 20_000; i++) {
      const v = ((i * 7919) % 10_007) / 10; // a spread of values 0..1000
      (i % 2 ? a : b).add(v);
      all.push(v);
    }
    a.merge(b);
    all.sort((x, y) => x - y);
    for (const q of [0.5, 0.9, 0.99]) {
      const exact = all[Math.floor(q * (all.length - 1))]!;
      expect(Math.abs(a.quantile(q) - exact) / exact).toBeLessThanOrEqual(0.0101);
    }
    expect(a.size).toBeLessThan(800); // buckets, not samples
  });

  it('rolling windows per model, version and level; old slots expire', () => {
    const c = clock(0);
    const m = new PerformanceWindows({ windowMs: 1000, slots: 10, now: c.now });
    for (let i = 0; i < 100; i++)
      m.recordPerformanceMetrics(
        'cnn',
        i < 90 ? 1 : 0,
        0.01 + i / 10_000,
        { cpu: 0.5 },
        { version: '1', level: 'normal' },
      );
    m.recordPerformanceMetrics('cnn', 1, 0.5, {}, { version: '2', level: 'deep' });
    const v1 = m.summary('cnn', { version: '1' });
    expect(v1.samples).toBe(100);
    expect(v1.accuracy).toBeCloseTo(0.9, 12);
    expect(v1.latency.p50).toBeCloseTo(0.015, 3);
    expect(v1.resources.cpu).toBe(0.5);
    expect(m.summary('cnn').samples).toBe(101);
    expect(
      m
        .collectMetrics()
        .map((s) => s.version)
        .sort(),
    ).toEqual(['1', '2']);
    c.t = 2500;
    expect(m.summary('cnn').samples).toBe(0);
    expect(() => m.recordPerformanceMetrics('cnn', 2, 0.1)).toThrow(/accuracy/);
  });

  it("forwards the records with a known accuracy to monitoring's PerformanceMetrics", () => {
    const pm = new PerformanceMetrics({ metrics: new WhaleMetrics({ processMetrics: false }) });
    const m = new PerformanceWindows({ sink: pm });
    m.recordPerformanceMetrics('cnn', 0.75, 0.02, { cpu: 0.5 });
    m.recordPerformanceMetrics('cnn', NaN, 0.04);
    expect(m.summary('cnn').samples).toBe(2);
    const [s] = pm.collectMetrics('cnn');
    expect(s).toMatchObject({
      records: 1,
      meanAccuracy: 0.75,
      meanLatency: 0.02,
      last: { resourceUsage: { cpu: 0.5 } },
    });
  });
});
