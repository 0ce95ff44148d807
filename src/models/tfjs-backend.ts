/**
 * Picks the TensorFlow.js runtime once per process. With `auto`, an installed
 * @tensorflow/tfjs-node-gpu or @tensorflow/tfjs-node (optional peers: their
 * install downloads libtensorflow, so they are never required) wins; else
 * @tensorflow/tfjs on the WebAssembly backend. tfjs itself is imported only
 * when a tfjs model is loaded or the backend is asked about.
 */
import { WhaleError } from '../common/errors.js';
import { registerWasmConvGradients } from './tfjs-wasm-conv-grad.js';

export type Tf = typeof import('@tensorflow/tfjs');
export type TfjsBackendChoice = 'auto' | 'wasm' | 'cpu' | 'tensorflow';

export interface TfjsRuntime {
  tf: Tf;
  /** The tfjs backend in use: 'tensorflow' (tfjs-node), 'wasm' or 'cpu'. */
  backend: string;
  /** The package that provides it. */
  package: string;
  /** Why this one, e.g. which optional packages were not found. */
  note: string;
}

/** Imports a package by name (injectable in tests). */
export type Importer = (specifier: string) => Promise<unknown>;

const NODE_PACKAGES = ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node'] as const;
const CHOICES: readonly TfjsBackendChoice[] = ['auto', 'wasm', 'cpu', 'tensorflow'];

const defaultImporter: Importer = (specifier) => import(specifier);

async function tryImport(importer: Importer, name: string): Promise<{ mod?: Tf; error?: string }> {
  try {
    return { mod: (await importer(name)) as Tf };
  } catch (err) {
    return { error: (err as Error).message.split('\n')[0] };
  }
}

async function activate(tf: Tf, backend: string): Promise<void> {
  const ok = await tf.setBackend(backend);
  if (!ok) throw new WhaleError('ERR_DEVICE_UNAVAILABLE', `tfjs backend '${backend}' failed to initialize`, { field: 'backend' });
  await tf.ready();
}

/** Resolves the runtime for `choice` (not cached: see tfjsRuntime). */
export async function pickTfjsRuntime(choice: TfjsBackendChoice = 'auto', importer: Importer = defaultImporter): Promise<TfjsRuntime> {
  if (!CHOICES.includes(choice)) {
    throw new WhaleError('ERR_INVALID_OPTION', `backend: must be one of ${CHOICES.join(', ')}, got ${JSON.stringify(choice)}`, { field: 'backend' });
  }
  const missing: string[] = [];
  if (choice === 'auto' || choice === 'tensorflow') {
    for (const name of NODE_PACKAGES) {
      const { mod, error } = await tryImport(importer, name);
      if (mod) {
        await activate(mod, 'tensorflow');
        return { tf: mod, backend: 'tensorflow', package: name, note: `${name} is installed` };
      }
      missing.push(`${name}: ${error}`);
    }
    if (choice === 'tensorflow') {
      throw new WhaleError('ERR_DEVICE_UNAVAILABLE', `backend 'tensorflow' needs @tensorflow/tfjs-node(-gpu): ${missing.join('; ')}`, {
        field: 'backend',
      });
    }
  }
  const { mod: tf, error } = await tryImport(importer, '@tensorflow/tfjs');
  if (!tf) throw new WhaleError('ERR_MODEL_LOAD', `backend: @tensorflow/tfjs cannot be loaded: ${error}`, { field: 'backend' });
  const notFound = missing.length ? `tfjs-node not installed (optional; ${missing.map((m) => m.split(':')[0]).join(', ')} not found)` : '';
  if (choice === 'cpu') {
    await activate(tf, 'cpu');
    return { tf, backend: 'cpu', package: '@tensorflow/tfjs', note: 'cpu backend requested' };
  }
  const wasm = await tryImport(importer, '@tensorflow/tfjs-backend-wasm');
  if (!wasm.mod) throw new WhaleError('ERR_MODEL_LOAD', `backend: @tensorflow/tfjs-backend-wasm cannot be loaded: ${wasm.error}`, { field: 'backend' });
  await activate(tf, 'wasm');
  // The wasm backend ships no Conv2DBackpropFilter: without it CNNs infer but cannot train.
  let gradients = '';
  try {
    registerWasmConvGradients(tf);
  } catch (err) {
    gradients = `; convolution training unavailable: ${(err as Error).message}`;
  }
  return { tf, backend: 'wasm', package: '@tensorflow/tfjs-backend-wasm', note: (notFound || 'wasm backend requested') + gradients };
}

let shared: { choice: TfjsBackendChoice; runtime: Promise<TfjsRuntime> } | undefined;

/**
 * The process's tfjs runtime: the first call picks it (`auto` unless told),
 * later calls share it. TensorFlow.js has one active backend per process, so
 * asking for a different explicit backend afterwards is ERR_INVALID_OPTION.
 */
export function tfjsRuntime(choice: TfjsBackendChoice = 'auto'): Promise<TfjsRuntime> {
  if (!shared) {
    const runtime = pickTfjsRuntime(choice);
    shared = { choice, runtime };
    runtime.catch(() => {
      if (shared?.runtime === runtime) shared = undefined;
    });
    return runtime;
  }
  const current = shared;
  if (choice === 'auto' || choice === current.choice) return current.runtime;
  return current.runtime.then((rt) => {
    if (rt.backend === choice) return rt;
    throw new WhaleError('ERR_INVALID_OPTION', `backend: this process already runs tfjs on '${rt.backend}'; one backend per process`, { field: 'backend' });
  });
}

/** For `whale info`: which tfjs backend models will use, and why. */
export async function tfjsBackendInfo(): Promise<{ backend: string; package: string; note: string; version: string }> {
  const rt = await tfjsRuntime();
  return { backend: rt.backend, package: rt.package, note: rt.note, version: rt.tf.version.tfjs ?? rt.tf.version_core ?? 'unknown' };
}
