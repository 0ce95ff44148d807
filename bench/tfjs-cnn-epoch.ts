/**
 * Seconds per client-epoch of the MNIST CNN (McMahan et al. 2017) on the tfjs
 * WebAssembly backend: 600 real training images, one epoch of minibatch SGD,
 * median of --runs epochs; first with only the Conv2DBackpropFilter kernel
 * registered (the shipped Conv2DBackpropInput and BatchMatMul), then with the
 * faster ones of src/models/tfjs-wasm-conv-grad.ts, in the same process. Also
 * the time to evaluate on the 10,000 test images (one federation round's
 * evaluation).
 *
 *   npm run build:ts && node dist/bench/tfjs-cnn-epoch.js [--runs 3] [--batches 10,50]
 */
import { parseArgs } from 'node:util';

import { buildMnistModel } from '../src/apps/mnist/mnist-presets.js';
import { MNIST_CLASSES, readMnist } from '../src/models/mnist-idx.js';
import { registerWasmConvGradients } from '../src/models/tfjs-wasm-conv-grad.js';
import { median, table } from './stats.js';

type Tf = typeof import('@tensorflow/tfjs');

async function epochSeconds(
  tf: Tf,
  batch: number,
  runs: number,
  images: Float32Array,
  labels: Uint8Array | Int32Array,
): Promise<number[]> {
  const model = buildMnistModel(tf, 'cnn', 1);
  model.compile({ optimizer: tf.train.sgd(0.05), loss: (y, p) => tf.losses.softmaxCrossEntropy(y, p) });
  const xs = tf.tensor4d(images, [labels.length, 28, 28, 1]);
  const ys = tf.tidy(() => tf.oneHot(tf.tensor1d(Int32Array.from(labels), 'int32'), MNIST_CLASSES).toFloat());
  const times: number[] = [];
  for (let r = 0; r < runs; r++) {
    const t0 = performance.now();
    await model.fit(xs, ys, { batchSize: batch, epochs: 1, shuffle: false, verbose: 0 });
    times.push((performance.now() - t0) / 1000);
  }
  tf.dispose([xs, ys]);
  model.dispose();
  return times;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { runs: { type: 'string', default: '3' }, batches: { type: 'string', default: '10,50' } },
  });
  const runs = Number(values.runs);
  const batches = values.batches.split(',').map(Number);
  const tf = (await import('@tensorflow/tfjs')) as Tf;
  await import('@tensorflow/tfjs-backend-wasm');
  if (!(await tf.setBackend('wasm'))) throw new Error('the tfjs wasm backend did not initialize');
  await tf.ready();
  const train = readMnist('train', { count: 600 });
  const rows: string[][] = [];
  for (const speedups of [false, true]) {
    registerWasmConvGradients(tf, { speedups });
    for (const batch of batches) {
      const t = await epochSeconds(tf, batch, runs, train.images, train.labels);
      rows.push([
        speedups
          ? 'filter grad + fast BackpropInput/BatchMatMul'
          : 'filter grad only (shipped BackpropInput/BatchMatMul)',
        String(batch),
        median(t).toFixed(2),
        t.map((x) => x.toFixed(2)).join(' '),
      ]);
      process.stderr.write(`${rows.at(-1)!.join(' | ')}\n`);
    }
  }
  const test = readMnist('test');
  const model = buildMnistModel(tf, 'cnn', 1);
  const evalTimes: number[] = [];
  for (let r = 0; r < Math.min(runs, 2); r++) {
    const t0 = performance.now();
    for (let at = 0; at < test.count; at += 2000) {
      const n = Math.min(2000, test.count - at);
      tf.tidy(() =>
        (
          model.predict(
            tf.tensor4d(test.images.subarray(at * 784, (at + n) * 784), [n, 28, 28, 1]),
          ) as import('@tensorflow/tfjs').Tensor
        )
          .argMax(1)
          .dataSync(),
      );
    }
    evalTimes.push((performance.now() - t0) / 1000);
  }
  model.dispose();
  process.stdout.write(
    `MNIST CNN (1,663,370 params) on tfjs wasm, 600 training images per client-epoch\n${table(['kernels', 'B', 'median s/epoch', 'runs s'], rows)}\n` +
      `evaluation on the 10,000 test images (predict, chunks of 2,000): median ${median(evalTimes).toFixed(2)} s (${evalTimes.map((x) => x.toFixed(2)).join(' ')})\n`,
  );
}

await main();
