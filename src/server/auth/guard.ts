/**
 * Who may call which route. The guard is the first HTTP handler: it reads the
 * key (`Authorization: Bearer wk_…` or `x-api-key: wk_…`), refuses the request
 * (401/403) or remembers its principal for the routes (principalOf, tenantFor).
 * Secure by default: with no keys configured, state-changing routes answer 403
 * saying how to add one; reading and inference stay open.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';

import { WhaleError } from '../../common/errors.js';
import { sendError } from '../../transport/http-json.js';
import { ApiKeyStore, roleAtLeast, type Principal, type Role } from '../../config/api-keys.js';

export type Access = 'public' | 'inference' | Role;

/** The route table, in order (docs/security-and-privacy.md shows it; a test reads it). */
export const ROUTE_POLICY: ReadonlyArray<{
  methods: readonly string[];
  path: RegExp;
  pattern: string;
  access: Access;
}> = [
  {
    methods: ['GET', 'HEAD'],
    path: /^\//,
    pattern: '/** (reading: health, metadata, metrics, dashboard, /v1/routing, /v1/resources, /v1/federations)',
    access: 'public',
  },
  {
    methods: ['POST'],
    path: /^\/v2\/models\/[^/]+(\/versions\/[^/]+)?\/(infer|generate|generate_stream)$/,
    pattern: '/v2/models/{m}[/versions/{v}]/infer, /generate, /generate_stream',
    access: 'inference',
  },
  { methods: ['POST'], path: /^\/v1\/tasks\/[^/]+\/infer$/, pattern: '/v1/tasks/{task}/infer', access: 'inference' },
  {
    methods: ['POST'],
    path: /^\/v1\/(feedback|evaluate|knowledge\/search)$/,
    pattern: '/v1/feedback, /v1/evaluate, /v1/knowledge/search',
    access: 'inference',
  },
  {
    methods: ['POST'],
    path: /^\/v2\/repository\/index$/,
    pattern: '/v2/repository/index (a read, though POST)',
    access: 'public',
  },
  {
    methods: ['*'],
    path: /^\//,
    pattern:
      '/** (everything else: PUT /v1/resources/quotas/{m}, POST /v2/repository/models/{m}/load, POST and DELETE /v1/federations, …)',
    access: 'operator',
  },
];

export interface AuthOptions {
  keys: ApiKeyStore;
  /** 'open' (default): inference needs no key; 'keyed': any valid key. */
  inference: 'open' | 'keyed';
}

const principals = new WeakMap<IncomingMessage, Principal>();

export function accessFor(method: string, path: string): Access {
  for (const r of ROUTE_POLICY) {
    if ((r.methods.includes(method) || r.methods.includes('*')) && r.path.test(path)) return r.access;
  }
  return 'operator';
}

/** What authorize reads of a request: its method and headers (an HTTP request, or a gRPC call's metadata as headers). */
export type AuthRequest = Pick<IncomingMessage, 'method' | 'headers'>;

/** The key presented with a request, if any (Bearer token or x-api-key). */
function presentedKey(req: AuthRequest): string | undefined {
  const auth = req.headers.authorization;
  if (auth !== undefined) {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(auth);
    if (!m)
      throw new WhaleError('ERR_UNAUTHENTICATED', 'authorization: expected "Bearer <API key>"', {
        field: 'authorization',
      });
    return m[1];
  }
  const x = req.headers['x-api-key'];
  return Array.isArray(x) ? x[0] : x;
}

const NO_KEYS =
  'no API keys are configured on this server, so routes that change state are closed: ' +
  'create one with `whale keys create --role operator` and list it in whale.config.json (auth.keys or auth.keysFile)';

/** Decides one request: the principal (undefined: anonymous) or a thrown 401/403 WhaleError. */
export function authorize(o: AuthOptions, req: AuthRequest, path: string): Principal | undefined {
  const key = presentedKey(req);
  const principal = key === undefined ? undefined : o.keys.authenticate(key);
  const access = accessFor(req.method ?? 'GET', path);
  if (access === 'public' || (access === 'inference' && o.inference === 'open')) return principal;
  const need: Role = access === 'inference' ? 'user' : access;
  if (!principal) {
    if (o.keys.size === 0)
      throw new WhaleError('ERR_FORBIDDEN', `${req.method} ${path}: ${NO_KEYS}`, { field: 'authorization' });
    throw new WhaleError(
      'ERR_UNAUTHENTICATED',
      `${req.method} ${path}: needs an API key with role ${need} or above (Authorization: Bearer <key>)`,
      { field: 'authorization' },
    );
  }
  if (!roleAtLeast(principal.role, need)) {
    throw new WhaleError(
      'ERR_FORBIDDEN',
      `${req.method} ${path}: key ${principal.keyId} has role ${principal.role}; this route needs ${need} or above`,
      { field: 'authorization' },
    );
  }
  return principal;
}

/** The guard as the server's first route handler: answers 401/403 itself, else lets the request through. */
export function authGuard(o: AuthOptions) {
  return (req: IncomingMessage, res: ServerResponse, url: URL): boolean => {
    try {
      const p = authorize(o, req, url.pathname);
      if (p) principals.set(req, p);
      return false;
    } catch (err) {
      req.resume(); // the body is not read: drain it so the connection can answer
      sendError(
        res,
        err,
        err instanceof WhaleError && err.code === 'ERR_UNAUTHENTICATED' ? { 'www-authenticate': 'Bearer' } : {},
      );
      return true;
    }
  };
}

export function principalOf(req: IncomingMessage): Principal | undefined {
  return principals.get(req);
}

/**
 * The tenant a request counts against: its key's tenant. A tenant named in the request must be
 * the key's own (operator/admin keys without a tenant may name any); an anonymous request cannot
 * name one, so no client can spend another tenant's quota.
 */
export function tenantFor(
  req: IncomingMessage,
  claimed: string | undefined,
  field = 'parameters.tenant',
): string | undefined {
  return tenantForPrincipal(principals.get(req), claimed, field);
}

/** tenantFor on a principal already decided (the gRPC endpoint's calls). */
export function tenantForPrincipal(
  p: Principal | undefined,
  claimed: string | undefined,
  field = 'parameters.tenant',
): string | undefined {
  if (claimed === undefined) return p?.tenant;
  if (p?.tenant !== undefined && claimed !== p.tenant) {
    throw new WhaleError(
      'ERR_FORBIDDEN',
      `${field}: key ${p.keyId} belongs to tenant '${p.tenant}', not '${claimed}'`,
      { field },
    );
  }
  if (p === undefined)
    throw new WhaleError('ERR_FORBIDDEN', `${field}: naming a tenant needs an API key of that tenant`, { field });
  if (p.tenant === undefined && !roleAtLeast(p.role, 'operator')) {
    throw new WhaleError(
      'ERR_FORBIDDEN',
      `${field}: key ${p.keyId} has no tenant; only operator and admin keys may name one`,
      { field },
    );
  }
  return claimed;
}
