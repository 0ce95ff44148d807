/**
 * ModelHost: the models a node serves. It loads them, runs batches for the
 * scheduler, and takes a model that throws or hangs out of service: its
 * requests fail with typed errors, it is reloaded with backoff, and the rest
 * of the server stays up.
 */
import { WhaleError } from '../../common/errors.js';
import { createLogger, type Logger } from '../../common/logger.js';
import { redactPaths } from '../../common/redact.js';
import type { ModelInterface } from '../base/model.js';
import type { NamedTensors } from '../base/tensor.js';
import {
  pinVersion,
  runByPinnedVersion,
  runEach,
  versionInfos,
  type AddVersionOptions,
  type HeldVersion,
  type ModelVersionInfo,
} from './model-versions.js';

export type { AddVersionOptions, ModelVersionInfo, VersionProvenance } from './model-versions.js';

export type HostedState = 'loading' | 'ready' | 'restarting' | 'failed' | 'stopped';

export interface HostedModelStatus {
  name: string;
  version: string;
  platform: string;
  state: HostedState;
  restarts: number;
  failures: number;
  /** Why it is not ready, with filesystem paths replaced by `<path>` (clients read this). */
  lastError?: string;
  /** Added with `optional`: the server serves without it and keeps retrying its load. */
  optional?: boolean;
  /** What the adapter says of itself, without filesystem paths. */
  model: ReturnType<ModelInterface['describe']>;
  /** Every version held, the default (served at /v2/models/{m}) marked. */
  versions: ModelVersionInfo[];
}

export interface AddModelOptions {
  /**
   * A model that may be missing: when its load fails it is retried with backoff (restoring the file
   * brings it up) and allReady() does not wait for it. Default false: a failed load stays failed.
   */
  optional?: boolean;
}

interface Hosted {
  model: ModelInterface;
  state: HostedState;
  restarts: number;
  failures: number;
  lastError?: string;
  optional: boolean;
  /** Unloaded on request (the model repository's unload): not served, not waited for by allReady(). */
  unloaded?: boolean;
  /** Bumped on every restart: a batch that started before it cannot mark the new instance failed. */
  generation: number;
  restartTimer?: NodeJS.Timeout;
  /** Every version held (the default one included), oldest first. */
  versions: Map<string, HeldVersion>;
  /** A version being added: one at a time per model. */
  adding?: boolean;
  /** Batches running per generation of the default (a hung batch of an older version must not fail the new one). */
  running: Map<number, number>;
}

export interface ModelHostOptions {
  logger?: Logger;
  /** First reload delay after a failure, doubled per consecutive failure (default 200 ms, max 30 s). */
  restartBackoffMs?: number;
  /** Consecutive failed reloads before the model stays failed (default 5). */
  maxRestarts?: number;
  /** Longest wait between two load attempts of an optional model that failed to load (default 30 s). */
  maxLoadRetryMs?: number;
  /** Versions kept loaded per model, the default included (default 3); the oldest non-default one goes first. */
  maxVersions?: number;
}

export class ModelHost {
  private readonly models = new Map<string, Hosted>();
  private readonly logger: Logger;
  private readonly backoffMs: number;
  private readonly maxRestarts: number;
  private readonly maxLoadRetryMs: number;
  private readonly maxVersions: number;
  private closed = false;

  constructor(o: ModelHostOptions = {}) {
    this.logger = o.logger ?? createLogger('model-host');
    this.backoffMs = o.restartBackoffMs ?? 200;
    this.maxRestarts = o.maxRestarts ?? 5;
    this.maxLoadRetryMs = o.maxLoadRetryMs ?? 30_000;
    this.maxVersions = o.maxVersions ?? 3;
    if (!Number.isInteger(this.maxVersions) || this.maxVersions < 1)
      throw new WhaleError(
        'ERR_INVALID_OPTION',
        `options.maxVersions: must be an integer >= 1, got ${String(o.maxVersions)}`,
        {
          field: 'options.maxVersions',
        },
      );
  }

  /**
   * Adds a model and loads it; a model that fails to load is kept as `failed` (the rest still serve;
   * WhaleServer refuses to start when a required one failed). An `optional` one is retried with backoff.
   */
  async add(model: ModelInterface, o: AddModelOptions = {}): Promise<void> {
    if (this.models.has(model.name))
      throw new WhaleError('ERR_CONFLICT', `a model named '${model.name}' is already hosted`, { field: 'name' });
    const h: Hosted = {
      model,
      state: 'loading',
      restarts: 0,
      failures: 0,
      generation: 0,
      optional: o.optional === true,
      running: new Map(),
      versions: new Map([
        [model.version, { model, addedAt: new Date().toISOString(), provenance: { source: 'config' } }],
      ]),
    };
    this.models.set(model.name, h);
    try {
      await model.load();
      h.state = 'ready';
      this.logger.info('model ready', { model: model.name, version: model.version, ...model.describe() });
    } catch (err) {
      h.state = 'failed';
      h.lastError = (err as Error).message;
      if (h.optional) {
        this.logger.warn('optional model failed to load; retrying', { model: model.name, error: h.lastError });
        this.scheduleLoad(model.name, h, 0);
      } else {
        // The caller decides (WhaleServer refuses to start and says why, once): a debug line only.
        this.logger.debug('model failed to load', { model: model.name, error: h.lastError });
      }
    }
  }

  /** The error that kept the model from loading (full text, for the operator's console), if it is not ready. */
  loadError(name: string): string | undefined {
    const h = this.models.get(name);
    return h && h.state !== 'ready' ? h.lastError : undefined;
  }

  names(): string[] {
    return [...this.models.keys()];
  }

  has(name: string): boolean {
    return this.models.has(name);
  }

  /** The model, or ERR_MODEL_NOT_FOUND naming it (or the version, when one is asked for and not the one served). */
  get(name: string, version?: string): ModelInterface {
    const h = this.entry(name);
    if (version === undefined || version === h.model.version) return h.model;
    const held = h.versions.get(version);
    if (!held) {
      throw new WhaleError(
        'ERR_MODEL_NOT_FOUND',
        `model '${name}' has no version '${version}' (versions: ${[...h.versions.keys()].join(', ')}; default ${h.model.version})`,
        { field: 'version' },
      );
    }
    return held.model;
  }

  /** The versions of a model, oldest first, the default marked. */
  versions(name: string): ModelVersionInfo[] {
    const h = this.entry(name);
    return versionInfos(h.versions, h.model);
  }

  /**
   * Adds a version of a hosted model and (by default) makes it the default, atomically: requests admitted
   * before the switch finish on the version they were admitted on (pinVersion), later ones run the new one.
   * A version that fails to load or to pass `check` is unloaded and the default stays (ERR_MODEL_LOAD).
   * Beyond maxVersions the oldest non-default version is unloaded (its running calls finish first).
   */
  async addVersion(model: ModelInterface, o: AddVersionOptions): Promise<ModelVersionInfo> {
    const h = this.entry(model.name);
    if (h.versions.has(model.version))
      throw new WhaleError('ERR_CONFLICT', `model '${model.name}' already has a version '${model.version}'`, {
        field: 'version',
      });
    if (h.adding)
      throw new WhaleError('ERR_CONFLICT', `model '${model.name}' is adding another version; try again`, {
        field: 'model',
        retriable: true,
      });
    h.adding = true;
    try {
      try {
        await model.load();
        await o.check?.(model);
      } catch (err) {
        await model.unload().catch(() => undefined);
        throw new WhaleError(
          'ERR_MODEL_LOAD',
          `model '${model.name}' version '${model.version}' cannot be served (kept version '${h.model.version}'): ${redactPaths((err as Error).message)}`,
          { field: 'version', cause: err },
        );
      }
      if (this.closed) {
        await model.unload().catch(() => undefined);
        throw new WhaleError('ERR_SHUTTING_DOWN', 'the model host is closed', { retriable: true });
      }
      h.versions.set(model.version, { model, addedAt: new Date().toISOString(), provenance: o.provenance });
      if (o.makeDefault !== false) this.switchDefault(model.name, h, model);
      this.logger.info('model version added', {
        model: model.name,
        version: model.version,
        default: h.model === model,
        source: o.provenance.source,
      });
      await this.retire(model.name, h);
      return this.versions(model.name).find((v) => v.version === model.version)!;
    } finally {
      h.adding = false;
    }
  }

  /** Makes a held version the default (an operator's rollback). */
  setDefaultVersion(name: string, version: string): void {
    const h = this.entry(name);
    const held = h.versions.get(version);
    if (!held)
      throw new WhaleError('ERR_MODEL_NOT_FOUND', `model '${name}' has no version '${version}'`, { field: 'version' });
    if (held.model.status !== 'ready')
      throw new WhaleError('ERR_MODEL_NOT_READY', `model '${name}' version '${version}' is ${held.model.status}`, {
        field: 'version',
      });
    this.switchDefault(name, h, held.model);
  }

  /**
   * Ties a request's input to the version it was admitted on (the processing pipeline calls it): runBatch
   * runs that input on this version, even when the default switches while it waits.
   */
  pinVersion(input: object, name: string, version: string): void {
    pinVersion(input, name, version);
  }

  /** One synchronous step: every later lookup sees the new default; the old version stays held and loaded. */
  private switchDefault(name: string, h: Hosted, model: ModelInterface): void {
    if (h.restartTimer) clearTimeout(h.restartTimer);
    h.restartTimer = undefined;
    h.model = model;
    h.generation++;
    h.state = 'ready';
    h.unloaded = false;
    h.lastError = undefined;
    h.restarts = 0;
    this.logger.info('default version switched', { model: name, version: model.version });
  }

  /** Unloads the oldest non-default versions beyond maxVersions (BaseModel drains their running calls). */
  private async retire(name: string, h: Hosted): Promise<void> {
    while (h.versions.size > this.maxVersions) {
      const oldest = [...h.versions].find(([, v]) => v.model !== h.model);
      if (!oldest) return;
      h.versions.delete(oldest[0]);
      await oldest[1].model
        .unload()
        .catch((err: Error) =>
          this.logger.warn('old version unload failed', { model: name, version: oldest[0], error: err.message }),
        );
    }
  }

  isReady(name: string): boolean {
    return this.models.get(name)?.state === 'ready';
  }

  /** Every required model is ready (optional ones that are not are reported by status(), not waited for); false with none. */
  allReady(): boolean {
    const all = [...this.models.values()].filter((h) => !h.unloaded);
    const required = all.filter((h) => !h.optional);
    // Only optional models: ready once one of them is.
    return required.length > 0 ? required.every((h) => h.state === 'ready') : all.some((h) => h.state === 'ready');
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
      ...(h.lastError ? { lastError: redactPaths(h.lastError) } : {}),
      ...(h.optional ? { optional: true } : {}),
      model: publicDescription(h.model.describe()),
      versions: this.versions(name),
    };
  }

  /** Throws ERR_MODEL_NOT_READY unless the model (its default, or the given version) can take requests now. */
  requireReady(name: string, version?: string): ModelInterface {
    const h = this.entry(name);
    if (version !== undefined && version !== h.model.version) {
      const m = this.get(name, version);
      if (m.status !== 'ready')
        throw new WhaleError('ERR_MODEL_NOT_READY', `model '${name}' version '${version}' is ${m.status}`, {
          field: 'version',
          retriable: false,
        });
      return m;
    }
    if (h.state !== 'ready') {
      throw new WhaleError(
        'ERR_MODEL_NOT_READY',
        `model '${name}' is ${h.state}${h.lastError ? `: ${redactPaths(h.lastError)}` : ''}`,
        {
          field: 'model',
          retriable: h.state !== 'stopped',
        },
      );
    }
    return h.model;
  }

  /** Runs one batch (the scheduler's executor): one model run over all inputs when it batches. */
  async runBatch(name: string, inputs: NamedTensors[]): Promise<NamedTensors[]> {
    const h = this.entry(name);
    const model = this.requireReady(name);
    if (h.versions.size > 1) {
      const split = runByPinnedVersion(name, model, h.versions, inputs);
      if (split) return split;
    }
    const generation = h.generation;
    h.running.set(generation, (h.running.get(generation) ?? 0) + 1);
    try {
      const out = await runEach(model, inputs);
      if (out.length !== inputs.length) {
        throw new WhaleError(
          'ERR_NATIVE',
          `model '${name}' returned ${out.length} results for ${inputs.length} inputs`,
        );
      }
      return out;
    } catch (err) {
      // Bad input is the caller's fault, not the model's.
      if (!(err instanceof WhaleError && (err.code === 'ERR_INVALID_ARG' || err.code === 'ERR_SHAPE_MISMATCH'))) {
        this.fail(name, generation, err);
      }
      throw err;
    } finally {
      const left = (h.running.get(generation) ?? 1) - 1;
      if (left > 0) h.running.set(generation, left);
      else h.running.delete(generation);
    }
  }

  /** A batch that never settled: the model is treated as hung and reloaded. */
  markHung(name: string): void {
    const h = this.models.get(name);
    if (!h) return;
    // The overrun batch ran on a version that is no longer the default: that one is not restarted.
    if (h.versions.size > 1 && !h.running.has(h.generation)) {
      this.logger.warn('a batch of an earlier version overran its execution timeout', { model: name });
      return;
    }
    this.fail(
      name,
      h.generation,
      new WhaleError('ERR_TIMEOUT', `model '${name}' did not answer within its execution timeout`),
    );
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

  /** Load attempts of an optional model that never loaded: doubling delays up to maxLoadRetryMs, without end. */
  private scheduleLoad(name: string, h: Hosted, attempt: number): void {
    const delay = Math.min(this.maxLoadRetryMs, this.backoffMs * 2 ** Math.min(attempt, 20));
    h.restartTimer = setTimeout(() => {
      h.restartTimer = undefined;
      void this.retryLoad(name, h, attempt);
    }, delay);
    h.restartTimer.unref();
  }

  private async retryLoad(name: string, h: Hosted, attempt: number): Promise<void> {
    if (this.closed || h.state !== 'failed') return;
    try {
      await h.model.unload().catch(() => undefined);
      await h.model.load();
      if (this.closed) return;
      h.state = 'ready';
      h.lastError = undefined;
      this.logger.info('optional model loaded', { model: name, attempts: attempt + 2 });
    } catch (err) {
      const message = (err as Error).message;
      if (message !== h.lastError)
        this.logger.warn('optional model still cannot load; retrying', { model: name, error: message });
      h.lastError = message;
      if (!this.closed) this.scheduleLoad(name, h, attempt + 1);
    }
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
        this.logger.error(
          h.optional
            ? 'optional model failed after reloads; retrying with backoff'
            : 'model stays failed after reloads',
          { model: name, attempts: attempt + 1, error: h.lastError },
        );
        if (h.optional) this.scheduleLoad(name, h, attempt + 1);
        return;
      }
      this.scheduleRestart(name, h, attempt + 1);
    }
  }

  /**
   * The model repository's unload: the model stops serving (requests get ERR_MODEL_NOT_READY) and is
   * not waited for by readiness until loadModel(). Requests already running finish first (BaseModel drains).
   */
  async unloadModel(name: string): Promise<void> {
    const h = this.entry(name);
    if (h.restartTimer) clearTimeout(h.restartTimer);
    h.restartTimer = undefined;
    h.generation++;
    h.unloaded = true;
    h.state = 'stopped';
    await h.model.unload();
  }

  /** The model repository's load: (re)loads the model; ERR_MODEL_LOAD (it stays unloaded) when it cannot. */
  async loadModel(name: string): Promise<void> {
    const h = this.entry(name);
    if (h.state === 'loading' || h.state === 'restarting') {
      throw new WhaleError('ERR_CONFLICT', `model '${name}' is ${h.state}; try again when it is settled`, {
        field: 'model',
        retriable: true,
      });
    }
    if (h.restartTimer) clearTimeout(h.restartTimer);
    h.restartTimer = undefined;
    h.generation++;
    h.state = 'loading';
    try {
      await h.model.unload().catch(() => undefined);
      await h.model.load();
      h.state = 'ready';
      h.unloaded = false;
      h.lastError = undefined;
    } catch (err) {
      h.state = 'failed';
      h.lastError = (err as Error).message;
      throw new WhaleError('ERR_MODEL_LOAD', `model '${name}' cannot be loaded: ${redactPaths(h.lastError)}`, {
        field: 'model',
        cause: err,
      });
    }
  }

  /** Unloads every model (after the scheduler drained). */
  async close(): Promise<void> {
    this.closed = true;
    for (const [name, h] of this.models) {
      if (h.restartTimer) clearTimeout(h.restartTimer);
      h.state = 'stopped';
      for (const m of new Set([h.model, ...[...h.versions.values()].map((v) => v.model)]))
        await m
          .unload()
          .catch((err: Error) =>
            this.logger.warn('model unload failed', { model: name, version: m.version, error: err.message }),
          );
    }
  }

  private entry(name: string): Hosted {
    const h = this.models.get(name);
    if (!h) {
      throw new WhaleError(
        'ERR_MODEL_NOT_FOUND',
        `no model named '${name}' (serving: ${this.names().join(', ') || 'none'})`,
        { field: 'model' },
      );
    }
    return h;
  }
}

/** describe() without where the model lives on this machine (clients read it through /v2/models/<m>/stats). */
function publicDescription(d: ReturnType<ModelInterface['describe']>): ReturnType<ModelInterface['describe']> {
  const { path: _path, ...rest } = d;
  return { ...rest, ...(typeof rest.lastError === 'string' ? { lastError: redactPaths(rest.lastError) } : {}) };
}
