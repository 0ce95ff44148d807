export { runMnistFederation, type MnistFederationOptions, type MnistFederationResult } from './mnist-federation.js';
export { createMnistTrainer, type MnistArch, type MnistTrainer } from './tfjs-trainer.js';
export { partitionIndices, type Partition } from './mnist-partition.js';
