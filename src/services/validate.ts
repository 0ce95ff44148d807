/**
 * Argument checks shared by the services. Everything a service publishes
 * travels as JSON, so payloads are checked to be JSON that round-trips: a
 * value JSON.stringify would drop, rewrite or choke on (BigInt, a cycle, NaN,
 * a Map that would become {}) fails the call with ERR_INVALID_ARG naming the
 * argument's path, before any state is written (the bus checks the whole
 * message again when it is published).
 */
import { WhaleError } from '../core/base/errors.js';
import { jsonProblem } from '../transport/json-safe.js';

/** setTimeout's limit: a longer timeout would fire at once. */
export const MAX_TIMEOUT_MS = 2 ** 31 - 1;

const invalid = (field: string, what: string) => new WhaleError('ERR_INVALID_ARG', `${field}: ${what}`, { field });

/** Throws ERR_INVALID_ARG naming `field` unless v is a non-empty string. */
export function requireId(v: unknown, field: string): void {
  if (typeof v !== 'string' || v.length === 0) throw invalid(field, 'must be a non-empty string');
}

/** Throws ERR_INVALID_OPTION unless v is a finite number of ms in (0, MAX_TIMEOUT_MS]. */
export function requireTimeout(v: unknown, field: string): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0 || v > MAX_TIMEOUT_MS) {
    throw new WhaleError('ERR_INVALID_OPTION', `${field}: must be a finite number of ms in (0, ${MAX_TIMEOUT_MS}], got ${describe(v)}`, { field });
  }
  return v;
}

/** Throws ERR_INVALID_ARG unless v is a finite number. */
export function requireFinite(v: unknown, field: string): number {
  if (typeof v !== 'number' || !Number.isFinite(v)) throw invalid(field, `must be a finite number, got ${describe(v)}`);
  return v;
}

/** An options argument: undefined (defaults) or a plain object. */
export function optionsObject<T extends object>(v: T | undefined, field = 'options'): Partial<T> {
  if (v === undefined) return {};
  if (!isPlainObject(v)) throw new WhaleError('ERR_INVALID_OPTION', `${field}: must be an object, got ${describe(v)}`, { field });
  return v;
}

/** A plain object whose values are all strings (metric labels, headers). */
export function requireStringRecord(v: unknown, field: string): Record<string, string> {
  if (!isPlainObject(v)) throw invalid(field, `must be an object of strings, got ${describe(v)}`);
  for (const [k, x] of Object.entries(v)) if (typeof x !== 'string') throw invalid(`${field}.${k}`, `must be a string, got ${describe(x)}`);
  return v as Record<string, string>;
}

/** Throws ERR_INVALID_ARG (field = the offending path) unless v survives a JSON round trip unchanged. */
export function requireJson(v: unknown, field: string, o: { required?: boolean } = {}): void {
  if (v === undefined) {
    if (o.required) throw invalid(field, 'is required');
    return;
  }
  const p = jsonProblem(v, field);
  if (p) throw invalid(p.path, p.reason);
}

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (typeof v !== 'object' || v === null) return false;
  const proto = Object.getPrototypeOf(v) as unknown;
  return proto === Object.prototype || proto === null;
}

export function describe(v: unknown): string {
  if (typeof v === 'bigint') return `${v}n`;
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v);
  if (typeof v === 'number' || typeof v === 'boolean' || v === null || v === undefined) return String(v);
  return Array.isArray(v) ? 'an array' : typeof v === 'object' ? 'an object' : typeof v;
}
