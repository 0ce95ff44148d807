/**
 * The `deep` level with models on other nodes, through the seed's
 * requestCollaboration / respondToCollaboration: the asking node sends the
 * request's inputs on the own topics of the deep members (or of
 * collaboration.models), so only nodes hosting one of them receive it; each
 * such node runs its model (level normal) and responds with the outputs; the
 * asker waits until every target answered or the wait (collaboration.timeoutMs,
 * at most the request's own timeout) is over, and combines what came with its
 * own members' answers. With a shared state store (Redis) only models another
 * node hosts are asked, and none means no wait. Requests past their expiry are not answered; answers
 * after it are dropped. A node never answers its own requests (its own members
 * run locally), and an answer whose outputs do not fit the model's is left out.
 */
import type { Logger } from '../../common/logger.js';
import type { ModelInterface } from '../../core/base/model.js';
import type { NamedTensors, TensorSpec } from '../../core/base/tensor.js';
import type { DeepCollaborator, RemoteAnswer } from '../../core/processing/processing-pipeline.js';
import type { FederationService, ModelHandler } from '../../services/federation-service.js';
import { fromNamedTensors, toNamedTensors, type V2Tensor } from '../v2-tensors.js';
import type { WhaleServer } from '../whale-server.js';

export const DEEP_KIND = 'whale.deep';

interface DeepProblem {
  kind: typeof DEEP_KIND;
  node: string;
  model: string;
  inputs: V2Tensor[];
}

interface DeepSolution {
  kind: typeof DEEP_KIND;
  node: string;
  model: string;
  version: string;
  outputs: V2Tensor[];
}

export interface DeepCollaborationOptions {
  federation: FederationService;
  nodeId: string;
  /** Longest wait for other nodes' answers (ms). */
  timeoutMs: number;
  /** The models asked; default the request's deep members. */
  models?: string[];
  logger: Logger;
}

export class DeepCollaboration implements DeepCollaborator {
  constructor(private readonly o: DeepCollaborationOptions) {}

  async collaborate(r: {
    model: ModelInterface;
    members: string[];
    inputs: NamedTensors;
    timeoutMs?: number;
    signal?: AbortSignal;
  }): Promise<RemoteAnswer[]> {
    // A model whose outputs' sizes are not fixed cannot be checked against: it is not combined across nodes.
    if (r.model.outputs.some((s) => s.shape.slice(1).some((d) => d < 0))) return [];
    const wait = Math.max(1, Math.floor(Math.min(this.o.timeoutMs, r.timeoutMs ?? Infinity)));
    const problem: DeepProblem = {
      kind: DEEP_KIND,
      node: this.o.nodeId,
      model: r.model.name,
      inputs: fromNamedTensors(r.inputs),
    };
    const targets = await this.remoteTargets(this.o.models ?? r.members);
    if (targets.length === 0) return []; // no other node hosts them: nothing to wait for
    const id = await this.o.federation.requestCollaboration(r.model.name, problem, {
      targets,
      timeoutMs: wait,
      channel: 'model',
    });
    const status = await this.o.federation.awaitCollaboration(id, r.signal ? { signal: r.signal } : {});
    const rows = rowsOf(r.inputs);
    const out: RemoteAnswer[] = [];
    for (const res of status.responses) {
      const a = remoteAnswer(res.solution, r.model.outputs, rows);
      if (a) out.push(a);
      else this.o.logger.debug('deep: an answer that does not fit was left out', { responder: res.responder });
    }
    return out;
  }

  /**
   * The models worth asking: with a shared state store (Redis) those another node hosts; otherwise
   * (hosts unknown) all of them, and the wait is the whole timeout when nobody answers.
   */
  private async remoteTargets(models: string[]): Promise<string[]> {
    const f = this.o.federation;
    if (!f.hostsShared) return models;
    const hosts = await Promise.all(models.map((m) => f.hostsOf(m).catch(() => [] as string[])));
    return models.filter((_, i) => hosts[i]!.some((n) => n !== this.o.nodeId));
  }

  /** What a hosted model answers other nodes' deep requests with. */
  handler(server: WhaleServer, model: string): ModelHandler {
    return {
      onCollaborationRequest: async (req) => {
        const p = req.problem as Partial<DeepProblem>;
        if (p?.kind !== DEEP_KIND || p.node === this.o.nodeId || !Array.isArray(p.inputs)) return undefined;
        const remaining = req.expiresAt - Date.now();
        if (remaining <= 0 || !server.accepting || !server.host.isReady(model)) return undefined;
        try {
          const res = await server.pipeline.processRequest({
            model,
            inputs: toNamedTensors(p.inputs),
            level: 'normal',
            timeoutMs: remaining,
          });
          const solution: DeepSolution = {
            kind: DEEP_KIND,
            node: this.o.nodeId,
            model,
            version: res.modelVersion,
            outputs: fromNamedTensors(res.outputs),
          };
          return JSON.parse(JSON.stringify(solution)) as unknown; // NaN/Infinity outputs become null, refused by the asker
        } catch (err) {
          this.o.logger.debug('deep: not answered', { model, error: (err as Error).message });
          return undefined;
        }
      },
    };
  }
}

function rowsOf(inputs: NamedTensors): number {
  const first = Object.values(inputs)[0];
  return first && first.shape.length > 0 ? first.shape[0]! : 1;
}

/** The answer as the pipeline combines it, or undefined when it is not one or does not fit the model's outputs. */
function remoteAnswer(solution: unknown, specs: readonly TensorSpec[], rows: number): RemoteAnswer | undefined {
  const s = solution as Partial<DeepSolution>;
  if (s?.kind !== DEEP_KIND || typeof s.node !== 'string' || typeof s.model !== 'string' || !Array.isArray(s.outputs))
    return undefined;
  let outputs: NamedTensors;
  try {
    outputs = toNamedTensors(s.outputs);
  } catch {
    return undefined;
  }
  for (const spec of specs) {
    const t = outputs[spec.name];
    const size = spec.shape.length === 0 ? 1 : spec.shape.slice(1).reduce((a, b) => a * b, rows);
    if (!t || t.datatype !== spec.datatype || t.data.length !== size) return undefined;
  }
  return { model: `${s.model}@${s.node}`, modelVersion: String(s.version ?? ''), outputs };
}
