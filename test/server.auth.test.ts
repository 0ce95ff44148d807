// API keys and roles from outside (standard-clients issue; hardening round 2, item 8): who may change
// state, secure by default, a key's tenant drives its quotas, keyed inference, whale keys, no secrets leaked.
import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { main } from '../src/cli/main.js';
import { silentLogger } from '../src/common/logger.js';
import { createApiKey } from '../src/config/api-keys.js';
import { parseConfig } from '../src/config/whale-config.js';
import { ROUTE_POLICY } from '../src/server/auth/guard.js';
import { ResourceExtension } from '../src/server/extensions/resources.js';
import { WhaleServer } from '../src/server/whale-server.js';
import { MessagingService } from '../src/services/messaging-service.js';
import { MemoryStateStore } from '../src/services/state-store.js';
import { LocalBus } from '../src/transport/local-bus.js';
import { http, rowsInput, scaleModel } from './support/serving.js';

async function serve(extra: Record<string, unknown>): Promise<{ url: string; stop: () => Promise<void> }> {
  const config = parseConfig(
    {
      http: { port: 0 },
      models: [
        { name: 'm', adapter: 'onnx', path: '/unused/m.onnx', resources: { requestsPerSecond: 1000, burst: 1000 } },
      ],
      shutdownGraceMs: 500,
      ...extra,
    },
    '/',
  );
  const messaging = new MessagingService({
    bus: new LocalBus(),
    store: new MemoryStateStore(),
    nodeId: 'auth-node',
    logger: silentLogger,
  });
  const server = new WhaleServer({
    config,
    messaging,
    models: [scaleModel('m', 2).model],
    logger: silentLogger,
    serverVersion: 'test',
    extensions: [new ResourceExtension(config, {}, { gpus: [] })],
  });
  const { url } = await server.start();
  return { url, stop: () => server.stop() };
}

const bearer = (key: string) => ({ authorization: `Bearer ${key}` });
const infer = (url: string, headers: Record<string, string> = {}, parameters?: Record<string, unknown>) =>
  http(`${url}/v2/models/m/infer`, {
    headers,
    json: { ...rowsInput([[1, 2, 3, 4]]), ...(parameters ? { parameters } : {}) },
  });

describe('with no keys configured (the default)', () => {
  let s: Awaited<ReturnType<typeof serve>>;
  beforeAll(async () => (s = await serve({})));
  afterAll(() => s?.stop());

  it('state-changing routes answer 403 saying how to add a key; reading and inference stay open', async () => {
    const put = await http(`${s.url}/v1/resources/quotas/m`, { method: 'PUT', json: { memory: 0 } });
    expect(put.status).toBe(403);
    expect(put.body.code).toBe('ERR_FORBIDDEN');
    expect(put.body.error).toMatch(/whale keys create --role operator/);
    // A bogus Authorization header changes nothing for the better: it is refused.
    expect(
      (
        await http(`${s.url}/v1/resources/quotas/m`, {
          method: 'PUT',
          headers: bearer('wk_00000000_' + 'A'.repeat(43)),
          json: { memory: 0 },
        })
      ).status,
    ).toBe(401);
    expect((await infer(s.url)).status).toBe(200);
    expect((await http(`${s.url}/v2/health/ready`)).status).toBe(200);
  });

  it("an anonymous request cannot spend a tenant's quota by naming it", async () => {
    const r = await infer(s.url, {}, { tenant: 'acme' });
    expect(r.status).toBe(403);
    expect(r.body.error).toMatch(/parameters\.tenant: naming a tenant needs an API key/);
  });
});

describe('with keys', () => {
  const user = createApiKey('user');
  const operator = createApiKey('operator');
  const acme = createApiKey('user', { tenant: 'acme' });
  let s: Awaited<ReturnType<typeof serve>>;
  beforeAll(async () => {
    s = await serve({
      auth: { keys: [user.record, operator.record, acme.record] },
      resources: { tenants: { acme: { requestsPerSecond: 0.001, burst: 1 } } },
    });
  });
  afterAll(() => s?.stop());

  it('PUT quotas: no key → 401 (with WWW-Authenticate), a user key → 403, an operator key → 200', async () => {
    const put = (headers: Record<string, string>) =>
      fetch(`${s.url}/v1/resources/quotas/m`, { method: 'PUT', headers, body: JSON.stringify({ cpu: 0.5 }) });
    const none = await put({});
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toBe('Bearer');
    expect(((await none.json()) as { code: string }).code).toBe('ERR_UNAUTHENTICATED');
    const asUser = await put(bearer(user.key));
    expect(asUser.status).toBe(403);
    expect(await asUser.text()).toMatch(/role user; this route needs operator/);
    expect((await put(bearer(operator.key))).status).toBe(200);
    expect((await put({ 'x-api-key': operator.key })).status).toBe(200);
  });

  it('a wrong secret is 401 and no answer repeats the key', async () => {
    const forged = `wk_${operator.record.id}_${'B'.repeat(43)}`;
    const r = await http(`${s.url}/v1/resources/quotas/m`, { method: 'PUT', headers: bearer(forged), json: {} });
    expect(r.status).toBe(401);
    expect(JSON.stringify(r.body)).not.toContain('B'.repeat(43));
    expect(JSON.stringify(r.body)).toContain(operator.record.id);
  });

  it("a tenant key's requests count against its tenant; it cannot name another", async () => {
    expect((await infer(s.url, bearer(acme.key))).status).toBe(200); // the burst of 1
    const second = await infer(s.url, bearer(acme.key));
    expect(second.status).toBe(429);
    expect(second.body.code).toBe('ERR_QUOTA_EXCEEDED');
    expect((await infer(s.url)).status).toBe(200); // anonymous traffic is not acme's
    expect((await infer(s.url, bearer(user.key))).status).toBe(200);
    const other = await infer(s.url, bearer(acme.key), { tenant: 'other' });
    expect(other.status).toBe(403);
    expect(other.body.error).toMatch(/belongs to tenant 'acme'/);
    // An operator key may act for a tenant (a service account).
    expect((await infer(s.url, bearer(operator.key), { tenant: 'acme' })).status).toBe(429);
  });
});

describe('keyed inference and keys made by whale keys', () => {
  let s: Awaited<ReturnType<typeof serve>>;
  let key = '';
  let file = '';
  beforeAll(async () => {
    const dir = mkdtempSync(join(tmpdir(), 'whale-keys-'));
    file = join(dir, 'keys.json');
    let out = '';
    expect(
      await main(['keys', 'create', '--role', 'user', '--name', 'ci', '--file', file], {
        out: (x) => (out += x),
        err: () => undefined,
      }),
    ).toBe(0);
    key = out.trim();
    writeFileSync(join(dir, 'whale.config.json'), '{}');
    s = await serve({ auth: { keysFile: file, inference: 'keyed' } });
  });
  afterAll(() => s?.stop());

  it('stores only a hash, mode 600; the printed key works; anonymous inference is 401', async () => {
    expect(key).toMatch(/^wk_[0-9a-f]{8}_[A-Za-z0-9_-]{43}$/);
    const stored = readFileSync(file, 'utf8');
    expect(stored).not.toContain(key.slice('wk_12345678_'.length)); // the secret (base64url may itself hold '_')
    expect(JSON.parse(stored)[0]).toMatchObject({
      role: 'user',
      name: 'ci',
      hash: expect.stringMatching(/^sha256:[0-9a-f]{64}$/),
    });
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect((await infer(s.url)).status).toBe(401);
    expect((await infer(s.url, bearer(key))).status).toBe(200);
    let listed = '';
    expect(
      await main(['keys', 'list', '--file', file, '--json'], { out: (x) => (listed += x), err: () => undefined }),
    ).toBe(0);
    expect(JSON.parse(listed)[0]).not.toHaveProperty('hash');
  });

  it('the route table has a rule for every method (deny by default: the last rule needs an operator)', () => {
    expect(ROUTE_POLICY.at(-1)).toMatchObject({ methods: ['*'], access: 'operator' });
  });
});

describe('the docs list the route table the guard uses', () => {
  it('docs/security-and-privacy.md has one row per ROUTE_POLICY rule', () => {
    const doc = readFileSync(join(import.meta.dirname, '..', 'docs', 'security-and-privacy.md'), 'utf8');
    for (const r of ROUTE_POLICY) expect(doc).toContain(`| ${r.methods.join(', ')} | \`${r.pattern}\` | ${r.access} |`);
  });
});
