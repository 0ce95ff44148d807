/**
 * Signed buses for a federation run in one process: fresh Ed25519 identities
 * for the coordinator and each learner, one policy that trusts exactly them
 * (coordinator administers, learners train in this federation), and a
 * SecureBus per party over the same inner bus.
 */
import type { Bus } from '../../../transport/bus.js';
import { AccessControl } from './access-control.js';
import { Identity } from './identity.js';
import { COORDINATOR_IDENTITY, learnerIdentity, SecureBus } from './secure-bus.js';
import { MessageGuard } from './signed-envelope.js';

export interface SecuredFederationBuses {
  coordinator: SecureBus;
  learner(learnerId: string): SecureBus;
  acl: AccessControl;
}

export function securedFederationBuses(
  inner: Bus,
  federationId: string,
  learnerIds: readonly string[],
): SecuredFederationBuses {
  const coord = Identity.generate(COORDINATOR_IDENTITY);
  const learners = new Map(learnerIds.map((id) => [id, Identity.generate(learnerIdentity(id))]));
  const acl = new AccessControl({
    identities: Object.fromEntries([coord, ...learners.values()].map((i) => [i.id, i.publicKeyText])),
    roles: {},
    grants: [
      { identity: coord.id, roles: ['coordinator'] },
      ...[...learners.values()].map((i) => ({ identity: i.id, roles: ['learner'], federation: federationId })),
    ],
  });
  const coordinator = new SecureBus(inner, { identity: coord, guard: new MessageGuard(acl) });
  return {
    coordinator,
    acl,
    learner: (id) => {
      const identity = learners.get(id);
      if (!identity) throw new Error(`no identity for learner '${id}'`);
      return new SecureBus(inner, { identity, guard: new MessageGuard(acl) });
    },
  };
}
