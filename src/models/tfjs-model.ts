/**
 * TfjsModel: a TensorFlow.js LayersModel or GraphModel read from a directory
 * (model.json + weight files), run on the process's tfjs runtime (WebAssembly
 * by default, tfjs-node when installed; see tfjs-backend.ts).
 */
import { readFile, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

import type { GraphModel, LayersModel, Tensor as TfTensor } from '@tensorflow/tfjs';

import { WhaleError } from '../common/errors.js';
import { BaseModel, type BaseModelConfig, type ModelDescription } from '../core/base/model.js';
import type { Datatype, NamedTensors, Tensor, TensorSpec } from '../core/base/tensor.js';
import { tfjsRuntime, type TfjsBackendChoice, type TfjsRuntime } from './tfjs-backend.js';
import { MODEL_JSON, tfjsFileHandler } from './tfjs-files.js';

export interface TfjsModelConfig extends BaseModelConfig {
  /** The model directory, or its model.json. */
  path: string;
  /** Default 'auto': tfjs-node(-gpu) when installed, else wasm. */
  backend?: TfjsBackendChoice;
}

type TfDtype = 'float32' | 'int32' | 'bool' | 'string';
const TO_DATATYPE: Record<string, Datatype> = { float32: 'FP32', int32: 'INT32', bool: 'BOOL', string: 'BYTES' };
const TO_TF: Partial<Record<Datatype, TfDtype>> = { FP32: 'float32', INT32: 'int32', BOOL: 'bool', BYTES: 'string' };

function spec(name: string, shape: readonly (number | null)[] | undefined, dtype: string | undefined, at: string): TensorSpec {
  const datatype = TO_DATATYPE[dtype ?? 'float32'];
  if (!datatype) throw new WhaleError('ERR_MODEL_LOAD', `${at} '${name}' has dtype ${dtype}, which the engine does not serve`, { field: at });
  return { name, datatype, shape: (shape ?? []).map((d) => (d === null || d < 0 ? -1 : d)) };
}

export class TfjsModel extends BaseModel<TfjsModelConfig> {
  private runtime: TfjsRuntime | undefined;
  private layers: LayersModel | undefined;
  private graph: GraphModel | undefined;
  private format: 'layers-model' | 'graph-model' | undefined;

  constructor(config: TfjsModelConfig) {
    super(config, 'tensorflowjs');
    if (typeof config.path !== 'string' || config.path.length === 0) {
      throw new WhaleError('ERR_INVALID_ARG', 'path: must be the model directory (model.json + weights)', { field: 'path' });
    }
  }

  protected override async loadModel(): Promise<void> {
    const dir = await this.modelDir();
    let json: { format?: string; modelTopology?: { node?: unknown } };
    try {
      json = JSON.parse(await readFile(join(dir, MODEL_JSON), 'utf8'));
    } catch (err) {
      throw new WhaleError('ERR_MODEL_LOAD', `path: ${join(dir, MODEL_JSON)} is not a tfjs model.json: ${(err as Error).message}`, { field: 'path', cause: err });
    }
    this.format = json.format === 'graph-model' || Array.isArray(json.modelTopology?.node) ? 'graph-model' : 'layers-model';
    this.runtime = await tfjsRuntime(this.config.backend ?? 'auto');
    const { tf } = this.runtime;
    try {
      if (this.format === 'graph-model') {
        const g = await tf.loadGraphModel(tfjsFileHandler(dir));
        this.graph = g;
        this.setSignature(
          g.inputs.map((t, i) => spec(t.name, t.shape, t.dtype, `inputs[${i}]`)),
          g.outputs.map((t, i) => spec(t.name, t.shape, t.dtype, `outputs[${i}]`)),
        );
      } else {
        const m = await tf.loadLayersModel(tfjsFileHandler(dir));
        this.layers = m;
        this.setSignature(
          m.inputNames.map((n, i) => spec(n, m.inputs[i]!.shape, m.inputs[i]!.dtype, `inputs[${i}]`)),
          m.outputNames.map((n, i) => spec(n, m.outputs[i]!.shape, m.outputs[i]!.dtype, `outputs[${i}]`)),
        );
      }
    } catch (err) {
      await this.unloadModel();
      if (err instanceof WhaleError) throw err;
      throw new WhaleError('ERR_MODEL_LOAD', `path: ${dir} is not a loadable tfjs ${this.format}: ${(err as Error).message}`, { field: 'path', cause: err });
    }
  }

  protected override async unloadModel(): Promise<void> {
    this.layers?.dispose();
    this.graph?.dispose();
    this.layers = undefined;
    this.graph = undefined;
  }

  protected override async run(input: NamedTensors): Promise<NamedTensors> {
    const tf = this.runtime!.tf;
    const feeds = this.inputs.map((s) => {
      const t = input[s.name]!;
      return tf.tensor(t.data as Float32Array, t.shape, TO_TF[t.datatype]);
    });
    let outs: TfTensor[] = [];
    try {
      if (this.layers) {
        const y = this.layers.predict(feeds.length === 1 ? feeds[0]! : feeds);
        outs = Array.isArray(y) ? y : [y];
      } else {
        const named = Object.fromEntries(this.inputs.map((s, i) => [s.name, feeds[i]!]));
        const y = await this.graph!.executeAsync(named, this.outputs.map((s) => s.name));
        outs = Array.isArray(y) ? y : [y];
      }
      const result: NamedTensors = {};
      for (const [i, o] of this.outputs.entries()) result[o.name] = await readTensor(o, outs[i]!);
      return result;
    } finally {
      tf.dispose([...feeds, ...outs]);
    }
  }

  override describe(): ModelDescription {
    const rt = this.runtime;
    return {
      ...super.describe(),
      ...(rt ? { provider: rt.backend, backendPackage: rt.package, backendNote: rt.note } : {}),
      ...(this.format ? { format: this.format } : {}),
      path: this.config.path,
    };
  }

  private async modelDir(): Promise<string> {
    const path = this.config.path;
    try {
      const s = await stat(path);
      if (s.isDirectory()) return path;
      if (basename(path) === MODEL_JSON) return dirname(path);
      throw new WhaleError('ERR_MODEL_LOAD', `path: ${path}: expected a directory holding ${MODEL_JSON}, or ${MODEL_JSON} itself`, { field: 'path' });
    } catch (err) {
      if (err instanceof WhaleError) throw err;
      throw new WhaleError('ERR_MODEL_LOAD', `path: tfjs model ${path} does not exist`, { field: 'path', cause: err });
    }
  }
}

async function readTensor(specOut: TensorSpec, t: TfTensor): Promise<Tensor> {
  const shape = [...t.shape];
  const raw = await t.data();
  let data: Tensor['data'];
  if (specOut.datatype === 'BOOL') data = Array.from(raw as Uint8Array, (v) => v !== 0);
  else if (specOut.datatype === 'BYTES') data = Array.from(raw as unknown as Uint8Array[], (b) => Buffer.from(b).toString('utf8'));
  else data = raw as Float32Array | Int32Array;
  return { name: specOut.name, datatype: specOut.datatype, shape, data };
}
