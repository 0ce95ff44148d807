/**
 * Who may do what, per federation and per model. The policy names the trusted
 * identities (their Ed25519 public keys), the revoked ones, the roles (sets
 * of permissions) and the grants (identity → roles, scoped to a federation
 * and a model, `*` for any). It is enforced where messages are received.
 * `watch(file)` reloads it when the file changes; a policy that fails to
 * validate is refused and the previous one stays in force.
 */
import { readFileSync } from 'node:fs';
import type { KeyObject } from 'node:crypto';

import { WhaleError } from '../../../common/errors.js';
import { parsePublicKey } from './identity.js';

export type Permission = 'join' | 'train' | 'read-model' | 'publish-knowledge' | 'administer';
export const PERMISSIONS: readonly Permission[] = ['join', 'train', 'read-model', 'publish-knowledge', 'administer'];

export interface Grant {
  identity: string;
  roles: string[];
  /** Federation id or '*' (default). */
  federation?: string;
  /** Model name or '*' (default). */
  model?: string;
}

export interface AccessPolicy {
  /** Identity id → base64url Ed25519 public key. */
  identities: Record<string, string>;
  roles: Record<string, Permission[]>;
  grants: Grant[];
  revoked?: string[];
}

export interface Scope {
  federation?: string;
  model?: string;
}

/** Roles most federations need: learners train, coordinators administer. */
export const DEFAULT_ROLES: Record<string, Permission[]> = {
  learner: ['join', 'train', 'read-model'],
  reader: ['read-model'],
  publisher: ['publish-knowledge'],
  coordinator: ['administer', 'read-model'],
  admin: [...PERMISSIONS],
};

interface Compiled {
  keys: Map<string, KeyObject>;
  revoked: Set<string>;
  grants: Array<{ identity: string; permissions: Set<Permission>; federation: string; model: string }>;
}

function invalid(field: string, what: string): never {
  throw new WhaleError('ERR_INVALID_OPTION', `${field}: ${what}`, { field });
}

function compile(p: AccessPolicy): Compiled {
  if (typeof p !== 'object' || p === null || Array.isArray(p)) invalid('policy', 'must be an object');
  if (typeof p.identities !== 'object' || p.identities === null)
    invalid('policy.identities', 'must map identity ids to public keys');
  const keys = new Map<string, KeyObject>();
  for (const [id, text] of Object.entries(p.identities)) keys.set(id, parsePublicKey(text, `policy.identities.${id}`));
  const roles = { ...DEFAULT_ROLES, ...(p.roles ?? {}) };
  for (const [name, perms] of Object.entries(roles)) {
    if (!Array.isArray(perms)) invalid(`policy.roles.${name}`, 'must be an array of permissions');
    perms.forEach((x, i) => {
      if (!PERMISSIONS.includes(x))
        invalid(`policy.roles.${name}[${i}]`, `unknown permission '${String(x)}' (${PERMISSIONS.join(', ')})`);
    });
  }
  if (!Array.isArray(p.grants)) invalid('policy.grants', 'must be an array');
  const grants = p.grants.map((g, i) => {
    if (typeof g?.identity !== 'string') invalid(`policy.grants[${i}].identity`, 'must be a string');
    if (!Array.isArray(g.roles)) invalid(`policy.grants[${i}].roles`, 'must be an array of role names');
    const permissions = new Set<Permission>();
    g.roles.forEach((r, j) => {
      const perms = roles[r];
      if (!perms) invalid(`policy.grants[${i}].roles[${j}]`, `unknown role '${String(r)}'`);
      for (const x of perms) permissions.add(x);
    });
    return { identity: g.identity, permissions, federation: g.federation ?? '*', model: g.model ?? '*' };
  });
  const revoked = p.revoked ?? [];
  if (!Array.isArray(revoked) || revoked.some((r) => typeof r !== 'string'))
    invalid('policy.revoked', 'must be an array of identity ids');
  return { keys, revoked: new Set(revoked), grants };
}

export class AccessControl {
  private current: Compiled;
  private poller: NodeJS.Timeout | undefined;
  /** The file text the policy in force (or the last refused one) came from. */
  private seenText: string | undefined;
  private version = 1;

  constructor(policy: AccessPolicy) {
    this.current = compile(policy);
  }

  static fromFile(file: string): AccessControl {
    const text = readPolicyText(file);
    const acl = new AccessControl(parsePolicy(file, text));
    acl.seenText = text;
    return acl;
  }

  /** Replaces the policy (validated first: on error the old one stays). */
  update(policy: AccessPolicy): void {
    this.current = compile(policy);
    this.version++;
  }

  /** Incremented by every policy change. */
  get policyVersion(): number {
    return this.version;
  }

  /**
   * Reloads from `file` whenever it changes (polled every `intervalMs`, no
   * restart needed); `onError` hears about a new policy that was refused.
   */
  watch(file: string, onError: (err: unknown) => void = () => {}, intervalMs = 250): void {
    this.unwatch();
    // Compares the file's text, not its mtime: two writes within the clock's resolution, or one
    // made before the first poll, are still seen.
    const poll = (): void => {
      let text: string;
      try {
        text = readPolicyText(file);
      } catch (err) {
        if (this.seenText !== undefined) onError(err);
        this.seenText = undefined;
        return;
      }
      if (text === this.seenText) return;
      this.seenText = text;
      try {
        this.update(parsePolicy(file, text));
      } catch (err) {
        onError(err);
      }
    };
    this.poller = setInterval(poll, intervalMs);
    this.poller.unref();
  }

  unwatch(): void {
    if (this.poller) clearInterval(this.poller);
    this.poller = undefined;
  }

  publicKey(identity: string): KeyObject | undefined {
    return this.current.keys.get(identity);
  }

  isRevoked(identity: string): boolean {
    return this.current.revoked.has(identity);
  }

  can(identity: string, permission: Permission, scope: Scope = {}): boolean {
    const c = this.current;
    if (c.revoked.has(identity) || !c.keys.has(identity)) return false;
    return c.grants.some(
      (g) =>
        g.identity === identity &&
        g.permissions.has(permission) &&
        matches(g.federation, scope.federation) &&
        matches(g.model, scope.model),
    );
  }

  /** ERR_FORBIDDEN naming the permission when `identity` may not. */
  check(identity: string, permission: Permission, scope: Scope = {}): void {
    if (!this.can(identity, permission, scope)) {
      const where = [scope.federation && `federation '${scope.federation}'`, scope.model && `model '${scope.model}'`]
        .filter(Boolean)
        .join(', ');
      throw new WhaleError(
        'ERR_FORBIDDEN',
        `permission: '${identity}' may not ${permission}${where ? ` in ${where}` : ''}`,
        { field: 'permission', identity, permission },
      );
    }
  }
}

const matches = (pattern: string, value: string | undefined) => pattern === '*' || pattern === value;

function readPolicyText(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw new WhaleError('ERR_INVALID_OPTION', `policyFile: cannot read '${file}': ${(err as Error).message}`, {
      field: 'policyFile',
      cause: err,
    });
  }
}

function parsePolicy(file: string, text: string): AccessPolicy {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new WhaleError('ERR_INVALID_OPTION', `policyFile: '${file}' is not JSON: ${(err as Error).message}`, {
      field: 'policyFile',
      cause: err,
    });
  }
  // A whale.config.json may hold the policy under federationSecurity.policy.
  const o = json as { federationSecurity?: { policy?: AccessPolicy } };
  return (o.federationSecurity?.policy ?? json) as AccessPolicy;
}
