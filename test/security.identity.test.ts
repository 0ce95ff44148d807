// Ed25519 identities (files 0600 or env), signed envelopes, the replay window, access control with live reload, integrity checks.
import { generateKeyPairSync } from 'node:crypto';
import { chmodSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import { AccessControl, type AccessPolicy } from '../src/core/federation/security/access-control.js';
import { Identity } from '../src/core/federation/security/identity.js';
import { contentHash, IntegrityChecker, verifyContentHash } from '../src/core/federation/security/integrity-checker.js';
import { ReplayGuard } from '../src/core/federation/security/replay-guard.js';
import { MessageGuard, SIG_HEADERS, signEnvelope } from '../src/core/federation/security/signed-envelope.js';
import { createEnvelope } from '../src/transport/envelope.js';
import { expectWhaleError, randomRows, until } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'whale-sec-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const coord = Identity.generate('federation-coordinator');
const alice = Identity.generate('federation-learner/alice');
const bob = Identity.generate('federation-learner/bob');
const mallory = Identity.generate('federation-learner/mallory'); // not in the policy

function policy(extra: Partial<AccessPolicy> = {}): AccessPolicy {
  return {
    identities: { [coord.id]: coord.publicKeyText, [alice.id]: alice.publicKeyText, [bob.id]: bob.publicKeyText },
    roles: {},
    grants: [
      { identity: coord.id, roles: ['coordinator'] },
      { identity: alice.id, roles: ['learner'], federation: 'mnist' },
      { identity: bob.id, roles: ['reader'], federation: 'mnist' },
    ],
    ...extra,
  };
}

const update = (from: Identity, round = 3, payload: Record<string, unknown> = {}) =>
  signEnvelope(
    createEnvelope({
      type: 'FederationUpdateSubmitted',
      source: from.id,
      payload: { federationId: 'mnist', round, clientId: 'c1', ...payload },
    }),
    from,
    round,
  );

describe('identities', () => {
  it('saves keys with mode 0600 and loads them back (same public key)', () => {
    const f = join(dir, 'alice.pem');
    alice.save(f);
    expect(statSync(f).mode & 0o777).toBe(0o600);
    expect(Identity.load(alice.id, f).publicKeyText).toBe(alice.publicKeyText);
  });

  it('refuses a key file that group or others can read', async () => {
    const f = join(dir, 'open.pem');
    alice.save(f);
    chmodSync(f, 0o644);
    await expectWhaleError(() => Identity.load(alice.id, f), 'ERR_INVALID_OPTION', 'keyFile');
  });

  it('reads the key from the environment (PEM, base64 of it, or a file), never a default', async () => {
    const f = join(dir, 'env.pem');
    bob.save(f);
    expect(Identity.fromEnv({ WHALE_NODE_ID: bob.id, WHALE_IDENTITY_KEY_FILE: f }).publicKeyText).toBe(
      bob.publicKeyText,
    );
    const pem = generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
    expect(Identity.fromEnv({ WHALE_NODE_ID: 'n1', WHALE_IDENTITY_KEY: pem }).id).toBe('n1');
    expect(Identity.fromEnv({ WHALE_NODE_ID: 'n1', WHALE_IDENTITY_KEY: Buffer.from(pem).toString('base64') }).id).toBe(
      'n1',
    );
    await expectWhaleError(() => Identity.fromEnv({ WHALE_NODE_ID: 'n1' }), 'ERR_INVALID_OPTION', 'WHALE_IDENTITY_KEY');
    await expectWhaleError(() => Identity.fromEnv({}), 'ERR_INVALID_OPTION', 'WHALE_NODE_ID');
    const rsa = generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey.export({
      type: 'pkcs8',
      format: 'pem',
    }) as string;
    await expectWhaleError(() => Identity.fromPem('n1', rsa), 'ERR_INVALID_OPTION', 'key');
  });
});

describe('MessageGuard', () => {
  it('accepts a signed message from a permitted identity', () => {
    const g = new MessageGuard(new AccessControl(policy()));
    expect(g.verify(update(alice), { permission: 'train', federation: 'mnist', round: 3 })).toBe(alice.id);
  });

  it('rejects forgeries, replays, stale, wrong-round, unknown, revoked and unauthorized senders, each counted and audited', async () => {
    const acl = new AccessControl(policy());
    const g = new MessageGuard(acl);
    const need = { permission: 'train' as const, federation: 'mnist', round: 3 };
    const tampered = update(alice);
    (tampered.payload as { clientId: string }).clientId = 'c2';
    await expectWhaleError(() => g.verify(tampered, need), 'ERR_BAD_SIGNATURE', 'signature');
    const stolen = update(alice);
    stolen.headers[SIG_HEADERS.signature] = bob.sign(Buffer.from('x')).toString('base64');
    await expectWhaleError(() => g.verify(stolen, need), 'ERR_BAD_SIGNATURE', 'signature');
    await expectWhaleError(
      () =>
        g.verify(createEnvelope({ type: 'FederationUpdateSubmitted', source: alice.id, payload: { round: 3 } }), need),
      'ERR_BAD_SIGNATURE',
      'signature',
    );
    const impersonation = update(bob);
    impersonation.source = alice.id; // claims to be alice, signed by bob
    await expectWhaleError(() => g.verify(impersonation, need), 'ERR_BAD_SIGNATURE');
    await expectWhaleError(() => g.verify(update(mallory), need), 'ERR_UNKNOWN_IDENTITY', 'signer');
    const once = update(alice);
    g.verify(once, need);
    await expectWhaleError(() => g.verify(once, need), 'ERR_REPLAY', 'nonce');
    const old = update(alice);
    old.timestamp -= 10 * 60_000;
    signEnvelope(old, alice, 3);
    await expectWhaleError(() => g.verify(old, need), 'ERR_REPLAY', 'nonce');
    await expectWhaleError(() => g.verify(update(alice, 2), need), 'ERR_REPLAY', 'round');
    await expectWhaleError(() => g.verify(update(bob), need), 'ERR_FORBIDDEN', 'permission'); // bob may only read
    await expectWhaleError(
      () => g.verify(update(alice), { ...need, federation: 'cifar' }),
      'ERR_FORBIDDEN',
      'permission',
    );
    acl.update(policy({ revoked: [alice.id] }));
    await expectWhaleError(() => g.verify(update(alice), need), 'ERR_REVOKED', 'signer');
    expect(g.audit.byReason()).toEqual({
      'bad-signature': 2,
      unsigned: 1,
      'sender-mismatch': 1,
      'unknown-identity': 1,
      replay: 1,
      stale: 1,
      'wrong-round': 1,
      forbidden: 2,
      revoked: 1,
    });
    expect(g.audit.events().map((e) => e.messageType)).toEqual(Array(11).fill('FederationUpdateSubmitted'));
  });

  it('bounds the nonce memory by the window', () => {
    let now = 1_000_000;
    const r = new ReplayGuard({ maxAgeMs: 1000, maxSkewMs: 1000, now: () => now });
    for (let i = 0; i < 100; i++) expect(r.check(`n${i}`, now)).toBe('ok');
    now += 5000;
    expect(r.check('fresh', now)).toBe('ok');
    expect(r.size).toBe(1);
    expect(r.check('n1', now - 6000)).toBe('too-old');
    expect(r.check('n2', now + 1001)).toBe('from-the-future');
    expect(r.check('fresh', now)).toBe('replayed');
  });

  it('keeps ids in a store from delivery until the window would refuse them anyway', async () => {
    const now = 1_000_000;
    const held = new Map<string, { value: unknown; ttlMs?: number }>();
    const store = {
      get: async <T>(k: string) => held.get(k)?.value as T | undefined,
      set: async <T>(k: string, value: T, ttlMs?: number) => void held.set(k, { value, ttlMs }),
    };
    const r = new ReplayGuard({ maxAgeMs: 1000, maxSkewMs: 0, now: () => now, store: () => store, scope: 'node-a' });
    expect(await r.checkStored('m1', now)).toBe('ok');
    expect(await r.checkStored('m1', now)).toBe('ok'); // nothing recorded before delivery
    await r.remember('m1', now - 400);
    expect(held.get('fed-seen:node-a:m1')).toEqual({ value: now - 400, ttlMs: 600 + 1000 });
    expect(await r.checkStored('m1', now - 400)).toBe('replayed');
    expect(await r.checkStored('m2', now - 1001)).toBe('too-old');
    expect(await r.checkStored('m2', now + 1)).toBe('from-the-future');
    await expectWhaleError(() => new ReplayGuard().checkStored('m', Date.now()), 'ERR_INVALID_OPTION', 'options.store');
    await expectWhaleError(() => new ReplayGuard({ maxAgeMs: 0 }), 'ERR_INVALID_OPTION', 'options.maxAgeMs');
  });
});

describe('AccessControl', () => {
  it('scopes permissions per federation and per model', () => {
    const acl = new AccessControl(
      policy({ grants: [{ identity: alice.id, roles: ['publisher'], federation: 'f1', model: 'mnist-2nn' }] }),
    );
    expect(acl.can(alice.id, 'publish-knowledge', { federation: 'f1', model: 'mnist-2nn' })).toBe(true);
    expect(acl.can(alice.id, 'publish-knowledge', { federation: 'f1', model: 'resnet' })).toBe(false);
    expect(acl.can(alice.id, 'train', { federation: 'f1', model: 'mnist-2nn' })).toBe(false);
    expect(acl.can(mallory.id, 'read-model')).toBe(false);
  });

  it('takes a changed policy file without restart, and keeps the old one when the new one is invalid', async () => {
    const f = join(dir, 'policy.json');
    writeFileSync(f, JSON.stringify({ federationSecurity: { policy: policy() } }));
    const acl = AccessControl.fromFile(f);
    const errors: unknown[] = [];
    acl.watch(f, (e) => errors.push(e), 50);
    try {
      expect(acl.can(bob.id, 'train', { federation: 'mnist' })).toBe(false);
      writeFileSync(f, JSON.stringify(policy({ grants: [{ identity: bob.id, roles: ['learner'] }] })));
      expect(await until(() => acl.can(bob.id, 'train', { federation: 'mnist' }), 5000)).toBe(true);
      writeFileSync(f, JSON.stringify(policy({ grants: [{ identity: bob.id, roles: ['no-such-role'] }] })));
      expect(await until(() => errors.length > 0, 5000)).toBe(true);
      expect(acl.can(bob.id, 'train', { federation: 'mnist' })).toBe(true);
      expect((errors[0] as { field?: string }).field).toBe('policy.grants[0].roles[0]');
    } finally {
      acl.unwatch();
    }
  });

  it('refuses malformed policies naming the field', async () => {
    await expectWhaleError(
      () => new AccessControl({ ...policy(), identities: { x: 'short' } }),
      'ERR_INVALID_OPTION',
      'policy.identities.x',
    );
    await expectWhaleError(
      () => new AccessControl({ ...policy(), roles: { r: ['fly' as never] } }),
      'ERR_INVALID_OPTION',
      'policy.roles.r[0]',
    );
    await expectWhaleError(
      () => new AccessControl({ ...policy(), grants: 'all' as never }),
      'ERR_INVALID_OPTION',
      'policy.grants',
    );
    await expectWhaleError(
      () => new AccessControl(policy()).check(bob.id, 'administer'),
      'ERR_FORBIDDEN',
      'permission',
    );
  });
});

describe('IntegrityChecker', () => {
  it('refuses wrong dtype, shape and NaN; drops or flags updates far above the median norm', () => {
    const rows = randomRows(8, 100, 5, 0.1);
    const updates = rows.map((values, i) => ({ clientId: `c${i}`, values }));
    updates[1] = { clientId: 'c1', values: rows[1]!.map((x) => x * 50) };
    updates.push({ clientId: 'nan', values: Float32Array.of(...new Array(99).fill(0), NaN) });
    updates.push({ clientId: 'short', values: new Float32Array(99) });
    updates.push({ clientId: 'f64', values: new Float64Array(100) as unknown as Float32Array });
    const drop = new IntegrityChecker({ length: 100 }).checkRound(updates);
    expect(drop.refused.map((r) => [r.clientId, r.reason])).toEqual([
      ['nan', 'non-finite'],
      ['short', 'shape'],
      ['f64', 'dtype'],
      ['c1', 'norm'],
    ]);
    expect(drop.kept.map((u) => u.clientId)).toEqual(['c0', 'c2', 'c3', 'c4', 'c5', 'c6', 'c7']);
    const flag = new IntegrityChecker({ length: 100, onOutlier: 'flag' }).checkRound(updates);
    expect(flag.flagged.map((r) => r.clientId)).toEqual(['c1']);
    expect(flag.kept).toHaveLength(8);
    expect(flag.medianNorm).toBeGreaterThan(0);
  });

  it('hashes blobs and refuses a changed one', async () => {
    const blob = new Uint8Array([1, 2, 3]);
    verifyContentHash(blob, contentHash(blob));
    await expectWhaleError(
      () => verifyContentHash(Uint8Array.of(1, 2, 4), contentHash(blob), 'update'),
      'ERR_CHECKSUM',
      'update',
    );
  });
});
