/**
 * What a federated learner needs from the application that hosts it: the
 * clients' local data (opaque to the federation, which only counts examples)
 * and a trainer that trains and evaluates flat Float32Array weights on it.
 * Applications (src/apps/mnist: the tfjs 2NN/CNN on MNIST shards) implement it.
 */

/** One client's local data set; the federation only reads its example count. */
export interface LocalData {
  readonly count: number;
}

export interface TrainOptions {
  epochs: number;
  /** 0: the whole shard as one batch. */
  batch: number;
  lr: number;
  mu?: number;
  seed?: number;
}

export interface LocalTrainer<D extends LocalData = LocalData> {
  /** Length of the flat weight vector. */
  readonly params: number;
  /** Where training runs (e.g. a tfjs backend name), for reports. */
  readonly backend: string;
  initialWeights(seed: number): Float32Array;
  train(weights: Float32Array, data: D, o: TrainOptions): Promise<{ weights: Float32Array; loss: number }>;
  evaluate(weights: Float32Array, data: D): Promise<{ accuracy: number; loss: number }>;
}
