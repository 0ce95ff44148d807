/** Builds the Trainer a federation config names: a saved tfjs model, an author's module, or an MNIST preset. */
import { pathToFileURL } from 'node:url';

import { WhaleError } from '../../common/errors.js';
import { readDataset, type ReadDatasetOptions } from '../../core/federation/learning/data/read-dataset.js';
import type { ClientDataset } from '../../core/federation/learning/dataset.js';
import type { Trainer } from '../../core/federation/learning/trainer.js';
import { createTfjsTrainer } from '../../models/tfjs-trainer.js';
import { createMnistTrainer } from '../mnist/mnist-presets.js';
import type { ModelSpec } from './config.js';

function isTrainer(v: unknown): v is Trainer {
  const t = v as Trainer;
  return (
    typeof t === 'object' &&
    t !== null &&
    typeof t.init === 'function' &&
    typeof t.fit === 'function' &&
    typeof t.evaluate === 'function'
  );
}

export async function loadTrainer(spec: ModelSpec): Promise<Trainer> {
  if (spec.kind === 'preset') return createMnistTrainer(spec.preset, spec.backend ? { backend: spec.backend } : {});
  if (spec.kind === 'tfjs') {
    const { kind: _k, path, ...rest } = spec;
    return createTfjsTrainer({ modelPath: path, ...rest });
  }
  let mod: Record<string, unknown>;
  try {
    mod = (await import(pathToFileURL(spec.path).href)) as Record<string, unknown>;
  } catch (err) {
    throw new WhaleError('ERR_MODEL_LOAD', `model.module: cannot import ${spec.path}: ${(err as Error).message}`, {
      field: 'model.module',
      cause: err,
    });
  }
  let v = mod[spec.export];
  if (typeof v === 'function' && !isTrainer(v)) v = await (v as () => unknown)();
  if (!isTrainer(v))
    throw new WhaleError(
      'ERR_MODEL_LOAD',
      `model.module: ${spec.path} export '${spec.export}' is not a Trainer (an object with init, fit, evaluate: defineTrainer(...) or createTfjsTrainer(...)) nor a function returning one`,
      { field: 'model.export' },
    );
  return v;
}

/** Reads every client's dataset (client id -> dataset directory). */
export async function readClients(
  clients: Readonly<Record<string, string>>,
  o: ReadDatasetOptions,
): Promise<Map<string, ClientDataset>> {
  const out = new Map<string, ClientDataset>();
  for (const [id, path] of Object.entries(clients)) out.set(id, await readDataset(path, o));
  return out;
}
