/**
 * LoadBalancer.distributeLoad: places tasks (models to load, requests to run)
 * on targets (devices of this node, or nodes). 'least-loaded' scans every
 * target; 'power-of-two' samples two and takes the less loaded, which is
 * nearly as good and O(1) per task. A target that lacks the memory a task
 * needs is never chosen; when none fits the task is reported unplaced.
 */
import { WhaleError } from '../../base/errors.js';

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

export class LoadBalancer {
  private seed: number;

  constructor(private readonly policy: BalancingPolicy = 'power-of-two', seed = 0x9e3779b9) {
    if (policy !== 'least-loaded' && policy !== 'power-of-two') {
      throw new WhaleError('ERR_INVALID_OPTION', `policy: expected 'least-loaded' or 'power-of-two'`, { field: 'policy' });
    }
    this.seed = seed >>> 0 || 1;
  }

  distributeLoad(tasks: readonly LoadTask[], targets: readonly LoadTarget[]): Placement {
    if (!Array.isArray(tasks)) throw new WhaleError('ERR_INVALID_ARG', 'tasks: expected an array', { field: 'tasks' });
    if (!Array.isArray(targets) || targets.length === 0) throw new WhaleError('ERR_INVALID_ARG', 'targets: expected a non-empty array', { field: 'targets' });
    const state = targets.map((t, i) => {
      if (typeof t?.id !== 'string' || !Number.isFinite(t.load) || !(t.freeBytes >= 0)) {
        throw new WhaleError('ERR_INVALID_ARG', `targets[${i}]: expected { id, load, freeBytes }`, { field: `targets[${i}]` });
      }
      return { id: t.id, load: t.load, free: t.freeBytes, capacity: t.capacity ?? 1 };
    });
    const out: Placement = { placements: {}, unplaced: [], loads: {} };
    // Big tasks first: they are the hardest to fit.
    const order = [...tasks].sort((a, b) => (b.memoryBytes ?? 0) - (a.memoryBytes ?? 0) || (b.cost ?? 1) - (a.cost ?? 1));
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
        const a = fits[this.next() % fits.length]!;
        let b = fits[this.next() % fits.length]!;
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

  /** xorshift32: reproducible choices for a given seed. */
  private next(): number {
    let x = this.seed;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.seed = x >>> 0;
    return this.seed;
  }
}
