/** The scheduler's public option and request types, and their validation (typed errors naming the field). */
import { WhaleError } from '../../common/errors.js';
import { describe, intIn } from '../../common/validate.js';

export interface BatchingConfig {
  /** Largest batch handed to the executor (>= 1). */
  maxBatchSize: number;
  /** Triton semantics: when one of these sizes is reachable, the largest such batch is dispatched at once. */
  preferredBatchSizes?: number[];
  /** How long the oldest queued request may wait for a fuller batch (µs). */
  maxQueueDelayUs: number;
  /** Admission control: a full model queue answers ERR_OVERLOADED at once. */
  maxQueueSize: number;
  /** Batches of this model that may execute concurrently (default 1). */
  instances?: number;
  /**
   * Work-conserving dispatch (default false): while no batch of this model is running, whatever is
   * queued (up to maxBatchSize) is dispatched at once instead of waiting for a preferred size or
   * maxQueueDelayUs. While a batch runs, requests queue and Triton's rule applies to the other
   * instances; when the last running batch completes, the queue is dispatched at once again.
   */
  dispatchWhenIdle?: boolean;
  /** A batch whose executor does not settle in time fails its requests with ERR_TIMEOUT. */
  executionTimeoutMs?: number;
}

/** Runs one batch: one result per input, in order. */
export type BatchExecutor = (model: string, inputs: unknown[]) => Promise<unknown[]>;

export interface TaskRequest {
  model: string;
  input: unknown;
  /** Fair-share account (default 'default'). */
  tenant?: string;
  /** Priority class, 0 = highest (default 0). */
  priority?: number;
  /** Deadline relative to submission: not started by then -> ERR_DEADLINE_EXCEEDED, never run. */
  timeoutMs?: number;
  signal?: AbortSignal;
}

export interface ValidBatching {
  maxBatchSize: number;
  preferredBatchSizes: number[];
  maxQueueDelayUs: number;
  maxQueueSize: number;
  instances: number;
  dispatchWhenIdle: boolean;
  executionTimeoutMs: number | undefined;
}

function bad(field: string, message: string): never {
  throw new WhaleError('ERR_INVALID_OPTION', `${field}: ${message}`, { field });
}

export function validateBatching(c: unknown, field: string): ValidBatching {
  if (typeof c !== 'object' || c === null) bad(field, 'expected an object');
  const o = c as Record<string, unknown>;
  const maxBatchSize = intIn(o.maxBatchSize, `${field}.maxBatchSize`, 1, 1 << 20);
  let preferred: number[] = [];
  if (o.preferredBatchSizes !== undefined) {
    if (!Array.isArray(o.preferredBatchSizes)) bad(`${field}.preferredBatchSizes`, 'expected an array of integers');
    preferred = o.preferredBatchSizes.map((p, i) => intIn(p, `${field}.preferredBatchSizes[${i}]`, 1, maxBatchSize));
  }
  if (o.dispatchWhenIdle !== undefined && typeof o.dispatchWhenIdle !== 'boolean') {
    bad(`${field}.dispatchWhenIdle`, `expected a boolean, got ${String(o.dispatchWhenIdle)}`);
  }
  const timeout = o.executionTimeoutMs;
  if (timeout !== undefined && (typeof timeout !== 'number' || !(timeout > 0) || !Number.isFinite(timeout))) {
    bad(`${field}.executionTimeoutMs`, `expected a finite number > 0, got ${String(timeout)}`);
  }
  return {
    maxBatchSize,
    preferredBatchSizes: preferred,
    maxQueueDelayUs: intIn(o.maxQueueDelayUs, `${field}.maxQueueDelayUs`, 0, 3_600_000_000),
    maxQueueSize: intIn(o.maxQueueSize, `${field}.maxQueueSize`, 1, 1 << 24),
    instances: o.instances === undefined ? 1 : intIn(o.instances, `${field}.instances`, 1, 4096),
    dispatchWhenIdle: o.dispatchWhenIdle === true,
    executionTimeoutMs: timeout as number | undefined,
  };
}

export function validateWeight(w: unknown, field: string): number {
  if (typeof w !== 'number' || !(w > 0) || !Number.isFinite(w))
    bad(field, `expected a finite number > 0, got ${String(w)}`);
  return w;
}

/** Checks a request's own fields; returns the typed error instead of throwing (scheduleTask rejects with it). */
/** Longest tenant name a request may give (a client's string). */
export const MAX_TENANT_LENGTH = 256;

export function requestError(r: unknown, priorityClasses: number): WhaleError | undefined {
  const arg = (field: string, message: string) => new WhaleError('ERR_INVALID_ARG', `${field}: ${message}`, { field });
  if (typeof r !== 'object' || r === null) return arg('request', 'expected an object');
  const o = r as Record<string, unknown>;
  if (typeof o.model !== 'string' || o.model === '') return arg('model', 'expected a model name');
  if (o.tenant !== undefined && (typeof o.tenant !== 'string' || o.tenant === ''))
    return arg('tenant', 'expected a non-empty string');
  if (o.tenant !== undefined && o.tenant.length > MAX_TENANT_LENGTH)
    return arg('tenant', `longer than ${MAX_TENANT_LENGTH} characters`);
  const p = o.priority;
  if (p !== undefined && (typeof p !== 'number' || !Number.isInteger(p) || p < 0 || p >= priorityClasses)) {
    return arg(
      'priority',
      `expected an integer in [0, ${priorityClasses - 1}], got ${describe(p)}${typeof p === 'string' ? ' (a string)' : ''}`,
    );
  }
  const t = o.timeoutMs;
  if (t !== undefined && (typeof t !== 'number' || !(t >= 0) || !Number.isFinite(t)))
    return arg(
      'timeoutMs',
      `expected a finite number >= 0, got ${describe(t)}${typeof t === 'string' ? ' (a string)' : ''}`,
    );
  if (o.signal !== undefined && !(o.signal instanceof AbortSignal)) return arg('signal', 'expected an AbortSignal');
  return undefined;
}
