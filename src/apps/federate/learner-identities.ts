/**
 * Signed federation messages with learners in other processes: the
 * coordinator creates an Ed25519 identity per learner and one access policy
 * (coordinator administers, each learner trains in this federation only),
 * writes each learner's private key (mode 600) and the policy into a
 * directory only this user can read, and hands the learners that directory
 * (`--identity-dir`). A learner signs with its own key and checks every
 * message against the policy, like the coordinator. Learners on other
 * machines get their key file and the policy file from their operator
 * (learner.json `security`).
 */
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import type { Bus } from '../../transport/bus.js';
import { AccessControl, type AccessPolicy } from '../../core/federation/security/access-control.js';
import { Identity } from '../../core/federation/security/identity.js';
import { COORDINATOR_IDENTITY, learnerIdentity, SecureBus } from '../../core/federation/security/secure-bus.js';
import { MessageGuard } from '../../core/federation/security/signed-envelope.js';

export const POLICY_FILE = 'policy.json';

/** Creates the identities and the policy in `dir` (0700); returns the coordinator's identity and the policy. */
export function writeLearnerIdentities(
  dir: string,
  federationId: string,
  learnerIds: readonly string[],
): { coordinator: Identity; acl: AccessControl } {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
  const coordinator = Identity.generate(COORDINATOR_IDENTITY);
  const learners = learnerIds.map((id) => {
    const identity = Identity.generate(learnerIdentity(id));
    identity.save(join(dir, `${id}.pem`));
    return identity;
  });
  const policy: AccessPolicy = {
    identities: Object.fromEntries([coordinator, ...learners].map((i) => [i.id, i.publicKeyText])),
    roles: {},
    grants: [
      { identity: coordinator.id, roles: ['coordinator'] },
      ...learners.map((i) => ({ identity: i.id, roles: ['learner'], federation: federationId })),
    ],
  };
  writeFileSync(join(dir, POLICY_FILE), JSON.stringify(policy, null, 2), { mode: 0o600 });
  return { coordinator, acl: new AccessControl(policy) };
}

/** The bus of a party that signs with `identity` and checks what it receives against `acl`. */
export function securedBus(inner: Bus, identity: Identity, acl: AccessControl): SecureBus {
  return new SecureBus(inner, { identity, guard: new MessageGuard(acl) });
}

/** A learner's signed bus from its key file and the policy file. */
export function learnerSecureBus(inner: Bus, learnerId: string, keyFile: string, policyFile: string): SecureBus {
  return securedBus(inner, Identity.load(learnerIdentity(learnerId), keyFile), AccessControl.fromFile(policyFile));
}
