/**
 * ModelHost: the models a node serves. It loads them, runs batches for the
 * scheduler, and takes a model that throws or hangs out of service: its
 * requests fail with typed errors, it is reloaded with backoff, and the rest
 * of the server stays up.
 */
import { WhaleError } from '../../common/errors.js';
import { createLogger, type Logger } from '../../common/logger.js';
import type { ModelInterface } from '../base/model.js';
import type { NamedTensors } from '../base/tensor.js';

export type HostedState = 'loading' | 'ready' | 'restarting' | 'failed' | 'stopped';

export interface HostedModelStatus {
  name: string;
  version: string;
  platform: string;
  state: HostedState;
  restarts: number;
  failures: number;
  lastError?: string;
  model: ReturnType<ModelInterface['describe']>;
}

interface Hosted {
  model: ModelInterface;
  state: HostedState;
  restarts: number;
  failures: number;
  lastError?: string;
  /** Bumped on every restart: a batch that started before it cannot mark the new instance failed. */
  generation: number;
  restartTimer?: NodeJS.Timeout;
}

export interface ModelHostOptions {
  logger?: Logger;
  /** First reload delay after a failure, doubled per consecutive failure (default 200 ms, max 30 s). */
  restartBackoffMs?: number;
  /** Consecutive failed reloads before the model stays failed (default 5). */
  maxRestarts?: number;
}

export class ModelHost {
  private readonly models = new Map<string, Hosted>();
  private readonly logger: Logger;
  private readonly backoffMs: number;
  private readonly maxRestarts: number;
  private closed = false;

  constructor(o: ModelHostOptions = {}) {
    this.logger = o.logger ?? createLogger('model-host');
    this.backoffMs = o.restartBackoffMs ?? 200;
    this.maxRestarts = o.maxRestarts ?? 5;
  }

  /** Adds a model and loads it; a model that fails to load is kept as `failed` (the rest still serve). */
  async add(model: ModelInterface): Promise<void> {
    if (this.models.has(model.name)) throw new WhaleError('ERR_CONFLICT', `a model named '${model.name}' is already hosted`, { field: 'name' });
    const h: Hosted = { model, state: 'loading', restarts: 0, failures: 0, generation: 0 };
    this.models.set(model.name, h);
    try {
      await model.load();
      h.state = 'ready';
      this.logger.info('model ready', { model: model.name, version: model.version, ...model.describe() });
    } catch (err) {
      h.state = 'failed';
      h.lastError = (err as Error).message;
      this.logger.error('model failed to load', { model: model.name, error: h.lastError });
    }
  }

  names(): string[] {
    return [...this.models.keys()];
  }

  has(name: string): boolean {
    return this.models.has(name);
  }

  /** The model, or ERR_MODEL_NOT_FOUND naming it. */
  get(name: string): ModelInterface {
    return this.entry(name).model;
  }

  isReady(name: string): boolean {
    return this.models.get(name)?.state === 'ready';
  }

  allReady(): boolean {
    return this.models.size > 0 && [...this.models.values()].every((h) => h.state === 'ready');
  }

  status(name: string): HostedModelStatus {
    const h = this.entry(name);
    return {
      name,
      version: h.model.version,
      platform: h.model.platform,
      state: h.state,
      restarts: h.restarts,
      failures: h.failures,
      ...(h.lastError ? { lastError: h.lastError } : {}),
      model: h.model.describe(),
    };
  }

  /** Throws ERR_MODEL_NOT_READY unless the model can take requests now. */
  requireReady(name: string): ModelInterface {
    const h = this.entry(name);
    if (h.state !== 'ready') {
      throw new WhaleError('ERR_MODEL_NOT_READY', `model '${name}' is ${h.state}${h.lastError ? `: ${h.lastError}` : ''}`, {
        field: 'model',
        retriable: h.state !== 'stopped',
      });
    }
    return h.model;
  }

  /** Runs one batch (the scheduler's executor): one model run over all inputs when it batches. */
  async runBatch(name: string, inputs: NamedTensors[]): Promise<NamedTensors[]> {
    const h = this.entry(name);
    const model = this.requireReady(name);
    const generation = h.generation;
    try {
      const out = model.processBatch ? await model.processBatch(inputs) : await runEach(model, inputs);
      if (out.length !== inputs.length) {
        throw new WhaleError('ERR_NATIVE', `model '${name}' returned ${out.length} results for ${inputs.length} inputs`);
      }
      return out;
    } catch (err) {
      // Bad input is the caller's fault, not the model's.
      if (!(err instanceof WhaleError && (err.code === 'ERR_INVALID_ARG' || err.code === 'ERR_SHAPE_MISMATCH'))) {
        this.fail(name, generation, err);
      }
      throw err;
    }
  }

  /** A batch that never settled: the model is treated as hung and reloaded. */
  markHung(name: string): void {
    const h = this.models.get(name);
    if (h) this.fail(name, h.generation, new WhaleError('ERR_TIMEOUT', `model '${name}' did not answer within its execution timeout`));
  }

  private fail(name: string, generation: number, err: unknown): void {
    const h = this.models.get(name);
    if (!h || h.generation !== generation || h.state !== 'ready' || this.closed) return;
    h.failures++;
    h.lastError = (err as Error)?.message ?? String(err);
    h.state = 'restarting';
    h.generation++;
    // A BaseModel marked failed unloads at once instead of waiting out its drain for a call that hangs.
    (h.model as { markFailed?: (err: unknown) => void }).markFailed?.(err);
    this.logger.warn('model failed; reloading', { model: name, error: h.lastError });
    this.scheduleRestart(name, h, 0);
  }

  private scheduleRestart(name: string, h: Hosted, attempt: number): void {
    const delay = Math.min(30_000, this.backoffMs * 2 ** attempt);
    h.restartTimer = setTimeout(() => {
      h.restartTimer = undefined;
      void this.restart(name, h, attempt);
    }, delay);
    h.restartTimer.unref();
  }

  private async restart(name: string, h: Hosted, attempt: number): Promise<void> {
    if (this.closed) return;
    try {
      await h.model.unload().catch(() => undefined);
      await h.model.load();
      h.state = 'ready';
      h.restarts++;
      this.logger.info('model reloaded', { model: name, restarts: h.restarts });
    } catch (err) {
      h.lastError = (err as Error).message;
      if (attempt + 1 >= this.maxRestarts) {
        h.state = 'failed';
        this.logger.error('model stays failed after reloads', { model: name, attempts: attempt + 1, error: h.lastError });
        return;
      }
      this.scheduleRestart(name, h, attempt + 1);
    }
  }

  /** Unloads every model (after the scheduler drained). */
  async close(): Promise<void> {
    this.closed = true;
    for (const [name, h] of this.models) {
      if (h.restartTimer) clearTimeout(h.restartTimer);
      h.state = 'stopped';
      await h.model.unload().catch((err: Error) => this.logger.warn('model unload failed', { model: name, error: err.message }));
    }
  }

  private entry(name: string): Hosted {
    const h = this.models.get(name);
    if (!h) {
      throw new WhaleError('ERR_MODEL_NOT_FOUND', `no model named '${name}' (serving: ${this.names().join(', ') || 'none'})`, { field: 'model' });
    }
    return h;
  }
}

async function runEach(model: ModelInterface, inputs: NamedTensors[]): Promise<NamedTensors[]> {
  const out: NamedTensors[] = [];
  for (const input of inputs) out.push(await model.process(input));
  return out;
}
