/**
 * TaskScheduler: the model server's request scheduler. Requests are buffered
 * and handed to the engine (native by default) once per microtask; decisions
 * (batches to run, requests whose deadline passed) come back as one word
 * stream per poll. The ordering rules live in the engine (see
 * scheduler-reference.ts); this class owns the promises, the executor calls,
 * timers, cancellation and shutdown. Every accepted request is answered once:
 * a result or a typed WhaleError.
 *
 * When the engine polls: once per microtask after requests were buffered (so a
 * burst submitted in one synchronous run reaches the engine together and forms
 * one batch, also with dispatchWhenIdle), at every batch completion (right after
 * its promises are resolved, before their callers resume: what queued while it
 * ran leaves together), and on the timer for the next batching delay or deadline.
 */
import { WhaleError, isWhaleError } from '../../common/errors.js';
import { context, endSpan, runInSpan, startSpan, trace, type Link, type Span } from '../../common/trace.js';
import { executeBatch } from './batch-execution.js';
import {
  requestError,
  validateBatching,
  validateWeight,
  type BatchExecutor,
  type BatchingConfig,
  type TaskRequest,
  type ValidBatching,
} from './scheduler-config.js';
import {
  ADMIT_ACCEPTED,
  ADMIT_OVERLOADED,
  OP_EXPIRED,
  RECORD_WORDS,
  createSchedulerEngine,
  type EngineKind,
  type SchedulerEngine,
} from './scheduler-engine.js';
import { ModelCounters, type ModelSchedulerStats, type Outcome } from './scheduler-stats.js';
import { SignalWatch } from './signal-watch.js';

export type { BatchExecutor, BatchingConfig, TaskRequest } from './scheduler-config.js';
export type { ModelSchedulerStats } from './scheduler-stats.js';

export interface TaskSchedulerOptions {
  executor: BatchExecutor;
  models?: Record<string, BatchingConfig>;
  /** Fair-share weights per tenant (default 1). */
  tenants?: Record<string, number>;
  /** Number of strict priority classes (default 3). */
  priorityClasses?: number;
  /** Called when a batch of the model overran its executionTimeoutMs. */
  onBatchTimeout?: (model: string) => void;
  engine?: EngineKind;
  /** Milliseconds (default performance.now); inject one for deterministic tests. */
  clock?: () => number;
  /** Set timers for the next batching/deadline event (default true); with false, call tick(). */
  autoWake?: boolean;
  /** Configured tenants (the `tenants` weights) accepted (default 65536). */
  maxTenants?: number;
  /**
   * Tenants not configured share this many fairness slots (default 256), chosen
   * by a hash of the name: an unknown name creates no state, so made-up tenants
   * can neither grow memory nor lock others out.
   */
  tenantBuckets?: number;
}

export interface SchedulerStats {
  engine: EngineKind;
  draining: boolean;
  models: Record<string, ModelSchedulerStats>;
}

interface ModelState {
  id: number;
  name: string;
  config: ValidBatching;
  counters: ModelCounters;
}

interface Pending {
  id: number;
  model: ModelState;
  input: unknown;
  state: 'buffered' | 'queued' | 'running' | 'done';
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
  signal: AbortSignal | undefined;
  /** Queue to answer, when tracing is on. */
  span?: Span | undefined;
  /** Scheduler clock (ms) at scheduleTask and when its batch started: the Triton-style statistics. */
  at: number;
  startedAt: number;
}

const DEFAULT_TENANT = 'default';

export class TaskScheduler {
  private readonly engine: SchedulerEngine;
  private readonly engineKind: EngineKind;
  private readonly classes: number;
  private readonly clock: () => number;
  private readonly models = new Map<string, ModelState>();
  private readonly byId = new Map<number, ModelState>();
  /** Configured tenants (ids from tenantBuckets up); unconfigured names hash into ids 0..tenantBuckets-1. */
  private readonly tenants = new Map<string, number>();
  private readonly buckets: number;
  private readonly bucketsSet: Uint8Array;
  private readonly pending: (Pending | undefined)[] = [];
  /** Each request's abort signal: one listener per signal (a connection's, usually). */
  private readonly signals = new SignalWatch<Pending>((p) => this.abort(p));
  private readonly freeIds: number[] = [];
  private nextModelId = 0;
  private live = 0;
  private records = new Float64Array(RECORD_WORDS * 256);
  private status = new Uint8Array(256);
  private buffered: Pending[] = [];
  private out = new Uint32Array(4096);
  private readonly meta = new Float64Array(2);
  private flushQueued = false;
  private pumping = false;
  private repump = false;
  private timer: NodeJS.Timeout | undefined;
  private timerAt = Infinity;
  private closed = false;
  private draining: Promise<void> | undefined;
  private idleWaiters: (() => void)[] = [];

  constructor(private readonly o: TaskSchedulerOptions) {
    if (typeof o?.executor !== 'function')
      throw new WhaleError('ERR_INVALID_OPTION', 'executor: expected a function', { field: 'executor' });
    this.classes = o.priorityClasses ?? 3;
    if (!Number.isInteger(this.classes) || this.classes < 1 || this.classes > 64) {
      throw new WhaleError('ERR_INVALID_OPTION', 'priorityClasses: expected an integer in [1, 64]', {
        field: 'priorityClasses',
      });
    }
    this.engineKind = o.engine ?? 'native';
    if (this.engineKind !== 'native' && this.engineKind !== 'reference') {
      throw new WhaleError('ERR_INVALID_OPTION', `engine: expected 'native' or 'reference'`, { field: 'engine' });
    }
    this.clock = o.clock ?? (() => performance.now());
    this.engine = createSchedulerEngine(this.engineKind, this.classes);
    this.buckets = o.tenantBuckets ?? 256;
    if (!Number.isInteger(this.buckets) || this.buckets < 1 || this.buckets > 65_536) {
      throw new WhaleError('ERR_INVALID_OPTION', 'tenantBuckets: expected an integer in [1, 65536]', {
        field: 'tenantBuckets',
      });
    }
    this.bucketsSet = new Uint8Array(this.buckets);
    for (const [t, w] of Object.entries(o.tenants ?? {})) this.tenantId(t, validateWeight(w, `tenants.${t}`));
    for (const [name, c] of Object.entries(o.models ?? {})) this.addModel(name, c);
  }

  addModel(name: string, config: BatchingConfig): void {
    if (typeof name !== 'string' || name === '')
      throw new WhaleError('ERR_INVALID_OPTION', 'name: expected a model name', { field: 'name' });
    if (this.models.has(name))
      throw new WhaleError('ERR_CONFLICT', `model '${name}' is already scheduled`, { field: 'name' });
    const c = validateBatching(config, `models.${name}`);
    const m: ModelState = { id: this.nextModelId++, name, config: c, counters: new ModelCounters() };
    this.engine.addModel(m.id, c);
    this.models.set(name, m);
    this.byId.set(m.id, m);
    if (this.out.length < 4 * (c.maxBatchSize + 3)) this.out = new Uint32Array(4 * (c.maxBatchSize + 3));
  }

  /** Stops scheduling the model; its queued requests fail with ERR_MODEL_REMOVED (running batches finish). */
  removeModel(name: string): void {
    const m = this.models.get(name);
    if (!m) throw new WhaleError('ERR_MODEL_NOT_FOUND', `no scheduled model named '${name}'`, { field: 'name' });
    this.flush();
    const ids = this.engine.removeModel(m.id);
    this.models.delete(name);
    this.byId.delete(m.id);
    for (const id of ids) {
      const p = this.pending[id];
      if (p)
        this.answer(
          p,
          'removed',
          new WhaleError('ERR_MODEL_REMOVED', `model '${name}' was removed while the request was queued`, {
            field: 'model',
          }),
        );
    }
  }

  /** Resolves with the executor's result for this input, or rejects with a typed WhaleError. */
  scheduleTask(request: TaskRequest): Promise<unknown> {
    const invalid = requestError(request, this.classes);
    if (invalid) return Promise.reject(invalid);
    if (this.closed)
      return Promise.reject(new WhaleError('ERR_SHUTTING_DOWN', 'the scheduler is shutting down', { retriable: true }));
    const m = this.models.get(request.model);
    if (!m)
      return Promise.reject(
        new WhaleError('ERR_MODEL_NOT_FOUND', `no scheduled model named '${request.model}'`, { field: 'model' }),
      );
    if (request.signal?.aborted)
      return Promise.reject(new WhaleError('ERR_CANCELLED', 'the request was cancelled before it was queued'));
    let tenant: number;
    try {
      tenant = this.tenantId(request.tenant ?? DEFAULT_TENANT);
    } catch (err) {
      return Promise.reject(err);
    }
    return new Promise((resolve, reject) => {
      const id = this.freeIds.pop() ?? this.pending.length;
      const p: Pending = {
        id,
        model: m,
        input: request.input,
        state: 'buffered',
        resolve,
        reject,
        signal: request.signal,
        at: this.clock(),
        startedAt: 0,
      };
      const span = startSpan('whale.scheduler.task', {
        attributes: { 'whale.model': m.name, 'whale.tenant': request.tenant ?? DEFAULT_TENANT },
      });
      if (span) p.span = span;
      this.pending[id] = p;
      this.live++;
      const nowUs = this.nowUs();
      const deadline = request.timeoutMs === undefined ? Infinity : nowUs + Math.floor(request.timeoutMs * 1000);
      this.buffer(p, tenant, request.priority ?? 0, nowUs, deadline);
      if (p.signal) this.signals.add(p.signal, p);
    });
  }

  /** Cancels queued (not started) requests of a model, or of all models: they fail with ERR_CANCELLED. */
  cancel(model?: string): number {
    this.flush();
    let n = 0;
    for (const p of this.pending) {
      if (p?.state === 'queued' && (model === undefined || p.model.name === model) && this.engine.cancel(p.id)) {
        this.answer(p, 'cancelled', new WhaleError('ERR_CANCELLED', 'the request was cancelled before it ran'));
        n++;
      }
    }
    return n;
  }

  stats(): SchedulerStats {
    this.flush();
    const models: Record<string, ModelSchedulerStats> = {};
    for (const m of this.models.values()) models[m.name] = m.counters.snapshot();
    return { engine: this.engineKind, draining: this.closed, models };
  }

  /** Submits what is buffered and acts on the engine's decisions at the clock's current time. */
  tick(): void {
    this.flush();
    this.pump();
  }

  /** Stops intake (ERR_SHUTTING_DOWN), lets accepted requests finish for up to graceMs, then fails the rest. */
  drain(graceMs: number): Promise<void> {
    if (!(graceMs >= 0))
      return Promise.reject(new WhaleError('ERR_INVALID_ARG', 'graceMs: expected a number >= 0', { field: 'graceMs' }));
    this.draining ??= this.drainNow(graceMs);
    return this.draining;
  }

  private async drainNow(graceMs: number): Promise<void> {
    this.closed = true;
    this.tick();
    if (this.live > 0) {
      let grace: NodeJS.Timeout | undefined;
      await Promise.race([
        new Promise<void>((r) => this.idleWaiters.push(r)),
        new Promise<void>((r) => (grace = setTimeout(r, graceMs))),
      ]);
      clearTimeout(grace);
    }
    this.flush();
    for (const p of this.pending) {
      if (!p) continue;
      if (p.state === 'queued') this.engine.cancel(p.id);
      this.answer(
        p,
        'shutdown',
        new WhaleError(
          'ERR_SHUTTING_DOWN',
          `the scheduler shut down before the request ${p.state === 'running' ? 'finished' : 'ran'}`,
          { retriable: true },
        ),
      );
    }
    this.clearTimer();
    this.signals.sweep();
  }

  private nowUs(): number {
    return Math.floor(this.clock() * 1000);
  }

  private tenantId(name: string, weight?: number): number {
    let id = this.tenants.get(name);
    if (id !== undefined) {
      if (weight !== undefined) this.engine.setTenant(id, weight);
      return id;
    }
    if (weight !== undefined) {
      // A configured tenant: its own fairness slot and weight.
      if (this.tenants.size >= (this.o.maxTenants ?? 65_536)) {
        throw new WhaleError(
          'ERR_INVALID_OPTION',
          `tenants: more than ${this.o.maxTenants ?? 65_536} configured tenants`,
          { field: 'tenants' },
        );
      }
      id = this.buckets + this.tenants.size;
      this.tenants.set(name, id);
      this.engine.setTenant(id, weight);
      return id;
    }
    // Not configured: a shared slot by hash (FNV-1a), nothing kept per name.
    let h = 0x811c9dc5;
    for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193);
    id = (h >>> 0) % this.buckets;
    if (this.bucketsSet[id] === 0) {
      this.bucketsSet[id] = 1;
      this.engine.setTenant(id, 1);
    }
    return id;
  }

  private buffer(p: Pending, tenant: number, priority: number, arrivalUs: number, deadlineUs: number): void {
    const n = this.buffered.length;
    if ((n + 1) * RECORD_WORDS > this.records.length) {
      const grown = new Float64Array(this.records.length * 2);
      grown.set(this.records);
      this.records = grown;
      this.status = new Uint8Array(this.records.length / RECORD_WORDS);
    }
    const r = this.records;
    const at = n * RECORD_WORDS; // the record's words written in place (no array per request)
    r[at] = p.id;
    r[at + 1] = p.model.id;
    r[at + 2] = tenant;
    r[at + 3] = priority;
    r[at + 4] = arrivalUs;
    r[at + 5] = deadlineUs;
    this.buffered.push(p);
    if (!this.flushQueued) {
      this.flushQueued = true;
      queueMicrotask(() => this.tick());
    }
  }

  private flush(): void {
    this.flushQueued = false;
    const batch = this.buffered;
    if (batch.length === 0) return;
    this.buffered = [];
    try {
      this.engine.submit(this.records, batch.length, this.status);
    } catch (err) {
      for (const p of batch) {
        this.engine.cancel(p.id);
        this.answer(p, 'failed', isWhaleError(err) ? err : new WhaleError('ERR_NATIVE', String(err), { cause: err }));
      }
      return;
    }
    batch.forEach((p, i) => {
      const st = this.status[i];
      if (st === ADMIT_ACCEPTED) {
        p.state = 'queued';
        p.model.counters.queued++;
      } else if (st === ADMIT_OVERLOADED) {
        this.answer(
          p,
          'rejected',
          new WhaleError(
            'ERR_OVERLOADED',
            `model '${p.model.name}' has ${p.model.config.maxQueueSize} requests queued (its maxQueueSize)`,
            { retriable: true },
          ),
        );
      } else
        this.answer(
          p,
          'failed',
          new WhaleError('ERR_MODEL_NOT_FOUND', `model '${p.model.name}' is no longer scheduled`, { field: 'model' }),
        );
    });
  }

  private pump(): void {
    if (this.pumping) {
      this.repump = true;
      return;
    }
    this.pumping = true;
    const batches: [ModelState, Pending[]][] = [];
    try {
      do {
        this.repump = false;
        this.meta[1] = 1;
        while (this.meta[1] === 1) {
          const words = this.engine.poll(this.nowUs(), this.out, this.meta);
          this.decode(words, batches);
        }
        for (const [m, entries] of batches.splice(0)) this.run(m, entries);
      } while (this.repump);
    } finally {
      this.pumping = false;
    }
    this.arm(this.meta[0]!);
  }

  private decode(words: number, batches: [ModelState, Pending[]][]): void {
    const out = this.out;
    for (let i = 0; i < words;) {
      if (out[i] === OP_EXPIRED) {
        const p = this.pending[out[i + 1]!]!;
        this.answer(
          p,
          'expired',
          new WhaleError('ERR_DEADLINE_EXCEEDED', 'the request reached its deadline before it could run'),
        );
        i += 2;
        continue;
      }
      const m = this.byId.get(out[i + 1]!)!;
      const n = out[i + 2]!;
      const entries: Pending[] = new Array(n);
      for (let k = 0; k < n; k++) {
        const p = this.pending[out[i + 3 + k]!]!;
        p.state = 'running';
        entries[k] = p;
      }
      m.counters.queued -= n;
      batches.push([m, entries]);
      i += 3 + n;
    }
  }

  private run(m: ModelState, entries: Pending[]): void {
    m.counters.batchStarted(entries.length);
    const started = this.clock();
    for (const p of entries) {
      p.startedAt = started;
      m.counters.timed('queue', started - p.at);
    }
    const inputs = entries.map((p) => p.input);
    const span = batchSpan(m.name, entries);
    runInSpan(span, () =>
      executeBatch(this.o.executor, m.name, inputs, m.config.executionTimeoutMs, (outcome) => {
        if (span) endSpan(span, outcome.kind === 'results' ? undefined : outcome.error);
        m.counters.runningBatches--;
        const computeMs = this.clock() - started;
        for (let k = 0; k < entries.length; k++) m.counters.timed('compute', computeMs);
        this.engine.complete(m.id);
        if (outcome.kind === 'results')
          entries.forEach((p, k) => this.answer(p, 'completed', undefined, outcome.results[k]));
        else for (const p of entries) this.answer(p, 'failed', outcome.error);
        try {
          if (outcome.kind === 'timeout') this.o.onBatchTimeout?.(m.name);
        } finally {
          this.pump();
        }
      }),
    );
  }

  private abort(p: Pending): void {
    if (p.state === 'done') return;
    this.flush(); // a buffered request is now queued, or answered (overloaded)
    const state = p.state as Pending['state'];
    if (state === 'done' || (state === 'queued' && !this.engine.cancel(p.id))) return;
    this.answer(
      p,
      'cancelled',
      new WhaleError(
        'ERR_CANCELLED',
        p.state === 'running'
          ? 'the request was cancelled while running; its result is discarded'
          : 'the request was cancelled before it ran',
      ),
    );
  }

  /** The one place a request is answered; later calls for the same request do nothing. */
  private answer(p: Pending, outcome: Outcome, error: WhaleError | undefined, value?: unknown): void {
    if (p.state === 'done') return;
    if (p.state === 'queued') p.model.counters.queued--;
    else if (p.state === 'running') p.model.counters.running--;
    p.state = 'done';
    if (p.signal) this.signals.done(p.signal, p);
    this.pending[p.id] = undefined;
    this.freeIds.push(p.id);
    p.model.counters.count(outcome);
    if (outcome === 'completed') p.model.counters.timed('success', this.clock() - p.at);
    else if (outcome === 'failed' || outcome === 'expired') p.model.counters.timed('fail', this.clock() - p.at);
    if (p.span) {
      p.span.setAttribute('whale.scheduler.outcome', outcome);
      endSpan(p.span, error);
    }
    if (error) p.reject(error);
    else p.resolve(value);
    if (--this.live === 0) for (const w of this.idleWaiters.splice(0)) w();
  }

  private arm(wakeUs: number): void {
    if (this.o.autoWake === false || (this.closed && this.live === 0)) return;
    if (!Number.isFinite(wakeUs)) return this.clearTimer();
    if (this.timer && this.timerAt <= wakeUs) return;
    this.clearTimer();
    this.timerAt = wakeUs;
    this.timer = setTimeout(
      () => {
        this.timer = undefined;
        this.timerAt = Infinity;
        this.tick();
      },
      Math.max(0, Math.ceil((wakeUs - this.nowUs()) / 1000)),
    );
  }

  private clearTimer(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.timerAt = Infinity;
  }
}

/**
 * The span of one batch's execution (tracing on and some request traced): a child of the first
 * traced request's scheduler span, linked to every traced request of the batch.
 */
function batchSpan(model: string, entries: Pending[]): Span | undefined {
  let first: Span | undefined;
  const links: Link[] = [];
  for (const p of entries) {
    if (!p.span) continue;
    first ??= p.span;
    links.push({ context: p.span.spanContext() });
    p.span.setAttribute('whale.batch.size', entries.length);
  }
  if (!first) return undefined;
  return startSpan(
    'whale.model.execute',
    { links, attributes: { 'whale.model': model, 'whale.batch.size': entries.length } },
    trace.setSpan(context.active(), first),
  );
}
