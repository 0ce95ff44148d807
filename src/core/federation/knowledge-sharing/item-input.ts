/**
 * Checks one KnowledgeInput completely (before anything is stored) and turns
 * its embedding into the blob the index and the storage keep. Errors are
 * ERR_INVALID_ARG / ERR_NON_FINITE naming `items[i].<field>` and the item.
 */
import { randomUUID } from 'node:crypto';

import { WhaleError, isWhaleError } from '../../../common/errors.js';
import { decodeTensor, encodeTensor, inspectTensor } from '../../memory/codec.js';
import { jsonProblem } from '../../../common/json-safe.js';
import type { KnowledgeInput, KnowledgePrivacy } from './types.js';

export interface VectorFormat {
  dim: number;
  storage: 'f32' | 'int8';
  blockSize: number;
  cosine: boolean;
}

export interface CheckedInput {
  id: string;
  key: string;
  topic: string;
  sourceModel?: string;
  targetModel: string;
  privacy: KnowledgePrivacy;
  data: unknown;
  time: number;
  version?: number;
  expiresAt?: number;
  /** The blob to index and keep (absent: no vector yet). */
  blob?: Uint8Array;
  /** Text for the embedder when there is no embedding. */
  text?: string;
}

const PRIVACY: readonly string[] = ['standard', 'anonymous', 'encrypted'];
export const MAX_TTL_MS = 10 * 365 * 24 * 3600 * 1000;

export function checkInput(input: KnowledgeInput, i: number, fmt: VectorFormat, now: number): CheckedInput {
  const at = `items[${i}]`;
  const bad = (field: string, what: string, code: 'ERR_INVALID_ARG' | 'ERR_NON_FINITE' = 'ERR_INVALID_ARG') =>
    new WhaleError(
      code,
      `${at}.${field}: ${what}${input?.id || input?.key ? ` (item ${JSON.stringify(input.id ?? input.key)})` : ''}`,
      {
        field: `${at}.${field}`,
        item: input?.id ?? input?.key,
      },
    );
  if (typeof input !== 'object' || input === null)
    throw new WhaleError('ERR_INVALID_ARG', `${at}: must be an object`, { field: at });
  const str = (v: unknown, field: string, optional: boolean) => {
    if (v === undefined && optional) return;
    if (typeof v !== 'string' || v.length === 0 || v.length > 1024)
      throw bad(field, 'must be a non-empty string of at most 1024 characters');
  };
  str(input.id, 'id', true);
  str(input.key, 'key', true);
  str(input.topic, 'topic', false);
  str(input.sourceModel, 'sourceModel', true);
  str(input.targetModel, 'targetModel', true);
  if (input.privacy !== undefined && !PRIVACY.includes(input.privacy))
    throw bad('privacy', 'must be standard, anonymous or encrypted');
  const privacy = input.privacy ?? 'standard';
  if (privacy === 'encrypted' && (input.targetModel === undefined || input.targetModel === 'all'))
    throw bad('targetModel', 'an encrypted item needs one target model');
  if (input.data === undefined) throw bad('data', 'is required');
  const p = jsonProblem(input.data, `${at}.data`);
  if (p) throw new WhaleError('ERR_INVALID_ARG', `${p.path}: ${p.reason}`, { field: p.path });
  const time = input.time ?? now;
  if (typeof time !== 'number' || !Number.isFinite(time) || time < 0)
    throw bad('time', 'must be a finite number of ms since the epoch');
  if (input.version !== undefined && !(Number.isSafeInteger(input.version) && input.version >= 1))
    throw bad('version', 'must be an integer >= 1');
  if (input.ttlMs !== undefined && !(typeof input.ttlMs === 'number' && input.ttlMs > 0 && input.ttlMs <= MAX_TTL_MS)) {
    throw bad('ttlMs', `must be a number of ms in (0, ${MAX_TTL_MS}]`);
  }
  if (input.text !== undefined && typeof input.text !== 'string') throw bad('text', 'must be a string');
  const id = input.id ?? randomUUID();
  const out: CheckedInput = {
    id,
    key: input.key ?? id,
    topic: input.topic,
    targetModel: input.targetModel ?? 'all',
    privacy,
    data: input.data,
    time,
  };
  if (input.sourceModel !== undefined) out.sourceModel = input.sourceModel;
  if (input.version !== undefined) out.version = input.version;
  if (input.ttlMs !== undefined) out.expiresAt = now + input.ttlMs;
  if (input.embedding !== undefined) out.blob = embeddingBlob(input.embedding, fmt, bad);
  else if (input.text !== undefined) out.text = input.text;
  return out;
}

type Bad = (field: string, what: string, code?: 'ERR_INVALID_ARG' | 'ERR_NON_FINITE') => WhaleError;

/** The blob for an embedding given as floats or as a memory-module blob. */
export function embeddingBlob(e: unknown, fmt: VectorFormat, bad: Bad): Uint8Array {
  let values: Float32Array;
  if (e instanceof Uint8Array) {
    let info;
    try {
      info = inspectTensor(e);
      values = decodeTensor(e);
    } catch (err) {
      if (isWhaleError(err))
        throw new WhaleError(err.code, `${bad('embedding', err.message).message}`, {
          field: bad('embedding', '').field,
          cause: err,
        });
      throw err;
    }
    if (info.length !== fmt.dim) throw bad('embedding', `the blob holds ${info.length} values, expected ${fmt.dim}`);
    checkValues(values, fmt, bad);
    // An int8 blob in the index's own format is kept as is: the index holds exactly these codes.
    if (fmt.storage === 'int8' && info.codec === 'int8' && info.blockSize === fmt.blockSize) return e;
  } else if (e instanceof Float32Array || Array.isArray(e)) {
    if (e.length !== fmt.dim) throw bad('embedding', `expected ${fmt.dim} values, got ${e.length}`);
    values = e instanceof Float32Array ? e : Float32Array.from(e as number[], (v) => (typeof v === 'number' ? v : NaN));
    checkValues(e instanceof Float32Array ? e : (e as unknown[]), fmt, bad);
  } else {
    throw bad('embedding', 'must be a Float32Array, an array of numbers or a tensor blob (Uint8Array)');
  }
  return fmt.storage === 'int8'
    ? encodeTensor(values, { codec: 'int8', blockSize: fmt.blockSize })
    : encodeTensor(values, { codec: 'f32' });
}

function checkValues(v: ArrayLike<unknown>, fmt: VectorFormat, bad: Bad): void {
  let nonzero = false;
  for (let j = 0; j < v.length; j++) {
    const x = v[j];
    if (typeof x !== 'number' || !Number.isFinite(x))
      throw bad('embedding', `value ${j} is ${typeof x === 'number' ? String(x) : typeof x}`, 'ERR_NON_FINITE');
    // float32 overflow would turn it into Infinity in the index
    if (Math.abs(x) > 3.4028234663852886e38)
      throw bad('embedding', `value ${j} is beyond float32's range`, 'ERR_NON_FINITE');
    nonzero ||= x !== 0;
  }
  if (fmt.cosine && !nonzero) throw bad('embedding', 'a zero vector has no direction (metric cosine)');
}
