/**
 * onnxruntime-node, imported on first use: execution-provider discovery, the
 * engine's Tensor ↔ ort.Tensor conversion and the session metadata → TensorSpec
 * mapping. The CPU provider is bundled; the CUDA provider's library is there
 * only when the package's CUDA install step ran (it needs a download).
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

import type * as OrtModule from 'onnxruntime-node';

import { WhaleError } from '../common/errors.js';
import type { Datatype, NamedTensors, Tensor, TensorSpec } from '../core/base/tensor.js';

export type Ort = typeof OrtModule;
export type ExecutionProviderChoice = 'auto' | 'cpu' | 'cuda';

let ortPromise: Promise<Ort> | undefined;

export function loadOrt(): Promise<Ort> {
  ortPromise ??= import('onnxruntime-node').then((m) => m as Ort, (err: Error) => {
    ortPromise = undefined;
    throw new WhaleError('ERR_MODEL_LOAD', `onnxruntime-node cannot be loaded: ${err.message}`, { cause: err });
  });
  return ortPromise;
}

const CUDA_PROVIDER_LIB = 'libonnxruntime_providers_cuda.so';

/** Where onnxruntime-node keeps its native libraries for this platform. */
function ortBinDir(): string | undefined {
  try {
    const main = createRequire(import.meta.url).resolve('onnxruntime-node');
    return join(dirname(main), '..', 'bin', 'napi-v6', process.platform, process.arch);
  } catch {
    return undefined;
  }
}

export interface CudaProviderProbe {
  /** The CUDA provider is compiled into this onnxruntime-node build. */
  listed: boolean;
  /** Its shared library is installed next to the binding. */
  libraryPresent: boolean;
  note: string;
}

export function probeCudaProvider(ort: Ort): CudaProviderProbe {
  const listed = ort.listSupportedBackends().some((b) => b.name === 'cuda');
  const dir = ortBinDir();
  const libraryPresent = dir !== undefined && existsSync(join(dir, CUDA_PROVIDER_LIB));
  let note = 'CUDA provider library present';
  if (!listed) note = 'this onnxruntime-node build has no CUDA provider';
  else if (!libraryPresent) {
    note = `${CUDA_PROVIDER_LIB} is not installed (onnxruntime-node downloads it at install time; this project installs with onnxruntime-node-install=skip)`;
  }
  return { listed, libraryPresent, note };
}

/** For `whale info`: the onnxruntime-node version, its providers and whether CUDA can be used. */
export async function onnxProviderInfo(): Promise<{ version: string; backends: { name: string; bundled: boolean }[]; cuda: CudaProviderProbe }> {
  const ort = await loadOrt();
  return { version: ort.env.versions.node ?? ort.env.versions.common ?? 'unknown', backends: ort.listSupportedBackends(), cuda: probeCudaProvider(ort) };
}

type OrtType = OrtModule.Tensor.Type;

const FROM_ORT: Partial<Record<string, Datatype>> = {
  float32: 'FP32',
  float64: 'FP64',
  float16: 'FP16',
  int8: 'INT8',
  int16: 'INT16',
  int32: 'INT32',
  int64: 'INT64',
  uint8: 'UINT8',
  uint16: 'UINT16',
  uint32: 'UINT32',
  uint64: 'UINT64',
  bool: 'BOOL',
  string: 'BYTES',
};
const TO_ORT = Object.fromEntries(Object.entries(FROM_ORT).map(([k, v]) => [v, k])) as Record<Datatype, OrtType>;

/** Session metadata → the model's declared signature (symbolic dimensions become -1). */
export function specsFrom(meta: readonly OrtModule.InferenceSession.ValueMetadata[], at: 'inputs' | 'outputs'): TensorSpec[] {
  return meta.map((m, i) => {
    if (!m.isTensor) throw new WhaleError('ERR_MODEL_LOAD', `${at}[${i}] '${m.name}' is not a tensor; only tensor inputs/outputs are served`, { field: at });
    const datatype = FROM_ORT[m.type];
    if (!datatype) throw new WhaleError('ERR_MODEL_LOAD', `${at}[${i}] '${m.name}' has type ${m.type}, which the engine does not serve`, { field: at });
    return { name: m.name, datatype, shape: m.shape.map((d) => (typeof d === 'number' && d >= 0 ? d : -1)) };
  });
}

export function toOrtTensor(ort: Ort, t: Tensor): OrtModule.Tensor {
  const type = TO_ORT[t.datatype];
  if (t.datatype === 'BOOL') return new ort.Tensor('bool', Uint8Array.from(t.data as boolean[], (b) => (b ? 1 : 0)), t.shape);
  return new ort.Tensor(type, t.data as Float32Array, t.shape);
}

export function fromOrtTensors(out: OrtModule.InferenceSession.ReturnType): NamedTensors {
  const result: NamedTensors = {};
  for (const [name, v] of Object.entries(out)) {
    const t = v as OrtModule.Tensor;
    const datatype = FROM_ORT[t.type];
    if (!datatype) throw new WhaleError('ERR_MODEL_RUN', `output '${name}' has type ${t.type}, which the engine does not serve`, { field: `outputs.${name}` });
    let data: Tensor['data'];
    if (datatype === 'BOOL') data = Array.from(t.data as Uint8Array, (b) => b !== 0);
    else if (datatype === 'BYTES') data = [...(t.data as string[])];
    else data = t.data as Float32Array;
    result[name] = { name, datatype, shape: t.dims.map(Number), data };
  }
  return result;
}
