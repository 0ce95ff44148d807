/** Model adapters: ONNX Runtime and TensorFlow.js, chosen by `adapter` in the configuration. */
import { WhaleError } from '../common/errors.js';
import type { ModelInterface } from '../core/base/model.js';
import { OnnxModel } from './onnx-model.js';
import type { ExecutionProviderChoice } from './onnx-runtime.js';
import type { TfjsBackendChoice } from './tfjs-backend.js';
import { TfjsModel } from './tfjs-model.js';

export { OnnxModel, type OnnxModelConfig } from './onnx-model.js';
export { TfjsModel, type TfjsModelConfig } from './tfjs-model.js';
export { onnxProviderInfo, probeCudaProvider, type CudaProviderProbe, type ExecutionProviderChoice } from './onnx-runtime.js';
export { pickTfjsRuntime, tfjsBackendInfo, tfjsRuntime, type TfjsBackendChoice, type TfjsRuntime } from './tfjs-backend.js';
export { tfjsFileHandler } from './tfjs-files.js';
export { denseNetToOnnx, type DenseActivation, type DenseExportOptions, type DenseLayer } from './onnx-export.js';
export { quantizeDenseOnnxInt8, type Int8Quantized, type QuantizedLayer } from './onnx-int8.js';
export { MNIST_CLASSES, MNIST_PIXELS, argmaxRows, mnistDataDir, readMnist, type MnistSplit } from './mnist-idx.js';

export type ModelAdapterName = 'onnx' | 'tfjs';

export interface CreateModelConfig {
  name: string;
  adapter: ModelAdapterName;
  /** The .onnx file (onnx) or the model directory (tfjs). */
  path: string;
  version?: string;
  /** onnx: 'auto' (default) | 'cpu' | 'cuda'. */
  executionProvider?: ExecutionProviderChoice;
  executionProviders?: ExecutionProviderChoice;
  intraOpThreads?: number;
  /** tfjs: 'auto' (default) | 'wasm' | 'cpu' | 'tensorflow'. */
  backend?: TfjsBackendChoice;
  drainTimeoutMs?: number;
}

/** Builds (does not load) the adapter named by `config.adapter`. */
export function createModel(config: CreateModelConfig): ModelInterface {
  if (typeof config !== 'object' || config === null) throw new WhaleError('ERR_INVALID_ARG', 'config: must be an object', { field: 'config' });
  const common = {
    name: config.name,
    path: config.path,
    ...(config.version === undefined ? {} : { version: config.version }),
    ...(config.drainTimeoutMs === undefined ? {} : { drainTimeoutMs: config.drainTimeoutMs }),
  };
  switch (config.adapter) {
    case 'onnx':
      return new OnnxModel({
        ...common,
        executionProviders: config.executionProviders ?? config.executionProvider ?? 'auto',
        ...(config.intraOpThreads === undefined ? {} : { intraOpThreads: config.intraOpThreads }),
      });
    case 'tfjs':
      return new TfjsModel({ ...common, ...(config.backend === undefined ? {} : { backend: config.backend }) });
    default:
      throw new WhaleError('ERR_INVALID_ARG', `adapter: must be 'onnx' or 'tfjs', got ${JSON.stringify((config as { adapter?: unknown }).adapter)}`, {
        field: 'adapter',
      });
  }
}
