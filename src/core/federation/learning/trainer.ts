/**
 * The model-agnostic training contract of a federation. The coordinator,
 * the aggregator, the codecs, DP, SecAgg and the Byzantine defences see one
 * flat Float32Array; a `WeightLayout` names the tensors in it (in order), so
 * a trainer can read it as named tensors (`splitWeights`) and write named
 * tensors back (`joinWeights`). Adapters implement `Trainer`: `TfjsTrainer`
 * (src/models) for any TensorFlow.js LayersModel, `defineTrainer` for pure
 * TypeScript (or native) training.
 */
import { WhaleError } from '../../../common/errors.js';
import type { ClientDataset } from './dataset.js';

/** One named tensor of a model's weights. */
export interface WeightSpec {
  readonly name: string;
  readonly shape: readonly number[];
}

/** The tensors of a model, in the order they sit in the flat weight buffer. */
export type WeightLayout = readonly WeightSpec[];

/** Weights as named tensors (each a Float32Array of its shape's size). */
export type NamedWeights = Record<string, Float32Array>;

/** What a trainer reports: `loss` and `accuracy` when it has them, or the author's own figures. */
export type Metrics = Readonly<Record<string, number>> & { readonly loss?: number; readonly accuracy?: number };

export interface FitOptions {
  /** Local epochs over the client's dataset. */
  epochs: number;
  /** Examples per step; 0 = the whole dataset as one batch (B = ∞). */
  batchSize: number;
  learningRate: number;
  /** FedProx proximal term mu/2 ||w - w_global||² (0 or absent: plain local SGD). */
  proximalMu?: number;
  /** Seed of the epoch shuffles (different per client and round; the learner derives it). */
  seed?: number;
  /** The federation round this fit belongs to (information only). */
  round?: number;
}

export interface FitResult {
  /** Trained weights minus the received ones, in the trainer's layout. */
  delta: Float32Array;
  /** Examples trained on (the update's aggregation weight), usually the dataset's size. */
  examples: number;
  /** e.g. the last epoch's training loss. */
  metrics: Metrics;
}

/** Trains and evaluates one model on a client's dataset. Weights are flat, in `layout` order. */
export interface Trainer {
  readonly layout: WeightLayout;
  /** Where training runs, for reports (e.g. `tfjs-wasm`, `typescript`). */
  readonly backend: string;
  /** The initial global model (deterministic from the seed, or the author's saved weights). */
  init(seed: number): Float32Array | Promise<Float32Array>;
  fit(weights: Float32Array, dataset: ClientDataset, options: FitOptions): Promise<FitResult>;
  evaluate(weights: Float32Array, dataset: ClientDataset): Promise<Metrics>;
  /** Frees runtime resources (tfjs variables, native memory). */
  dispose?(): void;
}

function tensorSize(t: WeightSpec): number {
  return t.shape.reduce((a, b) => a * b, 1);
}

/** Checks a layout (unique names, non-negative integer dimensions) and returns its parameter count. */
export function layoutSize(layout: WeightLayout, field = 'layout'): number {
  if (!Array.isArray(layout) || layout.length === 0)
    throw new WhaleError('ERR_INVALID_ARG', `${field}: expected a non-empty array of { name, shape }`, { field });
  const names = new Set<string>();
  let n = 0;
  layout.forEach((t, i) => {
    if (typeof t?.name !== 'string' || t.name === '' || names.has(t.name))
      throw new WhaleError(
        'ERR_INVALID_ARG',
        `${field}[${i}].name: expected a unique non-empty name, got ${JSON.stringify(t?.name)}`,
        {
          field: `${field}[${i}].name`,
        },
      );
    names.add(t.name);
    if (!Array.isArray(t.shape) || !(t.shape as readonly number[]).every((d: number) => Number.isInteger(d) && d >= 0))
      throw new WhaleError(
        'ERR_INVALID_ARG',
        `${field}[${i}].shape (${t.name}): expected non-negative integers, got ${JSON.stringify(t.shape)}`,
        {
          field: `${field}[${i}].shape`,
        },
      );
    n += tensorSize(t);
  });
  return n;
}

/** Throws ERR_SHAPE_MISMATCH unless `weights` is a Float32Array of the layout's size. */
export function checkWeights(weights: unknown, layout: WeightLayout, field = 'weights'): Float32Array {
  const n = layoutSize(layout);
  if (!(weights instanceof Float32Array) || weights.length !== n)
    throw new WhaleError(
      'ERR_SHAPE_MISMATCH',
      `${field}: expected a Float32Array of ${n} parameters, got ${weights instanceof Float32Array ? weights.length : typeof weights}`,
      { field },
    );
  return weights;
}

/** The flat buffer as named tensors: views into `weights`, no copy. */
export function splitWeights(weights: Float32Array, layout: WeightLayout): NamedWeights {
  checkWeights(weights, layout);
  const out: NamedWeights = {};
  let at = 0;
  for (const t of layout) {
    const n = tensorSize(t);
    out[t.name] = weights.subarray(at, at + n);
    at += n;
  }
  return out;
}

/** Named tensors into one flat buffer in layout order; a missing or wrongly sized tensor is ERR_SHAPE_MISMATCH naming it. */
export function joinWeights(
  named: Readonly<Record<string, ArrayLike<number>>>,
  layout: WeightLayout,
  field = 'weights',
): Float32Array {
  const out = new Float32Array(layoutSize(layout));
  let at = 0;
  for (const t of layout) {
    const n = tensorSize(t);
    const v = named?.[t.name];
    if (!v || typeof v.length !== 'number' || v.length !== n)
      throw new WhaleError(
        'ERR_SHAPE_MISMATCH',
        `${field}.${t.name}: expected ${n} values (shape [${t.shape.join(', ')}]), got ${v ? v.length : 'none'}`,
        { field: `${field}.${t.name}` },
      );
    out.set(v, at);
    at += n;
  }
  return out;
}

/**
 * The trainer's layout; a trainer that learns its layout from `init` (defineTrainer) is initialised with
 * seed 0 first (a learner process that never calls init itself).
 */
export async function trainerLayout(trainer: Trainer): Promise<WeightLayout> {
  try {
    return trainer.layout;
  } catch (err) {
    if (!(err instanceof WhaleError && err.code === 'ERR_INVALID_STATE')) throw err;
    await trainer.init(0);
    return trainer.layout;
  }
}
