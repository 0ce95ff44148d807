/**
 * Scores against the caller's requirements (each 1 when fully met):
 * - schemaValid: the response (parsed as JSON when it is a string) validates
 *   against the JSON Schema (ajv, draft-07 / 2019 keywords): 1 or 0.
 * - lengthWithin: the response's length in code points lies in [minLength, maxLength]: 1 or 0.
 * - requiredTerms: share of the required terms (each a token sequence) present in the response.
 * - forbiddenTermsAbsent: share of the forbidden terms absent from the response.
 * - charset: share of the response's non-whitespace code points inside the
 *   charset ('ascii' U+0000–007F, 'latin1' U+0000–00FF, 'bmp' U+0000–FFFF).
 * - script: share of the response's letters written in one of the given
 *   Unicode scripts (e.g. ['Latin'], ['Cyrillic']): a language check by script.
 */
import { Ajv, type ValidateFunction } from 'ajv';

import { WhaleError } from '../../../common/errors.js';
import { codePointLength, containsPhrase, tokenize } from './text.js';

export type Charset = 'ascii' | 'latin1' | 'bmp';
export const CHARSETS: readonly Charset[] = ['ascii', 'latin1', 'bmp'];
const CHARSET_MAX: Record<Charset, number> = { ascii: 0x7f, latin1: 0xff, bmp: 0xffff };
/** Entries of requiredTerms, forbiddenTerms and scripts, and the length of each (client input: bounded cost). */
export const MAX_TERMS = 256;
export const MAX_TERM_LENGTH = 1024;

export interface Requirements {
  /** A JSON Schema the response must satisfy. */
  schema?: object;
  minLength?: number;
  maxLength?: number;
  requiredTerms?: string[];
  forbiddenTerms?: string[];
  charset?: Charset;
  /** Unicode script names (Script property values), e.g. ['Latin']. */
  scripts?: string[];
}

const ajv = new Ajv({ allErrors: true, strict: false, logger: false });

/**
 * Synchronous check on the calling thread, for trusted schemas (a library
 * caller's own). Nothing is cached: the schema is dropped after the call (no
 * growing cache, no `$id` shared between calls). The QualityEvaluator runs
 * client schemas through SchemaWorker instead (off the main thread, with a
 * time bound), since a schema's `pattern` can backtrack catastrophically.
 */
export function schemaValid(response: unknown, schema: object): { score: number; errors: string[] } {
  let validate: ValidateFunction;
  try {
    validate = ajv.compile(schema);
  } catch (err) {
    ajv.removeSchema();
    throw new WhaleError(
      'ERR_INVALID_ARG',
      `requirements.schema: not a valid JSON Schema (${(err as Error).message})`,
      { field: 'requirements.schema' },
    );
  }
  try {
    let value = response;
    if (typeof response === 'string') {
      try {
        value = JSON.parse(response);
      } catch (err) {
        return { score: 0, errors: [`not JSON: ${(err as Error).message}`] };
      }
    }
    const ok = validate(value) as boolean;
    return {
      score: ok ? 1 : 0,
      errors: ok ? [] : (validate.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message ?? 'invalid'}`),
    };
  } finally {
    ajv.removeSchema();
  }
}

export function lengthWithin(text: string, min = 0, max = Infinity): number {
  const n = codePointLength(text);
  return n >= min && n <= max ? 1 : 0;
}

/**
 * Share of the terms present as token sequences. Linear in the response per
 * distinct term length: the response's n-grams of each length are hashed once
 * (a rolling hash over token ids) and each term is looked up, then confirmed.
 */
export function termsPresentShare(tokens: readonly string[], terms: readonly string[]): number {
  if (terms.length === 0) return 1;
  const ids = new Map<string, number>();
  const tokenIds = Int32Array.from(tokens, (t) => {
    let id = ids.get(t);
    if (id === undefined) ids.set(t, (id = ids.size + 1));
    return id;
  });
  const byLength = new Map<number, Map<number, number>>();
  let present = 0;
  for (const term of terms) {
    const needle = tokenize(term);
    if (needle.length === 0) {
      present++;
      continue;
    }
    const needleIds = needle.map((t) => ids.get(t) ?? -1);
    if (needleIds.includes(-1) || needle.length > tokenIds.length) continue;
    let grams = byLength.get(needle.length);
    if (!grams) byLength.set(needle.length, (grams = ngramHashes(tokenIds, needle.length)));
    const at = grams.get(hashIds(needleIds, 0, needle.length));
    if (at !== undefined && needleIds.every((id, j) => tokenIds[at + j] === id)) present++;
    else if (at !== undefined && containsPhrase(tokens, needle)) present++; // a hash collision: confirm by scanning
  }
  return present / terms.length;
}

const HASH_BASE = 1_000_003;
const HASH_MOD = 2_147_483_647;

function hashIds(ids: ArrayLike<number>, from: number, n: number): number {
  let h = 0;
  for (let j = 0; j < n; j++) h = (h * HASH_BASE + ids[from + j]!) % HASH_MOD;
  return h;
}

/** hash of every n-gram → its first position (rolling: O(tokens)). */
function ngramHashes(ids: Int32Array, n: number): Map<number, number> {
  const out = new Map<number, number>();
  let pow = 1;
  for (let j = 1; j < n; j++) pow = (pow * HASH_BASE) % HASH_MOD;
  let h = hashIds(ids, 0, n);
  for (let i = 0; ; i++) {
    if (!out.has(h)) out.set(h, i);
    if (i + n >= ids.length) break;
    h = (h - ((ids[i]! * pow) % HASH_MOD) + HASH_MOD) % HASH_MOD;
    h = (h * HASH_BASE + ids[i + n]!) % HASH_MOD;
  }
  return out;
}

export function charsetShare(text: string, charset: Charset): number {
  const max = CHARSET_MAX[charset];
  let total = 0;
  let inside = 0;
  for (const ch of text) {
    if (/\s/u.test(ch)) continue;
    total++;
    if (ch.codePointAt(0)! <= max) inside++;
  }
  return total === 0 ? 1 : inside / total;
}

export function scriptShare(text: string, scripts: readonly string[]): number {
  let pattern: RegExp;
  try {
    pattern = new RegExp(scripts.map((s) => `\\p{Script=${s}}`).join('|'), 'u');
  } catch {
    throw new WhaleError(
      'ERR_INVALID_ARG',
      `requirements.scripts: unknown Unicode script in ${JSON.stringify(scripts)} (e.g. 'Latin', 'Cyrillic', 'Han')`,
      {
        field: 'requirements.scripts',
      },
    );
  }
  let letters = 0;
  let inside = 0;
  for (const ch of text) {
    if (!/\p{L}/u.test(ch)) continue;
    letters++;
    if (pattern.test(ch)) inside++;
  }
  return letters === 0 ? 1 : inside / letters;
}

/** Typed errors for requirements that cannot be applied. */
export function checkRequirements(r: unknown): Requirements {
  if (r === undefined || r === null) return {};
  if (typeof r !== 'object' || Array.isArray(r)) throw bad('requirements', 'must be an object');
  const q = r as Requirements;
  if (q.schema !== undefined && (typeof q.schema !== 'object' || q.schema === null))
    throw bad('requirements.schema', 'must be a JSON Schema object');
  for (const k of ['minLength', 'maxLength'] as const) {
    const v = q[k];
    if (v !== undefined && !(typeof v === 'number' && v >= 0 && (Number.isInteger(v) || v === Infinity)))
      throw bad(`requirements.${k}`, 'must be an integer >= 0');
  }
  if ((q.minLength ?? 0) > (q.maxLength ?? Infinity)) throw bad('requirements.minLength', 'must not exceed maxLength');
  for (const k of ['requiredTerms', 'forbiddenTerms', 'scripts'] as const) {
    const v = q[k];
    if (v !== undefined && (!Array.isArray(v) || v.some((t) => typeof t !== 'string' || t.length === 0)))
      throw bad(`requirements.${k}`, 'must be an array of non-empty strings');
  }
  for (const k of ['requiredTerms', 'forbiddenTerms', 'scripts'] as const) {
    const v = q[k];
    if (v && v.length > MAX_TERMS) throw bad(`requirements.${k}`, `at most ${MAX_TERMS} entries`);
    if (v?.some((t) => t.length > MAX_TERM_LENGTH))
      throw bad(`requirements.${k}`, `entries of at most ${MAX_TERM_LENGTH} characters`);
  }
  if (q.scripts?.some((t) => !/^[A-Za-z_]+$/.test(t)))
    throw bad('requirements.scripts', "must be Unicode script names (letters and '_', e.g. 'Latin')");
  if (q.charset !== undefined && !CHARSETS.includes(q.charset))
    throw bad('requirements.charset', `must be one of ${CHARSETS.join(', ')}`);
  return q;
}

function bad(field: string, message: string): WhaleError {
  return new WhaleError('ERR_INVALID_ARG', `${field}: ${message}`, { field });
}
