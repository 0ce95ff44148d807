/**
 * ProcessingPipeline.processRequest: the seed's three levels.
 * - quick: the answer cached for the same input (same model and version) if
 *   there is one, else the cheapest model able to take the input; the answer is cached.
 * - normal: the named (or default) model, through the scheduler's batching.
 * - deep: several models with the same signature combined (floating outputs
 *   averaged element-wise, others taken from the first model).
 * The level comes from the request, else from its complexity (see estimateComplexity).
 * quick and normal requests go straight to the batching scheduler; a deep
 * request runs several models, so it holds its worker slots while it runs and a
 * burst of them queues here instead of multiplying the load.
 */
import { WhaleError } from '../../common/errors.js';
import { tracingActive, withSpan } from '../../common/trace.js';
import { validateTensors, type NamedTensors, type Tensor } from '../base/tensor.js';
import type { ModelInterface } from '../base/model.js';
import type { ModelHost } from './model-host.js';
import type { ProcessingOptimizer } from './processing-optimizer.js';
import { deserializeTensors, digestRequest, serializeTensors } from './tensor-digest.js';

export type Level = 'quick' | 'normal' | 'deep';
export const LEVELS: readonly Level[] = ['quick', 'normal', 'deep'];

export interface InferenceRequest {
  inputs: NamedTensors;
  /** Default: the pipeline's default model. */
  model?: string;
  /** A version of the model (/v2/models/{m}/versions/{v}); default: its default version when admitted. */
  version?: string;
  level?: Level;
  /** 0..1; overrides the size-based estimate when no level is given. */
  complexity?: number;
  tenant?: string;
  priority?: number;
  timeoutMs?: number;
  signal?: AbortSignal;
  /** A task served by several models: the router picks the model and level (see setRouter). */
  task?: string;
  /** The caller's id for this request (feedback names it); the router makes one when absent. */
  requestId?: string;
  /** Sticky routing: requests of one session keep their route when the task asks for it. */
  session?: string;
  /** deep: called with each member's answer as it completes (streamed as intermediate steps, see generation.ts). */
  onMember?: (member: MemberAnswer) => void;
}

/** One member's answer of a deep request. */
export interface MemberAnswer {
  model: string;
  modelVersion: string;
  outputs: NamedTensors;
  /** How many members the request runs. */
  members: number;
}

export interface InferenceResult {
  /** The model that answered (for deep: the requested one), and every model that ran. */
  model: string;
  modelVersion: string;
  models: string[];
  outputs: NamedTensors;
  level: Level;
  cached: boolean;
  device: string;
  complexity: number;
  durationMs: number;
  /** Set for routed requests: the id feedback refers to. */
  requestId?: string;
}

/** What the scheduler offers the pipeline (TaskScheduler implements it). */
export interface TaskScheduling {
  scheduleTask(request: {
    model: string;
    input: unknown;
    tenant?: string;
    priority?: number;
    timeoutMs?: number;
    signal?: AbortSignal;
  }): Promise<unknown>;
}

export interface ResponseCache {
  get(key: string): Promise<string | undefined>;
  set(key: string, value: string, ttlMs: number): Promise<void>;
}

export interface PipelineOptions {
  host: ModelHost;
  scheduler: TaskScheduling;
  optimizer: ProcessingOptimizer;
  defaultModel: string;
  cache?: ResponseCache;
  quick?: { model?: string; cacheTtlMs?: number };
  deep?: { models?: string[] };
  complexity?: { quickBelow: number; deepAbove: number };
  /** Relative cost per model (quick picks the cheapest); default 1. */
  costs?: Record<string, number>;
  /** Largest batch per model (the complexity scale); default 64. */
  maxBatchRows?: Record<string, number>;
}

/** One answered or failed request, as seen by observers (monitoring). */
export interface RequestObservation {
  /** The model that answered; on a failure the requested one ('unknown' when it is not hosted). */
  model: string;
  version: string;
  level: Level | 'unknown';
  seconds: number;
  ok: boolean;
  cached: boolean;
  /** An answered request's inputs and outputs (e.g. shared as knowledge); absent on a failure. */
  inputs?: NamedTensors;
  outputs?: NamedTensors;
}

export type RequestObserver = (o: RequestObservation) => void;

/** A model on another node answering a deep request. */
export interface RemoteAnswer {
  /** e.g. `model@node`. */
  model: string;
  modelVersion: string;
  outputs: NamedTensors;
}

/** Asks models beyond this node for a deep request's answers (the server does it through the FederationService). */
export interface DeepCollaborator {
  /** Answers that arrived in time, each with outputs shaped as the model's own; [] when none did. */
  collaborate(request: {
    model: ModelInterface;
    members: string[];
    inputs: NamedTensors;
    timeoutMs?: number;
    signal?: AbortSignal;
  }): Promise<RemoteAnswer[]>;
}

/** Chooses the model and level of a request among those serving its task (core/federation/routing). */
export interface PipelineRouter {
  /** The route of this request, or undefined to run it as asked; a WhaleError refuses it. */
  route(req: InferenceRequest): PipelineRoute | undefined;
}

export interface PipelineRoute {
  requestId: string;
  model: string;
  level?: Level;
  /** Called once, with the answer or the error. */
  settle(result: InferenceResult | undefined, error?: unknown): void;
}

/**
 * Admits work that runs outside the batching scheduler (a model's own generate() stream), as the
 * scheduler's callers are admitted: quotas and rate limits; the permit is released when the work ends.
 */
export type PipelineAdmission = (
  model: string,
  tenant: string | undefined,
  inputs: NamedTensors,
) => Promise<{ release(): void }>;

export class ProcessingPipeline {
  private readonly stats = { quick: 0, normal: 0, deep: 0, cacheHits: 0 };
  private observers: RequestObserver[] = [];
  private router: PipelineRouter | undefined;
  private collaborator: DeepCollaborator | undefined;
  private admission: PipelineAdmission | undefined;

  constructor(private readonly o: PipelineOptions) {}

  /** Calls fn after every request (an observer that throws is ignored); returns the function that removes it. */
  addObserver(fn: RequestObserver): () => void {
    this.observers = [...this.observers, fn];
    return () => {
      this.observers = this.observers.filter((f) => f !== fn);
    };
  }

  /** Installs (or with undefined removes) what asks other nodes' models to join deep requests. */
  setCollaborator(collaborator: DeepCollaborator | undefined): void {
    this.collaborator = collaborator;
  }

  /** Installs (or with undefined removes) the admission of work outside the scheduler (see PipelineAdmission). */
  setAdmission(admission: PipelineAdmission | undefined): void {
    this.admission = admission;
  }

  /** A permit for work outside the scheduler (ERR_QUOTA_EXCEEDED etc. when refused); release it when the work ends. */
  admitOutsideScheduler(model: string, tenant: string | undefined, inputs: NamedTensors): Promise<{ release(): void }> {
    return this.admission ? this.admission(model, tenant, inputs) : Promise.resolve({ release: () => undefined });
  }

  /** Installs (or with undefined removes) the router consulted before every request. */
  setRouter(router: PipelineRouter | undefined): void {
    this.router = router;
  }

  async processRequest(req: InferenceRequest): Promise<InferenceResult> {
    if (!tracingActive()) return this.routedRequest(req);
    const attributes = {
      'whale.model': String(req.model ?? this.o.defaultModel),
      ...(typeof req.level === 'string' ? { 'whale.level': req.level } : {}),
    };
    return withSpan('whale.pipeline', { attributes }, async (span) => {
      const r = await this.routedRequest(req);
      span?.setAttributes({
        'whale.model': r.model,
        'whale.model.version': r.modelVersion,
        'whale.level': r.level,
        'whale.cached': r.cached,
        'whale.device': r.device,
      });
      return r;
    });
  }

  private async routedRequest(req: InferenceRequest): Promise<InferenceResult> {
    const route = this.router?.route(req);
    if (!route) return this.observedRequest(req);
    let result: InferenceResult;
    try {
      const routedReq: InferenceRequest = { ...req };
      routedReq.model = route.model;
      if (route.level !== undefined) routedReq.level = route.level;
      result = await this.observedRequest(routedReq);
    } catch (err) {
      settleQuietly(route, undefined, err);
      throw err;
    }
    const routed: InferenceResult = { ...result };
    routed.requestId = route.requestId;
    settleQuietly(route, routed);
    return routed;
  }

  private async observedRequest(req: InferenceRequest): Promise<InferenceResult> {
    if (this.observers.length === 0) return this.process(req);
    const started = performance.now();
    try {
      const r = await this.process(req);
      this.notify({
        model: r.model,
        version: r.modelVersion,
        level: r.level,
        seconds: r.durationMs / 1000,
        ok: true,
        cached: r.cached,
        inputs: req.inputs,
        outputs: r.outputs,
      });
      return r;
    } catch (err) {
      const name = req.model ?? this.o.defaultModel;
      const hosted = this.o.host.has(name);
      const level = LEVELS.includes(req.level as Level) ? (req.level as Level) : 'unknown';
      this.notify({
        model: hosted ? name : 'unknown',
        version: hosted ? this.o.host.get(name).version : '',
        level,
        seconds: (performance.now() - started) / 1000,
        ok: false,
        cached: false,
      });
      throw err;
    }
  }

  /** Reports a request answered outside processRequest (a model's own generate() stream) to the observers. */
  observe(o: RequestObservation): void {
    this.notify(o);
  }

  private notify(o: RequestObservation): void {
    for (const f of this.observers) {
      try {
        f(o);
      } catch {
        // monitoring must never fail a request
      }
    }
  }

  private async process(req: InferenceRequest): Promise<InferenceResult> {
    const started = performance.now();
    const requested = req.model ?? this.o.defaultModel;
    const model = this.o.host.requireReady(requested, req.version);
    validateTensors(model.inputs, req.inputs);
    // It runs on the version it was admitted on, even when the default switches while it is queued.
    this.o.host.pinVersion(req.inputs, model.name, model.version);
    const complexity = req.complexity ?? this.estimateComplexity(model, req.inputs);
    const level = req.level ?? this.levelFor(complexity);
    if (!LEVELS.includes(level))
      throw new WhaleError('ERR_INVALID_ARG', `level: must be one of ${LEVELS.join(', ')}, got '${String(level)}'`, {
        field: 'level',
      });
    const allocation = this.o.optimizer.allocateResources(complexity, model.name);
    this.stats[level]++;
    // Spelled out, not spread: V8 copies a spread past the first through its slow path (µs a request).
    const done = (
      r: Pick<InferenceResult, 'model' | 'modelVersion' | 'models' | 'outputs' | 'cached'>,
    ): InferenceResult => ({
      model: r.model,
      modelVersion: r.modelVersion,
      models: r.models,
      outputs: r.outputs,
      cached: r.cached,
      level,
      complexity,
      device: allocation.device,
      durationMs: performance.now() - started,
    });
    if (level === 'quick') {
      const quick = this.quickModel(model);
      const key = digestRequest(quick.name, quick.version, req.inputs);
      const hit = await this.cacheGet(key);
      if (hit) {
        this.stats.cacheHits++;
        return done({
          model: quick.name,
          modelVersion: quick.version,
          models: [quick.name],
          outputs: hit,
          cached: true,
        });
      }
      const outputs = await this.run(quick.name, req);
      await this.cacheSet(key, outputs);
      return done({ model: quick.name, modelVersion: quick.version, models: [quick.name], outputs, cached: false });
    }
    if (level === 'normal') {
      const outputs = await this.run(model.name, req);
      return done({ model: model.name, modelVersion: model.version, models: [model.name], outputs, cached: false });
    }
    const members = this.deepMembers(model);
    const remote = this.remoteAnswers(model, members, req);
    const results = await this.o.optimizer.withSlots(allocation.slots, () =>
      Promise.all(members.map((m) => this.run(m, req).then((out) => this.memberDone(req, m, out, members.length)))),
    );
    const others = await remote;
    return done({
      model: model.name,
      modelVersion: model.version,
      models: [...members, ...others.map((a) => a.model)],
      outputs: combine([...results, ...others.map((a) => a.outputs)]),
      cached: false,
    });
  }

  private memberDone(req: InferenceRequest, model: string, outputs: NamedTensors, members: number): NamedTensors {
    try {
      req.onMember?.({ model, modelVersion: this.o.host.get(model).version, outputs, members });
    } catch {
      // a listener must never fail the request
    }
    return outputs;
  }

  /** Answers of other nodes' models (the collaborator's); a failure there never fails the request. */
  private async remoteAnswers(
    model: ModelInterface,
    members: string[],
    req: InferenceRequest,
  ): Promise<RemoteAnswer[]> {
    if (!this.collaborator) return [];
    let answers: RemoteAnswer[];
    try {
      answers = await this.collaborator.collaborate({
        model,
        members,
        inputs: req.inputs,
        ...(req.timeoutMs === undefined ? {} : { timeoutMs: req.timeoutMs }),
        ...(req.signal === undefined ? {} : { signal: req.signal }),
      });
    } catch {
      return [];
    }
    for (const a of answers) {
      try {
        req.onMember?.({ ...a, members: members.length + answers.length });
      } catch {
        // a listener must never fail the request
      }
    }
    return answers;
  }

  /**
   * Size-based complexity in [0, 1]: the rows of the request (its first
   * dimension) relative to the model's largest batch, log-scaled, so a single
   * row is ~0 and a request as large as a full batch is 1.
   */
  estimateComplexity(model: ModelInterface, inputs: NamedTensors): number {
    const first = Object.values(inputs)[0];
    const rows = first && first.shape.length > 0 ? first.shape[0]! : 1;
    const maxRows = Math.max(2, this.o.maxBatchRows?.[model.name] ?? 64);
    return Math.min(1, Math.log2(Math.max(1, rows)) / Math.log2(maxRows));
  }

  levelStats(): Readonly<typeof this.stats> {
    return { ...this.stats };
  }

  private levelFor(complexity: number): Level {
    const c = this.o.complexity ?? { quickBelow: 0, deepAbove: 1 };
    if (complexity < c.quickBelow) return 'quick';
    if (complexity > c.deepAbove) return 'deep';
    return 'normal';
  }

  private async run(model: string, req: InferenceRequest): Promise<NamedTensors> {
    const task: Parameters<TaskScheduling['scheduleTask']>[0] = { model, input: req.inputs };
    if (req.tenant !== undefined) task.tenant = req.tenant;
    if (req.priority !== undefined) task.priority = req.priority;
    if (req.timeoutMs !== undefined) task.timeoutMs = req.timeoutMs;
    if (req.signal !== undefined) task.signal = req.signal;
    return (await this.o.scheduler.scheduleTask(task)) as NamedTensors;
  }

  /** The configured quick model, else the cheapest ready model with the same signature. */
  private quickModel(model: ModelInterface): ModelInterface {
    if (this.o.quick?.model && this.o.host.isReady(this.o.quick.model)) return this.o.host.get(this.o.quick.model);
    const costs = this.o.costs ?? {};
    return this.compatible(model).reduce(
      (best, m) => ((costs[m.name] ?? 1) < (costs[best.name] ?? 1) ? m : best),
      model,
    );
  }

  private deepMembers(model: ModelInterface): string[] {
    const configured = this.o.deep?.models?.filter(
      (n) => this.o.host.isReady(n) && sameSignature(this.o.host.get(n), model),
    );
    const members = configured && configured.length > 0 ? configured : this.compatible(model).map((m) => m.name);
    return members.includes(model.name) ? members : [model.name, ...members];
  }

  private compatible(model: ModelInterface): ModelInterface[] {
    return this.o.host
      .names()
      .filter((n) => this.o.host.isReady(n))
      .map((n) => this.o.host.get(n))
      .filter((m) => sameSignature(m, model));
  }

  private async cacheGet(key: string): Promise<NamedTensors | undefined> {
    if (!this.o.cache) return undefined;
    const text = await this.o.cache.get(key).catch(() => undefined);
    if (text === undefined) return undefined;
    try {
      return deserializeTensors(text);
    } catch {
      return undefined;
    }
  }

  private async cacheSet(key: string, outputs: NamedTensors): Promise<void> {
    if (!this.o.cache) return;
    await this.o.cache.set(key, serializeTensors(outputs), this.o.quick?.cacheTtlMs ?? 60_000).catch(() => undefined);
  }
}

function settleQuietly(route: PipelineRoute, result: InferenceResult | undefined, error?: unknown): void {
  try {
    route.settle(result, error);
  } catch {
    // routing feedback must never fail a request
  }
}

function sameSignature(a: ModelInterface, b: ModelInterface): boolean {
  const sig = (m: ModelInterface) =>
    JSON.stringify([
      m.inputs.map((t) => [t.name, t.datatype, t.shape.slice(1)]),
      m.outputs.map((t) => [t.name, t.datatype, t.shape.slice(1)]),
    ]);
  return sig(a) === sig(b);
}

const FLOAT = new Set(['FP32', 'FP64']);

/** Element-wise mean of floating outputs across members; non-floating outputs come from the first. */
export function combine(results: NamedTensors[]): NamedTensors {
  const first = results[0]!;
  if (results.length === 1) return first;
  const out: NamedTensors = {};
  for (const [name, t] of Object.entries(first)) {
    if (!FLOAT.has(t.datatype) || !ArrayBuffer.isView(t.data)) {
      out[name] = t;
      continue;
    }
    const src = t.data as Float32Array | Float64Array;
    const acc = new Float64Array(src.length);
    for (const r of results) {
      const d = r[name]?.data as Float32Array | Float64Array | undefined;
      if (!d || d.length !== src.length)
        throw new WhaleError(
          'ERR_SHAPE_MISMATCH',
          `outputs.${name}: differs in size between the models of a deep request`,
          { field: `outputs.${name}` },
        );
      for (let i = 0; i < d.length; i++) acc[i]! += d[i]!;
    }
    const mean = t.datatype === 'FP64' ? new Float64Array(src.length) : new Float32Array(src.length);
    for (let i = 0; i < acc.length; i++) mean[i] = acc[i]! / results.length;
    out[name] = { ...t, data: mean } as Tensor;
  }
  return out;
}
