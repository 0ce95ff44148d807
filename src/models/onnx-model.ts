/**
 * OnnxModel: an ONNX file (or its bytes) run by onnxruntime-node. The
 * signature comes from the session's metadata; a batch of requests is one
 * session.run over their inputs stacked on dimension 0 (BaseModel.processBatch).
 * Execution provider `auto` tries CUDA when its library is installed and falls
 * back to the bundled CPU provider; describe().provider says which one runs.
 */
import { stat } from 'node:fs/promises';

import type * as OrtModule from 'onnxruntime-node';

import { WhaleError } from '../common/errors.js';
import { BaseModel, type BaseModelConfig, type ModelDescription } from '../core/base/model.js';
import type { NamedTensors } from '../core/base/tensor.js';
import { fromOrtTensors, loadOrt, probeCudaProvider, specsFrom, toOrtTensor, type ExecutionProviderChoice, type Ort } from './onnx-runtime.js';

export interface OnnxModelConfig extends BaseModelConfig {
  /** The .onnx file; or give `bytes`. */
  path?: string;
  bytes?: Uint8Array;
  /** Default 'auto'. `executionProvider` (singular, as in whale.config.json) is accepted too. */
  executionProviders?: ExecutionProviderChoice;
  executionProvider?: ExecutionProviderChoice;
  /** Threads inside one run; default: the CPU cores granted by allocateResources() before load (at least 1), else ORT's default. */
  intraOpThreads?: number;
  /** CUDA device index (default 0). */
  deviceId?: number;
}

const CHOICES: readonly ExecutionProviderChoice[] = ['auto', 'cpu', 'cuda'];

function bad(field: string, message: string): WhaleError {
  return new WhaleError('ERR_INVALID_ARG', `${field}: ${message}`, { field });
}

export class OnnxModel extends BaseModel<OnnxModelConfig> {
  private ort: Ort | undefined;
  private session: OrtModule.InferenceSession | undefined;
  private provider: 'cpu' | 'cuda' | undefined;
  private providerNote: string | undefined;
  /** The CUDA device the resource manager placed the model's GPU share on (placeOnDevice). */
  private placedDevice: number | undefined;
  /** The intra-op thread count the session was created with (undefined: ORT's default). */
  private threads: number | undefined;
  private readonly bytes: Uint8Array | undefined;

  constructor(config: OnnxModelConfig) {
    super(config, 'onnxruntime_onnx');
    const hasPath = typeof config.path === 'string' && config.path.length > 0;
    const hasBytes = config.bytes instanceof Uint8Array;
    if (hasPath === hasBytes) throw bad('path', 'give exactly one of `path` (an .onnx file) or `bytes`');
    if (config.bytes !== undefined && !hasBytes) throw bad('bytes', 'must be a Uint8Array');
    // A private copy: the caller may reuse its buffer.
    this.bytes = hasBytes ? Uint8Array.from(config.bytes!) : undefined;
    const choice = this.choice;
    if (!CHOICES.includes(choice)) throw bad('executionProviders', `must be one of ${CHOICES.join(', ')}, got ${JSON.stringify(choice)}`);
    const threads = config.intraOpThreads;
    if (threads !== undefined && (!Number.isSafeInteger(threads) || threads < 1 || threads > 1024)) {
      throw bad('intraOpThreads', 'must be an integer from 1 to 1024');
    }
    if (config.deviceId !== undefined && (!Number.isSafeInteger(config.deviceId) || config.deviceId < 0)) throw bad('deviceId', 'must be an integer >= 0');
  }

  /** The CUDA device its GPU share is on (the resource manager calls it before load); `deviceId` in the config wins. */
  placeOnDevice(index: number): void {
    if (!Number.isSafeInteger(index) || index < 0) throw bad('deviceId', 'must be an integer >= 0');
    this.placedDevice = index;
  }

  private get deviceId(): number {
    return this.config.deviceId ?? this.placedDevice ?? 0;
  }

  private get choice(): ExecutionProviderChoice {
    return this.config.executionProviders ?? this.config.executionProvider ?? 'auto';
  }

  protected override async loadModel(): Promise<void> {
    const source = await this.source();
    const ort = await loadOrt();
    this.ort = ort;
    const choice = this.choice;
    const granted = this.resourceStatus().allocated;
    const threads = this.config.intraOpThreads ?? (granted && granted.cpu > 0 ? Math.max(1, Math.floor(granted.cpu)) : undefined);
    this.threads = threads;
    const options = (providers: OrtModule.InferenceSession.ExecutionProviderConfig[]): OrtModule.InferenceSession.SessionOptions => ({
      executionProviders: providers,
      graphOptimizationLevel: 'all',
      logSeverityLevel: 3,
      ...(threads === undefined ? {} : { intraOpNumThreads: threads }),
      // Intra-op workers block instead of spinning: session.run runs on the event loop's thread, which spin-waited
      // for a worker the OS had not scheduled on a busy machine (issue 25; measured in bench/RESULTS.md, npm run bench -- http).
      extra: { session: { intra_op: { allow_spinning: '0' } } },
    });
    // Two calls because create() is overloaded on string | Uint8Array.
    const create = (providers: OrtModule.InferenceSession.ExecutionProviderConfig[]) =>
      typeof source === 'string' ? ort.InferenceSession.create(source, options(providers)) : ort.InferenceSession.create(source, options(providers));

    const cuda = probeCudaProvider(ort);
    if (choice === 'cuda' && !(cuda.listed && cuda.libraryPresent)) {
      throw new WhaleError('ERR_DEVICE_UNAVAILABLE', `executionProviders: model '${this.name}' asks for CUDA, but ${cuda.note}`, {
        field: 'executionProviders',
      });
    }
    const wantsCuda = choice === 'cuda' || (choice === 'auto' && cuda.listed && cuda.libraryPresent && granted?.gpu !== 0);
    let cudaError: string | undefined;
    if (wantsCuda) {
      try {
        this.session = await create([{ name: 'cuda', deviceId: this.deviceId }, 'cpu']);
        this.provider = 'cuda';
        this.providerNote = `CUDA execution provider on device ${this.deviceId}`;
      } catch (err) {
        cudaError = (err as Error).message.split('\n')[0];
        if (choice === 'cuda') {
          throw new WhaleError('ERR_DEVICE_UNAVAILABLE', `executionProviders: model '${this.name}' cannot run on the CUDA execution provider (${cuda.note}): ${cudaError}`, {
            field: 'executionProviders',
            cause: err,
          });
        }
      }
    }
    if (!this.session) {
      try {
        this.session = await create(['cpu']);
      } catch (err) {
        const where = typeof source === 'string' ? source : `${source.byteLength} bytes`;
        throw new WhaleError('ERR_MODEL_LOAD', `${typeof source === 'string' ? 'path' : 'bytes'}: model '${this.name}': ${where} is not a loadable ONNX model: ${(err as Error).message}`, {
          field: typeof source === 'string' ? 'path' : 'bytes',
          cause: err,
        });
      }
      this.provider = 'cpu';
      if (choice === 'cpu') this.providerNote = 'CPU execution provider requested';
      else if (granted?.gpu === 0) this.providerNote = 'no GPU granted (allocateResources gpu = 0)';
      else this.providerNote = cudaError ? `CUDA provider failed (${cudaError}); using CPU` : cuda.note;
    }
    try {
      this.setSignature(specsFrom(this.session.inputMetadata, 'inputs'), specsFrom(this.session.outputMetadata, 'outputs'));
    } catch (err) {
      await this.unloadModel();
      throw err;
    }
  }

  protected override async unloadModel(): Promise<void> {
    const s = this.session;
    this.session = undefined;
    await s?.release();
  }

  protected override async run(input: NamedTensors): Promise<NamedTensors> {
    const ort = this.ort!;
    const session = this.session;
    if (!session) throw new WhaleError('ERR_MODEL_NOT_READY', `model '${this.name}' has no session`, { field: 'model' });
    const feeds: Record<string, OrtModule.Tensor> = {};
    for (const spec of this.inputs) feeds[spec.name] = toOrtTensor(ort, input[spec.name]!);
    return fromOrtTensors(await session.run(feeds));
  }

  override describe(): ModelDescription {
    return {
      ...super.describe(),
      ...(this.provider ? { provider: this.provider } : {}),
      ...(this.providerNote ? { providerNote: this.providerNote } : {}),
      ...(this.provider ? { device: this.provider === 'cuda' ? `cuda:${this.deviceId}` : 'cpu' } : {}),
      ...(this.provider && this.threads !== undefined ? { intraOpThreads: this.threads } : {}),
      executionProviders: this.choice,
      ...(this.config.path ? { path: this.config.path } : {}),
    };
  }

  private async source(): Promise<string | Uint8Array> {
    if (this.bytes) return this.bytes;
    const path = this.config.path!;
    let isFile = false;
    let size = 0;
    try {
      const s = await stat(path);
      isFile = s.isFile();
      size = s.size;
    } catch (err) {
      throw new WhaleError('ERR_MODEL_LOAD', `path: model '${this.name}': ${path} does not exist`, { field: 'path', cause: err });
    }
    if (!isFile) throw new WhaleError('ERR_MODEL_LOAD', `path: model '${this.name}': ${path} is not a file`, { field: 'path' });
    if (size === 0) throw new WhaleError('ERR_MODEL_LOAD', `path: model '${this.name}': ${path} is empty`, { field: 'path' });
    return path;
  }
}
