/**
 * The real-model part of the routing bench, its models and measurements: the
 * MNIST classifiers the project can produce, served side by side by OnnxModel
 * (onnxruntime-node, CPU provider, one intra-op thread each):
 *   2nn-f32   the shipped 2NN (models/mnist/model.onnx),
 *   2nn-int8  the same weights through quantizeDenseOnnxInt8 (our int8 codec, integer matmuls),
 *   lr-f32    a logistic regression 784-10 trained here with tfjs (wasm) and exported by denseNetToOnnx.
 * measureStream() answers every request of a stream with every model (in a
 * rotating order), timing each model.process() call, so every policy is
 * scored on the same measured answers.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import type { NamedTensors } from '../src/core/base/tensor.js';
import { SeededRandom } from '../src/core/base/random.js';
import { MNIST_CLASSES, MNIST_PIXELS, argmaxRows, readMnist, type MnistSplit } from '../src/models/mnist-idx.js';
import { denseNetToOnnx } from '../src/models/onnx-export.js';
import { quantizeDenseOnnxInt8 } from '../src/models/onnx-int8.js';
import { OnnxModel } from '../src/models/onnx-model.js';
import { pickTfjsRuntime } from '../src/models/tfjs-backend.js';

export const SIZES = [1, 4, 32, 128];

export interface ServedModel {
  id: string;
  model: OnnxModel;
  bytes: number;
  /** Accuracy on the 10,000 test images (one batch). */
  testAccuracy: number;
  note: string;
}

/** One request of the stream and every model's measured answer to it. */
export interface MeasuredRequest {
  rows: number;
  /** Per model (in ServedModel order): images answered correctly. */
  correct: number[];
  /** Per model: wall time of model.process(), ms. */
  latencyMs: number[];
}

/** Logistic regression 784-10 (softmax), Adam, one pass over the 60,000 training images; seconds on the wasm backend. */
async function trainLogistic(seed: number): Promise<{ bytes: Uint8Array; seconds: number }> {
  const t0 = performance.now();
  const { tf } = await pickTfjsRuntime('wasm');
  const train = readMnist('train');
  const net = tf.sequential({
    layers: [
      tf.layers.dense({
        inputShape: [MNIST_PIXELS],
        units: MNIST_CLASSES,
        activation: 'softmax',
        kernelInitializer: tf.initializers.glorotUniform({ seed }),
      }),
    ],
  });
  net.compile({ optimizer: tf.train.adam(0.005), loss: 'categoricalCrossentropy' });
  const xs = tf.tensor2d(train.images, [train.count, MNIST_PIXELS]);
  const ys = tf.tidy(() => tf.oneHot(tf.tensor1d(Int32Array.from(train.labels), 'int32'), MNIST_CLASSES));
  await net.fit(xs, ys, { batchSize: 128, epochs: 1, shuffle: false, verbose: 0 });
  const [kernel, bias] = net.layers[0]!.getWeights();
  const bytes = denseNetToOnnx(
    [
      {
        kernel: kernel!.dataSync() as Float32Array,
        bias: bias!.dataSync() as Float32Array,
        inputs: MNIST_PIXELS,
        units: MNIST_CLASSES,
        activation: 'softmax',
      },
    ],
    { inputName: 'input', outputName: 'scores', graphName: 'mnist_logistic' },
  );
  tf.dispose([xs, ys]);
  net.dispose();
  return { bytes, seconds: (performance.now() - t0) / 1000 };
}

function batch(images: Float32Array, rows: number): NamedTensors {
  return { input: { name: 'input', datatype: 'FP32', shape: [rows, MNIST_PIXELS], data: images } };
}

function correctCount(out: NamedTensors, labels: ArrayLike<number>): number {
  const predicted = argmaxRows(out.scores!.data as Float32Array, MNIST_CLASSES);
  let n = 0;
  for (let i = 0; i < predicted.length; i++) if (predicted[i] === labels[i]) n++;
  return n;
}

/** Loads the three models; the caller unloads them. */
export async function serveModels(
  root: string,
  test: MnistSplit,
): Promise<{ models: ServedModel[]; lrSeconds: number }> {
  const shipped = readFileSync(join(root, 'models', 'mnist', 'model.onnx'));
  const int8 = quantizeDenseOnnxInt8(shipped).bytes;
  const lr = await trainLogistic(7);
  const specs = [
    { id: '2nn-f32', bytes: new Uint8Array(shipped), note: 'shipped 2NN 784-200-200-10, float32 Gemm' },
    {
      id: '2nn-int8',
      bytes: int8,
      note: 'same weights, int8 per column (our codec), dynamic uint8 activations, MatMulInteger',
    },
    {
      id: 'lr-f32',
      bytes: lr.bytes,
      note: `logistic regression 784-10, trained here (tfjs wasm, 1 epoch, ${lr.seconds.toFixed(1)} s)`,
    },
  ];
  const models: ServedModel[] = [];
  for (const s of specs) {
    const model = new OnnxModel({ name: s.id, bytes: s.bytes, executionProviders: 'cpu', intraOpThreads: 1 });
    await model.load();
    const out = await model.process(batch(test.images, test.count));
    models.push({
      id: s.id,
      model,
      bytes: s.bytes.byteLength,
      testAccuracy: correctCount(out, test.labels) / test.count,
      note: s.note,
    });
  }
  return { models, lrSeconds: lr.seconds };
}

/** Seeded stream: request sizes uniform over SIZES, images taken in order from seeded shuffles of the test set (reshuffled after each pass). */
export function* requestStream(
  test: MnistSplit,
  n: number,
  seed: number,
): Generator<{ rows: number; images: Float32Array; labels: Uint8Array }> {
  const r = new SeededRandom(seed);
  const order = Array.from({ length: test.count }, (_, i) => i);
  let pos = test.count;
  for (let q = 0; q < n; q++) {
    const rows = SIZES[r.int(SIZES.length)]!;
    const images = new Float32Array(rows * MNIST_PIXELS);
    const labels = new Uint8Array(rows);
    for (let i = 0; i < rows; i++) {
      if (pos === test.count) {
        for (let k = order.length - 1; k > 0; k--) {
          const j = r.int(k + 1);
          [order[k], order[j]] = [order[j]!, order[k]!];
        }
        pos = 0;
      }
      const src = order[pos++]!;
      images.set(test.images.subarray(src * MNIST_PIXELS, (src + 1) * MNIST_PIXELS), i * MNIST_PIXELS);
      labels[i] = test.labels[src]!;
    }
    yield { rows, images, labels };
  }
}

/** Every model answers every request (rotating which goes first); each process() call is timed alone. */
export async function measureStream(
  models: ServedModel[],
  test: MnistSplit,
  n: number,
  seed: number,
): Promise<MeasuredRequest[]> {
  const out: MeasuredRequest[] = [];
  let q = 0;
  for (const req of requestStream(test, n, seed)) {
    const correct = new Array<number>(models.length).fill(0);
    const latencyMs = new Array<number>(models.length).fill(0);
    for (let j = 0; j < models.length; j++) {
      const m = (q + j) % models.length;
      const input = batch(req.images, req.rows);
      const t0 = performance.now();
      const res = await models[m]!.model.process(input);
      latencyMs[m] = performance.now() - t0;
      correct[m] = correctCount(res, req.labels);
    }
    out.push({ rows: req.rows, correct, latencyMs });
    q++;
  }
  return out;
}
