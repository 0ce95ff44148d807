/**
 * The privacy guard of anonymous knowledge sharing: returns a copy of the
 * data without keys that name personal data (key-rules.ts) and with personal
 * data inside strings replaced by a marker (value-detectors.ts). Dates, Maps,
 * Sets and binary data keep their types; a cycle or nesting deeper than
 * maxDepth fails with ERR_INVALID_ARG instead of overflowing the stack.
 */
import { WhaleError } from '../../common/errors.js';
import { isIdentityContainer, isPersonalKey, isVersionKey, normalizeKey, type KeyRules } from './key-rules.js';
import {
  ALL_DETECTORS,
  containsPersonalData,
  redactString,
  type CustomDetector,
  type DetectorName,
  type ValueRules,
} from './value-detectors.js';

export interface PrivacyGuardOptions {
  /** Keys to keep although a built-in rule drops them (compared in normal form: case and separators ignored). */
  allowKeys?: readonly string[];
  /** Extra keys to drop: names (normal form) or patterns. */
  denyKeys?: ReadonlyArray<string | RegExp>;
  /** Turn built-in string detectors off, e.g. `{ phone: false }`. All are on by default. */
  detectors?: Partial<Record<DetectorName, boolean>>;
  /** Detected strings to keep, e.g. a public support address. */
  allowValues?: ReadonlyArray<string | RegExp>;
  /** Extra string detectors: each match becomes `replacement`. */
  customDetectors?: readonly CustomDetector[];
  /** Deepest nesting accepted (default 100, at most 1000). */
  maxDepth?: number;
}

export type PrivacyGuard = (data: unknown) => unknown;

interface Ctx {
  path: string;
  depth: number;
  insideIdentity: boolean;
  versionKey: boolean;
}

export function createPrivacyGuard(o: PrivacyGuardOptions = {}): PrivacyGuard {
  const { keys, values, maxDepth } = compile(o);
  const ancestors = new Set<object>();

  const visit = (v: unknown, c: Ctx): unknown => {
    if (typeof v === 'string') return redactString(v, c, values);
    if (typeof v === 'function' || typeof v === 'symbol') throw bad(c.path, `a ${typeof v} cannot be shared`);
    if (typeof v !== 'object' || v === null) return v;
    if (v instanceof Date) return new Date(v.getTime());
    if (v instanceof ArrayBuffer) return v.slice(0);
    if (ArrayBuffer.isView(v)) return copyView(v);
    if (c.depth >= maxDepth) throw bad(c.path, `nested deeper than ${maxDepth} levels`);
    if (ancestors.has(v)) throw bad(c.path, 'circular reference');
    ancestors.add(v);
    try {
      return visitContainer(v, c);
    } finally {
      ancestors.delete(v);
    }
  };

  const child = (c: Ctx, path: string, key?: string, insideIdentity = c.insideIdentity): Ctx => ({
    path,
    depth: c.depth + 1,
    insideIdentity,
    versionKey: key === undefined ? c.versionKey : isVersionKey(key),
  });

  /** The entry's guarded value, or `drop` when the key or its value identifies someone. */
  const entry = (k: string, v: unknown, c: Ctx, path: string): unknown => {
    if (isPersonalKey(k, c.insideIdentity, keys) || containsPersonalData(k, values)) return drop;
    if (isIdentityContainer(k, keys)) {
      if (typeof v !== 'object' || v === null || v instanceof Date) return drop;
      return visit(v, child(c, path, k, true));
    }
    return visit(v, child(c, path, k, false));
  };

  const visitContainer = (v: object, c: Ctx): unknown => {
    if (Array.isArray(v)) {
      const out: unknown[] = new Array(v.length);
      for (let i = 0; i < v.length; i++) if (i in v) out[i] = visit(v[i], child(c, `${c.path}[${i}]`));
      return out;
    }
    if (v instanceof Set) return new Set([...v].map((x, i) => visit(x, child(c, `${c.path}<set ${i}>`))));
    if (v instanceof Map) {
      const out = new Map<unknown, unknown>();
      for (const [k, x] of v) {
        const path = `${c.path}.get(${typeof k === 'string' ? JSON.stringify(k) : '…'})`;
        const g = typeof k === 'string' ? entry(k, x, c, path) : visit(x, child(c, path));
        if (g !== drop) out.set(typeof k === 'string' ? k : visit(k, child(c, `${path}<key>`)), g);
      }
      return out;
    }
    const proto = Object.getPrototypeOf(v) as unknown;
    if (proto !== Object.prototype && proto !== null) {
      const name = (v.constructor as { name?: string } | undefined)?.name ?? 'object';
      throw bad(c.path, `a ${name} is not plain data (pass objects, arrays, Maps, Sets, Dates or typed arrays)`);
    }
    const out: Record<string, unknown> = proto === null ? Object.create(null) : {};
    for (const [k, x] of Object.entries(v)) {
      const g = entry(k, x, c, /^[A-Za-z_$][\w$]*$/.test(k) ? `${c.path}.${k}` : `${c.path}[${JSON.stringify(k)}]`);
      if (g !== drop) out[k] = g;
    }
    return out;
  };

  return (data) => {
    ancestors.clear(); // left over only if a previous call threw mid-way
    return visit(data, { path: 'data', depth: 0, insideIdentity: false, versionKey: false });
  };
}

const drop = Symbol('drop');

function bad(field: string, what: string): WhaleError {
  return new WhaleError('ERR_INVALID_ARG', `${field}: ${what}`, { field });
}

function copyView(v: ArrayBufferView): ArrayBufferView {
  if (Buffer.isBuffer(v)) return Buffer.from(v);
  if (v instanceof DataView) return new DataView(v.buffer.slice(v.byteOffset, v.byteOffset + v.byteLength));
  return (v as unknown as { slice(): ArrayBufferView }).slice();
}

function compile(o: PrivacyGuardOptions): { keys: KeyRules; values: ValueRules; maxDepth: number } {
  const opt = (field: string, what: string) =>
    new WhaleError('ERR_INVALID_OPTION', `options.${field}: ${what}`, { field: `options.${field}` });
  if (typeof o !== 'object' || o === null)
    throw new WhaleError('ERR_INVALID_OPTION', 'options: must be an object', { field: 'options' });
  const list = <T>(v: readonly T[] | undefined, field: string, ok: (x: unknown) => boolean): readonly T[] => {
    if (v === undefined) return [];
    if (!Array.isArray(v)) throw opt(field, 'must be an array');
    v.forEach((x, i) => {
      if (!ok(x)) throw opt(`${field}[${i}]`, 'has the wrong type');
    });
    return v;
  };
  const isStr = (x: unknown) => typeof x === 'string' && x.length > 0;
  const allow = list(o.allowKeys, 'allowKeys', isStr);
  const deny = list(o.denyKeys, 'denyKeys', (x) => isStr(x) || x instanceof RegExp);
  const allowValues = list(o.allowValues, 'allowValues', (x) => isStr(x) || x instanceof RegExp);
  const custom = list(o.customDetectors, 'customDetectors', (x) => {
    const d = x as CustomDetector | null;
    return typeof d === 'object' && d !== null && d.pattern instanceof RegExp && typeof d.replacement === 'string';
  }).map((d) => ({
    pattern: d.pattern.global ? d.pattern : new RegExp(d.pattern.source, `${d.pattern.flags}g`),
    replacement: d.replacement,
  }));
  const toggles = o.detectors ?? {};
  if (typeof toggles !== 'object' || toggles === null) throw opt('detectors', 'must be an object');
  for (const [k, v] of Object.entries(toggles)) {
    if (!ALL_DETECTORS.includes(k as DetectorName))
      throw opt(`detectors.${k}`, `unknown detector (known: ${ALL_DETECTORS.join(', ')})`);
    if (typeof v !== 'boolean') throw opt(`detectors.${k}`, 'must be a boolean');
  }
  const maxDepth = o.maxDepth ?? 100;
  if (!Number.isInteger(maxDepth) || maxDepth < 1 || maxDepth > 1000)
    throw opt('maxDepth', `must be an integer 1..1000, got ${String(maxDepth)}`);
  return {
    keys: {
      allow: new Set(allow.map(normalizeKey)),
      deny: new Set(deny.filter((d): d is string => typeof d === 'string').map(normalizeKey)),
      denyPatterns: deny.filter((d): d is RegExp => d instanceof RegExp),
    },
    values: { enabled: new Set(ALL_DETECTORS.filter((d) => toggles[d] !== false)), allowValues, custom },
    maxDepth,
  };
}
