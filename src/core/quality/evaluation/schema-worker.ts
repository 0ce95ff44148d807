/**
 * SchemaWorker: validates a client's value against the client's JSON Schema
 * off the main thread, with a time bound (issue 23 items 2 and 3).
 *
 * - A schema's `pattern`s are regular expressions the client wrote; one that
 *   backtracks catastrophically (`^(a+)+$` on "aaaa…!") would block the event
 *   loop for seconds or hours. Here it blocks only the worker: past
 *   `timeoutMs` the worker is terminated (and a fresh one started for the
 *   next job) and the request gets ERR_INVALID_ARG naming the schema.
 * - Nothing is kept between requests: the worker's Ajv instance drops every
 *   schema after each job (`removeSchema()`, so no cache grows and one
 *   client's `$id` neither clashes with nor is `$ref`-reachable from the next
 *   client's) and is replaced every REUSE jobs.
 * - Jobs run one at a time; at most `maxQueued` wait (ERR_OVERLOADED past it).
 */
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';

import { WhaleError } from '../../../common/errors.js';

export interface SchemaVerdict {
  score: 0 | 1;
  errors: string[];
}

export interface SchemaWorkerOptions {
  /** Compile + validate time bound of one job (default 1000 ms). */
  timeoutMs?: number;
  /** Jobs waiting behind the running one (default 64). */
  maxQueued?: number;
}

/** Jobs one Ajv instance serves before the worker makes a fresh one. */
const REUSE = 256;

const SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const AjvModule = require(workerData.ajv);
const Ajv = AjvModule.default || AjvModule;
let ajv;
let used = 0;
parentPort.on('message', (job) => {
  if (!ajv || used >= ${REUSE}) { ajv = new Ajv({ allErrors: true, strict: false, logger: false }); used = 0; }
  used++;
  let validate;
  try {
    validate = ajv.compile(job.schema);
  } catch (err) {
    ajv.removeSchema();
    parentPort.postMessage({ id: job.id, compileError: String(err && err.message) });
    return;
  }
  let value = job.value;
  if (job.isString) {
    try { value = JSON.parse(job.value); } catch (err) {
      ajv.removeSchema();
      parentPort.postMessage({ id: job.id, score: 0, errors: ['not JSON: ' + String(err && err.message)] });
      return;
    }
  }
  let ok;
  try { ok = validate(value); } catch (err) {
    ajv.removeSchema();
    parentPort.postMessage({ id: job.id, compileError: String(err && err.message) });
    return;
  }
  const errors = ok ? [] : (validate.errors || []).slice(0, 100).map((e) => (e.instancePath || '/') + ' ' + (e.message || 'invalid'));
  ajv.removeSchema();
  parentPort.postMessage({ id: job.id, score: ok ? 1 : 0, errors });
});
parentPort.postMessage({ ready: true });
`;

interface Job {
  id: number;
  schema: object;
  value: unknown;
  isString: boolean;
  resolve: (v: SchemaVerdict) => void;
  reject: (e: unknown) => void;
}

interface Reply {
  id?: number;
  ready?: boolean;
  compileError?: string;
  score?: 0 | 1;
  errors?: string[];
}

let ajvPath: string | undefined;

export class SchemaWorker {
  private worker: Worker | undefined;
  private ready = false;
  private running: Job | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly queue: Job[] = [];
  private nextId = 1;
  private closed = false;
  readonly timeoutMs: number;
  private readonly maxQueued: number;
  /** Jobs cut at the time bound so far. */
  timeouts = 0;

  constructor(o: SchemaWorkerOptions = {}) {
    this.timeoutMs = o.timeoutMs ?? 1000;
    this.maxQueued = o.maxQueued ?? 64;
    for (const [k, v] of [
      ['timeoutMs', this.timeoutMs],
      ['maxQueued', this.maxQueued],
    ] as const) {
      if (!(Number.isFinite(v) && v >= 1))
        throw new WhaleError('ERR_INVALID_OPTION', `options.${k}: must be a number >= 1`, { field: `options.${k}` });
    }
  }

  /** Validates `value` (a string is parsed as JSON first) against `schema`: score 1 or 0 with Ajv's messages. */
  validate(value: unknown, schema: object): Promise<SchemaVerdict> {
    if (this.closed)
      return Promise.reject(new WhaleError('ERR_SHUTTING_DOWN', 'the schema worker is closed', { retriable: true }));
    if (this.queue.length >= this.maxQueued) {
      return Promise.reject(
        new WhaleError('ERR_OVERLOADED', `${this.queue.length} schema validations are waiting: retry later`, {
          retriable: true,
          retryAfterMs: this.timeoutMs,
        }),
      );
    }
    return new Promise((resolve, reject) => {
      this.queue.push({ id: this.nextId++, schema, value, isString: typeof value === 'string', resolve, reject });
      this.pump();
    });
  }

  /** Stops the worker; waiting jobs fail with ERR_SHUTTING_DOWN. */
  async close(): Promise<void> {
    this.closed = true;
    const err = new WhaleError('ERR_SHUTTING_DOWN', 'the schema worker is closed', { retriable: true });
    for (const j of this.queue.splice(0)) j.reject(err);
    this.running?.reject(err);
    this.running = undefined;
    clearTimeout(this.timer);
    const w = this.worker;
    this.worker = undefined;
    await w?.terminate();
  }

  private pump(): void {
    this.holdProcess();
    if (this.running || this.queue.length === 0 || this.closed) return;
    if (!this.worker) {
      this.spawn();
      return this.holdProcess();
    }
    if (!this.ready) return;
    const job = this.queue.shift()!;
    this.running = job;
    this.timer = setTimeout(() => this.cut(job), this.timeoutMs);
    try {
      this.worker.postMessage({ id: job.id, schema: job.schema, value: job.value, isString: job.isString });
    } catch (err) {
      this.finish(job);
      job.reject(
        new WhaleError(
          'ERR_INVALID_ARG',
          `requirements.schema: cannot be passed to the validator (${(err as Error).message})`,
          { field: 'requirements.schema' },
        ),
      );
    }
  }

  /** The worker keeps the process alive only while a job waits or runs (a script awaiting a check is not cut short). */
  private holdProcess(): void {
    if (!this.worker) return;
    if (this.running || this.queue.length > 0) this.worker.ref();
    else this.worker.unref();
  }

  private spawn(): void {
    ajvPath ??= createRequire(import.meta.url).resolve('ajv');
    const w = new Worker(SOURCE, {
      eval: true,
      workerData: { ajv: ajvPath },
      resourceLimits: { maxOldGenerationSizeMb: 256 },
    });
    w.unref();
    this.worker = w;
    this.ready = false;
    w.on('message', (m: Reply) => this.onReply(w, m));
    w.on('error', (err) => this.onExit(w, err));
    w.on('exit', () => this.onExit(w));
  }

  private onReply(w: Worker, m: Reply): void {
    if (w !== this.worker) return;
    if (m.ready) {
      this.ready = true;
      return this.pump();
    }
    const job = this.running;
    if (!job || job.id !== m.id) return;
    this.finish(job);
    if (m.compileError !== undefined) {
      job.reject(
        new WhaleError('ERR_INVALID_ARG', `requirements.schema: not a valid JSON Schema (${m.compileError})`, {
          field: 'requirements.schema',
        }),
      );
    } else job.resolve({ score: m.score ?? 0, errors: m.errors ?? [] });
    this.pump();
  }

  /** The running job passed the time bound: the worker is cut, the job refused, the next one gets a fresh worker. */
  private cut(job: Job): void {
    if (this.running !== job) return;
    this.timeouts++;
    const w = this.worker;
    this.worker = undefined;
    this.ready = false;
    void w?.terminate();
    this.finish(job);
    job.reject(
      new WhaleError(
        'ERR_INVALID_ARG',
        `requirements.schema: validation did not finish within ${this.timeoutMs} ms (a pattern that backtracks?); it was stopped`,
        {
          field: 'requirements.schema',
        },
      ),
    );
    this.pump();
  }

  private onExit(w: Worker, err?: Error): void {
    if (w !== this.worker) return;
    this.worker = undefined;
    const started = this.ready;
    this.ready = false;
    if (!started) {
      // It could not even start: refuse what waits rather than respawn in a loop.
      const e = new WhaleError('ERR_UNAVAILABLE', `the schema validator cannot start (${err?.message ?? 'exited'})`, {
        retriable: true,
      });
      for (const j of this.queue.splice(0)) j.reject(e);
      return;
    }
    const job = this.running;
    if (job) {
      this.finish(job);
      job.reject(
        new WhaleError('ERR_INVALID_ARG', `requirements.schema: the validator stopped (${err?.message ?? 'exited'})`, {
          field: 'requirements.schema',
        }),
      );
    }
    this.pump();
  }

  private finish(job: Job): void {
    if (this.running === job) this.running = undefined;
    clearTimeout(this.timer);
    this.timer = undefined;
  }
}
