/** QualityMonitor (quality over time, whale_quality_* gauges) and ServedQuality (quality on served answers, labels). */
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';

import { isWhaleError } from '../src/common/errors.js';
import type { NamedTensors } from '../src/core/base/tensor.js';
import { PerformanceMetrics } from '../src/core/monitoring/metrics/performance-metrics.js';
import { WhaleMetrics } from '../src/core/monitoring/metrics/whale-metrics.js';
import { QualityEvaluator } from '../src/core/quality/evaluation/quality-evaluator.js';
import { PerformanceWindows } from '../src/core/quality/metrics/performance-windows.js';
import { QualityMonitor } from '../src/core/quality/monitoring/quality-monitor.js';
import { distribution, ServedQuality, type ServedAnswer } from '../src/core/quality/monitoring/served-quality.js';
import { FeedbackAnalyzer } from '../src/core/quality/optimization/feedback-analyzer.js';
import { parseConfig } from '../src/config/whale-config.js';

const line = (text: string, prefix: string) => text.split('\n').find((l) => l.startsWith(prefix));

function clock(start = 1_000_000) {
  let t = start;
  return { now: () => t, advance: (ms: number) => (t += ms) };
}

function probs(p: number[]): NamedTensors {
  return { y: { name: 'y', datatype: 'FP32', shape: [1, p.length], data: Float32Array.from(p) } };
}

function answer(o: Partial<ServedAnswer> = {}): ServedAnswer {
  return {
    model: 'cnn',
    version: '2',
    level: 'normal',
    models: ['cnn'],
    seconds: 0.01,
    inputs: { x: { name: 'x', datatype: 'FP32', shape: [1, 2], data: Float32Array.from([1, 2]) } },
    outputs: probs([0.1, 0.7, 0.2]),
    cached: false,
    ...o,
  };
}

describe('QualityMonitor', () => {
  it('samples one point per model/version/level from feedback and performance windows, keeps `points` of each, and forgets series both sources dropped', () => {
    const c = clock();
    const analyzer = new FeedbackAnalyzer({ now: c.now });
    const metrics = new PerformanceWindows({ now: c.now });
    const monitor = new QualityMonitor({ analyzer, metrics, points: 3, now: c.now });
    analyzer.recordRequest('r1', { model: 'cnn', version: '2', level: 'normal' });
    analyzer.recordRequest('r2', { model: 'cnn', version: '2', level: 'normal' });
    analyzer.submitFeedback({ requestId: 'r1', thumbs: 'up' });
    analyzer.submitFeedback({ requestId: 'r2', rating: 3 });
    metrics.recordPerformanceMetrics('cnn', NaN, 0.02, {}, { version: '2', level: 'normal' });
    metrics.recordPerformanceMetrics('cnn', NaN, 0.04, {}, { version: '2', level: 'normal' });
    metrics.recordPerformanceMetrics('2nn', NaN, 0.5, {}, { version: '1', level: 'deep' }); // latency only
    const first = monitor.sample();
    const cnn = first.find((p) => p.model === 'cnn')!;
    expect(cnn).toMatchObject({ version: '2', level: 'normal', feedback: 2, requests: 2, quality: (1 + 0.5) / 2 });
    expect(cnn.thumbsUpRate).toBeGreaterThan(0);
    expect(cnn.latencyP50Ms).toBeGreaterThan(15);
    expect(cnn.latencyP99Ms!).toBeGreaterThanOrEqual(cnn.latencyP50Ms!);
    // Without feedback the quality figures are null, not 0 (no data is not bad data).
    expect(first.find((p) => p.model === '2nn')).toMatchObject({ quality: null, thumbsUpRate: null, feedback: 0 });
    for (let i = 0; i < 4; i++) {
      c.advance(1000);
      monitor.sample();
    }
    const history = monitor.history('cnn');
    expect(history).toHaveLength(3);
    expect(history.map((p) => p.t)).toEqual([...history.map((p) => p.t)].sort((a, b) => a - b));
    expect(
      monitor
        .latest()
        .map((p) => p.model)
        .sort(),
    ).toEqual(['2nn', 'cnn']);
    // Feedback on another model adds its series.
    analyzer.recordRequest('r3', { model: 'mlp', version: '1', level: 'quick' });
    analyzer.submitFeedback({ requestId: 'r3', thumbs: 'down' });
    monitor.sample();
    expect(monitor.latest().map((p) => p.model)).toContain('mlp');
  });

  it('maxSeries bounds the series it keeps', () => {
    const analyzer = new FeedbackAnalyzer();
    const monitor = new QualityMonitor({ analyzer, maxSeries: 2 });
    for (const m of ['a', 'b', 'c']) {
      analyzer.recordRequest(`r-${m}`, { model: m, version: '1', level: 'normal' });
      analyzer.submitFeedback({ requestId: `r-${m}`, thumbs: 'up' });
    }
    expect(monitor.sample()).toHaveLength(2);
    expect(monitor.latest()).toHaveLength(2);
  });

  it('attach(registry): whale_quality_score, _thumbs_up_rate and _feedback from the latest points at scrape time', async () => {
    const analyzer = new FeedbackAnalyzer();
    const monitor = new QualityMonitor({ analyzer });
    const registry = new Registry();
    monitor.attach(registry);
    let text = await registry.metrics();
    for (const f of ['whale_quality_score', 'whale_quality_thumbs_up_rate', 'whale_quality_feedback'])
      expect(text).toContain(`# TYPE ${f} gauge`);
    expect(text).not.toMatch(/^whale_quality_score\{/m);
    analyzer.recordRequest('r1', { model: 'cnn', version: '2', level: 'deep' });
    analyzer.submitFeedback({ requestId: 'r1', thumbs: 'down' });
    monitor.sample();
    text = await registry.metrics();
    expect(line(text, 'whale_quality_score{model="cnn",version="2",level="deep"}')).toMatch(/ 0$/);
    expect(line(text, 'whale_quality_feedback{model="cnn",version="2",level="deep"}')).toMatch(/ 1$/);
  });
});

describe('ServedQuality', () => {
  it('evaluates the sampled share off the request path: confidence, latency against the budget, consistency with a peer', async () => {
    const evaluator = new QualityEvaluator();
    let draws = 0;
    const peers: string[] = [];
    const served = new ServedQuality({
      evaluator,
      sampleRate: 0.5,
      latencyBudgetMs: 20,
      random: () => (draws++ % 2 === 0 ? 0.1 : 0.9), // every other answer sampled
      peerAnswer: async (a) => {
        peers.push(a.model);
        return probs([0.1, 0.5, 0.4]);
      },
    });
    const registry = new Registry();
    served.attach(registry);
    served.offer(answer({ seconds: 0.01 }));
    served.offer(answer({ seconds: 0.01 })); // not sampled
    served.offer(answer({ seconds: 0.04 }));
    served.offer(answer({ seconds: 0.04 })); // not sampled
    // Nothing ran on the caller's time.
    expect(served.stats()).toEqual([]);
    expect(peers).toEqual([]);
    await served.idle();
    expect(peers).toEqual(['cnn', 'cnn']);
    const [s] = served.stats();
    expect(s).toMatchObject({ model: 'cnn', version: '2', level: 'normal', evaluated: 2 });
    expect(s!.scores.confidence).toBeCloseTo(0.7, 6);
    expect(s!.scores.latency).toBeCloseTo((1 + 20 / 40) / 2, 6);
    expect(s!.scores.consistency).toBeCloseTo(1 - (0 + 0.2 + 0.2) / 2, 6);
    const text = await registry.metrics();
    expect(line(text, 'whale_quality_evaluations_total{model="cnn",version="2",level="normal"}')).toMatch(/ 2$/);
    const confidence = line(
      text,
      'whale_quality_served_score{model="cnn",version="2",level="normal",score="confidence"}',
    );
    expect(Number(confidence!.split(' ')[1])).toBeCloseTo(0.7, 6);
    expect(line(text, 'whale_quality_evaluations_dropped_total')).toBe('whale_quality_evaluations_dropped_total 0');
    await served.close();
    await evaluator.close();
  });

  it('at most maxPending evaluations wait; more sampled answers are dropped and counted; sampleRate 0 evaluates none', async () => {
    const evaluator = new QualityEvaluator();
    const served = new ServedQuality({ evaluator, sampleRate: 1, latencyBudgetMs: 100, maxPending: 2 });
    const registry = new Registry();
    served.attach(registry);
    for (let i = 0; i < 5; i++) served.offer(answer());
    expect(served.droppedCount).toBe(3);
    await served.idle();
    expect(served.stats()[0]!.evaluated).toBe(2);
    expect(line(await registry.metrics(), 'whale_quality_evaluations_dropped_total')).toMatch(/ 3$/);
    const none = new ServedQuality({ evaluator, sampleRate: 0, latencyBudgetMs: 100 });
    none.offer(answer());
    await none.idle();
    expect(none.stats()).toEqual([]);
    await evaluator.close();
  });

  it('labelled feedback: the top class against the label, once per answer; accuracy over the window goes to the PerformanceMetrics gauge', async () => {
    const evaluator = new QualityEvaluator();
    const metrics = new WhaleMetrics({ processMetrics: false });
    const served = new ServedQuality({
      evaluator,
      sampleRate: 0,
      latencyBudgetMs: 100,
      windows: new PerformanceWindows(),
      sink: new PerformanceMetrics({ metrics }),
    });
    served.offer(answer({ requestId: 'a' })); // top class 1
    served.offer(answer({ requestId: 'b', outputs: probs([2, 0.5, -1]) })); // logits: softmax, top class 0
    served.offer(answer()); // no id: not remembered
    expect(served.check('a', 1)).toMatchObject({ predicted: 1, correct: true });
    expect(served.label('a', 1)).toMatchObject({ model: 'cnn', predicted: 1, correct: true, accuracy: 1 });
    expect(served.label('a', 1)).toBeUndefined(); // one label per answer
    expect(served.label('b', 2)).toMatchObject({ predicted: 0, correct: false, accuracy: 0.5 });
    const text = await metrics.text();
    expect(line(text, 'whale_model_accuracy_ratio{model="cnn"}')).toBe('whale_model_accuracy_ratio{model="cnn"} 0.5');
    expect(line(text, 'whale_model_latency_seconds_count{model="cnn"}')).toMatch(/ 2$/);
    served.offer(answer({ requestId: 'c' }));
    for (const [label, field] of [
      [-1, 'feedback.label'],
      [1.5, 'feedback.label'],
      [3, 'feedback.label'],
    ] as const) {
      let err: unknown;
      try {
        served.label('c', label);
      } catch (e) {
        err = e;
      }
      expect(isWhaleError(err, 'ERR_INVALID_ARG') && err.field, String(label)).toBe(field);
    }
    await evaluator.close();
  });

  it('distribution(): a probability row as it is, logits through softmax, other outputs are not a classifier', () => {
    expect(Array.from(distribution(probs([0.25, 0.75]))!)).toEqual([0.25, 0.75]);
    const soft = distribution(probs([0, Math.log(3)]))!;
    expect(soft[1]).toBeCloseTo(0.75, 6);
    expect(distribution({ y: { name: 'y', datatype: 'INT64', shape: [1, 2], data: [1, 2] } as never })).toBeUndefined();
    expect(distribution(probs([1]))).toBeUndefined();
  });

  it('whale.config.json quality: defaults, and each field checked with ERR_CONFIG naming it', () => {
    const base = { models: [{ name: 'm', adapter: 'onnx', path: '/m.onnx' }] };
    expect(parseConfig(base, '/').quality).toEqual({
      sampleRate: 0.05,
      latencyBudgetMs: 100,
      consistency: true,
      maxPending: 16,
      keepAnswers: 4096,
    });
    expect(parseConfig({ ...base, quality: { sampleRate: 1, consistency: false } }, '/').quality).toMatchObject({
      sampleRate: 1,
      consistency: false,
    });
    for (const [quality, field] of [
      [{ sampleRate: 1.5 }, 'quality.sampleRate'],
      [{ latencyBudgetMs: 0 }, 'quality.latencyBudgetMs'],
      [{ consistency: 'yes' }, 'quality.consistency'],
      [{ maxPending: 2.5 }, 'quality.maxPending'],
      [{ sampleRat: 1 }, 'quality.sampleRat'],
    ] as const) {
      let err: unknown;
      try {
        parseConfig({ ...base, quality }, '/');
      } catch (e) {
        err = e;
      }
      expect(isWhaleError(err, 'ERR_CONFIG') && err.field, JSON.stringify(quality)).toBe(field);
    }
  });
});
