/**
 * smart-whale-core/mnist: the MNIST federation demo application (loads TensorFlow.js).
 * Explicit named exports (no `export *`); src/index.ts re-exports them all.
 */
export {
  buildMnistModel,
  createMnistTrainer,
  type MnistArch,
  type MnistFederationOptions,
  type MnistFederationResult,
  mnistDataset,
  type MnistTrainer,
  type Partition,
  partitionIndices,
  runMnistFederation,
} from '../apps/mnist/index.js';
