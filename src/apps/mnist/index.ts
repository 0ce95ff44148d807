export { runMnistFederation, type MnistFederationOptions, type MnistFederationResult } from './mnist-federation.js';
export {
  buildMnistModel,
  createMnistTrainer,
  mnistDataset,
  type MnistArch,
  type MnistTrainer,
} from './mnist-presets.js';
export { partitionIndices, type Partition } from './mnist-partition.js';
