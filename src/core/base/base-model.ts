/**
 * BaseModel: the lifecycle (see model-status.ts), validation of inputs and
 * outputs, batching over dimension 0, draining on unload, state snapshots and
 * resource bookkeeping shared by every model. A model implements loadModel()
 * and run(), and optionally unloadModel(), runBatch() and export/importState().
 */
import { WhaleError } from '../../common/errors.js';
import type { BaseModelConfig, ModelDescription, ModelInterface, ModelState, ModelStats } from './model.js';
import { checkTransition, type ModelStatus } from './model-status.js';
import { ResourceLease, type ResourceAllocation, type ResourceAware, type ResourceStatus } from './resource-aware.js';
import {
  concatBatch,
  splitBatch,
  validateSpecs,
  validateTensor,
  validateTensors,
  type NamedTensors,
  type TensorSpec,
} from './tensor.js';

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

function invalid(field: string, message: string): WhaleError {
  return new WhaleError('ERR_INVALID_ARG', `${field}: ${message}`, { field });
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export abstract class BaseModel<C extends BaseModelConfig = BaseModelConfig> implements ModelInterface, ResourceAware {
  readonly name: string;
  readonly version: string;
  readonly config: Readonly<C>;
  private current: ModelStatus = 'initialized';
  private signature: { inputs: TensorSpec[]; outputs: TensorSpec[] };
  private lastError: string | undefined;
  private inFlight = 0;
  /** Bumped by every load: calls left hanging by an earlier load do not hold up this one's drain. */
  private loads = 0;
  private idleWaiters: (() => void)[] = [];
  private draining: Promise<void> | undefined;
  private readonly counters: ModelStats = { requests: 0, batches: 0, failures: 0 };
  private readonly lease = new ResourceLease();

  constructor(
    config: C,
    readonly platform = 'custom',
  ) {
    if (typeof config !== 'object' || config === null) throw invalid('config', 'must be an object');
    if (typeof config.name !== 'string' || !NAME.test(config.name)) {
      throw invalid(
        'name',
        `must be 1-128 characters of letters, digits, '.', '_' or '-', starting with a letter or digit; got ${JSON.stringify(config.name)}`,
      );
    }
    if (config.version !== undefined && (typeof config.version !== 'string' || !NAME.test(config.version))) {
      throw invalid(
        'version',
        `must be a short string of letters, digits, '.', '_' or '-'; got ${JSON.stringify(config.version)}`,
      );
    }
    const drain = config.drainTimeoutMs;
    if (drain !== undefined && (!Number.isFinite(drain) || drain < 0))
      throw invalid('drainTimeoutMs', 'must be a number >= 0');
    this.config = config;
    this.name = config.name;
    this.version = config.version ?? '1';
    this.signature = { inputs: [], outputs: [] };
    this.setSignature(config.inputs ?? [], config.outputs ?? []);
  }

  // ---- what a model implements -------------------------------------------

  /** Acquires the model (file, session, weights). Throwing leaves the model failed. */
  protected abstract loadModel(): Promise<void>;
  /** Runs the model on validated inputs. */
  protected abstract run(input: NamedTensors): Promise<NamedTensors>;
  /** Releases what loadModel acquired. */
  protected async unloadModel(): Promise<void> {}
  /**
   * A custom batch run. Without it, processBatch concatenates the requests on
   * dimension 0 and calls run() once when every input and output declares a
   * batch dimension (-1 first), else runs them one by one.
   */
  protected runBatch?(inputs: NamedTensors[]): Promise<NamedTensors[]>;
  /** Extra state for saveState(); must be JSON-able. */
  protected exportState(): unknown {
    return undefined;
  }
  /** Restores what exportState() produced. */
  protected importState(_data: unknown): void {}

  /** Sets the declared inputs/outputs (adapters call it once they have read the model file). */
  protected setSignature(inputs: TensorSpec[], outputs: TensorSpec[]): void {
    validateSpecs(inputs, 'inputs');
    validateSpecs(outputs, 'outputs');
    this.signature = {
      inputs: inputs.map((s) => ({ ...s, shape: [...s.shape] })),
      outputs: outputs.map((s) => ({ ...s, shape: [...s.shape] })),
    };
  }

  // ---- the public contract -------------------------------------------------

  get status(): ModelStatus {
    return this.current;
  }

  get inputs(): TensorSpec[] {
    return this.signature.inputs;
  }

  get outputs(): TensorSpec[] {
    return this.signature.outputs;
  }

  /** initialized | stopped | failed → loading → ready, or → failed with the error rethrown (typed). */
  async load(): Promise<void> {
    this.moveTo('loading', 'load');
    this.loads++;
    this.inFlight = 0;
    try {
      await this.loadModel();
    } catch (err) {
      const e =
        err instanceof WhaleError
          ? err
          : new WhaleError('ERR_MODEL_LOAD', `model '${this.name}' failed to load: ${message(err)}`, { cause: err });
      this.markFailed(e);
      throw e;
    }
    if (this.current !== 'loading') {
      throw new WhaleError(
        'ERR_MODEL_LOAD',
        `model '${this.name}' failed while loading: ${this.lastError ?? this.current}`,
      );
    }
    this.lastError = undefined;
    this.moveTo('ready', 'finish loading');
  }

  /**
   * ready → draining (new calls refused, calls in flight finish, up to
   * drainTimeoutMs) → stopped. From initialized or failed it goes straight to
   * stopped; on a stopped model it does nothing; while draining it returns the same drain.
   */
  unload(): Promise<void> {
    if (this.current === 'stopped') return Promise.resolve();
    if (this.current === 'draining' && this.draining) return this.draining;
    if (this.current === 'ready') {
      this.moveTo('draining', 'unload');
      this.draining = this.waitIdle(this.config.drainTimeoutMs ?? 5_000)
        .then(() => this.release())
        .finally(() => {
          this.draining = undefined;
        });
      return this.draining;
    }
    checkTransition(this.name, this.current, 'stopped', 'unload');
    return this.release();
  }

  /** Moves the model to failed (from any working state) and remembers why. */
  markFailed(err: unknown): void {
    this.lastError = message(err);
    if (this.current !== 'failed') this.moveTo('failed', 'mark failed');
    this.wakeIdle();
  }

  async process(input: NamedTensors): Promise<NamedTensors> {
    this.requireReady();
    validateTensors(this.inputs, input);
    return this.track(async () => {
      const out = await this.guard(() => this.run(input));
      this.checkOutputs(out, 'outputs');
      this.counters.requests++;
      return out;
    });
  }

  async processBatch(inputs: NamedTensors[]): Promise<NamedTensors[]> {
    this.requireReady();
    if (!Array.isArray(inputs) || inputs.length === 0) throw invalid('inputs', 'must be a non-empty array of requests');
    inputs.forEach((x, i) => validateTensors(this.inputs, x, `inputs[${i}]`));
    return this.track(async () => {
      const out = await this.guard(() => this.batchRun(inputs));
      if (!Array.isArray(out) || out.length !== inputs.length) {
        throw new WhaleError(
          'ERR_MODEL_RUN',
          `model '${this.name}' returned ${Array.isArray(out) ? out.length : 'no'} results for ${inputs.length} requests`,
        );
      }
      out.forEach((o, i) => this.checkOutputs(o, `outputs[${i}]`));
      this.counters.batches++;
      this.counters.requests += inputs.length;
      return out;
    });
  }

  describe(): ModelDescription {
    return {
      status: this.current,
      ...(this.lastError === undefined ? {} : { lastError: this.lastError }),
      platform: this.platform,
      version: this.version,
      inFlight: this.inFlight,
      ...this.counters,
      resources: this.lease.resourceStatus(),
    };
  }

  /** A snapshot of counters and exportState(); the status is recorded but never restored (call load()). */
  saveState(): ModelState {
    const data = this.exportState();
    return {
      name: this.name,
      version: this.version,
      platform: this.platform,
      status: this.current,
      savedAt: new Date().toISOString(),
      stats: { ...this.counters },
      ...(this.lastError === undefined ? {} : { lastError: this.lastError }),
      ...(data === undefined ? {} : { data }),
    };
  }

  loadState(state: ModelState): void {
    if (typeof state !== 'object' || state === null) throw invalid('state', 'must be an object saved by saveState()');
    if (state.name !== this.name)
      throw invalid('state.name', `is '${String(state.name)}', this model is '${this.name}'`);
    if (state.version !== this.version)
      throw invalid('state.version', `is '${String(state.version)}', this model is '${this.version}'`);
    const stats = state.stats as Partial<ModelStats> | undefined;
    for (const k of ['requests', 'batches', 'failures'] as const) {
      const v = stats?.[k];
      if (!Number.isSafeInteger(v) || (v as number) < 0) throw invalid(`state.stats.${k}`, 'must be an integer >= 0');
    }
    this.importState(state.data);
    Object.assign(this.counters, { requests: stats!.requests, batches: stats!.batches, failures: stats!.failures });
  }

  allocateResources(cpu: number, memory: number, gpu: number): ResourceAllocation {
    return this.lease.allocateResources(cpu, memory, gpu);
  }

  releaseResources(): void {
    this.lease.releaseResources();
  }

  resourceStatus(): ResourceStatus {
    return this.lease.resourceStatus();
  }

  // ---- internals -------------------------------------------------------------

  private moveTo(to: ModelStatus, action: string): void {
    checkTransition(this.name, this.current, to, action);
    this.current = to;
  }

  private requireReady(): void {
    if (this.current !== 'ready') {
      throw new WhaleError(
        'ERR_MODEL_NOT_READY',
        `model '${this.name}' is ${this.current}${this.lastError ? `: ${this.lastError}` : ''}`,
        {
          field: 'model',
          retriable: this.current === 'loading',
        },
      );
    }
  }

  private get batchable(): boolean {
    const hasBatchDim = (s: TensorSpec) => s.shape.length > 0 && s.shape[0] === -1;
    return this.inputs.length > 0 && this.inputs.every(hasBatchDim) && this.outputs.every(hasBatchDim);
  }

  private async batchRun(inputs: NamedTensors[]): Promise<NamedTensors[]> {
    if (this.runBatch) return this.runBatch(inputs);
    if (inputs.length === 1 || !this.batchable || !sameRowShapes(inputs)) {
      const out: NamedTensors[] = [];
      for (const x of inputs) out.push(await this.run(x));
      return out;
    }
    const { tensors, sizes } = concatBatch(inputs);
    const merged = await this.run(tensors);
    this.checkOutputs(merged, 'outputs');
    try {
      return splitBatch(merged, sizes);
    } catch (err) {
      // The inputs were valid: outputs that do not split by rows are the model's fault.
      const e = err as WhaleError;
      throw new WhaleError(
        'ERR_MODEL_RUN',
        `model '${this.name}' returned outputs that do not split into the batch: ${e.message}`,
        { field: e.field, cause: err },
      );
    }
  }

  /** Runs model code: counts failures and turns untyped errors into ERR_MODEL_RUN. */
  private async guard<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      this.counters.failures++;
      if (err instanceof WhaleError) throw err;
      throw new WhaleError('ERR_MODEL_RUN', `model '${this.name}' failed: ${message(err)}`, { cause: err });
    }
  }

  private checkOutputs(out: NamedTensors, at: string): void {
    if (typeof out !== 'object' || out === null)
      throw new WhaleError('ERR_MODEL_RUN', `${at}: model '${this.name}' returned no tensors`, { field: at });
    for (const spec of this.outputs) {
      const t = out[spec.name];
      try {
        if (!t) throw invalid(`${at}.${spec.name}`, 'is missing');
        if (t.datatype !== spec.datatype)
          throw invalid(`${at}.${spec.name}.datatype`, `expected ${spec.datatype}, got ${String(t.datatype)}`);
        validateTensor(t, `${at}.${spec.name}`);
      } catch (err) {
        const e = err as WhaleError;
        throw new WhaleError('ERR_MODEL_RUN', `model '${this.name}' returned a bad output: ${e.message}`, {
          field: e.field,
          cause: err,
        });
      }
    }
  }

  private async track<T>(fn: () => Promise<T>): Promise<T> {
    const load = this.loads;
    this.inFlight++;
    try {
      return await fn();
    } finally {
      if (load === this.loads) {
        this.inFlight--;
        if (this.inFlight === 0) this.wakeIdle();
      }
    }
  }

  private waitIdle(timeoutMs: number): Promise<void> {
    if (this.inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, timeoutMs);
      timer.unref();
      this.idleWaiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  private wakeIdle(): void {
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }

  private async release(): Promise<void> {
    try {
      await this.unloadModel();
    } catch (err) {
      this.markFailed(err);
      throw new WhaleError('ERR_MODEL_LOAD', `model '${this.name}' failed to unload: ${message(err)}`, { cause: err });
    } finally {
      this.lease.releaseResources();
    }
    this.moveTo('stopped', 'stop');
  }
}

function sameRowShapes(inputs: NamedTensors[]): boolean {
  const first = inputs[0]!;
  return inputs.every((x) =>
    Object.keys(first).every((n) => x[n]!.shape.slice(1).join() === first[n]!.shape.slice(1).join()),
  );
}
