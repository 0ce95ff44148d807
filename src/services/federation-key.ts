/**
 * The federation key that 'encrypted' knowledge sharing derives per-model keys
 * from. There is no built-in default: it comes from the `secret` or `keyFile`
 * option, or from $WHALE_FEDERATION_KEY_FILE or $WHALE_FEDERATION_SECRET (one
 * of the two), and must carry at least 256 bits (32 bytes) of entropy:
 *
 * - hex (only 0-9a-f, even length): at least 64 digits (32 bytes), whose
 *   bytes take at least 16 distinct values;
 * - anything else is estimated at length × log2(pool) bits, where the pool
 *   adds 26 for lower case, 26 for upper case, 10 for digits, 33 for ASCII
 *   punctuation and space and 100 for anything else present; it must reach
 *   256 bits and use at least 16 distinct characters. 32 random bytes in
 *   base64 (`openssl rand -base64 32`, 44 characters) pass; so does a
 *   passphrase of 44 random lower-case letters and spaces. The distinct-count
 *   rules out repetitions like "aaaa…" or "abab…".
 * A key file holds the key as such text, or as at least 32 raw bytes; it must
 * not be readable by group or others (chmod 600).
 */
import { readFileSync, statSync } from 'node:fs';

import { readEnv } from '../common/env.js';
import { WhaleError } from '../common/errors.js';

export const MIN_KEY_BITS = 256;
const MIN_DISTINCT = 16;

export interface FederationKeySource {
  secret?: string | Uint8Array;
  keyFile?: string;
  env?: NodeJS.ProcessEnv;
}

/** Whether any key source is configured (without validating it). */
export function hasFederationKey(o: FederationKeySource): boolean {
  const env = readEnv(o.env);
  return o.secret !== undefined || o.keyFile !== undefined || !!env.federationSecret || !!env.federationKeyFile;
}

/** The validated key material; ERR_INVALID_OPTION naming the source when it is missing or weak. */
export function resolveFederationKey(o: FederationKeySource): Buffer {
  const env = readEnv(o.env);
  if (o.secret !== undefined) return fromSecret(o.secret, 'secret');
  if (o.keyFile !== undefined) return fromFile(o.keyFile, 'keyFile');
  const file = env.federationKeyFile,
    secret = env.federationSecret;
  if (file && secret) {
    throw weak('WHALE_FEDERATION_SECRET', 'set either WHALE_FEDERATION_SECRET or WHALE_FEDERATION_KEY_FILE, not both');
  }
  if (file) return fromFile(file, 'WHALE_FEDERATION_KEY_FILE');
  if (secret) return fromSecret(secret, 'WHALE_FEDERATION_SECRET');
  throw weak(
    'WHALE_FEDERATION_SECRET',
    "'encrypted' sharing needs a federation key: set WHALE_FEDERATION_SECRET (>= 256 bits, e.g. `openssl rand -base64 32`) or WHALE_FEDERATION_KEY_FILE",
  );
}

function fromSecret(s: string | Uint8Array, field: string): Buffer {
  if (typeof s !== 'string') {
    if (!(s instanceof Uint8Array)) throw weak(field, 'must be a string or a Uint8Array');
    return checkBytes(Buffer.from(s), field);
  }
  if (/^(?:[0-9a-fA-F]{2})+$/.test(s)) {
    if (s.length < 64)
      throw weak(
        field,
        `${s.length} hex digits carry ${s.length * 4} bits; at least 64 digits (${MIN_KEY_BITS} bits) are needed`,
      );
    return checkBytes(Buffer.from(s, 'hex'), field);
  }
  const bits = passphraseBits(s);
  if (bits < MIN_KEY_BITS) {
    throw weak(
      field,
      `estimated at ${Math.floor(bits)} bits; at least ${MIN_KEY_BITS} are needed (32 random bytes as hex or base64, e.g. \`openssl rand -base64 32\`, or a long passphrase)`,
    );
  }
  if (new Set(s).size < MIN_DISTINCT) throw weak(field, `uses fewer than ${MIN_DISTINCT} distinct characters`);
  return Buffer.from(s, 'utf8');
}

function fromFile(path: string, field: string): Buffer {
  if (typeof path !== 'string' || path.length === 0) throw weak(field, 'must be a file path');
  let raw: Buffer;
  try {
    const st = statSync(path);
    if (!st.isFile()) throw weak(field, `${path} is not a regular file`);
    if (process.platform !== 'win32' && (st.mode & 0o077) !== 0) {
      throw weak(field, `${path} is readable by group or others (mode ${(st.mode & 0o777).toString(8)}); chmod 600 it`);
    }
    raw = readFileSync(path);
  } catch (err) {
    if (err instanceof WhaleError) throw err;
    throw new WhaleError('ERR_INVALID_OPTION', `${field}: cannot read ${path}: ${(err as Error).message}`, {
      field,
      cause: err,
    });
  }
  const text = raw.toString('utf8');
  // eslint-disable-next-line no-control-regex -- control characters are exactly what tells a binary key file from text
  const isText = Buffer.from(text, 'utf8').equals(raw) && !/[\u0000-\u0008\u000e-\u001f]/.test(text);
  return isText ? fromSecret(text.replace(/\r?\n$/, ''), field) : checkBytes(raw, field);
}

function checkBytes(b: Buffer, field: string): Buffer {
  if (b.length < 32) throw weak(field, `${b.length} bytes of key; at least 32 are needed`);
  if (new Set(b).size < MIN_DISTINCT)
    throw weak(field, `the key uses fewer than ${MIN_DISTINCT} distinct byte values: not random`);
  return b;
}

/** length × log2(pool), the pool from the character classes present. */
export function passphraseBits(s: string): number {
  const chars = [...s];
  let pool = 0;
  if (chars.some((c) => c >= 'a' && c <= 'z')) pool += 26;
  if (chars.some((c) => c >= 'A' && c <= 'Z')) pool += 26;
  if (chars.some((c) => c >= '0' && c <= '9')) pool += 10;
  if (chars.some((c) => c >= ' ' && c <= '~' && !/[A-Za-z0-9]/.test(c))) pool += 33;
  if (chars.some((c) => c > '~' || c < ' ')) pool += 100;
  return pool === 0 ? 0 : chars.length * Math.log2(pool);
}

function weak(field: string, what: string): WhaleError {
  return new WhaleError('ERR_INVALID_OPTION', `${field}: ${what}`, { field });
}
