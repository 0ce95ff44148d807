/**
 * LoadBalancer: among the replicas of a model (the same model hosted on
 * several devices or nodes, each under its own name), the power of two
 * choices on outstanding requests: sample two replicas at random and take the
 * one with fewer requests in flight (ties: the first). A model with no
 * replicas configured is its own single replica.
 */
import { WhaleError } from '../../../common/errors.js';
import { SeededRandom } from '../../base/random.js';

export interface LoadBalancerOptions {
  /** model → the hosted names serving it. */
  replicas?: Record<string, string[]>;
  seed?: number;
}

export class LoadBalancer {
  private readonly replicas = new Map<string, string[]>();
  private readonly inFlight = new Map<string, number>();
  private readonly rng: SeededRandom;

  constructor(o: LoadBalancerOptions = {}) {
    for (const [model, names] of Object.entries(o.replicas ?? {})) {
      if (!Array.isArray(names) || names.length === 0 || names.some((n) => typeof n !== 'string' || n.length === 0)) {
        throw new WhaleError('ERR_INVALID_ARG', `replicas.${model}: must list at least one hosted model name`, { field: `replicas.${model}` });
      }
      this.replicas.set(model, [...names]);
    }
    this.rng = new SeededRandom(o.seed ?? 7);
  }

  replicasOf(model: string): readonly string[] {
    return this.replicas.get(model) ?? [model];
  }

  /** A replica of `model` (not yet acquired); `available` rules replicas out. */
  pick(model: string, available: (replica: string) => boolean = () => true): string {
    const all = this.replicasOf(model);
    const ok = all.filter(available);
    if (ok.length === 0) throw new WhaleError('ERR_MODEL_NOT_READY', `model '${model}': no replica can take requests now`, { field: 'model', retriable: true });
    if (ok.length === 1) return ok[0]!;
    const i = this.rng.int(ok.length);
    const j = this.rng.int(ok.length - 1);
    const a = ok[i]!;
    const b = ok[j >= i ? j + 1 : j]!;
    return this.outstanding(b) < this.outstanding(a) ? b : a;
  }

  acquire(replica: string): void {
    this.inFlight.set(replica, this.outstanding(replica) + 1);
  }

  release(replica: string): void {
    const n = this.outstanding(replica) - 1;
    if (n <= 0) this.inFlight.delete(replica);
    else this.inFlight.set(replica, n);
  }

  outstanding(replica: string): number {
    return this.inFlight.get(replica) ?? 0;
  }

  /** Picks and acquires a replica for each of `count` requests of `model`; release each when it is answered. */
  distributeLoad(model: string, count: number, available?: (replica: string) => boolean): string[] {
    if (!Number.isInteger(count) || count < 0) throw new WhaleError('ERR_INVALID_ARG', 'count: must be an integer >= 0', { field: 'count' });
    const out: string[] = [];
    for (let i = 0; i < count; i++) {
      const r = this.pick(model, available);
      this.acquire(r);
      out.push(r);
    }
    return out;
  }
}
