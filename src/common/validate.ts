/**
 * The one style of checking options, arguments and configuration: a checker
 * takes the value and the name of its field, returns the value (narrowed), or
 * throws a WhaleError whose message starts with the field and whose
 * details.field names it. The code says whose mistake it is:
 * - ERR_CONFIG: a configuration file (whale.config.json sections), `…At` checkers;
 * - ERR_INVALID_OPTION: an option given to a constructor or a service
 *   (intOption, requireTimeout, optionsObject);
 * - ERR_INVALID_ARG: an argument of a call (requireId, requireFinite,
 *   requireStringRecord, requireJson).
 *
 * (Formerly config/schema.ts, services/validate.ts and transport/int-option.ts;
 * the messages are the same.)
 */
import { WhaleError } from './errors.js';
import { jsonProblem } from './json-safe.js';

/** setTimeout's limit: a longer timeout would fire at once. */
export const MAX_TIMEOUT_MS = 2 ** 31 - 1;

/** A plain object: {} or Object.create(null), not an array, a Map or a class instance. */
export function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (typeof v !== 'object' || v === null) return false;
  const proto = Object.getPrototypeOf(v) as unknown;
  return proto === Object.prototype || proto === null;
}

/** A value as error messages show it: strings quoted (cut at 40 characters), objects by kind. */
export function describe(v: unknown): string {
  if (typeof v === 'bigint') return `${v}n`;
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v);
  if (typeof v === 'number' || typeof v === 'boolean' || v === null || v === undefined) return String(v);
  return Array.isArray(v) ? 'an array' : typeof v === 'object' ? 'an object' : typeof v;
}

// ---------------------------------------------------------------------------
// Options (ERR_INVALID_OPTION)

/** An integer option in [min, max] (default: a positive safe integer), or ERR_INVALID_OPTION naming the field. */
export function intIn(v: unknown, field: string, min = 1, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `>= ${min}` : `in [${min}, ${max}]`;
    throw new WhaleError('ERR_INVALID_OPTION', `${field}: must be an integer ${range}, got ${String(v)}`, { field });
  }
  return v;
}

/** An optional integer option: `dflt` when absent, else as intIn. */
export function intOption(v: unknown, dflt: number, field: string, min = 1, max = Number.MAX_SAFE_INTEGER): number {
  return v === undefined ? dflt : intIn(v, field, min, max);
}

/** Throws ERR_INVALID_OPTION unless v is a finite number of ms in (0, MAX_TIMEOUT_MS]. */
export function requireTimeout(v: unknown, field: string): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0 || v > MAX_TIMEOUT_MS) {
    throw new WhaleError(
      'ERR_INVALID_OPTION',
      `${field}: must be a finite number of ms in (0, ${MAX_TIMEOUT_MS}], got ${describe(v)}`,
      { field },
    );
  }
  return v;
}

/** An options argument: undefined (defaults) or a plain object. */
export function optionsObject<T extends object>(v: T | undefined, field = 'options'): Partial<T> {
  if (v === undefined) return {};
  if (!isPlainObject(v))
    throw new WhaleError('ERR_INVALID_OPTION', `${field}: must be an object, got ${describe(v)}`, { field });
  return v;
}

// ---------------------------------------------------------------------------
// Arguments (ERR_INVALID_ARG). Everything the services publish travels as
// JSON, so payloads are checked to round-trip: a value JSON.stringify would
// drop, rewrite or choke on (BigInt, a cycle, NaN, a Map that would become {})
// fails with the offending path, before any state is written.

const invalidArg = (field: string, what: string) => new WhaleError('ERR_INVALID_ARG', `${field}: ${what}`, { field });

/** Throws ERR_INVALID_ARG naming `field` unless v is a non-empty string. */
export function requireId(v: unknown, field: string): void {
  if (typeof v !== 'string' || v.length === 0) throw invalidArg(field, 'must be a non-empty string');
}

/** Throws ERR_INVALID_ARG unless v is a finite number. */
export function requireFinite(v: unknown, field: string): number {
  if (typeof v !== 'number' || !Number.isFinite(v))
    throw invalidArg(field, `must be a finite number, got ${describe(v)}`);
  return v;
}

/** A plain object whose values are all strings (metric labels, headers). */
export function requireStringRecord(v: unknown, field: string): Record<string, string> {
  if (!isPlainObject(v)) throw invalidArg(field, `must be an object of strings, got ${describe(v)}`);
  for (const [k, x] of Object.entries(v))
    if (typeof x !== 'string') throw invalidArg(`${field}.${k}`, `must be a string, got ${describe(x)}`);
  return v as Record<string, string>;
}

/** Throws ERR_INVALID_ARG (field = the offending path) unless v survives a JSON round trip unchanged. */
export function requireJson(v: unknown, field: string, o: { required?: boolean } = {}): void {
  if (v === undefined) {
    if (o.required) throw invalidArg(field, 'is required');
    return;
  }
  const p = jsonProblem(v, field);
  if (p) throw invalidArg(p.path, p.reason);
}

// ---------------------------------------------------------------------------
// Configuration (ERR_CONFIG): declarative checkers for configuration objects,
// each returning the value or naming the field (`models[0].batching.maxBatchSize`).

export function configError(field: string, message: string): WhaleError {
  return new WhaleError('ERR_CONFIG', `${field}: ${message}`, { field });
}

/** Any non-array object (configuration sections come from JSON). */
const isObjectLike = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** Configuration values as their messages show them: strings in single quotes. */
function describeSetting(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'string') return `'${v}'`;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return typeof v;
}

export function objectAt(v: unknown, field: string, allowed: readonly string[]): Record<string, unknown> {
  if (!isObjectLike(v)) throw configError(field, `must be an object, got ${describeSetting(v)}`);
  for (const k of Object.keys(v)) {
    if (!allowed.includes(k))
      throw configError(field ? `${field}.${k}` : k, `unknown setting (known: ${allowed.join(', ')})`);
  }
  return v;
}

export function stringAt(
  v: unknown,
  field: string,
  opts: { pattern?: RegExp; oneOf?: readonly string[] } = {},
): string {
  if (typeof v !== 'string' || v.length === 0)
    throw configError(field, `must be a non-empty string, got ${describeSetting(v)}`);
  if (opts.oneOf && !opts.oneOf.includes(v))
    throw configError(field, `must be one of ${opts.oneOf.join(', ')}, got '${v}'`);
  if (opts.pattern && !opts.pattern.test(v)) throw configError(field, `'${v}' does not match ${opts.pattern}`);
  return v;
}

export function numberAt(
  v: unknown,
  field: string,
  opts: { min?: number; max?: number; integer?: boolean } = {},
): number {
  if (typeof v !== 'number' || !Number.isFinite(v))
    throw configError(field, `must be a finite number, got ${describeSetting(v)}`);
  if (opts.integer && !Number.isInteger(v)) throw configError(field, `must be an integer, got ${v}`);
  if (opts.min !== undefined && v < opts.min) throw configError(field, `must be >= ${opts.min}, got ${v}`);
  if (opts.max !== undefined && v > opts.max) throw configError(field, `must be <= ${opts.max}, got ${v}`);
  return v;
}

export function booleanAt(v: unknown, field: string): boolean {
  if (typeof v !== 'boolean') throw configError(field, `must be true or false, got ${describeSetting(v)}`);
  return v;
}

export function arrayAt(v: unknown, field: string): unknown[] {
  if (!Array.isArray(v)) throw configError(field, `must be an array, got ${describeSetting(v)}`);
  return v;
}

export function optional<T>(v: unknown, read: (v: unknown) => T): T | undefined {
  return v === undefined ? undefined : read(v);
}
