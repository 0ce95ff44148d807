/** defineModel(): a model from plain functions, with BaseModel's lifecycle, validation and batching. */
import { WhaleError } from '../../common/errors.js';
import { BaseModel } from './base-model.js';
import type { GenerateOptions, GenerationStep } from './model.js';
import { validateTensors, type NamedTensors, type TensorSpec } from './tensor.js';

function invalid(field: string, message: string): WhaleError {
  return new WhaleError('ERR_INVALID_ARG', `${field}: ${message}`, { field });
}

export interface ModelDefinition {
  name: string;
  version?: string;
  inputs: TensorSpec[];
  outputs: TensorSpec[];
  load?: () => Promise<void> | void;
  unload?: () => Promise<void> | void;
  process: (input: NamedTensors) => Promise<NamedTensors> | NamedTensors;
  processBatch?: (inputs: NamedTensors[]) => Promise<NamedTensors[]> | NamedTensors[];
  /** Iterative output (ModelInterface.generate): partial outputs, ending with one step marked final. */
  generate?: (input: NamedTensors, opts: GenerateOptions) => AsyncIterable<GenerationStep>;
  drainTimeoutMs?: number;
}

class DefinedModel extends BaseModel {
  constructor(private readonly def: ModelDefinition) {
    super({ ...def }, 'custom');
    if (typeof def.process !== 'function') throw invalid('process', 'must be a function');
    const batch = def.processBatch;
    if (batch !== undefined) {
      if (typeof batch !== 'function') throw invalid('processBatch', 'must be a function');
      this.runBatch = async (inputs) => batch(inputs);
    }
    const gen = def.generate;
    if (gen !== undefined) {
      if (typeof gen !== 'function') throw invalid('generate', 'must be a function');
      this.generate = (input, opts = {}) => this.checkedSteps(gen, input, opts);
    }
  }
  generate?: (input: NamedTensors, opts?: GenerateOptions) => AsyncIterable<GenerationStep>;
  /** The definition's steps, on a ready model with valid inputs; every step's outputs are checked too. */
  private async *checkedSteps(
    gen: NonNullable<ModelDefinition['generate']>,
    input: NamedTensors,
    opts: GenerateOptions,
  ): AsyncGenerator<GenerationStep> {
    if (this.status !== 'ready')
      throw new WhaleError('ERR_MODEL_NOT_READY', `model '${this.name}' is ${this.status}`, { field: 'model' });
    validateTensors(this.inputs, input);
    for await (const step of gen(input, opts)) {
      validateTensors(this.outputs, step.outputs, 'outputs');
      yield { outputs: step.outputs, final: step.final === true };
      if (step.final) return;
    }
  }
  protected override async loadModel(): Promise<void> {
    await this.def.load?.();
  }
  protected override async unloadModel(): Promise<void> {
    await this.def.unload?.();
  }
  protected override async run(input: NamedTensors): Promise<NamedTensors> {
    return this.def.process(input);
  }
}

/** A model from plain functions, with the same lifecycle, validation and batching as a BaseModel subclass. */
export function defineModel(def: ModelDefinition): BaseModel {
  if (typeof def !== 'object' || def === null) throw invalid('definition', 'must be an object');
  if (!Array.isArray(def.inputs)) throw invalid('inputs', 'must be an array of {name, datatype, shape}');
  if (!Array.isArray(def.outputs)) throw invalid('outputs', 'must be an array of {name, datatype, shape}');
  return new DefinedModel(def);
}
