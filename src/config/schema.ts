/**
 * Small declarative checkers for configuration objects: each one returns the
 * value or throws ERR_CONFIG naming the field (`models[0].batching.maxBatchSize`).
 */
import { WhaleError } from '../core/base/errors.js';

export function configError(field: string, message: string): WhaleError {
  return new WhaleError('ERR_CONFIG', `${field}: ${message}`, { field });
}

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function objectAt(v: unknown, field: string, allowed: readonly string[]): Record<string, unknown> {
  if (!isPlainObject(v)) throw configError(field, `must be an object, got ${describe(v)}`);
  for (const k of Object.keys(v)) {
    if (!allowed.includes(k)) throw configError(field ? `${field}.${k}` : k, `unknown setting (known: ${allowed.join(', ')})`);
  }
  return v;
}

export function stringAt(v: unknown, field: string, opts: { pattern?: RegExp; oneOf?: readonly string[] } = {}): string {
  if (typeof v !== 'string' || v.length === 0) throw configError(field, `must be a non-empty string, got ${describe(v)}`);
  if (opts.oneOf && !opts.oneOf.includes(v)) throw configError(field, `must be one of ${opts.oneOf.join(', ')}, got '${v}'`);
  if (opts.pattern && !opts.pattern.test(v)) throw configError(field, `'${v}' does not match ${opts.pattern}`);
  return v;
}

export function numberAt(v: unknown, field: string, opts: { min?: number; max?: number; integer?: boolean } = {}): number {
  if (typeof v !== 'number' || !Number.isFinite(v)) throw configError(field, `must be a finite number, got ${describe(v)}`);
  if (opts.integer && !Number.isInteger(v)) throw configError(field, `must be an integer, got ${v}`);
  if (opts.min !== undefined && v < opts.min) throw configError(field, `must be >= ${opts.min}, got ${v}`);
  if (opts.max !== undefined && v > opts.max) throw configError(field, `must be <= ${opts.max}, got ${v}`);
  return v;
}

export function booleanAt(v: unknown, field: string): boolean {
  if (typeof v !== 'boolean') throw configError(field, `must be true or false, got ${describe(v)}`);
  return v;
}

export function arrayAt(v: unknown, field: string): unknown[] {
  if (!Array.isArray(v)) throw configError(field, `must be an array, got ${describe(v)}`);
  return v;
}

export function optional<T>(v: unknown, read: (v: unknown) => T): T | undefined {
  return v === undefined ? undefined : read(v);
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'string') return `'${v}'`;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return typeof v;
}
