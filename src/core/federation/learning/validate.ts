import { totalmem } from 'node:os';

import { WhaleError } from '../../../common/errors.js';
import type { AggregatorOptions, ClientUpdates } from './types.js';

/** Normalizes client updates to one Float32Array per client, checking shapes. */
export function toRows(updates: ClientUpdates, field = 'clients'): Float32Array[] {
  if (typeof updates !== 'object' || updates === null) {
    throw new WhaleError(
      'ERR_INVALID_ARG',
      `${field}: expected an array of Float32Array or { data, clients, params }, got ${String(updates)}`,
      {
        field,
      },
    );
  }
  if (Array.isArray(updates)) {
    const rows = updates as readonly unknown[];
    if (rows.length === 0)
      throw new WhaleError('ERR_NO_CLIENTS', `${field}: at least one client update is required`, { field });
    const out: Float32Array[] = [];
    let params = -1;
    // A plain loop (not forEach) so that holes in a sparse array are seen, not skipped.
    for (let i = 0; i < rows.length; i++) {
      if (!(i in rows)) {
        throw new WhaleError(
          'ERR_INVALID_ARG',
          `${field}[${i}]: missing (a hole in a sparse array); every client needs an update`,
          {
            field: `${field}[${i}]`,
            client: i,
          },
        );
      }
      const row = rows[i];
      if (!(row instanceof Float32Array)) {
        throw new WhaleError('ERR_INVALID_ARG', `${field}[${i}]: expected a Float32Array`, {
          field: `${field}[${i}]`,
          client: i,
        });
      }
      if (params < 0) params = row.length;
      if (row.length !== params) {
        throw new WhaleError(
          'ERR_SHAPE_MISMATCH',
          `${field}[${i}]: has ${row.length} values, ${field}[0] has ${params}`,
          {
            field: `${field}[${i}]`,
            client: i,
          },
        );
      }
      out.push(row);
    }
    if (params === 0)
      throw new WhaleError('ERR_SHAPE_MISMATCH', `${field}: updates must have at least one parameter`, { field });
    return out;
  }
  const c = updates as Partial<{ data: unknown; clients: unknown; params: unknown }>;
  if (!(c.data instanceof Float32Array)) {
    throw new WhaleError(
      'ERR_INVALID_ARG',
      `${field}: expected an array of Float32Array or { data, clients, params }`,
      { field },
    );
  }
  const n = c.clients,
    p = c.params;
  if (!isPositiveInt(n))
    throw new WhaleError('ERR_NO_CLIENTS', `${field}.clients: must be an integer >= 1`, { field: `${field}.clients` });
  if (!isPositiveInt(p))
    throw new WhaleError('ERR_SHAPE_MISMATCH', `${field}.params: must be an integer >= 1`, {
      field: `${field}.params`,
    });
  if (c.data.length !== n * p) {
    throw new WhaleError(
      'ERR_SHAPE_MISMATCH',
      `${field}.data: has ${c.data.length} values, expected clients x params = ${n * p}`,
      {
        field: `${field}.data`,
      },
    );
  }
  const data = c.data;
  return Array.from({ length: n }, (_, i) => data.subarray(i * p, (i + 1) * p));
}

/** Weights per client (numbers of examples); default 1 each. */
export function toWeights(weights: ArrayLike<number> | undefined, clients: number): Float64Array {
  if (weights === undefined) return new Float64Array(clients).fill(1);
  // A string is array-like too ('13' would become [1, 3]): only arrays and typed arrays.
  const isTyped = ArrayBuffer.isView(weights) && !(weights instanceof DataView);
  if (!Array.isArray(weights) && !isTyped) {
    throw new WhaleError(
      'ERR_INVALID_WEIGHT',
      `weights: expected an array of numbers, got ${typeof weights === 'string' ? JSON.stringify(weights) : typeof weights}`,
      {
        field: 'weights',
      },
    );
  }
  if (weights.length !== clients) {
    throw new WhaleError(
      'ERR_INVALID_WEIGHT',
      `weights: expected ${clients} weights (one per client), got ${weights.length}`,
      {
        field: 'weights',
      },
    );
  }
  const out = new Float64Array(clients);
  for (let i = 0; i < clients; i++) {
    const w: unknown = weights[i];
    if (typeof w !== 'number' && typeof w !== 'bigint') {
      throw new WhaleError(
        'ERR_INVALID_WEIGHT',
        `weights[${i}]: must be a finite number > 0, got ${w === undefined ? 'nothing' : JSON.stringify(w)}`,
        {
          field: `weights[${i}]`,
          client: i,
        },
      );
    }
    out[i] = Number(w);
    if (!Number.isFinite(out[i]) || out[i]! <= 0) {
      throw new WhaleError('ERR_INVALID_WEIGHT', `weights[${i}]: must be a finite number > 0, got ${out[i]}`, {
        field: `weights[${i}]`,
        client: i,
      });
    }
  }
  return out;
}

export interface ResolvedOptions {
  strategy: AggregatorOptions['strategy'];
  beta: number;
  f: number;
  m: number | undefined;
  nonFinite: 'reject' | 'skip';
  asyncThresholdBytes: number;
  maxMemoryBytes: number;
}

const STRATEGIES = new Set(['fedavg', 'median', 'trimmed-mean', 'krum', 'multi-krum']);

/** Default bound on the native memory one aggregate() call may allocate: a quarter of this machine's memory. */
export const DEFAULT_MAX_MEMORY_BYTES = Math.floor(totalmem() / 4);

export function resolveOptions(o: AggregatorOptions): ResolvedOptions {
  const bad = (field: string, why: string): never => {
    throw new WhaleError('ERR_INVALID_OPTION', `options.${field}: ${why}`, { field: `options.${field}` });
  };
  const number = (field: keyof AggregatorOptions, fallback: number): number => {
    const v = o[field] === undefined ? fallback : o[field]; // null is a mistake to report, not a default
    if (typeof v !== 'number') bad(field, `must be a number, got ${JSON.stringify(v)} (${typeof v})`);
    return v as number;
  };
  if (!STRATEGIES.has(o.strategy))
    bad('strategy', `unknown strategy ${JSON.stringify(o.strategy)}; use one of ${[...STRATEGIES].join(', ')}`);
  const beta = number('beta', 0.1);
  if (!(beta >= 0 && beta < 0.5)) bad('beta', `must satisfy 0 <= beta < 0.5, got ${beta}`);
  const f = number('f', 0);
  if (!Number.isInteger(f) || f < 0) bad('f', `must be an integer >= 0, got ${f}`);
  if (o.m !== undefined && !isPositiveInt(o.m)) bad('m', `must be an integer >= 1, got ${JSON.stringify(o.m)}`);
  const nonFinite = o.nonFinite ?? 'reject';
  if (nonFinite !== 'reject' && nonFinite !== 'skip')
    bad('nonFinite', `must be 'reject' or 'skip', got ${JSON.stringify(nonFinite)}`);
  const asyncThresholdBytes = number('asyncThresholdBytes', 1 << 20);
  if (!(asyncThresholdBytes >= 0)) bad('asyncThresholdBytes', 'must be a number >= 0');
  const maxMemoryBytes = number('maxMemoryBytes', DEFAULT_MAX_MEMORY_BYTES);
  if (!(maxMemoryBytes >= 0)) bad('maxMemoryBytes', 'must be a number >= 0');
  return { strategy: o.strategy, beta, f, m: o.m, nonFinite, asyncThresholdBytes, maxMemoryBytes };
}

/**
 * JS-thread time an async call saves, in input-byte equivalents. An async call
 * first copies its n x p x 4 input bytes into native memory on the JS thread
 * (so JS cannot free them under the job), then the work runs on the pool.
 * FedAvg streams its input about as fast as that copy (bench/RESULTS.md), so
 * it saves nothing; the order statistics do ~16x more work per byte; Krum
 * touches every pair of rows (O(n^2 p)). aggregate() runs async when this is
 * at least asyncThresholdBytes.
 */
export function asyncSavingsBytes(strategy: AggregatorOptions['strategy'], n: number, p: number): number {
  const input = n * p * 4;
  switch (strategy) {
    case 'fedavg':
      return 0;
    case 'median':
    case 'trimmed-mean':
      return 15 * input;
    default:
      return ((n * (n - 1)) / 2) * p * 8;
  }
}

/** Krum's condition n >= 2f + 3, and 1 <= m <= n. */
export function checkKrum(n: number, f: number, m: number): void {
  if (n < 2 * f + 3) {
    throw new WhaleError('ERR_INVALID_OPTION', `options.f: Krum needs n >= 2f + 3 clients; got n = ${n}, f = ${f}`, {
      field: 'options.f',
    });
  }
  if (m < 1 || m > n) {
    throw new WhaleError(
      'ERR_INVALID_OPTION',
      `options.m: Multi-Krum selects 1..n clients; got m = ${m} with n = ${n}`,
      { field: 'options.m' },
    );
  }
}

function isPositiveInt(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= 1;
}
