import { WhaleError } from '../../base/errors.js';
import type { AggregatorOptions, ClientUpdates } from './types.js';

/** Normalizes client updates to one Float32Array per client, checking shapes. */
export function toRows(updates: ClientUpdates, field = 'clients'): Float32Array[] {
  if (Array.isArray(updates)) {
    const rows = updates as readonly unknown[];
    if (rows.length === 0) throw new WhaleError('ERR_NO_CLIENTS', `${field}: at least one client update is required`, { field });
    const out: Float32Array[] = [];
    let params = -1;
    rows.forEach((row, i) => {
      if (!(row instanceof Float32Array)) {
        throw new WhaleError('ERR_INVALID_ARG', `${field}[${i}]: expected a Float32Array`, { field: `${field}[${i}]`, client: i });
      }
      if (params < 0) params = row.length;
      if (row.length !== params) {
        throw new WhaleError('ERR_SHAPE_MISMATCH', `${field}[${i}]: has ${row.length} values, ${field}[0] has ${params}`, {
          field: `${field}[${i}]`,
          client: i,
        });
      }
      out.push(row);
    });
    if (params === 0) throw new WhaleError('ERR_SHAPE_MISMATCH', `${field}: updates must have at least one parameter`, { field });
    return out;
  }
  const c = updates as Partial<{ data: unknown; clients: unknown; params: unknown }>;
  if (!(c.data instanceof Float32Array)) {
    throw new WhaleError('ERR_INVALID_ARG', `${field}: expected an array of Float32Array or { data, clients, params }`, { field });
  }
  const n = c.clients, p = c.params;
  if (!isPositiveInt(n)) throw new WhaleError('ERR_NO_CLIENTS', `${field}.clients: must be an integer >= 1`, { field: `${field}.clients` });
  if (!isPositiveInt(p)) throw new WhaleError('ERR_SHAPE_MISMATCH', `${field}.params: must be an integer >= 1`, { field: `${field}.params` });
  if (c.data.length !== n * p) {
    throw new WhaleError('ERR_SHAPE_MISMATCH', `${field}.data: has ${c.data.length} values, expected clients x params = ${n * p}`, {
      field: `${field}.data`,
    });
  }
  const data = c.data;
  return Array.from({ length: n }, (_, i) => data.subarray(i * p, (i + 1) * p));
}

/** Weights per client (numbers of examples); default 1 each. */
export function toWeights(weights: ArrayLike<number> | undefined, clients: number): Float64Array {
  if (weights === undefined) return new Float64Array(clients).fill(1);
  if (weights.length !== clients) {
    throw new WhaleError('ERR_INVALID_WEIGHT', `weights: expected ${clients} weights (one per client), got ${weights.length}`, {
      field: 'weights',
    });
  }
  const out = Float64Array.from(weights);
  out.forEach((w, i) => {
    if (!Number.isFinite(w) || w <= 0) {
      throw new WhaleError('ERR_INVALID_WEIGHT', `weights[${i}]: must be a finite number > 0, got ${w}`, {
        field: `weights[${i}]`,
        client: i,
      });
    }
  });
  return out;
}

export interface ResolvedOptions {
  strategy: AggregatorOptions['strategy'];
  beta: number;
  f: number;
  m: number | undefined;
  nonFinite: 'reject' | 'skip';
  asyncThresholdBytes: number;
}

const STRATEGIES = new Set(['fedavg', 'median', 'trimmed-mean', 'krum', 'multi-krum']);

export function resolveOptions(o: AggregatorOptions): ResolvedOptions {
  const bad = (field: string, why: string): never => {
    throw new WhaleError('ERR_INVALID_OPTION', `options.${field}: ${why}`, { field: `options.${field}` });
  };
  if (!STRATEGIES.has(o.strategy)) bad('strategy', `unknown strategy ${JSON.stringify(o.strategy)}; use one of ${[...STRATEGIES].join(', ')}`);
  const beta = o.beta ?? 0.1;
  if (!(beta >= 0 && beta < 0.5)) bad('beta', `must satisfy 0 <= beta < 0.5, got ${beta}`);
  const f = o.f ?? 0;
  if (!Number.isInteger(f) || f < 0) bad('f', `must be an integer >= 0, got ${f}`);
  if (o.m !== undefined && !isPositiveInt(o.m)) bad('m', `must be an integer >= 1, got ${o.m}`);
  const nonFinite = o.nonFinite ?? 'reject';
  if (nonFinite !== 'reject' && nonFinite !== 'skip') bad('nonFinite', `must be 'reject' or 'skip', got ${JSON.stringify(nonFinite)}`);
  const asyncThresholdBytes = o.asyncThresholdBytes ?? 1 << 20;
  if (!(asyncThresholdBytes >= 0)) bad('asyncThresholdBytes', 'must be a number >= 0');
  return { strategy: o.strategy, beta, f, m: o.m, nonFinite, asyncThresholdBytes };
}

/** Krum's condition n >= 2f + 3, and 1 <= m <= n. */
export function checkKrum(n: number, f: number, m: number): void {
  if (n < 2 * f + 3) {
    throw new WhaleError('ERR_INVALID_OPTION', `options.f: Krum needs n >= 2f + 3 clients; got n = ${n}, f = ${f}`, { field: 'options.f' });
  }
  if (m < 1 || m > n) {
    throw new WhaleError('ERR_INVALID_OPTION', `options.m: Multi-Krum selects 1..n clients; got m = ${m} with n = ${n}`, { field: 'options.m' });
  }
}

function isPositiveInt(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= 1;
}
