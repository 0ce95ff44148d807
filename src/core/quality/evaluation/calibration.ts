/**
 * Classifier scores. Per response: correctness (argmax = true label: 1/0) and
 * confidence (the largest probability). Over a window of the last N responses
 * (per window key, e.g. a model): expected calibration error with B equal-width
 * confidence bins, ECE = Σ_b (n_b/N)·|accuracy_b − confidence_b|, and the Brier
 * score, mean over responses of Σ_k (p_k − y_k)², which lies in [0, 2].
 * Reported as scores where 1 is best: calibration = 1 − ECE, brierSkill = 1 − Brier/2.
 */
import { WhaleError } from '../../../common/errors.js';

export interface ClassifierOutcome {
  correct: boolean;
  confidence: number;
  brier: number;
}

export function classifierOutcome(probabilities: ArrayLike<number>, label: number): ClassifierOutcome {
  const n = probabilities.length;
  if (n === 0)
    throw new WhaleError('ERR_INVALID_ARG', 'response.probabilities: must not be empty', {
      field: 'response.probabilities',
    });
  if (!Number.isInteger(label) || label < 0 || label >= n) {
    throw new WhaleError(
      'ERR_INVALID_ARG',
      `context.label: must be a class index in [0, ${n - 1}], got ${String(label)}`,
      { field: 'context.label' },
    );
  }
  let best = 0;
  let brier = 0;
  for (let k = 0; k < n; k++) {
    const p = probabilities[k]!;
    if (!Number.isFinite(p) || p < 0 || p > 1) {
      throw new WhaleError(
        'ERR_INVALID_ARG',
        `response.probabilities[${k}]: must be a probability in [0, 1], got ${p}`,
        { field: `response.probabilities[${k}]` },
      );
    }
    if (p > probabilities[best]!) best = k;
    brier += (p - (k === label ? 1 : 0)) ** 2;
  }
  return { correct: best === label, confidence: probabilities[best]!, brier };
}

/** A ring of the last `size` outcomes with running ECE and Brier. */
export class CalibrationWindow {
  private readonly correct: Uint8Array;
  private readonly confidence: Float64Array;
  private readonly brier: Float64Array;
  private next = 0;
  private count = 0;

  constructor(
    readonly size: number,
    readonly bins = 10,
  ) {
    if (!Number.isInteger(size) || size < 1)
      throw new WhaleError('ERR_INVALID_OPTION', 'options.calibrationWindow: must be an integer >= 1', {
        field: 'options.calibrationWindow',
      });
    this.correct = new Uint8Array(size);
    this.confidence = new Float64Array(size);
    this.brier = new Float64Array(size);
  }

  add(o: ClassifierOutcome): void {
    this.correct[this.next] = o.correct ? 1 : 0;
    this.confidence[this.next] = o.confidence;
    this.brier[this.next] = o.brier;
    this.next = (this.next + 1) % this.size;
    this.count = Math.min(this.count + 1, this.size);
  }

  get samples(): number {
    return this.count;
  }

  ece(): number {
    const n = this.count;
    const hits = new Float64Array(this.bins);
    const conf = new Float64Array(this.bins);
    const counts = new Float64Array(this.bins);
    for (let i = 0; i < n; i++) {
      const c = this.confidence[i]!;
      const b = Math.min(this.bins - 1, Math.floor(c * this.bins));
      counts[b]!++;
      hits[b]! += this.correct[i]!;
      conf[b]! += c;
    }
    let e = 0;
    for (let b = 0; b < this.bins; b++) if (counts[b]! > 0) e += Math.abs(hits[b]! - conf[b]!) / n;
    return e;
  }

  meanBrier(): number {
    let s = 0;
    for (let i = 0; i < this.count; i++) s += this.brier[i]!;
    return this.count === 0 ? 0 : s / this.count;
  }
}
