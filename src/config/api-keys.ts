/**
 * API keys: `wk_<id>_<secret>` where the id (8 hex digits) names the key in
 * logs and files and the secret is 32 random bytes. Only SHA-256 of the secret
 * is stored: a high-entropy random secret needs no slow KDF (as GitHub's and
 * Stripe's tokens), and a lookup costs one hash and one constant-time compare.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

import { WhaleError } from '../common/errors.js';

export const ROLES = ['user', 'operator', 'admin'] as const;
export type Role = (typeof ROLES)[number];

/** What is stored (config `auth.keys`, a keys file): never the key itself. */
export interface ApiKeyRecord {
  id: string;
  role: Role;
  /** The tenant the key's requests count against (quotas, fair share); none: operator/admin keys may name any tenant. */
  tenant?: string;
  /** `sha256:<64 hex digits>` of the secret. */
  hash: string;
  /** A note for humans (who holds it). */
  name?: string;
}

/** Who made a request. */
export interface Principal {
  keyId: string;
  role: Role;
  tenant?: string;
}

const KEY = /^wk_([0-9a-f]{8})_([A-Za-z0-9_-]{43})$/;
const HASH = /^sha256:[0-9a-f]{64}$/;
const TENANT = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

const sha256 = (s: string): Buffer => createHash('sha256').update(s).digest();

export function roleAtLeast(have: Role, need: Role): boolean {
  return ROLES.indexOf(have) >= ROLES.indexOf(need);
}

/** A new key: the key (shown once) and the record to store. */
export function createApiKey(
  role: Role,
  o: { tenant?: string; name?: string } = {},
): { key: string; record: ApiKeyRecord } {
  const record = checkRecord(
    { id: randomBytes(4).toString('hex'), role, hash: 'sha256:' + '0'.repeat(64), ...o },
    'key',
  );
  const secret = randomBytes(32).toString('base64url');
  record.hash = `sha256:${sha256(secret).toString('hex')}`;
  return { key: `wk_${record.id}_${secret}`, record };
}

/** Validates one stored record (config or keys file), naming the field. */
export function checkRecord(raw: unknown, field: string): ApiKeyRecord {
  const bad = (f: string, why: string): never => {
    throw new WhaleError('ERR_CONFIG', `${field}${f}: ${why}`, { field: `${field}${f}` });
  };
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
    bad('', 'must be an object { id, role, hash, tenant?, name? }');
  const r = raw as Record<string, unknown>;
  for (const k of Object.keys(r))
    if (!['id', 'role', 'tenant', 'hash', 'name'].includes(k)) bad(`.${k}`, 'unknown field');
  if (typeof r.id !== 'string' || !/^[0-9a-f]{8}$/.test(r.id))
    bad('.id', 'must be 8 lowercase hex digits (the id part of wk_<id>_<secret>)');
  if (!ROLES.includes(r.role as Role)) bad('.role', `must be one of ${ROLES.join(', ')}`);
  if (typeof r.hash !== 'string' || !HASH.test(r.hash))
    bad('.hash', "must be 'sha256:' and 64 hex digits (whale keys create writes it; the key itself is never stored)");
  if (r.tenant !== undefined && (typeof r.tenant !== 'string' || !TENANT.test(r.tenant)))
    bad('.tenant', 'must be 1-64 characters of A-Z a-z 0-9 . _ -');
  if (r.name !== undefined && (typeof r.name !== 'string' || r.name.length > 200))
    bad('.name', 'must be a string of at most 200 characters');
  return {
    id: r.id as string,
    role: r.role as Role,
    hash: r.hash as string,
    ...(r.tenant ? { tenant: r.tenant as string } : {}),
    ...(r.name ? { name: r.name as string } : {}),
  };
}

export class ApiKeyStore {
  private readonly byId = new Map<string, ApiKeyRecord>();

  constructor(records: readonly ApiKeyRecord[]) {
    for (const [i, r] of records.entries()) {
      if (this.byId.has(r.id))
        throw new WhaleError('ERR_CONFIG', `auth.keys[${i}].id: duplicate key id '${r.id}'`, {
          field: `auth.keys[${i}].id`,
        });
      this.byId.set(r.id, r);
    }
  }

  get size(): number {
    return this.byId.size;
  }

  /**
   * The principal of a presented key, or ERR_UNAUTHENTICATED. The message never repeats
   * the key (only its id, when it parses), so logs and answers stay free of secrets.
   */
  authenticate(presented: string): Principal {
    const m = KEY.exec(presented);
    if (!m)
      throw new WhaleError(
        'ERR_UNAUTHENTICATED',
        'authorization: not a Smart Whale API key (expected wk_<id>_<secret>)',
        { field: 'authorization' },
      );
    const record = this.byId.get(m[1]!);
    const want = record ? Buffer.from(record.hash.slice('sha256:'.length), 'hex') : Buffer.alloc(32);
    const match = timingSafeEqual(sha256(m[2]!), want);
    if (!record || !match)
      throw new WhaleError('ERR_UNAUTHENTICATED', `authorization: unknown or revoked key wk_${m[1]}_…`, {
        field: 'authorization',
      });
    return { keyId: record.id, role: record.role, ...(record.tenant ? { tenant: record.tenant } : {}) };
  }
}
