export { Aggregator } from './aggregator.js';
export { ServerOptimizer, type ServerOptimizerOptions } from './server-optimizer.js';
export * from './reference.js';
export type * from './types.js';
export {
  checkWeights,
  joinWeights,
  layoutSize,
  splitWeights,
  trainerLayout,
  type FitOptions,
  type FitResult,
  type Metrics,
  type NamedWeights,
  type WeightSpec,
  type Trainer,
  type WeightLayout,
} from './trainer.js';
export {
  InMemoryDataset,
  inMemoryDataset,
  type Batch,
  type BatchOptions,
  type ClientDataset,
  type DType,
  type FieldData,
  type FieldSpec,
  type FieldTensor,
} from './dataset.js';
export { defineTrainer, type FitOutput, type InitialWeights, type TrainerDefinition } from './define-trainer.js';
export { readDataset, type DatasetFormat, type ReadDatasetOptions } from './data/read-dataset.js';
export { encodeNpy, parseIdx, parseNpy, type ParsedArray } from './data/arrays.js';
