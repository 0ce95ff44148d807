/** The pre-issue-21 MNIST-specific trainer, kept as the reference of bench/federation-generic.ts. */
import { seededRandom, shuffleInPlace } from '../src/core/base/random.js';
import type { ClientDataset, InMemoryDataset } from '../src/core/federation/learning/dataset.js';
import type { FitOptions, Trainer } from '../src/core/federation/learning/trainer.js';
import { buildMnistModel } from '../src/apps/mnist/mnist-presets.js';
import { MNIST_CLASSES, MNIST_PIXELS } from '../src/models/mnist-idx.js';

type Tf = typeof import('@tensorflow/tfjs');
type LayersModel = import('@tensorflow/tfjs').LayersModel;

/** The pre-issue-21 MNIST trainer's training and evaluation loops (db5f8e0 src/apps/mnist/tfjs-trainer.ts). */
export class MnistSpecificTrainer implements Trainer {
  readonly backend: string;
  readonly layout;
  private readonly shapes: number[][];
  private readonly params: number;
  constructor(
    private readonly tf: Tf,
    backend: string,
    private readonly model: LayersModel,
  ) {
    this.backend = `mnist-specific-${backend}`;
    this.shapes = model.getWeights().map((w) => w.shape);
    this.layout = this.shapes.map((shape, i) => ({ name: `w${i}`, shape }));
    this.params = this.shapes.reduce((s, sh) => s + sh.reduce((a, b) => a * b, 1), 0);
  }
  init(seed: number): Float32Array {
    const m = buildMnistModel(this.tf, '2nn', seed);
    const out = this.flatten(m);
    m.dispose();
    return out;
  }
  private flatten(m: LayersModel = this.model): Float32Array {
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
    let at = 0;
    const tensors = this.shapes.map((shape) => {
      const n = shape.reduce((a, b) => a * b, 1);
      const t = this.tf.tensor(weights.subarray(at, at + n), shape);
      at += n;
      return t;
    });
    this.model.setWeights(tensors);
    tensors.forEach((t) => t.dispose());
  }
  async fit(weights: Float32Array, ds: ClientDataset, o: FitOptions) {
    const tf = this.tf;
    const d = ds as InMemoryDataset;
    const images = d.field('x').data as Float32Array;
    const labels = d.field('y').data;
    const count = ds.size;
    this.load(weights);
    const optimizer = tf.train.sgd(o.learningRate);
    this.model.compile({ optimizer, loss: (y, p) => tf.losses.softmaxCrossEntropy(y, p) });
    const random = seededRandom(o.seed ?? 1);
    const order = Array.from({ length: count }, (_, i) => i);
    let loss = NaN;
    for (let e = 0; e < o.epochs; e++) {
      shuffleInPlace(order, random);
      const x = new Float32Array(count * MNIST_PIXELS);
      const y = new Int32Array(count);
      order.forEach((src, dst) => {
        x.set(images.subarray(src * MNIST_PIXELS, (src + 1) * MNIST_PIXELS), dst * MNIST_PIXELS);
        y[dst] = labels[src]!;
      });
      const xs = tf.tensor2d(x, [count, MNIST_PIXELS]);
      const ys = tf.tidy(() => tf.oneHot(tf.tensor1d(y, 'int32'), MNIST_CLASSES).toFloat());
      const h = await this.model.fit(xs, ys, {
        batchSize: o.batchSize || count,
        epochs: 1,
        shuffle: false,
        verbose: 0,
      });
      loss = Number(h.history.loss?.[0]);
      xs.dispose();
      ys.dispose();
    }
    optimizer.dispose();
    const trained = this.flatten();
    const delta = new Float32Array(trained.length);
    for (let i = 0; i < delta.length; i++) delta[i] = trained[i]! - weights[i]!;
    return { delta, examples: count, metrics: { loss } };
  }
  async evaluate(weights: Float32Array, ds: ClientDataset) {
    const tf = this.tf;
    const d = ds as InMemoryDataset;
    const images = d.field('x').data as Float32Array;
    const labels = d.field('y').data;
    this.load(weights);
    let correct = 0;
    let lossSum = 0;
    for (let at = 0; at < ds.size; at += 2000) {
      const n = Math.min(2000, ds.size - at);
      const [c, l] = tf.tidy(() => {
        const logits = this.model.predict(
          tf.tensor2d(images.subarray(at * MNIST_PIXELS, (at + n) * MNIST_PIXELS), [n, MNIST_PIXELS]),
        ) as import('@tensorflow/tfjs').Tensor;
        const y = tf.tensor1d(Int32Array.from(labels.subarray(at, at + n)), 'int32');
        const ok = logits.argMax(1).equal(y).sum();
        const loss = tf.losses.softmaxCrossEntropy(
          tf.oneHot(y, MNIST_CLASSES).toFloat(),
          logits,
          undefined,
          undefined,
          tf.Reduction.SUM,
        );
        return [ok.dataSync()[0]!, loss.dataSync()[0]!];
      });
      correct += c;
      lossSum += l;
    }
    return { accuracy: correct / ds.size, loss: lossSum / ds.size };
  }
}
