/** X25519 key agreement, HKDF-SHA256 seed derivation and AES-256-GCM for share transport (node:crypto). */
import {
  createCipheriv,
  createDecipheriv,
  createPrivateKey,
  createPublicKey,
  diffieHellman,
  generateKeyPairSync,
  hkdfSync,
  randomBytes,
  type KeyObject,
} from 'node:crypto';

import { WhaleError } from '../../../../common/errors.js';

export interface X25519Pair {
  privateKey: KeyObject;
  /** base64url of the 32-byte public key. */
  publicText: string;
}

export function generatePair(): X25519Pair {
  const { privateKey, publicKey } = generateKeyPairSync('x25519');
  return { privateKey, publicText: publicKey.export({ format: 'jwk' }).x as string };
}

/** The 32 raw private bytes (what is secret-shared). */
export function privateBytes(k: KeyObject): Uint8Array {
  return Buffer.from(k.export({ format: 'jwk' }).d as string, 'base64url');
}

/** A private key from its raw bytes and its public key text. */
export function privateFromBytes(d: Uint8Array, publicText: string): KeyObject {
  return createPrivateKey({
    key: { kty: 'OKP', crv: 'X25519', d: Buffer.from(d).toString('base64url'), x: publicText },
    format: 'jwk',
  });
}

export function agree(privateKey: KeyObject, publicText: string, field = 'publicKey'): Buffer {
  let publicKey: KeyObject;
  try {
    publicKey = createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x: publicText }, format: 'jwk' });
  } catch (err) {
    throw new WhaleError('ERR_INVALID_MESSAGE', `${field}: not an X25519 public key`, { field, cause: err });
  }
  return diffieHellman({ privateKey, publicKey });
}

/** 32 bytes from a shared secret, bound to a context string. */
export function derive(shared: Uint8Array, context: string): Uint8Array {
  return new Uint8Array(hkdfSync('sha256', shared, Buffer.alloc(0), `whale-secagg/v1/${context}`, 32));
}

export function seal(key: Uint8Array, plaintext: Uint8Array, aad: string): string {
  const iv = randomBytes(12);
  const c = createCipheriv('aes-256-gcm', key, iv);
  c.setAAD(Buffer.from(aad));
  const body = Buffer.concat([c.update(plaintext), c.final()]);
  return Buffer.concat([iv, body, c.getAuthTag()]).toString('base64');
}

export function open(key: Uint8Array, sealed: string, aad: string, field: string): Buffer {
  const b = Buffer.from(sealed, 'base64');
  if (b.length < 28) throw new WhaleError('ERR_INVALID_MESSAGE', `${field}: truncated ciphertext`, { field });
  try {
    const d = createDecipheriv('aes-256-gcm', key, b.subarray(0, 12), { authTagLength: 16 });
    d.setAAD(Buffer.from(aad));
    d.setAuthTag(b.subarray(b.length - 16));
    return Buffer.concat([d.update(b.subarray(12, b.length - 16)), d.final()]);
  } catch (err) {
    throw new WhaleError('ERR_INVALID_MESSAGE', `${field}: does not decrypt (wrong sender or tampered)`, {
      field,
      cause: err,
    });
  }
}
