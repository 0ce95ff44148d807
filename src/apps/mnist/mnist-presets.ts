/**
 * The MNIST presets of `whale federate --model 2nn|cnn`: the "2NN" and "CNN"
 * of McMahan et al. 2017, built on the public TfjsTrainer (any tfjs
 * LayersModel) and fed MNIST shards as ClientDatasets (`x`: 784 pixels in
 * [0, 1], `y`: the digit), like any author's model.
 */
import { WhaleError } from '../../common/errors.js';
import { MNIST_CLASSES, MNIST_PIXELS, type MnistSplit } from '../../models/mnist-idx.js';
import type { Tf, TfjsBackendChoice } from '../../models/tfjs-backend.js';
import { createTfjsTrainer } from '../../models/tfjs-trainer.js';
import { InMemoryDataset } from '../../core/federation/learning/dataset.js';
import type { Trainer } from '../../core/federation/learning/trainer.js';

export type MnistArch = '2nn' | 'cnn';
export const MNIST_ARCHS: readonly MnistArch[] = ['2nn', 'cnn'];

/** A preset: the Trainer contract for one architecture, with its parameter count. */
export interface MnistTrainer extends Trainer {
  readonly arch: MnistArch;
  readonly params: number;
}

type LayersModel = import('@tensorflow/tfjs').LayersModel;

/** The paper's 2NN or CNN as an uncompiled tfjs model (logits out), Glorot-initialised from `seed`. */
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

/** An MNIST split as a ClientDataset: `x` (784 floats per image, no copy) and `y` (the digit, int32). */
export function mnistDataset(split: MnistSplit): InMemoryDataset {
  return new InMemoryDataset({
    x: { data: split.images, shape: [MNIST_PIXELS] },
    y: { data: split.labels, dtype: 'int32' },
  });
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
  const trainer = await createTfjsTrainer({
    build: (tf, seed) => buildMnistModel(tf, arch, seed),
    inputs: ['x'],
    target: 'y',
    loss: 'softmax-cross-entropy',
    ...(o.backend ? { backend: o.backend } : {}),
  });
  return Object.assign(trainer, { arch });
}
