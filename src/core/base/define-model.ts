/** defineModel(): a model from plain functions, with BaseModel's lifecycle, validation and batching. */
import { WhaleError } from '../../common/errors.js';
import { BaseModel } from './base-model.js';
import type { NamedTensors, TensorSpec } from './tensor.js';

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
