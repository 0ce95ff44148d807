// Signed federation messages on both buses: forged, replayed, unknown, revoked and unauthorized ones never reach the handler.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { AccessControl, type AccessPolicy } from '../src/core/federation/security/access-control.js';
import { Identity } from '../src/core/federation/security/identity.js';
import { SecureBus, learnerIdentity } from '../src/core/federation/security/secure-bus.js';
import { MessageGuard, SIG_HEADERS } from '../src/core/federation/security/signed-envelope.js';
import type { Bus } from '../src/transport/bus.js';
import { createEnvelope, decodeEnvelope, encodeEnvelope, type Envelope } from '../src/transport/envelope.js';
import { TOPICS } from '../src/transport/topics.js';
import { until } from './helpers.js';
import { kafkaHarness, localHarness, type BusHarness } from './support/buses.js';

const TOPIC = 'test.federation.signed';

describe.each([
  ['local', localHarness],
  ['kafka', kafkaHarness],
] as const)('SecureBus on the %s bus', (_name, makeHarness) => {
  const coord = Identity.generate('federation-coordinator');
  const alice = Identity.generate(learnerIdentity('alice'));
  const bob = Identity.generate(learnerIdentity('bob'));
  const eve = Identity.generate(learnerIdentity('eve')); // trusted key, then revoked
  const mallory = Identity.generate(learnerIdentity('mallory')); // unknown
  const policy = (revoked: string[] = []): AccessPolicy => ({
    identities: Object.fromEntries([coord, alice, bob, eve].map((i) => [i.id, i.publicKeyText])),
    roles: {},
    grants: [
      { identity: coord.id, roles: ['coordinator'] },
      { identity: alice.id, roles: ['learner'], federation: 'mnist' },
      { identity: eve.id, roles: ['learner'], federation: 'mnist' },
      { identity: bob.id, roles: ['reader'] },
    ],
    revoked,
  });
  const acl = new AccessControl(policy());
  let h: BusHarness;
  let raw: Bus;
  let receiver: SecureBus;
  const got: Envelope[] = [];
  const wire: Envelope[] = [];
  const secure = (who: Identity) => new SecureBus(h.bus(), { identity: who, guard: new MessageGuard(acl) });
  const update = (who: Identity, learnerId: string, round = 1, clientId = 'c1') =>
    createEnvelope({
      type: 'FederationUpdateSubmitted',
      source: who.id,
      payload: { federationId: 'mnist', round, learnerId, clientId },
    });

  beforeAll(async () => {
    h = await makeHarness([
      [TOPIC, 1],
      [TOPICS.events, 1],
    ]);
    raw = h.bus();
    receiver = secure(coord);
    await receiver.subscribe(TOPIC, (e) => void got.push(e), { group: 'coordinator', fromBeginning: true });
    await raw.subscribe(TOPIC, (e) => void wire.push(e), { group: 'wiretap', fromBeginning: true });
  }, 60_000);
  afterAll(() => h?.stop());

  it('delivers signed, authorized messages and rejects the rest, counted and published as audit events', async () => {
    const events = await h.collect(TOPICS.events);
    const aliceBus = secure(alice);
    await aliceBus.publish(TOPIC, update(alice, 'alice'), { key: 'mnist' });
    expect(await until(() => got.length === 1 && wire.length === 1, 15_000)).toBe(true);
    const captured = wire[0]!;

    // Replay: the exact bytes again.
    await raw.publishRaw(TOPIC, encodeEnvelope(captured), { key: 'mnist' });
    // Forgery: payload changed after signing.
    const forged = JSON.parse(JSON.stringify(captured)) as Envelope<{ clientId: string }>;
    forged.payload.clientId = 'c9';
    forged.headers[SIG_HEADERS.nonce] = 'fresh-nonce';
    await raw.publish(TOPIC, forged, { key: 'mnist' });
    // Unsigned.
    await raw.publish(TOPIC, update(alice, 'alice'), { key: 'mnist' });
    // A learner speaking for another learner's clients (signed by bob, naming alice).
    await secure(bob).publish(TOPIC, update(bob, 'alice'), { key: 'mnist' });
    // Unknown identity, not authorized to train, authorized but in another federation.
    await secure(mallory).publish(TOPIC, update(mallory, 'mallory'), { key: 'mnist' });
    await secure(bob).publish(TOPIC, update(bob, 'bob'), { key: 'mnist' });
    const other = update(alice, 'alice');
    (other.payload as { federationId: string }).federationId = 'cifar';
    await aliceBus.publish(TOPIC, other, { key: 'mnist' });
    // Revoked while running: the policy change applies to the next message.
    const eveBus = secure(eve);
    await eveBus.publish(TOPIC, update(eve, 'eve'), { key: 'mnist' });
    expect(await until(() => got.length === 2, 15_000)).toBe(true);
    acl.update(policy([eve.id]));
    await eveBus.publish(TOPIC, update(eve, 'eve', 2), { key: 'mnist' });
    // A valid one last: everything before it has been judged once it arrives.
    await aliceBus.publish(TOPIC, update(alice, 'alice', 2), { key: 'mnist' });
    expect(await until(() => got.length === 3, 15_000)).toBe(true);
    await new Promise((r) => setTimeout(r, 200));

    expect(got.map((e) => `${e.source}:${(e.payload as { round: number }).round}`)).toEqual([
      `${alice.id}:1`,
      `${eve.id}:1`,
      `${alice.id}:2`,
    ]);
    expect(receiver.guard.audit.byReason()).toEqual({
      replay: 1,
      'bad-signature': 1,
      unsigned: 1,
      'sender-mismatch': 1,
      'unknown-identity': 1,
      forbidden: 2,
      revoked: 1,
    });
    const audit = (await events.take(8, 15_000))
      .map((r) => decodeEnvelope(r.value))
      .flatMap((d) => (d.ok ? [d.envelope as Envelope<{ type: string; data: { reason: string } }>] : []))
      .filter((e) => e.payload.type === 'federation.security.rejected');
    expect(audit.map((e) => e.payload.data.reason).sort()).toEqual([
      'bad-signature',
      'forbidden',
      'forbidden',
      'replay',
      'revoked',
      'sender-mismatch',
      'unknown-identity',
      'unsigned',
    ]);
  }, 60_000);
});
