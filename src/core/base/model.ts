/**
 * The model authors' API. A model declares typed inputs and outputs and
 * implements load/run; BaseModel (base-model.ts) supplies the checked
 * lifecycle, input and output validation, batching over dimension 0, draining
 * on unload, state snapshots and resource bookkeeping; defineModel()
 * (define-model.ts) builds one from plain functions.
 *
 * Iterative output: a model may also implement generate(), an async iterator
 * of steps (partial outputs, then the answer); the server streams them
 * (bus: ResponseChunks; HTTP: /v2/models/{m}/generate_stream).
 */
import type { ModelStatus } from './model-status.js';
import type { NamedTensors, TensorSpec } from './tensor.js';

export { MODEL_TRANSITIONS, canTransition, type ModelStatus } from './model-status.js';
export { BaseModel } from './base-model.js';
export { defineModel, type ModelDefinition } from './define-model.js';

/** Options of one generate() call. */
export interface GenerateOptions {
  /** Aborted when the caller stops listening (client gone): the model should stop producing steps. */
  signal?: AbortSignal;
}

/** One step of an iterative answer. */
export interface GenerationStep {
  /** This step's outputs (a partial answer, or the answer when final). */
  outputs: NamedTensors;
  /** The last step: its outputs are the answer. */
  final: boolean;
}

export interface ModelDescription {
  status: ModelStatus;
  /** Where the model runs (an execution provider or tfjs backend), when the adapter knows. */
  provider?: string;
  lastError?: string;
  [k: string]: unknown;
}

export interface ModelInterface {
  readonly name: string;
  readonly version: string;
  /** 'onnxruntime_onnx' | 'tensorflowjs' | 'custom' */
  readonly platform: string;
  readonly inputs: TensorSpec[];
  readonly outputs: TensorSpec[];
  readonly status: ModelStatus;
  load(): Promise<void>;
  unload(): Promise<void>;
  process(input: NamedTensors): Promise<NamedTensors>;
  /** One run over the inputs concatenated on dimension 0; result i answers inputs[i]. */
  processBatch?(inputs: NamedTensors[]): Promise<NamedTensors[]>;
  /**
   * Iterative output: yields partial outputs as they are produced and ends with one step marked
   * final (the answer). Optional: models without it answer in one step through process().
   */
  generate?(inputs: NamedTensors, opts?: GenerateOptions): AsyncIterable<GenerationStep>;
  describe(): ModelDescription;
  /** Takes the model out of service (a host calls it for a model that threw or hung); unload() then skips draining. */
  markFailed?(err: unknown): void;
}

export interface BaseModelConfig {
  name: string;
  version?: string;
  /** Declared signature; adapters that read it from the model file may leave these out. */
  inputs?: TensorSpec[];
  outputs?: TensorSpec[];
  /** How long unload() waits for calls in flight before releasing the model anyway (default 5000 ms). */
  drainTimeoutMs?: number;
}

export interface ModelStats {
  requests: number;
  batches: number;
  failures: number;
}

/** A JSON-able snapshot: counters plus what the model's exportState() returns. */
export interface ModelState {
  name: string;
  version: string;
  platform: string;
  status: ModelStatus;
  savedAt: string;
  stats: ModelStats;
  lastError?: string;
  data?: unknown;
}
