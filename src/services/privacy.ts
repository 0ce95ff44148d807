/**
 * Privacy for knowledge sharing: a guard that strips identifying fields and
 * values before 'anonymous' sharing, and AES-256-GCM with per-model keys
 * (HKDF from one secret) for 'encrypted' sharing.
 */
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';

import { WhaleError } from '../core/base/errors.js';

const PII_KEYS = /^(user_?id|userId|email|e_?mail|phone|name|first_?name|last_?name|address|ip|ip_?address|ssn|session_?id|sessionId|device_?id|source_?model|sourceModel)$/i;
const EMAIL = /[\w.+-]+@[\w-]+\.[\w.-]+/g;
const PHONE = /\+?\d[\d\s().-]{7,}\d/g;
const IPV4 = /\b\d{1,3}(?:\.\d{1,3}){3}\b/g;

/** A copy of data without identifying keys, with e-mails, phone numbers and IPs redacted in strings. */
export function privacyGuard(data: unknown): unknown {
  if (typeof data === 'string') return data.replace(EMAIL, '[email]').replace(IPV4, '[ip]').replace(PHONE, '[phone]');
  if (Array.isArray(data)) return data.map(privacyGuard);
  if (data && typeof data === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(data)) if (!PII_KEYS.test(k)) out[k] = privacyGuard(v);
    return out;
  }
  return data;
}

export interface Sealed {
  iv: string;
  tag: string;
  ciphertext: string;
  keyId: string;
}

function modelKey(secret: string, modelId: string): Buffer {
  return Buffer.from(hkdfSync('sha256', secret, 'smart-whale-federation', `model:${modelId}`, 32));
}

export function seal(secret: string, modelId: string, data: unknown): Sealed {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', modelKey(secret, modelId), iv);
  cipher.setAAD(Buffer.from(modelId));
  const ciphertext = Buffer.concat([cipher.update(JSON.stringify(data), 'utf8'), cipher.final()]);
  return { iv: iv.toString('base64'), tag: cipher.getAuthTag().toString('base64'), ciphertext: ciphertext.toString('base64'), keyId: modelId };
}

export function open(secret: string, modelId: string, s: Sealed): unknown {
  try {
    const decipher = createDecipheriv('aes-256-gcm', modelKey(secret, modelId), Buffer.from(s.iv, 'base64'));
    decipher.setAAD(Buffer.from(modelId));
    decipher.setAuthTag(Buffer.from(s.tag, 'base64'));
    const plain = Buffer.concat([decipher.update(Buffer.from(s.ciphertext, 'base64')), decipher.final()]);
    return JSON.parse(plain.toString('utf8'));
  } catch (err) {
    throw new WhaleError('ERR_INVALID_MESSAGE', `encrypted knowledge for ${modelId} failed authentication`, { cause: err });
  }
}
