/**
 * AES-256-GCM for 'encrypted' knowledge sharing. The key is per target model
 * (HKDF from the federation key); the associated data binds the sender, the
 * target, a message id and the send time, so a captured message cannot be
 * re-labelled with another sender or target, and its id and time (which the
 * receiver checks against a replay window) cannot be changed either. Only the
 * full 16-byte tag is accepted.
 */
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes, randomUUID } from 'node:crypto';

import { WhaleError } from '../common/errors.js';

/** Format of the sealed object; other versions are refused. */
export const SEALED_VERSION = 2;
const TAG_BYTES = 16;
const IV_BYTES = 12;

export interface Sealed {
  v: typeof SEALED_VERSION;
  /** Unique per message; the receiver refuses a second message with the same id. */
  messageId: string;
  /** Sender's clock, ms since epoch. */
  sentAt: number;
  iv: string;
  tag: string;
  ciphertext: string;
  /** The model whose key encrypted it (= the target). */
  keyId: string;
}

export interface SealHeader {
  sourceModel: string;
  targetModel: string;
  messageId?: string;
  sentAt?: number;
}

function modelKey(key: Uint8Array, modelId: string): Buffer {
  return Buffer.from(hkdfSync('sha256', key, 'smart-whale-federation', `model:${modelId}`, 32));
}

function associatedData(sourceModel: string, targetModel: string, messageId: string, sentAt: number): Buffer {
  // A JSON array cannot be read two ways: ("a:b", "c") and ("a", "b:c") differ.
  return Buffer.from(
    JSON.stringify(['smart-whale/knowledge', SEALED_VERSION, sourceModel, targetModel, messageId, sentAt]),
    'utf8',
  );
}

export function seal(key: Uint8Array, h: SealHeader, data: unknown): Sealed {
  const messageId = h.messageId ?? randomUUID();
  const sentAt = h.sentAt ?? Date.now();
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', modelKey(key, h.targetModel), iv, { authTagLength: TAG_BYTES });
  cipher.setAAD(associatedData(h.sourceModel, h.targetModel, messageId, sentAt));
  const ciphertext = Buffer.concat([cipher.update(JSON.stringify(data), 'utf8'), cipher.final()]);
  return {
    v: SEALED_VERSION,
    messageId,
    sentAt,
    iv: iv.toString('base64'),
    tag: cipher.getAuthTag().toString('base64'),
    ciphertext: ciphertext.toString('base64'),
    keyId: h.targetModel,
  };
}

/** Why a sealed object is malformed (checked before any decryption), or undefined. */
export function sealedProblem(s: unknown): string | undefined {
  if (typeof s !== 'object' || s === null) return 'encrypted: missing';
  const x = s as Record<string, unknown>;
  if (x.v !== SEALED_VERSION)
    return `encrypted.v: unsupported version ${JSON.stringify(x.v)} (expected ${SEALED_VERSION})`;
  if (typeof x.messageId !== 'string' || x.messageId.length === 0 || x.messageId.length > 200)
    return 'encrypted.messageId: must be a non-empty string';
  if (typeof x.sentAt !== 'number' || !Number.isFinite(x.sentAt)) return 'encrypted.sentAt: must be a finite number';
  for (const f of ['iv', 'tag', 'ciphertext'] as const) if (!isBase64(x[f])) return `encrypted.${f}: must be base64`;
  if (Buffer.from(x.iv as string, 'base64').length !== IV_BYTES) return `encrypted.iv: must be ${IV_BYTES} bytes`;
  const tagBytes = Buffer.from(x.tag as string, 'base64').length;
  if (tagBytes !== TAG_BYTES) return `encrypted.tag: must be the full ${TAG_BYTES}-byte GCM tag, got ${tagBytes} bytes`;
  return undefined;
}

/** Decrypts and authenticates; ERR_INVALID_MESSAGE when anything (tag, sender, target, id, time) was altered. */
export function open(key: Uint8Array, h: { sourceModel: string; targetModel: string }, s: Sealed): unknown {
  const problem = sealedProblem(s);
  if (problem) throw new WhaleError('ERR_INVALID_MESSAGE', problem, { field: problem.split(':')[0] });
  let plain: Buffer;
  try {
    const decipher = createDecipheriv('aes-256-gcm', modelKey(key, h.targetModel), Buffer.from(s.iv, 'base64'), {
      authTagLength: TAG_BYTES,
    });
    decipher.setAAD(associatedData(h.sourceModel, h.targetModel, s.messageId, s.sentAt));
    decipher.setAuthTag(Buffer.from(s.tag, 'base64'));
    plain = Buffer.concat([decipher.update(Buffer.from(s.ciphertext, 'base64')), decipher.final()]);
  } catch (err) {
    throw new WhaleError(
      'ERR_INVALID_MESSAGE',
      `encrypted knowledge from ${h.sourceModel} to ${h.targetModel} failed authentication`,
      { cause: err },
    );
  }
  try {
    return JSON.parse(plain.toString('utf8'));
  } catch (err) {
    throw new WhaleError('ERR_INVALID_MESSAGE', 'encrypted knowledge: authentic but not JSON', { cause: err });
  }
}

function isBase64(v: unknown): v is string {
  return typeof v === 'string' && v.length % 4 === 0 && /^[A-Za-z0-9+/]*={0,2}$/.test(v);
}
