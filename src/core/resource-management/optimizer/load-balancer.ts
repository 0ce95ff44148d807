/**
 * LoadBalancer: the power of two choices (sample two, take the less loaded)
 * in its two uses.
 * - distributeLoad places tasks (models to load, requests to run) on targets
 *   (devices of this node, or nodes): 'least-loaded' scans every target;
 *   'power-of-two' samples two and takes the less loaded, which is nearly as
 *   good and O(1) per task. A target that lacks the memory a task needs is
 *   never chosen; when none fits the task is reported unplaced. The resource
 *   manager places GPU shares this way.
 * - pick/acquire/release balance the requests of a model among its replicas
 *   (the same model hosted on several devices or nodes, each under its own
 *   name) on outstanding requests: sample two replicas at random and take the
 *   one with fewer requests in flight (ties: the first). A model with no
 *   replicas configured is its own single replica. The request dispatcher of
 *   routing balances this way.
 */
import { WhaleError } from '../../../common/errors.js';
import { SeededRandom } from '../../base/random.js';

export interface LoadTarget {
  id: string;
  /** Current load in [0, 1] (utilization from the monitor) or a queue length; lower is better. */
  load: number;
  /** Free memory in bytes (Infinity when not limited). */
  freeBytes: number;
  /** Relative capacity (default 1): load added per unit of task cost is cost / capacity. */
  capacity?: number;
}

export interface LoadTask {
  id: string;
  /** Load the task adds (default 1 unit of the target's capacity). */
  cost?: number;
  memoryBytes?: number;
}

export type BalancingPolicy = 'least-loaded' | 'power-of-two';

export interface Placement {
  placements: Record<string, string>;
  unplaced: { task: string; reason: string }[];
  /** Target loads after placing. */
  loads: Record<string, number>;
}

export interface LoadBalancerOptions {
  /** How distributeLoad places tasks (default 'power-of-two'). */
  policy?: BalancingPolicy;
  /** model → the hosted names serving it (pick/acquire/release). */
  replicas?: Record<string, string[]>;
  /** Seed of the random choices (default 7). */
  seed?: number;
}

export class LoadBalancer {
  private readonly policy: BalancingPolicy;
  private readonly replicas = new Map<string, string[]>();
  private readonly inFlight = new Map<string, number>();
  private readonly rng: SeededRandom;

  constructor(o: LoadBalancerOptions = {}) {
    this.policy = o.policy ?? 'power-of-two';
    if (this.policy !== 'least-loaded' && this.policy !== 'power-of-two') {
      throw new WhaleError('ERR_INVALID_OPTION', `policy: expected 'least-loaded' or 'power-of-two'`, {
        field: 'policy',
      });
    }
    for (const [model, names] of Object.entries(o.replicas ?? {})) {
      if (!Array.isArray(names) || names.length === 0 || names.some((n) => typeof n !== 'string' || n.length === 0)) {
        throw new WhaleError('ERR_INVALID_ARG', `replicas.${model}: must list at least one hosted model name`, {
          field: `replicas.${model}`,
        });
      }
      this.replicas.set(model, [...names]);
    }
    this.rng = new SeededRandom(o.seed ?? 7);
  }

  /** Places each task on a target (see the policy); targets' loads and free memory are updated as it goes. */
  distributeLoad(tasks: readonly LoadTask[], targets: readonly LoadTarget[]): Placement {
    if (!Array.isArray(tasks)) throw new WhaleError('ERR_INVALID_ARG', 'tasks: expected an array', { field: 'tasks' });
    if (!Array.isArray(targets) || targets.length === 0)
      throw new WhaleError('ERR_INVALID_ARG', 'targets: expected a non-empty array', { field: 'targets' });
    const state = targets.map((t, i) => {
      if (typeof t?.id !== 'string' || !Number.isFinite(t.load) || !(t.freeBytes >= 0)) {
        throw new WhaleError('ERR_INVALID_ARG', `targets[${i}]: expected { id, load, freeBytes }`, {
          field: `targets[${i}]`,
        });
      }
      return { id: t.id, load: t.load, free: t.freeBytes, capacity: t.capacity ?? 1 };
    });
    const out: Placement = { placements: {}, unplaced: [], loads: {} };
    // Big tasks first: they are the hardest to fit.
    const order = [...tasks].sort(
      (a, b) => (b.memoryBytes ?? 0) - (a.memoryBytes ?? 0) || (b.cost ?? 1) - (a.cost ?? 1),
    );
    for (const task of order) {
      const need = task.memoryBytes ?? 0;
      const fits = state.filter((s) => s.free >= need);
      if (fits.length === 0) {
        out.unplaced.push({ task: task.id, reason: `no target has ${need} bytes free` });
        continue;
      }
      let pick = fits[0]!;
      if (this.policy === 'least-loaded' || fits.length <= 2) {
        for (const s of fits) if (s.load < pick.load) pick = s;
      } else {
        const a = fits[this.rng.int(fits.length)]!;
        let b = fits[this.rng.int(fits.length)]!;
        if (b === a) b = fits[(fits.indexOf(a) + 1) % fits.length]!;
        pick = b.load < a.load ? b : a;
      }
      pick.load += (task.cost ?? 1) / pick.capacity;
      pick.free -= need;
      out.placements[task.id] = pick.id;
    }
    for (const s of state) out.loads[s.id] = s.load;
    return out;
  }

  replicasOf(model: string): readonly string[] {
    return this.replicas.get(model) ?? [model];
  }

  /** A replica of `model` (not yet acquired); `available` rules replicas out. */
  pick(model: string, available: (replica: string) => boolean = () => true): string {
    const all = this.replicasOf(model);
    const ok = all.filter(available);
    if (ok.length === 0)
      throw new WhaleError('ERR_MODEL_NOT_READY', `model '${model}': no replica can take requests now`, {
        field: 'model',
        retriable: true,
      });
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
  distributeRequests(model: string, count: number, available?: (replica: string) => boolean): string[] {
    if (!Number.isInteger(count) || count < 0)
      throw new WhaleError('ERR_INVALID_ARG', 'count: must be an integer >= 0', { field: 'count' });
    const out: string[] = [];
    for (let i = 0; i < count; i++) {
      const r = this.pick(model, available);
      this.acquire(r);
      out.push(r);
    }
    return out;
  }
}
