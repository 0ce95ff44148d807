/**
 * JSON that round-trips: JSON.stringify throws a raw TypeError on BigInt and
 * cycles, and silently turns NaN/Infinity into null, Map/Set into {} and
 * array holes into null. jsonProblem finds such values (with their path)
 * before anything is encoded, so callers can fail with a typed error.
 */
import { WhaleError, type WhaleErrorCode } from './errors.js';

/** Nesting deeper than this is refused (JSON.stringify would overflow the stack much later). */
export const MAX_JSON_DEPTH = 256;

export interface JsonProblem {
  /** Where the bad value is, e.g. `payload.labels.cpu` or `value.rows[3]`. */
  path: string;
  reason: string;
}

/** The first value under `root` that JSON cannot carry faithfully, or undefined. */
export function jsonProblem(value: unknown, root: string): JsonProblem | undefined {
  return walk(value, root, '', [], 0);
}

/** JSON text of `value`, or a WhaleError `code` naming the field at fault. */
export function toJsonOrThrow(value: unknown, root: string, code: WhaleErrorCode): string {
  const p = jsonProblem(value, root);
  if (p) throw new WhaleError(code, `${p.path}: ${p.reason}`, { field: p.path });
  let json: string | undefined;
  try {
    json = JSON.stringify(value);
  } catch (err) {
    // A toJSON() that throws, or a getter that does.
    throw new WhaleError(code, `${root}: cannot be encoded as JSON: ${(err as Error)?.message ?? String(err)}`, {
      field: root,
      cause: err,
    });
  }
  if (json === undefined)
    throw new WhaleError(code, `${root}: ${describe(value)} is not a JSON value`, { field: root });
  return json;
}

function walk(v: unknown, path: string, key: string, ancestors: object[], depth: number): JsonProblem | undefined {
  if (typeof v === 'object' && v !== null && typeof (v as { toJSON?: unknown }).toJSON === 'function') {
    try {
      v = (v as { toJSON: (k: string) => unknown }).toJSON(key);
    } catch (err) {
      return { path, reason: `toJSON() failed: ${(err as Error)?.message ?? String(err)}` };
    }
  }
  switch (typeof v) {
    case 'number':
      return Number.isFinite(v) ? undefined : { path, reason: `must be a finite number, got ${v}` };
    case 'bigint':
      return { path, reason: 'a BigInt is not JSON (convert it to a string or number first)' };
    case 'string':
    case 'boolean':
    case 'undefined':
      return undefined;
    case 'function':
    case 'symbol':
      return { path, reason: `${describe(v)} is not JSON` };
  }
  if (v === null) return undefined;
  const o = v as object;
  if (
    o instanceof Map ||
    o instanceof Set ||
    o instanceof WeakMap ||
    o instanceof WeakSet ||
    ArrayBuffer.isView(o) ||
    o instanceof ArrayBuffer
  ) {
    return {
      path,
      reason: `${describe(o)} is not JSON (it would be sent as {}); convert it to a plain object or array`,
    };
  }
  if (o instanceof Number || o instanceof String || o instanceof Boolean)
    return walk(o.valueOf(), path, key, ancestors, depth);
  if (ancestors.includes(o)) return { path, reason: 'circular reference' };
  if (depth >= MAX_JSON_DEPTH) return { path, reason: `nested deeper than ${MAX_JSON_DEPTH} levels` };
  ancestors.push(o);
  try {
    if (Array.isArray(o)) {
      for (let i = 0; i < o.length; i++) {
        const item: unknown = o[i];
        const at = `${path}[${i}]`;
        if (item === undefined || typeof item === 'function' || typeof item === 'symbol') {
          return {
            path: at,
            reason: `${i in o ? describe(item) : 'an empty slot'} in an array is not JSON (it would be sent as null)`,
          };
        }
        const p = walk(item, at, String(i), ancestors, depth + 1);
        if (p) return p;
      }
      return undefined;
    }
    for (const k of Object.keys(o)) {
      const item: unknown = (o as Record<string, unknown>)[k];
      if (item === undefined) continue; // omitted, as JSON.stringify does: the common optional-field idiom
      const p = walk(item, `${path}${IDENT.test(k) ? `.${k}` : `[${JSON.stringify(k)}]`}`, k, ancestors, depth + 1);
      if (p) return p;
    }
    return undefined;
  } finally {
    ancestors.pop();
  }
}

const IDENT = /^[A-Za-z_$][\w$]*$/;

function describe(v: unknown): string {
  if (typeof v === 'object' && v !== null) return `a ${v.constructor?.name ?? 'null-prototype object'}`;
  if (v === undefined) return 'undefined';
  return `a ${typeof v}`;
}
