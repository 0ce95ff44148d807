/**
 * `TfjsTrainer`: the federation's Trainer contract for any TensorFlow.js
 * LayersModel, built by the author's function (initialised from the seed) or
 * loaded from the author's model.json + weights (its weights are the initial
 * model). Inputs and target are named fields of the client's dataset; a
 * field whose size matches the model input's is reshaped to it (784 values
 * feed a [28, 28, 1] input). Minibatch SGD with the FedProx term; the
 * WebAssembly backend by default, tfjs-node when installed.
 */
import { stat } from 'node:fs/promises';
import { basename, dirname } from 'node:path';

import { WhaleError } from '../common/errors.js';
import type { ClientDataset, FieldTensor } from '../core/federation/learning/dataset.js';
import { checkWeights, type FitOptions, type FitResult, type Metrics, type Trainer, type WeightLayout } from '../core/federation/learning/trainer.js';
import { tfjsRuntime, type Tf, type TfjsBackendChoice } from './tfjs-backend.js';
import { tfjsFileHandler, MODEL_JSON } from './tfjs-files.js';
import { proxSgd } from './tfjs-trainer-sgd.js';

type LayersModel = import('@tensorflow/tfjs').LayersModel;
type TfTensor = import('@tensorflow/tfjs').Tensor;

/**
 * - `softmax-cross-entropy`: the model outputs logits, the target is a class index (or one-hot).
 * - `categorical-crossentropy`: the model outputs probabilities (a softmax layer), same targets.
 * - `mean-squared-error`: regression on float targets.
 * - `auto` (default): categorical-crossentropy when the last layer's activation is softmax, else
 *   softmax-cross-entropy for an int32 target, mean-squared-error for a float target.
 */
export type TfjsLoss = 'auto' | 'softmax-cross-entropy' | 'categorical-crossentropy' | 'mean-squared-error';
export const TFJS_LOSSES: readonly TfjsLoss[] = ['auto', 'softmax-cross-entropy', 'categorical-crossentropy', 'mean-squared-error'];

export interface TfjsTrainerOptions {
  /** The architecture: an uncompiled LayersModel whose weights are initialised from `seed`. */
  build?: (tf: Tf, seed: number) => LayersModel;
  /** Or a saved Layers model: its directory or its model.json (weights beside it). */
  modelPath?: string;
  /** Dataset fields fed to the model's inputs, in order (default ['x']). */
  inputs?: readonly string[];
  /** Dataset field holding the target (default 'y'). */
  target?: string;
  loss?: TfjsLoss;
  backend?: TfjsBackendChoice;
  /** Examples per evaluation step (default 2000). */
  evalBatch?: number;
}

function bad(field: string, message: string, code: 'ERR_INVALID_ARG' | 'ERR_SHAPE_MISMATCH' | 'ERR_UNSUPPORTED' = 'ERR_INVALID_ARG'): WhaleError {
  return new WhaleError(code, `${field}: ${message}`, { field });
}

export class TfjsTrainer implements Trainer {
  readonly layout: WeightLayout;
  readonly backend: string;
  private readonly inputs: readonly string[];
  private readonly target: string;
  private readonly loss: TfjsLoss;
  /** A loaded model's own weights: the initial model. */
  private saved: Float32Array | undefined;
  private readonly outputs: number;
  /** Parameters in all (the flat buffer's length). */
  readonly params: number;

  private constructor(
    private readonly tf: Tf,
    backend: string,
    private readonly model: LayersModel,
    private readonly o: TfjsTrainerOptions,
  ) {
    this.backend = `tfjs-${backend}`;
    this.layout = model.weights.map((w) => ({ name: w.name, shape: [...w.shape] as number[] }));
    this.params = this.layout.reduce((s, t) => s + t.shape.reduce((a, b) => a * b, 1), 0);
    this.inputs = o.inputs ?? ['x'];
    this.target = o.target ?? 'y';
    if (this.inputs.length !== model.inputs.length)
      throw bad('inputs', `the model has ${model.inputs.length} input(s), ${this.inputs.length} field(s) named (${this.inputs.join(', ')})`);
    const out = model.outputs[0]!.shape;
    this.outputs = Number(out[out.length - 1] ?? 1);
    const last = model.layers[model.layers.length - 1]?.getConfig() as { activation?: string } | undefined;
    this.loss = (o.loss ?? 'auto') === 'auto' && last?.activation === 'softmax' ? 'categorical-crossentropy' : (o.loss ?? 'auto');
  }

  /** Builds or loads the model on the process's tfjs runtime. */
  static async create(o: TfjsTrainerOptions): Promise<TfjsTrainer> {
    if (!o || (typeof o.build !== 'function') === (typeof o.modelPath !== 'string'))
      throw bad('model', 'give exactly one of build (a function) or modelPath (a model.json or its directory)');
    if (o.loss !== undefined && !TFJS_LOSSES.includes(o.loss)) throw bad('loss', `one of ${TFJS_LOSSES.join(', ')}, got ${JSON.stringify(o.loss)}`);
    const rt = await tfjsRuntime(o.backend ?? 'auto');
    let model: LayersModel;
    if (o.build) {
      model = o.build(rt.tf, 1);
    } else {
      let dir = o.modelPath!;
      try {
        if (!(await stat(dir)).isDirectory()) {
          if (basename(dir) !== MODEL_JSON) throw bad('modelPath', `expected a directory or a ${MODEL_JSON}, got ${dir}`);
          dir = dirname(dir);
        }
      } catch (err) {
        if (err instanceof WhaleError) throw err;
        throw new WhaleError('ERR_MODEL_LOAD', `modelPath: ${o.modelPath}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, {
          field: 'modelPath',
        });
      }
      model = await rt.tf.loadLayersModel(tfjsFileHandler(dir));
    }
    if (!model || !Array.isArray(model.weights)) throw bad('build', 'must return a tfjs LayersModel (tf.sequential / tf.model)');
    const convs = model.layers.filter((l) => /conv/i.test(l.getClassName()));
    if (convs.length > 0 && !rt.tf.getKernel('Conv2DBackpropFilter', rt.backend))
      throw bad('model', `its convolutions cannot train on the tfjs '${rt.backend}' backend, it has no Conv2DBackpropFilter kernel (${rt.note})`, 'ERR_UNSUPPORTED');
    const t = new TfjsTrainer(rt.tf, rt.backend, model, o);
    if (!o.build) t.saved = t.flatten(model);
    return t;
  }

  init(seed: number): Float32Array {
    if (!this.o.build) return this.saved!.slice();
    const m = this.o.build(this.tf, seed);
    const out = this.flatten(m);
    m.dispose();
    if (out.length !== this.params) throw bad('build', `returned ${out.length} parameters for seed ${seed}, ${this.params} for seed 1`, 'ERR_SHAPE_MISMATCH');
    return out;
  }

  dispose(): void {
    this.model.dispose();
  }

  private flatten(m: LayersModel): Float32Array {
    const out = new Float32Array(this.params);
    let at = 0;
    for (const w of m.getWeights()) {
      const v = w.dataSync() as Float32Array;
      out.set(v, at);
      at += v.length;
    }
    return out;
  }

  private load(weights: Float32Array): void {
    checkWeights(weights, this.layout);
    let at = 0;
    const tensors = this.layout.map(({ shape }) => {
      const n = shape.reduce((a, b) => a * b, 1);
      const t = this.tf.tensor(weights.subarray(at, at + n), [...shape]);
      at += n;
      return t;
    });
    this.model.setWeights(tensors);
    tensors.forEach((t) => t.dispose());
  }

  /** The loss to use with this dataset's target. */
  private lossFor(ds: ClientDataset): Exclude<TfjsLoss, 'auto'> {
    const spec = ds.fields[this.target];
    if (!spec) throw bad(`target`, `the dataset has no field '${this.target}' (it has ${Object.keys(ds.fields).join(', ')})`);
    if (this.loss !== 'auto') return this.loss;
    return spec.dtype === 'int32' && spec.shape.length === 0 ? 'softmax-cross-entropy' : 'mean-squared-error';
  }

  private x(batch: Readonly<Record<string, FieldTensor>>): TfTensor[] {
    return this.inputs.map((name, i) => {
      const t = batch[name];
      if (!t) throw bad(`inputs[${i}]`, `the dataset has no field '${name}' (it has ${Object.keys(batch).join(', ')})`);
      const want = this.model.inputs[i]!.shape.slice(1).map(Number);
      const per = t.shape.slice(1).reduce((a, b) => a * b, 1);
      if (want.some((d) => !(d > 0)) || want.reduce((a, b) => a * b, 1) !== per) {
        if (want.length === t.shape.length - 1 && want.every((d, k) => !(d > 0) || d === t.shape[k + 1]))
          return this.tf.tensor(t.data, [...t.shape], 'float32');
        throw bad(`inputs[${i}]`, `field '${name}' has shape [${t.shape.slice(1).join(', ')}] per example, the model input [${want.join(', ')}]`, 'ERR_SHAPE_MISMATCH');
      }
      return this.tf.tensor(t.data, [t.shape[0]!, ...want], 'float32');
    });
  }

  private y(t: FieldTensor | undefined, loss: Exclude<TfjsLoss, 'auto'>): TfTensor {
    if (!t) throw bad('target', `the dataset has no field '${this.target}'`);
    const n = t.shape[0]!;
    if (loss !== 'mean-squared-error' && t.shape.length === 1) {
      for (const v of t.data)
        if (!(Number.isInteger(v) && v >= 0 && v < this.outputs))
          throw bad(this.target, `class ${v} outside 0..${this.outputs - 1} (the model has ${this.outputs} outputs)`);
      return this.tf.tidy(() => this.tf.oneHot(this.tf.tensor1d(t.data as Int32Array, 'int32'), this.outputs).toFloat());
    }
    const per = t.shape.slice(1).reduce((a, b) => a * b, 1);
    if (per !== this.outputs) throw bad(this.target, `${per} values per example, the model has ${this.outputs} outputs`, 'ERR_SHAPE_MISMATCH');
    return this.tf.tensor2d(t.data, [n, per], 'float32');
  }

  private compiledLoss(loss: Exclude<TfjsLoss, 'auto'>): string | ((y: TfTensor, p: TfTensor) => TfTensor) {
    if (loss === 'softmax-cross-entropy') return (y, p) => this.tf.losses.softmaxCrossEntropy(y, p);
    return loss === 'categorical-crossentropy' ? 'categoricalCrossentropy' : 'meanSquaredError';
  }

  async fit(weights: Float32Array, ds: ClientDataset, o: FitOptions): Promise<FitResult> {
    this.load(weights);
    const loss = this.lossFor(ds);
    const optimizer = proxSgd(this.tf, o.learningRate, o.proximalMu ?? 0, this.model);
    this.model.compile({ optimizer, loss: this.compiledLoss(loss) as never });
    let last = NaN;
    try {
      for (let e = 0; e < o.epochs && ds.size > 0; e++) {
        // One shuffled copy of the whole dataset per epoch, minibatches cut by tfjs (as fast as hand-fed batches, fewer calls).
        const [all] = ds.batches(0, { seed: (o.seed ?? 1) * 1009 + e });
        const xs = this.x(all!);
        const ys = this.y(all![this.target], loss);
        try {
          const h = await this.model.fit(xs.length === 1 ? xs[0]! : xs, ys, {
            batchSize: o.batchSize === 0 ? ds.size : o.batchSize,
            epochs: 1,
            shuffle: false,
            verbose: 0,
          });
          last = Number(h.history.loss?.[0]);
        } finally {
          xs.forEach((t) => t.dispose());
          ys.dispose();
        }
      }
    } finally {
      optimizer.disposeAnchors();
      optimizer.dispose();
    }
    const delta = this.flatten(this.model);
    for (let i = 0; i < delta.length; i++) delta[i] = delta[i]! - weights[i]!;
    return { delta, examples: ds.size, metrics: Number.isFinite(last) ? { loss: last } : {} };
  }

  async evaluate(weights: Float32Array, ds: ClientDataset): Promise<Metrics> {
    const tf = this.tf;
    this.load(weights);
    const loss = this.lossFor(ds);
    const classes = loss !== 'mean-squared-error';
    let correct = 0;
    let lossSum = 0;
    for (const batch of ds.batches(this.o.evalBatch ?? 2000, { shuffle: false })) {
      const [c, l] = tf.tidy(() => {
        const xs = this.x(batch);
        const p = this.model.predict(xs.length === 1 ? xs[0]! : xs) as TfTensor;
        const y = this.y(batch[this.target], loss);
        const perExample =
          loss === 'softmax-cross-entropy'
            ? tf.losses.softmaxCrossEntropy(y, p, undefined, undefined, tf.Reduction.NONE)
            : loss === 'categorical-crossentropy'
              ? tf.metrics.categoricalCrossentropy(y, p)
              : tf.metrics.meanSquaredError(y, p);
        const ok = classes ? p.argMax(-1).equal(y.argMax(-1)).sum().dataSync()[0]! : 0;
        return [ok, perExample.sum().dataSync()[0]!];
      });
      correct += c;
      lossSum += l;
    }
    const n = Math.max(1, ds.size);
    return classes ? { accuracy: correct / n, loss: lossSum / n } : { loss: lossSum / n };
  }
}

/** A TfjsTrainer for the author's model (see TfjsTrainerOptions). */
export function createTfjsTrainer(o: TfjsTrainerOptions): Promise<TfjsTrainer> {
  return TfjsTrainer.create(o);
}
