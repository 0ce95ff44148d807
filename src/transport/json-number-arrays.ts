/**
 * JSON.parse for documents that carry big flat arrays of numbers under one key (a V2 inference
 * body: `"data": [0.1, 0.2, …]`, thousands of elements). JSON.parse makes every element a JS value
 * that the caller then copies into typed storage; here the native scanner (native/json) parses
 * those arrays straight into doubles, JSON.parse sees the rest of the document with each array
 * replaced by a placeholder object, and the placeholders become Float64Array views of the parsed
 * values. Values are exactly JSON.parse's (correctly rounded doubles; the scanner takes an array only
 * when every element is a JSON number within the double range). A document that is not valid JSON
 * gets JSON.parse's own error for the original text.
 */
import { randomBytes } from 'node:crypto';

import { native } from '../native/loader.js';

/** Shorter arrays stay with JSON.parse: the scan and the views cost more than they save. */
export const MIN_NUMBER_ARRAY = 16;

/**
 * The placeholder's key: a NUL and a per-process random tag, so a client cannot write a
 * placeholder (its key would have to guess the tag); one that did is found anyway (every placeholder is
 * restored exactly once, or the document is parsed again with JSON.parse).
 */
let tag: { key: string; json: string } | undefined;

/** Made at the first use, so that importing the package starts nothing (test/package.import). */
function placeholderTag(): { key: string; json: string } {
  if (!tag) {
    const key = `\u0000whale:${randomBytes(12).toString('hex')}`;
    tag = { key, json: JSON.stringify(key) };
  }
  return tag;
}

/**
 * The document parsed, every flat number array of at least MIN_NUMBER_ARRAY elements under `key`
 * as a Float64Array (all other values as JSON.parse makes them). Throws what JSON.parse throws. The
 * walk that restores the arrays recurses: callers bound the nesting first (parseJsonBody's depth check).
 */
export function parseJsonNumberArrays(buf: Buffer, key: string): unknown {
  const found = native().jsonNumberArrays?.(buf, key, MIN_NUMBER_ARRAY);
  if (!found) return JSON.parse(buf.toString('utf8'));
  const { values, spans } = found;
  const { key: tagKey, json: tagJson } = placeholderTag();
  let text = '';
  let at = 0;
  for (let k = 0; k < spans.length; k += 4) {
    text += `${buf.toString('utf8', at, spans[k])}{${tagJson}:${k / 4}}`;
    at = spans[k + 1]!;
  }
  text += buf.toString('utf8', at);
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    return JSON.parse(buf.toString('utf8')); // the original's own error (positions as the client sent them)
  }
  const used = new Uint8Array(spans.length / 4);
  const restored = restore(doc, tagKey, values, spans, used);
  // Every placeholder exactly once, else (a duplicate key dropped one, or a client wrote the tag) the plain parse.
  return used.every((u) => u === 1) ? restored : JSON.parse(buf.toString('utf8'));
}

function restore(v: unknown, tagKey: string, values: Float64Array, spans: Uint32Array, used: Uint8Array): unknown {
  if (v === null || typeof v !== 'object') return v;
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) {
      const r = restore(v[i], tagKey, values, spans, used);
      if (r !== v[i]) v[i] = r;
    }
    return v;
  }
  const o = v as Record<string, unknown>;
  const k = o[tagKey];
  if (typeof k === 'number' && Number.isInteger(k) && k >= 0 && k < used.length && Object.keys(o).length === 1) {
    used[k] = used[k] === 0 ? 1 : 2;
    const first = spans[4 * k + 2]!;
    return values.subarray(first, first + spans[4 * k + 3]!);
  }
  // Only placeholders are replaced (an own property, `__proto__` included, is set as such).
  for (const name of Object.keys(o)) {
    const r = restore(o[name], tagKey, values, spans, used);
    if (r !== o[name]) o[name] = r;
  }
  return o;
}
