/**
 * smart-whale-core/models: the ONNX Runtime and TensorFlow.js model adapters (loads their runtimes).
 * Explicit named exports (no `export *`); src/index.ts re-exports them all.
 */
export {
  argmaxRows,
  createModel,
  type CreateModelConfig,
  type CudaProviderProbe,
  type DenseActivation,
  type DenseExportOptions,
  type DenseLayer,
  denseNetToOnnx,
  type ExecutionProviderChoice,
  type Int8Quantized,
  MNIST_CLASSES,
  MNIST_PIXELS,
  mnistDataDir,
  type MnistSplit,
  type ModelAdapterName,
  OnnxModel,
  type OnnxModelConfig,
  onnxProviderInfo,
  pickTfjsRuntime,
  probeCudaProvider,
  quantizeDenseOnnxInt8,
  type QuantizedLayer,
  readMnist,
  type TfjsBackendChoice,
  tfjsBackendInfo,
  tfjsFileHandler,
  TfjsModel,
  type TfjsModelConfig,
  type TfjsRuntime,
  tfjsRuntime,
} from '../models/index.js';
export {
  createTfjsTrainer,
  TFJS_LOSSES,
  type TfjsLoss,
  TfjsTrainer,
  type TfjsTrainerOptions,
} from '../models/tfjs-trainer.js';
