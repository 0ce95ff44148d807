/**
 * Local training for the federation's clients with TensorFlow.js (the
 * WebAssembly backend by default, tfjs-node when installed): the "2NN" and
 * "CNN" of McMahan et al. 2017, weights in and out as one flat Float32Array
 * (the layout the coordinator aggregates), plain minibatch SGD with an
 * optional FedProx proximal term mu/2 ||w - w_global||^2.
 */
import { WhaleError } from '../../common/errors.js';
import { MNIST_CLASSES, MNIST_PIXELS, type MnistSplit } from '../../models/mnist-idx.js';
import { tfjsRuntime, type Tf, type TfjsBackendChoice } from '../../models/tfjs-backend.js';
import type { LocalTrainer, TrainOptions } from '../../core/federation/learning/client/local-trainer.js';
import { seededRandom, shuffleInPlace } from '../../core/base/random.js';

export type MnistArch = '2nn' | 'cnn';
export const MNIST_ARCHS: readonly MnistArch[] = ['2nn', 'cnn'];

/** The federation's LocalTrainer contract (core) on MNIST shards, for one architecture. */
export interface MnistTrainer extends LocalTrainer<MnistSplit> {
  readonly arch: MnistArch;
}

type LayersModel = import('@tensorflow/tfjs').LayersModel;

/** The paper's 2NN or CNN as an uncompiled tfjs model on the active backend, Glorot-initialised from `seed`. */
export function buildMnistModel(tf: Tf, arch: MnistArch, seed: number): LayersModel {
  const init = (i: number) => tf.initializers.glorotUniform({ seed: seed * 16 + i });
  const dense = (units: number, i: number, activation?: 'relu') =>
    tf.layers.dense({ units, kernelInitializer: init(i), ...(activation ? { activation } : {}) });
  if (arch === '2nn') {
    return tf.sequential({
      layers: [
        tf.layers.inputLayer({ inputShape: [MNIST_PIXELS] }),
        dense(200, 0, 'relu'),
        dense(200, 1, 'relu'),
        dense(MNIST_CLASSES, 2),
      ],
    });
  }
  const conv = (filters: number, i: number) =>
    tf.layers.conv2d({ filters, kernelSize: 5, padding: 'same', activation: 'relu', kernelInitializer: init(i) });
  const pool = () => tf.layers.maxPooling2d({ poolSize: 2, strides: 2, padding: 'same' });
  return tf.sequential({
    layers: [
      tf.layers.inputLayer({ inputShape: [28, 28, 1] }),
      conv(32, 0),
      pool(),
      conv(64, 1),
      pool(),
      tf.layers.flatten(),
      dense(512, 2, 'relu'),
      dense(MNIST_CLASSES, 3),
    ],
  });
}

class TfjsTrainer implements MnistTrainer {
  readonly params: number;
  private readonly shapes: number[][];

  constructor(
    private readonly tf: Tf,
    readonly arch: MnistArch,
    readonly backend: string,
    private readonly model: LayersModel,
  ) {
    this.shapes = model.getWeights().map((w) => w.shape);
    this.params = this.shapes.reduce((s, sh) => s + sh.reduce((a, b) => a * b, 1), 0);
  }

  initialWeights(seed: number): Float32Array {
    const m = buildMnistModel(this.tf, this.arch, seed);
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
    if (!(weights instanceof Float32Array) || weights.length !== this.params) {
      throw new WhaleError(
        'ERR_SHAPE_MISMATCH',
        `weights: expected ${this.params} floats for the ${this.arch}, got ${weights?.length}`,
        { field: 'weights' },
      );
    }
    const tf = this.tf;
    let at = 0;
    const tensors = this.shapes.map((shape) => {
      const n = shape.reduce((a, b) => a * b, 1);
      const t = tf.tensor(weights.subarray(at, at + n), shape);
      at += n;
      return t;
    });
    this.model.setWeights(tensors);
    tensors.forEach((t) => t.dispose());
  }

  private inputs(images: Float32Array, count: number) {
    return this.arch === '2nn'
      ? this.tf.tensor2d(images, [count, MNIST_PIXELS])
      : this.tf.tensor4d(images, [count, 28, 28, 1]);
  }

  async train(
    weights: Float32Array,
    data: MnistSplit,
    o: TrainOptions,
  ): Promise<{ weights: Float32Array; loss: number }> {
    const tf = this.tf;
    this.load(weights);
    const mu = o.mu ?? 0;
    const optimizer = proxSgd(tf, o.lr, mu, this.model);
    this.model.compile({ optimizer, loss: (y, p) => tf.losses.softmaxCrossEntropy(y, p) });
    const random = seededRandom(o.seed ?? 1);
    const order = Array.from({ length: data.count }, (_, i) => i);
    let loss = NaN;
    for (let e = 0; e < o.epochs; e++) {
      shuffleInPlace(order, random);
      const x = new Float32Array(data.count * MNIST_PIXELS);
      const y = new Int32Array(data.count);
      order.forEach((src, dst) => {
        x.set(data.images.subarray(src * MNIST_PIXELS, (src + 1) * MNIST_PIXELS), dst * MNIST_PIXELS);
        y[dst] = data.labels[src]!;
      });
      const xs = this.inputs(x, data.count);
      const ys = tf.tidy(() => tf.oneHot(tf.tensor1d(y, 'int32'), MNIST_CLASSES).toFloat());
      const h = await this.model.fit(xs, ys, {
        batchSize: o.batch === 0 ? data.count : o.batch,
        epochs: 1,
        shuffle: false,
        verbose: 0,
      });
      loss = Number(h.history.loss?.[0]);
      xs.dispose();
      ys.dispose();
    }
    optimizer.disposeAnchors();
    optimizer.dispose();
    return { weights: this.flatten(), loss };
  }

  async evaluate(weights: Float32Array, data: MnistSplit): Promise<{ accuracy: number; loss: number }> {
    const tf = this.tf;
    this.load(weights);
    let correct = 0;
    let lossSum = 0;
    const chunk = 2000;
    for (let at = 0; at < data.count; at += chunk) {
      const n = Math.min(chunk, data.count - at);
      const [c, l] = tf.tidy(() => {
        const logits = this.model.predict(
          this.inputs(data.images.subarray(at * MNIST_PIXELS, (at + n) * MNIST_PIXELS), n),
        ) as import('@tensorflow/tfjs').Tensor;
        const labels = tf.tensor1d(Int32Array.from(data.labels.subarray(at, at + n)), 'int32');
        const ok = logits.argMax(1).equal(labels).sum();
        const loss = tf.losses.softmaxCrossEntropy(
          tf.oneHot(labels, MNIST_CLASSES).toFloat(),
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
    return { accuracy: correct / data.count, loss: lossSum / data.count };
  }
}

type ProxSgd = import('@tensorflow/tfjs').SGDOptimizer & { disposeAnchors(): void };

/** SGD whose gradients get mu (w - w_start) added: the FedProx proximal term, anchored at the received model. */
function proxSgd(tf: Tf, lr: number, mu: number, model: LayersModel): ProxSgd {
  const anchors = new Map<string, import('@tensorflow/tfjs').Tensor>();
  if (mu > 0) for (const w of model.trainableWeights) anchors.set(w.name, w.read().clone());
  class Prox extends tf.SGDOptimizer {
    override applyGradients(grads: Parameters<import('@tensorflow/tfjs').SGDOptimizer['applyGradients']>[0]): void {
      if (mu === 0) return super.applyGradients(grads);
      const vars = tf.engine().registeredVariables;
      const named = Array.isArray(grads) ? grads : Object.entries(grads).map(([name, tensor]) => ({ name, tensor }));
      const adjusted = tf.tidy(() =>
        named.map(({ name, tensor }) => {
          const anchor = anchors.get(name);
          const v = vars[name];
          return { name, tensor: anchor && v ? tensor.add(v.sub(anchor).mul(mu)) : tensor.clone() };
        }),
      );
      super.applyGradients(adjusted);
      adjusted.forEach((g) => g.tensor.dispose());
    }
    disposeAnchors(): void {
      anchors.forEach((t) => t.dispose());
      anchors.clear();
    }
  }
  return new Prox(lr);
}

/** A trainer for one architecture on the process's tfjs runtime (wasm unless told or tfjs-node is installed). */
export async function createMnistTrainer(
  arch: MnistArch,
  o: { backend?: TfjsBackendChoice; seed?: number } = {},
): Promise<MnistTrainer> {
  if (!MNIST_ARCHS.includes(arch))
    throw new WhaleError(
      'ERR_INVALID_OPTION',
      `model: must be one of ${MNIST_ARCHS.join(', ')}, got ${JSON.stringify(arch)}`,
      { field: 'model' },
    );
  const rt = await tfjsRuntime(o.backend ?? 'auto');
  if (arch === 'cnn' && !rt.tf.getKernel('Conv2DBackpropFilter', rt.backend)) {
    throw new WhaleError(
      'ERR_UNSUPPORTED',
      `model: the CNN cannot train on the tfjs '${rt.backend}' backend, it has no Conv2DBackpropFilter kernel (${rt.note})`,
      {
        field: 'model',
      },
    );
  }
  return new TfjsTrainer(rt.tf, arch, rt.backend, buildMnistModel(rt.tf, arch, o.seed ?? 1));
}
