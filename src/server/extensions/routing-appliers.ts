/**
 * What carries out the QualityOptimizer's proposals in `whale start` (rollback-version through the host,
 * shift-traffic and change-level through the router, schedule-federated-round through the starter the
 * federations extension sets), and the peer answer ServedQuality compares a served answer with.
 */
import { WhaleError } from '../../common/errors.js';
import type { ModelInterface } from '../../core/base/model.js';
import type { NamedTensors } from '../../core/base/tensor.js';
import type { RouteOptimizer } from '../../core/federation/routing/route-optimizer.js';
import type { ModelHost } from '../../core/processing/model-host.js';
import type { ServedAnswer } from '../../core/quality/monitoring/served-quality.js';
import type { QualityOptimizer } from '../../core/quality/optimization/quality-optimizer.js';
import type { WhaleServer } from '../whale-server.js';
import type { FederatedRoundStarter } from './routing.js';

/** The served version and the one before it (held by the host), for rollback-version. */
export function heldVersions(host: ModelHost, model: string): { version?: string; previousVersion?: string } {
  if (!host.has(model)) return {};
  const held = host.versions(model);
  const i = held.findIndex((v) => v.default);
  // The version added just before the default (none when the default is the oldest held).
  const previous = i > 0 ? held[i - 1] : undefined;
  return {
    version: held[i]?.version ?? host.get(model).version,
    ...(previous ? { previousVersion: previous.version } : {}),
  };
}

/** How each QualityOptimizer action is carried out on this server. */
export function registerAppliers(
  q: QualityOptimizer,
  optimizer: RouteOptimizer,
  server: WhaleServer,
  federatedRound: () => FederatedRoundStarter | undefined,
): void {
  q.setApplier('shift-traffic', (p) => {
    for (const task of optimizer.taskNames()) {
      const arms = optimizer.stats(task).arms;
      const from = arms.find((a) => a.model === p.params.from);
      const to = arms.find((a) => a.model === p.params.to);
      if (from && to) optimizer.shiftTraffic(task, from.id, to.id, Number(p.params.share));
    }
  });
  q.setApplier('rollback-version', (p) => {
    // The host holds the previous version: it becomes the default again (requests in flight finish on theirs).
    server.host.setDefaultVersion(p.modelId, String(p.params.to));
  });
  q.setApplier('change-level', (p) => {
    // Traffic moves between the model's arms at the two levels (routing tasks with level arms).
    let moved = 0;
    for (const task of optimizer.taskNames()) {
      const arms = optimizer.stats(task).arms.filter((a) => a.model === p.modelId);
      const level = (a: { level?: string }) => a.level ?? 'normal';
      const from = arms.find((a) => level(a) === p.params.from);
      const to = arms.find((a) => level(a) === p.params.to);
      if (from && to) {
        optimizer.shiftTraffic(task, from.id, to.id, Number(p.params.share));
        moved++;
      }
    }
    if (moved === 0)
      throw new WhaleError(
        'ERR_INVALID_STATE',
        `no routed task has arms of '${p.modelId}' at levels ${p.params.from} and ${p.params.to}`,
      );
  });
  q.setApplier('schedule-federated-round', async (p) => {
    const start = federatedRound();
    if (!start)
      throw new WhaleError('ERR_INVALID_STATE', 'no federation configured for it (federations.onQualityDrop)');
    await start(p.modelId, p.reason);
  });
}

/** Another ensemble member's, held version's or same-signature model's answer to the same inputs (consistency). */
export async function peerAnswer(server: WhaleServer, a: ServedAnswer): Promise<NamedTensors | undefined> {
  const host = server.host;
  if (!host.has(a.model)) return undefined;
  const self = host.get(a.model);
  const member = [...a.models, ...host.names()].find(
    (m) => m !== a.model && host.has(m) && host.isReady(m) && sameSignature(host.get(m), self),
  );
  const input = { ...a.inputs };
  if (member) return (await server.scheduler.scheduleTask({ model: member, input })) as NamedTensors;
  const other = host.versions(a.model).find((v) => v.version !== a.version);
  if (!other) return undefined;
  host.pinVersion(input, a.model, other.version);
  return (await server.scheduler.scheduleTask({ model: a.model, input })) as NamedTensors;
}

export function sameSignature(a: ModelInterface, b: ModelInterface): boolean {
  const sig = (m: ModelInterface) =>
    JSON.stringify([
      m.inputs.map((t) => [t.name, t.datatype, t.shape.slice(1)]),
      m.outputs.map((t) => [t.name, t.datatype, t.shape.slice(1)]),
    ]);
  return sig(a) === sig(b);
}
