/**
 * MNIST split among clients as in McMahan et al. 2017: IID (shuffled, equal
 * shares) or pathological non-IID (sorted by label, 2 x clients shards, two
 * shards per client). Deterministic from the seed, so every learner process
 * computes the same split and loads only its own shards.
 */
import { WhaleError } from '../../common/errors.js';
import { MNIST_PIXELS, type MnistSplit } from '../../models/mnist-idx.js';
import { seededRandom, shuffleInPlace } from '../../core/base/random.js';

export type Partition = 'iid' | 'noniid';

/** Example indices per client. */
export function partitionIndices(
  labels: Uint8Array,
  o: { kind: Partition; clients: number; seed: number; shardsPerClient?: number },
): number[][] {
  const n = labels.length;
  if (!(Number.isInteger(o.clients) && o.clients >= 1 && o.clients <= n)) {
    throw new WhaleError('ERR_INVALID_OPTION', `clients: must be an integer in [1, ${n}], got ${o.clients}`, {
      field: 'clients',
    });
  }
  const random = seededRandom(o.seed);
  if (o.kind === 'iid') {
    const order = shuffleInPlace(
      Array.from({ length: n }, (_, i) => i),
      random,
    );
    const per = Math.floor(n / o.clients);
    return Array.from({ length: o.clients }, (_, c) => order.slice(c * per, (c + 1) * per));
  }
  if (o.kind !== 'noniid')
    throw new WhaleError('ERR_INVALID_OPTION', `partition: must be 'iid' or 'noniid', got ${JSON.stringify(o.kind)}`, {
      field: 'partition',
    });
  const k = o.shardsPerClient ?? 2;
  const shards = o.clients * k;
  const size = Math.floor(n / shards);
  if (size < 1)
    throw new WhaleError('ERR_INVALID_OPTION', `clients: ${shards} shards of ${n} examples leave none per shard`, {
      field: 'clients',
    });
  // Stable sort by label: each shard holds one or two digits.
  const sorted = Array.from({ length: n }, (_, i) => i).sort((a, b) => labels[a]! - labels[b]! || a - b);
  const shardOrder = shuffleInPlace(
    Array.from({ length: shards }, (_, i) => i),
    random,
  );
  return Array.from({ length: o.clients }, (_, c) =>
    shardOrder.slice(c * k, (c + 1) * k).flatMap((s) => sorted.slice(s * size, (s + 1) * size)),
  );
}

/** Copies the examples at `indices` out of a split. */
export function gather(split: MnistSplit, indices: readonly number[]): MnistSplit {
  const images = new Float32Array(indices.length * MNIST_PIXELS);
  const labels = new Uint8Array(indices.length);
  indices.forEach((src, dst) => {
    images.set(split.images.subarray(src * MNIST_PIXELS, (src + 1) * MNIST_PIXELS), dst * MNIST_PIXELS);
    labels[dst] = split.labels[src]!;
  });
  return { images, labels, count: indices.length };
}

/** Client ids are 'c000', 'c001', ... (sortable). */
export function clientId(index: number): string {
  return `c${String(index).padStart(3, '0')}`;
}
