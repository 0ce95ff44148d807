/**
 * ServedQuality: quality measured on the answers a node serves, not only on request.
 *
 * - offer(answer) is the request path's one call: it remembers a routed answer for labelled
 *   feedback (bounded, oldest first out) and draws whether to evaluate it (`sampleRate`); a
 *   sampled answer is evaluated later (setImmediate), never on the request's time, and at most
 *   `maxPending` wait (more are dropped and counted).
 * - An evaluation scores, each in [0, 1]: `confidence` (QualityEvaluator's, on the first output
 *   row read as class probabilities, softmax applied when the row is not a distribution),
 *   `latency` (1 within `latencyBudgetMs`, else budget / latency) and, when `peerAnswer` finds
 *   another ensemble member or held version for the same input, `consistency`
 *   (1 − total-variation distance of the two distributions).
 * - label(requestId, label) joins labelled feedback to the remembered answer: correct when the
 *   top class is the label; the model's accuracy over the window goes to the PerformanceWindows
 *   and to the sink (monitoring's PerformanceMetrics: whale_model_accuracy_ratio).
 * - attach(registry): whale_quality_served_score{model,version,level,score} (mean of the last
 *   `window` evaluations), whale_quality_evaluations_total and whale_quality_evaluations_dropped_total.
 */
import { Counter, Gauge, type Registry } from 'prom-client';

import { WhaleError } from '../../../common/errors.js';
import type { Logger } from '../../../common/logger.js';
import type { NamedTensors } from '../../base/tensor.js';
import type { QualityEvaluator } from '../evaluation/quality-evaluator.js';
import type { PerformanceSink, PerformanceWindows } from '../metrics/performance-windows.js';

export interface ServedAnswer {
  /** The id feedback names (routed answers); answers without one are not remembered. */
  requestId?: string;
  model: string;
  version: string;
  level: string;
  /** Every model that ran (deep: the ensemble members). */
  models: string[];
  seconds: number;
  inputs: NamedTensors;
  outputs: NamedTensors;
  cached: boolean;
}

export type ServedScore = 'confidence' | 'latency' | 'consistency';

export interface ServedQualityOptions {
  evaluator: QualityEvaluator;
  /** Share of served answers evaluated, in [0, 1]. */
  sampleRate: number;
  latencyBudgetMs: number;
  /** Default 16. */
  maxPending?: number;
  /** Routed answers remembered for labelled feedback (default 4096; 0: none). */
  keepAnswers?: number;
  /** Evaluations averaged per series and score (default 100). */
  window?: number;
  /** Another member's or version's answer to the same inputs (consistency), or undefined when there is none. */
  peerAnswer?: (a: ServedAnswer) => Promise<NamedTensors | undefined>;
  /** Labelled accuracy per model (and the window the optimizer reads). */
  windows?: PerformanceWindows;
  /** Monitoring's PerformanceMetrics (whale_model_accuracy_ratio, whale_model_latency_seconds). */
  sink?: PerformanceSink;
  random?: () => number;
  logger?: Logger;
}

export interface LabelOutcome {
  model: string;
  version: string;
  level: string;
  predicted: number;
  correct: boolean;
  /** The model's labelled accuracy over the window, after this label. */
  accuracy: number;
}

export interface ServedSeries {
  model: string;
  version: string;
  level: string;
  evaluated: number;
  scores: Partial<Record<ServedScore, number>>;
}

interface Series {
  key: { model: string; version: string; level: string };
  evaluated: number;
  scores: Map<ServedScore, number[]>;
}

const SEP = '\u0000';
const MAX_SERIES = 1024;

export class ServedQuality {
  private readonly answers = new Map<string, ServedAnswer>();
  private readonly series = new Map<string, Series>();
  private pending = 0;
  private dropped = 0;
  private running = new Set<Promise<void>>();
  private closed = false;
  private readonly random: () => number;
  private evaluations: Counter<'model' | 'version' | 'level'> | undefined;

  constructor(private readonly o: ServedQualityOptions) {
    if (!(o.sampleRate >= 0 && o.sampleRate <= 1))
      throw new WhaleError('ERR_INVALID_OPTION', `options.sampleRate: must be in [0, 1], got ${o.sampleRate}`, {
        field: 'options.sampleRate',
      });
    if (!(o.latencyBudgetMs > 0))
      throw new WhaleError('ERR_INVALID_OPTION', 'options.latencyBudgetMs: must be > 0', {
        field: 'options.latencyBudgetMs',
      });
    this.random = o.random ?? Math.random;
  }

  /** The request path: remember (routed answers) and maybe sample; O(1), never throws. */
  offer(a: ServedAnswer): void {
    if (this.closed) return;
    const keep = this.o.keepAnswers ?? 4096;
    if (a.requestId !== undefined && keep > 0) {
      this.answers.set(a.requestId, a);
      if (this.answers.size > keep) this.answers.delete(this.answers.keys().next().value!);
    }
    if (this.o.sampleRate === 0 || this.random() >= this.o.sampleRate) return;
    if (this.pending >= (this.o.maxPending ?? 16)) {
      this.dropped++;
      return;
    }
    this.pending++;
    const p = new Promise<void>((resolve) => setImmediate(resolve))
      .then(() => this.evaluate(a))
      .catch((err: Error) => this.o.logger?.warn('served answer not evaluated', { model: a.model, error: err.message }))
      .finally(() => {
        this.pending--;
        this.running.delete(p);
      });
    this.running.add(p);
  }

  /** The remembered answer's top class against a label, recording nothing; undefined when the answer is not held. */
  check(requestId: string, label: number): { answer: ServedAnswer; predicted: number; correct: boolean } | undefined {
    if (!Number.isInteger(label) || label < 0)
      throw new WhaleError('ERR_INVALID_ARG', `feedback.label: must be an integer >= 0, got ${String(label)}`, {
        field: 'feedback.label',
      });
    const a = this.answers.get(requestId);
    if (!a) return undefined;
    const probs = distribution(a.outputs);
    if (!probs)
      throw new WhaleError(
        'ERR_INVALID_ARG',
        `feedback.label: the answer of model '${a.model}' is not a classifier's`,
        {
          field: 'feedback.label',
        },
      );
    if (label >= probs.length)
      throw new WhaleError('ERR_INVALID_ARG', `feedback.label: must be < ${probs.length} (the classes of the answer)`, {
        field: 'feedback.label',
      });
    const predicted = argmax(probs);
    return { answer: a, predicted, correct: predicted === label };
  }

  /** Labelled feedback: check(), then the model's accuracy is recorded (once per answer); undefined when not held. */
  label(requestId: string, label: number): LabelOutcome | undefined {
    const v = this.check(requestId, label);
    if (!v) return undefined;
    const { answer: a, predicted, correct } = v;
    this.answers.delete(requestId); // one label per answer
    const key = { version: a.version, level: a.level };
    let accuracy = correct ? 1 : 0;
    if (this.o.windows) {
      this.o.windows.recordPerformanceMetrics(a.model, accuracy, a.seconds, {}, key);
      const mean = this.o.windows.summary(a.model).accuracy;
      if (Number.isFinite(mean)) accuracy = mean;
    }
    this.o.sink?.recordPerformanceMetrics(a.model, accuracy, a.seconds, {});
    return { model: a.model, version: a.version, level: a.level, predicted, correct, accuracy };
  }

  /** Mean scores per model/version/level over the last evaluations. */
  stats(): ServedSeries[] {
    return [...this.series.values()].map((s) => ({
      ...s.key,
      evaluated: s.evaluated,
      scores: Object.fromEntries([...s.scores].map(([k, v]) => [k, mean(v)])),
    }));
  }

  /** Sampled answers dropped because maxPending evaluations were waiting. */
  get droppedCount(): number {
    return this.dropped;
  }

  /** Resolves when the evaluations started so far have finished. */
  async idle(): Promise<void> {
    while (this.running.size > 0) await Promise.all([...this.running]);
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.idle();
  }

  attach(registry: Registry): void {
    const stats = () => this.stats();
    new Gauge({
      name: 'whale_quality_served_score',
      help: 'Mean score in [0, 1] of the last evaluated served answers, by score (confidence, latency, consistency)',
      labelNames: ['model', 'version', 'level', 'score'],
      registers: [registry],
      collect() {
        this.reset();
        for (const s of stats()) for (const [score, v] of Object.entries(s.scores)) this.set({ ...pick(s), score }, v);
      },
    });
    this.evaluations = new Counter({
      name: 'whale_quality_evaluations_total',
      help: 'Served answers evaluated (the sampled share, quality.sampleRate)',
      labelNames: ['model', 'version', 'level'],
      registers: [registry],
    });
    const dropped = () => this.dropped;
    new Counter({
      name: 'whale_quality_evaluations_dropped_total',
      help: 'Sampled answers not evaluated: quality.maxPending evaluations were waiting',
      registers: [registry],
      collect() {
        this.reset();
        this.inc(dropped());
      },
    });
  }

  private async evaluate(a: ServedAnswer): Promise<void> {
    const scores: Partial<Record<ServedScore, number>> = {};
    const ms = a.seconds * 1000;
    scores.latency = ms <= this.o.latencyBudgetMs ? 1 : this.o.latencyBudgetMs / ms;
    const probs = distribution(a.outputs);
    if (probs) {
      const e = await this.o.evaluator.evaluateResponse({ probabilities: probs }, { window: a.model });
      if (e.scores.confidence !== undefined) scores.confidence = e.scores.confidence;
      const peer = this.o.peerAnswer ? await this.o.peerAnswer(a) : undefined;
      const other = peer ? distribution(peer) : undefined;
      if (other && other.length === probs.length) scores.consistency = 1 - totalVariation(probs, other);
    }
    this.record(a, scores);
  }

  private record(a: ServedAnswer, scores: Partial<Record<ServedScore, number>>): void {
    const id = [a.model, a.version, a.level].join(SEP);
    let s = this.series.get(id);
    if (!s) {
      if (this.series.size >= MAX_SERIES) this.series.delete(this.series.keys().next().value!);
      s = { key: { model: a.model, version: a.version, level: a.level }, evaluated: 0, scores: new Map() };
      this.series.set(id, s);
    }
    s.evaluated++;
    const window = this.o.window ?? 100;
    for (const [k, v] of Object.entries(scores) as [ServedScore, number][]) {
      const list = s.scores.get(k) ?? [];
      list.push(v);
      if (list.length > window) list.shift();
      s.scores.set(k, list);
    }
    this.evaluations?.inc(pick(s.key));
  }
}

function pick(s: { model: string; version: string; level: string }) {
  return { model: s.model, version: s.version, level: s.level };
}

/** The first output's first row as a probability distribution (softmax when it is not one); undefined when not a classifier's. */
export function distribution(outputs: NamedTensors): Float64Array | undefined {
  const t = Object.values(outputs)[0];
  if (!t || (t.datatype !== 'FP32' && t.datatype !== 'FP64') || t.shape.length < 1) return undefined;
  const classes = t.shape.length === 1 ? t.shape[0]! : t.shape[t.shape.length - 1]!;
  if (!(classes >= 2) || t.data.length < classes) return undefined;
  const row = Float64Array.from((t.data as Float32Array | Float64Array).subarray(0, classes));
  if (!row.every(Number.isFinite)) return undefined;
  const sum = row.reduce((x, y) => x + y, 0);
  if (row.every((v) => v >= 0 && v <= 1) && Math.abs(sum - 1) < 1e-3) return row;
  const max = Math.max(...row);
  let z = 0;
  for (let i = 0; i < row.length; i++) z += row[i] = Math.exp(row[i]! - max);
  for (let i = 0; i < row.length; i++) row[i]! /= z;
  return row;
}

function argmax(p: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < p.length; i++) if (p[i]! > p[best]!) best = i;
  return best;
}

function totalVariation(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let d = 0;
  for (let i = 0; i < a.length; i++) d += Math.abs(a[i]! - b[i]!);
  return Math.min(1, d / 2);
}

function mean(v: number[]): number {
  return v.reduce((x, y) => x + y, 0) / v.length;
}
