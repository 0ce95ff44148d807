// Writes the sample federation's data and model (run once from a clean clone, after `npm ci && npm run build`):
//   data/<client>/{x,y}.npy  3 learners x 2 clients x 500 MNIST training digits (x: 784 floats in [0, 1], y: the digit)
//   data/test/{x,y}.npy      2,000 MNIST test digits, the coordinator's held-out set
//   model/model.json (+ weights.bin)  a small tfjs MLP (784-128 relu-10 softmax), the initial model
// Then: npx whale federate --config examples/federation/federation.json
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { encodeNpy, MNIST_PIXELS, readMnist, tfjsFileHandler, tfjsRuntime } from 'smart-whale-core';

const here = dirname(fileURLToPath(import.meta.url));
const PER_CLIENT = 500;
const CLIENTS = ['a1', 'a2', 'b1', 'b2', 'c1', 'c2'];

function write(dir, images, labels) {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'x.npy'), encodeNpy(images, [labels.length, MNIST_PIXELS]));
  writeFileSync(join(dir, 'y.npy'), encodeNpy(labels, [labels.length]));
}

const train = readMnist('train', { count: PER_CLIENT * CLIENTS.length });
CLIENTS.forEach((c, i) => {
  const from = i * PER_CLIENT;
  write(
    join(here, 'data', c),
    train.images.subarray(from * MNIST_PIXELS, (from + PER_CLIENT) * MNIST_PIXELS),
    train.labels.subarray(from, from + PER_CLIENT),
  );
});
const test = readMnist('test', { count: 2000 });
write(join(here, 'data', 'test'), test.images, test.labels);

const { tf } = await tfjsRuntime();
const model = tf.sequential({
  layers: [
    tf.layers.dense({
      inputShape: [MNIST_PIXELS],
      units: 128,
      activation: 'relu',
      kernelInitializer: tf.initializers.glorotUniform({ seed: 1 }),
    }),
    tf.layers.dense({
      units: 10,
      activation: 'softmax',
      kernelInitializer: tf.initializers.glorotUniform({ seed: 2 }),
    }),
  ],
});
await model.save(tfjsFileHandler(join(here, 'model')));
console.log(
  `wrote ${CLIENTS.length} client datasets of ${PER_CLIENT} digits, data/test and model/model.json in ${here}`,
);
