export { WhaleError, isWhaleError, type WhaleErrorCode, type WhaleErrorDetails } from '../../common/errors.js';
export { createLogger, silentLogger, type Logger, type LogLevel } from '../../common/logger.js';
export {
  DATATYPES,
  concatBatch,
  concatTensors,
  elementCount,
  sliceRows,
  splitBatch,
  storageOf,
  validateSpecs,
  validateTensor,
  validateTensors,
  type Datatype,
  type NamedTensors,
  type Tensor,
  type TensorData,
  type TensorSpec,
} from './tensor.js';
export {
  BaseModel,
  MODEL_TRANSITIONS,
  canTransition,
  defineModel,
  type BaseModelConfig,
  type GenerateOptions,
  type GenerationStep,
  type ModelDefinition,
  type ModelDescription,
  type ModelInterface,
  type ModelState,
  type ModelStats,
  type ModelStatus,
} from './model.js';
export { BaseProcessor, type ProcessorInterface, type ProcessorStats } from './processor.js';
export { ResourceLease, type ResourceAllocation, type ResourceAware, type ResourceStatus } from './resource-aware.js';
export { SeededRandom, seededRandom, shuffleInPlace, standardNormal, type Uniform } from './random.js';
