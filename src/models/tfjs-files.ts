/**
 * A TensorFlow.js IOHandler on a local directory (model.json + weight files),
 * so models load and save without tfjs-node and without any network access.
 * Weight paths in the manifest must stay inside the directory.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { isAbsolute, join, normalize, sep } from 'node:path';

import type { io } from '@tensorflow/tfjs';

import { WhaleError } from '../common/errors.js';

export const MODEL_JSON = 'model.json';
const WEIGHTS_FILE = 'weights.bin';

function loadError(dir: string, message: string, cause?: unknown): WhaleError {
  return new WhaleError('ERR_MODEL_LOAD', `path: ${dir}: ${message}`, { field: 'path', ...(cause === undefined ? {} : { cause }) });
}

function insideDir(dir: string, rel: string): string {
  const clean = normalize(rel);
  if (isAbsolute(clean) || clean === '..' || clean.startsWith(`..${sep}`)) throw loadError(dir, `weight path '${rel}' leaves the model directory`);
  return join(dir, clean);
}

function toArrayBuffer(buf: Buffer): ArrayBuffer {
  const copy = new ArrayBuffer(buf.byteLength);
  new Uint8Array(copy).set(buf);
  return copy;
}

async function loadArtifacts(dir: string): Promise<io.ModelArtifacts> {
  let json: io.ModelJSON;
  try {
    json = JSON.parse(await readFile(join(dir, MODEL_JSON), 'utf8')) as io.ModelJSON;
  } catch (err) {
    throw loadError(dir, `cannot read ${MODEL_JSON}: ${(err as Error).message}`, err);
  }
  if (typeof json !== 'object' || json === null || typeof json.modelTopology !== 'object' || json.modelTopology === null) {
    throw loadError(dir, `${MODEL_JSON} has no modelTopology`);
  }
  const manifest = Array.isArray(json.weightsManifest) ? json.weightsManifest : [];
  const weightSpecs: io.WeightsManifestEntry[] = [];
  const chunks: Buffer[] = [];
  for (const group of manifest) {
    weightSpecs.push(...group.weights);
    for (const p of group.paths) {
      try {
        chunks.push(await readFile(insideDir(dir, p)));
      } catch (err) {
        if (err instanceof WhaleError) throw err;
        throw loadError(dir, `cannot read weight file '${p}': ${(err as Error).message}`, err);
      }
    }
  }
  const { weightsManifest: _, ...rest } = json;
  return { ...rest, weightSpecs, weightData: toArrayBuffer(Buffer.concat(chunks)) };
}

function weightBytes(data: io.WeightData | undefined): Uint8Array {
  if (data === undefined) return new Uint8Array(0);
  const parts = Array.isArray(data) ? data : [data];
  return Buffer.concat(parts.map((b) => new Uint8Array(b)));
}

async function saveArtifacts(dir: string, artifacts: io.ModelArtifacts): Promise<io.SaveResult> {
  if (artifacts.modelTopology instanceof ArrayBuffer) {
    throw new WhaleError('ERR_UNSUPPORTED', 'modelTopology: saving a binary (protobuf) topology is not supported; save a JSON one', { field: 'modelTopology' });
  }
  await mkdir(dir, { recursive: true });
  const weights = weightBytes(artifacts.weightData);
  const { weightSpecs, weightData: _, ...rest } = artifacts;
  const json = { ...rest, weightsManifest: [{ paths: [WEIGHTS_FILE], weights: weightSpecs ?? [] }] };
  const text = JSON.stringify(json);
  await writeFile(join(dir, WEIGHTS_FILE), weights);
  await writeFile(join(dir, MODEL_JSON), text);
  return {
    modelArtifactsInfo: {
      dateSaved: new Date(),
      modelTopologyType: 'JSON',
      modelTopologyBytes: Buffer.byteLength(JSON.stringify(artifacts.modelTopology)),
      weightSpecsBytes: Buffer.byteLength(JSON.stringify(weightSpecs ?? [])),
      weightDataBytes: weights.byteLength,
    },
  };
}

/** `model.load(tfjsFileHandler(dir))` / `model.save(tfjsFileHandler(dir))`. */
export function tfjsFileHandler(dir: string): io.IOHandler {
  return { load: () => loadArtifacts(dir), save: (artifacts) => saveArtifacts(dir, artifacts) };
}
