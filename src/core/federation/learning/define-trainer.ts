/**
 * `defineTrainer`: a Trainer from three plain functions, for models trained
 * in TypeScript (or through a native binding). The author works with named
 * weights; the flat layout, the delta and the checks are done here.
 *
 *   const trainer = defineTrainer({
 *     init: (seed) => ({ w: { shape: [4, 3], data: new Float32Array(12) }, b: { shape: [3], data: new Float32Array(3) } }),
 *     fit: (weights, dataset, o) => { ...; return { weights, metrics: { loss } }; },
 *     evaluate: (weights, dataset) => ({ loss, accuracy }),
 *   });
 */
import { WhaleError } from '../../../common/errors.js';
import type { ClientDataset } from './dataset.js';
import {
  joinWeights,
  layoutSize,
  splitWeights,
  checkWeights,
  type FitOptions,
  type Metrics,
  type NamedWeights,
  type Trainer,
  type WeightLayout,
} from './trainer.js';

/** The initial weights: name -> shape and values (the layout is taken from here, in key order). */
export type InitialWeights = Record<string, { shape: readonly number[]; data: ArrayLike<number> }>;

export interface TrainerDefinition {
  /** Initial weights from a seed (same seed, same weights). */
  init(seed: number): InitialWeights | Promise<InitialWeights>;
  /**
   * Trains on the dataset from `weights` (named copies the function may change in place) and returns the
   * trained weights (or the delta), the examples used (default the dataset's size) and metrics.
   */
  fit(weights: NamedWeights, dataset: ClientDataset, options: FitOptions): FitOutput | Promise<FitOutput>;
  evaluate(weights: NamedWeights, dataset: ClientDataset): Metrics | Promise<Metrics>;
  /** Reported as the trainer's backend (default 'typescript'). */
  backend?: string;
}

export type FitOutput = (
  | { weights: Readonly<Record<string, ArrayLike<number>>>; delta?: never }
  | { delta: Readonly<Record<string, ArrayLike<number>>>; weights?: never }
) & { examples?: number; metrics?: Metrics };

class DefinedTrainer implements Trainer {
  readonly backend: string;
  private layoutCache: WeightLayout | undefined;

  constructor(private readonly d: TrainerDefinition) {
    this.backend = d.backend ?? 'typescript';
  }

  get layout(): WeightLayout {
    if (!this.layoutCache)
      throw new WhaleError(
        'ERR_INVALID_STATE',
        'trainer.layout: call init() first (the layout comes from the initial weights)',
        {
          field: 'layout',
        },
      );
    return this.layoutCache;
  }

  async init(seed: number): Promise<Float32Array> {
    const w = await this.d.init(seed);
    if (typeof w !== 'object' || w === null)
      throw new WhaleError('ERR_INVALID_ARG', 'init(): expected { name: { shape, data } }', { field: 'init' });
    const layout = Object.entries(w).map(([name, t]) => ({ name, shape: [...(t?.shape ?? [])] }));
    layoutSize(layout, 'init()');
    if (this.layoutCache && JSON.stringify(this.layoutCache) !== JSON.stringify(layout))
      throw new WhaleError('ERR_SHAPE_MISMATCH', 'init(): returned another layout than before', { field: 'init' });
    this.layoutCache = layout;
    return joinWeights(Object.fromEntries(Object.entries(w).map(([k, t]) => [k, t.data])), layout, 'init()');
  }

  /** The layout, computing it from init(0) the first time a model is seen without init (learner processes). */
  private async ready(): Promise<WeightLayout> {
    if (!this.layoutCache) await this.init(0);
    return this.layoutCache!;
  }

  async fit(weights: Float32Array, dataset: ClientDataset, o: FitOptions) {
    const layout = await this.ready();
    checkWeights(weights, layout);
    const copy = weights.slice();
    const out = await this.d.fit(splitWeights(copy, layout), dataset, o);
    if (typeof out !== 'object' || out === null || (!out.weights && !out.delta))
      throw new WhaleError('ERR_INVALID_ARG', 'fit(): expected { weights } or { delta }', { field: 'fit' });
    let delta: Float32Array;
    if (out.delta) delta = joinWeights(out.delta, layout, 'fit().delta');
    else {
      delta = joinWeights(out.weights!, layout, 'fit().weights');
      for (let i = 0; i < delta.length; i++) delta[i] = delta[i]! - weights[i]!;
    }
    const examples = out.examples ?? dataset.size;
    if (!(Number.isFinite(examples) && examples >= 0))
      throw new WhaleError('ERR_INVALID_ARG', `fit().examples: expected a number >= 0, got ${examples}`, {
        field: 'fit().examples',
      });
    return { delta, examples, metrics: out.metrics ?? {} };
  }

  async evaluate(weights: Float32Array, dataset: ClientDataset): Promise<Metrics> {
    const layout = await this.ready();
    checkWeights(weights, layout);
    return this.d.evaluate(splitWeights(weights.slice(), layout), dataset);
  }
}

/** A Trainer from `{ init, fit, evaluate }` (see TrainerDefinition). */
export function defineTrainer(definition: TrainerDefinition): Trainer {
  for (const k of ['init', 'fit', 'evaluate'] as const)
    if (typeof definition?.[k] !== 'function')
      throw new WhaleError('ERR_INVALID_ARG', `defineTrainer: ${k} must be a function`, { field: k });
  return new DefinedTrainer(definition);
}
