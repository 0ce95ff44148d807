/**
 * Runs one secure-aggregation round with every party in this process (tests,
 * benches, and the single-process federation runner), with clients dropping
 * out after any phase.
 */
import { SecAggClient } from './client.js';
import type { UnmaskResponse } from './messages.js';
import type { MaskEngine } from './ring.js';
import { SecAggServer, type SecAggResult, type SecAggTraffic } from './server.js';

export interface DropPlan {
  /** Advertise keys, then vanish (never share). */
  afterAdvertise?: readonly string[];
  /** Share keys, then vanish (no masked input: their pairwise masks must be removed). */
  afterShare?: readonly string[];
  /** Send the masked input, then vanish (no unmasking shares). */
  afterMasked?: readonly string[];
}

export interface InProcessRound {
  inputs: ReadonlyMap<string, Uint32Array>;
  threshold: number;
  bits: number;
  degree?: number;
  drops?: DropPlan;
  engine?: MaskEngine;
}

export function runSecAggRound(r: InProcessRound): SecAggResult & { traffic: SecAggTraffic } {
  const ids = [...r.inputs.keys()];
  const length = r.inputs.get(ids[0]!)!.length;
  const server = new SecAggServer({
    threshold: r.threshold,
    length,
    bits: r.bits,
    ...(r.degree ? { degree: r.degree } : {}),
    ...(r.engine ? { engine: r.engine } : {}),
  });
  const clients = new Map(
    ids.map((id) => [id, new SecAggClient(id, { bits: r.bits, ...(r.engine ? { engine: r.engine } : {}) })]),
  );
  const gone = new Set<string>();
  const alive = () => [...clients.values()].filter((c) => !gone.has(c.id));
  const list = server.receiveKeys(alive().map((c) => c.advertise()));
  for (const id of r.drops?.afterAdvertise ?? []) gone.add(id);
  const forward = server.receiveShares(alive().map((c) => c.shareKeys(list)));
  for (const id of r.drops?.afterShare ?? []) gone.add(id);
  const u3 = server.receiveMasked(alive().map((c) => c.maskedInput(forward.get(c.id)!, r.inputs.get(c.id)!)));
  for (const id of r.drops?.afterMasked ?? []) gone.add(id);
  const responses: UnmaskResponse[] = alive().map((c) => c.unmask(u3));
  return { ...server.unmask(responses), traffic: server.traffic };
}
