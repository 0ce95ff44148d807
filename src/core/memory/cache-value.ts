/**
 * What the cache accepts, and private copies of it (L1 never hands out or
 * keeps the caller's object). Accepted, at any depth up to MAX_DEPTH:
 * string, number (NaN, ±Infinity and -0 included), boolean, null, bigint,
 * undefined (not as the whole value), arrays (holes kept), plain objects
 * (prototype Object.prototype, string keys), Date, Map, Set, Buffer and the
 * typed arrays Uint8Array, Uint8ClampedArray, Int8Array, Uint16Array,
 * Int16Array, Uint32Array, Int32Array, Float32Array, Float64Array,
 * BigInt64Array, BigUint64Array (exact classes). Everything else is refused
 * with ERR_INVALID_ARG naming the path: functions, symbols, class instances,
 * boxed primitives, RegExp, Error, Promise, WeakMap/WeakSet, ArrayBuffer,
 * DataView (wrap the bytes in a Uint8Array), symbol keys, circular structures.
 */
import { WhaleError } from '../../common/errors.js';

export type CacheValue =
  | string
  | number
  | boolean
  | bigint
  | null
  | Date
  | Map<unknown, unknown>
  | Set<unknown>
  | ArrayBufferView
  | unknown[]
  | { [key: string]: unknown };

export const MAX_DEPTH = 100;

const TYPED: ReadonlySet<object> = new Set<object>([
  Buffer.prototype,
  Uint8Array.prototype,
  Uint8ClampedArray.prototype,
  Int8Array.prototype,
  Uint16Array.prototype,
  Int16Array.prototype,
  Uint32Array.prototype,
  Int32Array.prototype,
  Float32Array.prototype,
  Float64Array.prototype,
  BigInt64Array.prototype,
  BigUint64Array.prototype,
]);

type Typed =
  | Uint8Array
  | Uint8ClampedArray
  | Int8Array
  | Uint16Array
  | Int16Array
  | Uint32Array
  | Int32Array
  | Float32Array
  | Float64Array
  | BigInt64Array
  | BigUint64Array;

const isTyped = (v: object): v is Typed => TYPED.has(Object.getPrototypeOf(v) as object);

function refuse(path: string, what: string): never {
  throw new WhaleError(
    'ERR_INVALID_ARG',
    `${path}: ${what} cannot be cached (see the accepted types in docs/memory.md)`,
    { field: path },
  );
}

/**
 * Throws unless value is accepted (field names the offending path, e.g.
 * `value.a[3]`); returns an estimate of its in-process size for the L1 budget.
 */
export function checkValue(value: unknown, path = 'value'): number {
  if (value === undefined) refuse(path, 'undefined');
  return walk(value, path, 0, new Set());
}

function walk(v: unknown, path: string, depth: number, ancestors: Set<object>): number {
  switch (typeof v) {
    case 'string':
      return 16 + 2 * v.length;
    case 'number':
    case 'boolean':
    case 'undefined':
      return 16;
    case 'bigint':
      return 16 + Math.ceil(v.toString(16).length / 2);
    case 'function':
    case 'symbol':
      refuse(path, `a ${typeof v}`);
  }
  if (v === null) return 16;
  const o = v as object;
  if (depth >= MAX_DEPTH) refuse(path, `nesting deeper than ${MAX_DEPTH} levels`);
  if (ancestors.has(o)) refuse(path, 'a circular reference');
  if (isTyped(o)) return 64 + o.byteLength;
  if (o instanceof Date && Object.getPrototypeOf(o) === Date.prototype) return 32;
  ancestors.add(o);
  let bytes = 64;
  const proto = Object.getPrototypeOf(o) as object | null;
  if (proto === Map.prototype) {
    let i = 0;
    for (const [k, x] of o as Map<unknown, unknown>) {
      bytes +=
        32 +
        walk(k, `${path}.keys()[${i}]`, depth + 1, ancestors) +
        walk(x, `${path}.values()[${i}]`, depth + 1, ancestors);
      i++;
    }
  } else if (proto === Set.prototype) {
    let i = 0;
    for (const x of o as Set<unknown>) bytes += 16 + walk(x, `${path}.values()[${i++}]`, depth + 1, ancestors);
  } else if (proto === Array.prototype) {
    const a = o as unknown[];
    if (Object.getOwnPropertySymbols(a).length > 0) refuse(path, 'an array with symbol-keyed properties');
    let present = 0;
    for (let i = 0; i < a.length; i++) {
      if (!(i in a))
        bytes += 8; // a hole, kept as one
      else {
        present++;
        bytes += walk(a[i], `${path}[${i}]`, depth + 1, ancestors);
      }
    }
    if (Object.keys(a).length > present) refuse(path, 'an array with named properties');
  } else if (proto === Object.prototype) {
    if (Object.getOwnPropertySymbols(o).length > 0) refuse(path, 'an object with symbol-keyed properties');
    for (const [k, x] of Object.entries(o)) bytes += 16 + 2 * k.length + walk(x, `${path}.${k}`, depth + 1, ancestors);
  } else {
    refuse(
      path,
      `an instance of ${(proto as { constructor?: { name?: string } } | null)?.constructor?.name ?? 'a null-prototype object'}`,
    );
  }
  ancestors.delete(o);
  return bytes;
}

/** A deep copy sharing no memory with value; value must have passed checkValue. */
export function copyValue<T>(value: T): T {
  if (typeof value !== 'object' || value === null) return value;
  const o = value as object;
  if (isTyped(o)) {
    if (Buffer.isBuffer(o)) {
      const b = Buffer.alloc(o.length); // not the shared allocation pool
      o.copy(b);
      return b as T;
    }
    return o.slice() as T;
  }
  if (o instanceof Date) return new Date(o.getTime()) as T;
  if (o instanceof Map) return new Map([...o].map(([k, x]) => [copyValue(k), copyValue(x)])) as T;
  if (o instanceof Set) return new Set([...o].map(copyValue)) as T;
  if (Array.isArray(o)) {
    const out = new Array<unknown>(o.length);
    for (let i = 0; i < o.length; i++) if (i in o) out[i] = copyValue(o[i]);
    return out as T;
  }
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(o))
    Object.defineProperty(out, k, { value: copyValue(x), writable: true, enumerable: true, configurable: true });
  return out as T;
}
