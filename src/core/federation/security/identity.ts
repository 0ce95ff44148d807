/**
 * Ed25519 identities of coordinators and learners. A private key lives in a
 * PEM (PKCS#8) file readable by its owner only (0600), or comes from the
 * environment (WHALE_IDENTITY_KEY: the PEM or its base64; WHALE_IDENTITY_KEY_FILE:
 * a path). Public keys travel as the base64url of their 32 raw bytes.
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';
import { chmodSync, readFileSync, statSync, writeFileSync } from 'node:fs';

import { WhaleError } from '../../../common/errors.js';

export class Identity {
  private constructor(
    readonly id: string,
    private readonly privateKey: KeyObject,
    readonly publicKey: KeyObject,
  ) {}

  static generate(id: string): Identity {
    checkId(id);
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    return new Identity(id, privateKey, publicKey);
  }

  /** From a PEM private key (PKCS#8) in memory. */
  static fromPem(id: string, pem: string | Buffer, field = 'key'): Identity {
    checkId(id);
    let privateKey: KeyObject;
    try {
      privateKey = createPrivateKey(pem);
    } catch (err) {
      throw new WhaleError('ERR_INVALID_OPTION', `${field}: not a PEM private key`, { field, cause: err });
    }
    if (privateKey.asymmetricKeyType !== 'ed25519') {
      throw new WhaleError(
        'ERR_INVALID_OPTION',
        `${field}: an Ed25519 key is needed, got ${privateKey.asymmetricKeyType}`,
        { field },
      );
    }
    return new Identity(id, privateKey, createPublicKey(privateKey));
  }

  /** From a key file, refused when group or others may read it. */
  static load(id: string, file: string): Identity {
    let mode: number;
    try {
      mode = statSync(file).mode;
    } catch (err) {
      throw new WhaleError('ERR_INVALID_OPTION', `keyFile: cannot read '${file}': ${(err as Error).message}`, {
        field: 'keyFile',
        cause: err,
      });
    }
    if ((mode & 0o077) !== 0) {
      throw new WhaleError(
        'ERR_INVALID_OPTION',
        `keyFile: '${file}' is accessible to group/others (mode ${(mode & 0o777).toString(8)}); chmod 600 it`,
        { field: 'keyFile' },
      );
    }
    return Identity.fromPem(id, readFileSync(file), 'keyFile');
  }

  /**
   * From WHALE_IDENTITY_KEY_FILE or WHALE_IDENTITY_KEY (PEM or base64 of it) in `env`; the id from WHALE_NODE_ID
   * unless given. The caller passes the variables (core does not read the process environment).
   */
  static fromEnv(env: Readonly<Record<string, string | undefined>>, id = env.WHALE_NODE_ID): Identity {
    if (!id)
      throw new WhaleError('ERR_INVALID_OPTION', 'WHALE_NODE_ID: the identity needs an id', { field: 'WHALE_NODE_ID' });
    const file = env.WHALE_IDENTITY_KEY_FILE,
      key = env.WHALE_IDENTITY_KEY;
    if (file && key)
      throw new WhaleError('ERR_INVALID_OPTION', 'WHALE_IDENTITY_KEY: set it or WHALE_IDENTITY_KEY_FILE, not both', {
        field: 'WHALE_IDENTITY_KEY',
      });
    if (file) return Identity.load(id, file);
    if (key)
      return Identity.fromPem(
        id,
        key.includes('-----BEGIN') ? key : Buffer.from(key, 'base64').toString('utf8'),
        'WHALE_IDENTITY_KEY',
      );
    throw new WhaleError(
      'ERR_INVALID_OPTION',
      'WHALE_IDENTITY_KEY: no identity key (set WHALE_IDENTITY_KEY_FILE or WHALE_IDENTITY_KEY)',
      { field: 'WHALE_IDENTITY_KEY' },
    );
  }

  /** Writes the private key as PEM with mode 0600. */
  save(file: string): void {
    writeFileSync(file, this.privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
    chmodSync(file, 0o600); // the mode of writeFileSync applies only when it creates the file
  }

  /** base64url of the 32 raw public-key bytes. */
  get publicKeyText(): string {
    return publicKeyText(this.publicKey);
  }

  sign(data: Buffer): Buffer {
    return sign(null, data, this.privateKey);
  }
}

export function publicKeyText(k: KeyObject): string {
  const jwk = k.export({ format: 'jwk' });
  return jwk.x as string;
}

/** A public key from its base64url text; ERR_INVALID_OPTION naming `field` when it is not 32 bytes. */
export function parsePublicKey(text: string, field: string): KeyObject {
  if (typeof text !== 'string' || Buffer.from(text, 'base64url').length !== 32) {
    throw new WhaleError('ERR_INVALID_OPTION', `${field}: an Ed25519 public key is 32 bytes in base64url`, { field });
  }
  return createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: text }, format: 'jwk' });
}

export function verifySignature(key: KeyObject, data: Buffer, signature: Buffer): boolean {
  try {
    return signature.length === 64 && verify(null, data, key, signature);
  } catch {
    return false;
  }
}

function checkId(id: string): void {
  if (typeof id !== 'string' || !/^[\w.:@/-]{1,128}$/.test(id)) {
    throw new WhaleError('ERR_INVALID_ARG', `id: 1-128 characters of [A-Za-z0-9_.:@/-], got ${JSON.stringify(id)}`, {
      field: 'id',
    });
  }
}
