/**
 * Plain-TypeScript scheduler engine with exactly the semantics of the native
 * one (native/sched/scheduler.cpp): the tests' oracle, and a fallback engine.
 *
 * Per model: strict priority classes (0 first); inside a class, tenants take
 * turns by stride scheduling (smallest pass first, ties by tenant id; serving a
 * request adds 1/weight to the pass; a tenant that becomes backlogged starts at
 * max(its pass, the class's virtual time) so idling banks no credit); inside a
 * tenant, earliest deadline first, then submission order. Batches follow
 * Triton's dynamic batcher: the largest reachable preferred size at once, else
 * everything queued (up to maxBatchSize) once the oldest request has waited
 * maxQueueDelayUs; with dispatchWhenIdle, a model with no batch running takes
 * everything queued (up to maxBatchSize) at once. A request whose deadline is
 * <= now is expired, never run.
 */
import { WhaleError } from '../../common/errors.js';
import type { NativeSchedulerHandle, NativeSchedulerModelConfig } from '../../native/binding.js';
import { MinHeap } from './min-heap.js';

const MAX_ID = 2 ** 24;
const OP_BATCH = 1;
const OP_EXPIRED = 2;

interface Slot {
  seq: number;
  model: number;
  tenant: number;
  priority: number;
  arrival: number;
  deadline: number; // Infinity: none
  queued: boolean;
}

interface Entry {
  deadline: number;
  seq: number;
  id: number;
}

interface Turn {
  pass: number;
  tenant: number;
  epoch: number;
}

const entryBefore = (a: Entry, b: Entry): boolean =>
  a.deadline !== b.deadline ? a.deadline < b.deadline : a.seq < b.seq;
const turnBefore = (a: Turn, b: Turn): boolean => (a.pass !== b.pass ? a.pass < b.pass : a.tenant < b.tenant);

class TenantQueue {
  readonly requests = new MinHeap<Entry>(entryBefore);
  live = 0;
  pass = 0;
  active = false;
  epoch = 0;
  constructor(readonly tenant: number) {}
}

class PriorityClass {
  readonly tenants = new Map<number, TenantQueue>();
  readonly turns = new MinHeap<Turn>(turnBefore);
  active = 0;
  live = 0;
  vtime = 0;

  turnValid = (t: Turn): boolean => {
    const q = this.tenants.get(t.tenant);
    return q !== undefined && q.active && q.epoch === t.epoch;
  };

  takeTurn(): TenantQueue {
    this.turns.prune(this.turnValid);
    const t = this.turns.pop()!;
    return this.tenants.get(t.tenant)!;
  }
}

interface Model {
  config: {
    maxBatchSize: number;
    preferred: number[];
    delay: number;
    maxQueueSize: number;
    instances: number;
    whenIdle: boolean;
  };
  classes: PriorityClass[];
  arrivals: { seq: number; id: number }[];
  head: number; // arrivals[head] is the oldest entry not yet popped
  deadlines: MinHeap<Entry>;
  queued: number;
  running: number;
}

function invalid(message: string): never {
  throw new WhaleError('ERR_INVALID_ARG', message, { field: message.split(':')[0] });
}

export class ReferenceSchedulerEngine implements NativeSchedulerHandle {
  private nextSeq = 1;
  private readonly models = new Map<number, Model>();
  private readonly slots: Slot[] = [];
  private readonly strides: number[] = [];
  private order: number[] = []; // model ids ascending, the native std::map's order

  constructor(private readonly classes: number) {
    if (!Number.isInteger(classes) || classes < 1 || classes > 64)
      invalid('priorityClasses: expected an integer in [1, 64]');
  }

  setTenant(tenant: number, weight: number): void {
    if (!(weight > 0) || !Number.isFinite(weight)) invalid('tenants: weight must be a finite number > 0');
    this.strides[tenant] = 1 / weight;
  }

  addModel(model: number, c: NativeSchedulerModelConfig): void {
    if (this.models.has(model)) invalid(`model: id ${model} already added`);
    const preferred = [...new Set(c.preferredBatchSizes ?? [])].sort((a, b) => a - b);
    if (preferred.some((p) => p < 1 || p > c.maxBatchSize))
      invalid('preferredBatchSizes: each size must be in [1, maxBatchSize]');
    if (preferred.length === 0) preferred.push(c.maxBatchSize);
    if (c.dispatchWhenIdle !== undefined && typeof c.dispatchWhenIdle !== 'boolean')
      invalid('dispatchWhenIdle: expected a boolean');
    this.models.set(model, {
      config: {
        maxBatchSize: c.maxBatchSize,
        preferred,
        delay: Math.floor(c.maxQueueDelayUs),
        maxQueueSize: c.maxQueueSize,
        instances: c.instances,
        whenIdle: c.dispatchWhenIdle === true,
      },
      classes: Array.from({ length: this.classes }, () => new PriorityClass()),
      arrivals: [],
      head: 0,
      deadlines: new MinHeap<Entry>(entryBefore),
      queued: 0,
      running: 0,
    });
    this.order = [...this.models.keys()].sort((a, b) => a - b);
  }

  removeModel(model: number): Uint32Array {
    const m = this.models.get(model);
    if (!m) return new Uint32Array(0);
    const ids: number[] = [];
    for (let i = m.head; i < m.arrivals.length; i++) {
      const a = m.arrivals[i]!;
      if (this.alive(a)) {
        ids.push(a.id);
        this.slots[a.id]!.queued = false;
      }
    }
    this.models.delete(model);
    this.order = this.order.filter((id) => id !== model);
    return Uint32Array.from(ids);
  }

  submit(records: Float64Array, count: number, status: Uint8Array): number {
    for (let i = 0; i < count; i++) {
      const r = i * 6;
      if (!(records[r]! >= 0 && records[r]! < MAX_ID)) invalid('id: out of range');
      if (!(records[r + 3]! >= 0 && records[r + 3]! < this.classes)) invalid('priority: beyond the configured classes');
    }
    let accepted = 0;
    for (let i = 0; i < count; i++) {
      const r = i * 6;
      const st = this.submitOne(
        records[r]!,
        records[r + 1]!,
        records[r + 2]!,
        records[r + 3]!,
        Math.floor(records[r + 4]!),
        records[r + 5]! >= 9.2e18 ? Infinity : Math.floor(records[r + 5]!),
      );
      status[i] = st;
      if (st === 0) accepted++;
    }
    return accepted;
  }

  private submitOne(
    id: number,
    model: number,
    tenant: number,
    priority: number,
    arrival: number,
    deadline: number,
  ): number {
    const m = this.models.get(model);
    if (!m) return 2;
    if (this.slots[id]?.queued) invalid(`id: ${id} is still queued`);
    if (m.queued >= m.config.maxQueueSize) return 1;
    const seq = this.nextSeq++;
    this.slots[id] = { seq, model, tenant, priority, arrival, deadline, queued: true };
    const cls = m.classes[priority]!;
    let q = cls.tenants.get(tenant);
    if (!q) cls.tenants.set(tenant, (q = new TenantQueue(tenant)));
    q.requests.push({ deadline, seq, id });
    q.live++;
    cls.live++;
    if (!q.active) {
      q.active = true;
      q.epoch++;
      q.pass = Math.max(q.pass, cls.vtime);
      cls.active++;
      cls.turns.push({ pass: q.pass, tenant, epoch: q.epoch });
    }
    m.arrivals.push({ seq, id });
    if (deadline !== Infinity) m.deadlines.push({ deadline, seq, id });
    m.queued++;
    return 0;
  }

  cancel(id: number): boolean {
    const s = this.slots[id];
    if (!s?.queued) return false;
    const m = this.models.get(s.model);
    if (!m) return false;
    this.drop(m, s);
    return true;
  }

  complete(model: number): void {
    const m = this.models.get(model);
    if (!m) return;
    if (m.running === 0) invalid(`complete: model ${model} has no batch running`);
    m.running--;
  }

  poll(nowUs: number, out: Uint32Array, meta: Float64Array): number {
    const now = Math.floor(nowUs);
    let w = 0;
    const more = (): number => {
      meta[1] = 1;
      return w;
    };
    for (const id of this.order) {
      const m = this.models.get(id)!;
      while (m.deadlines.prune(this.alive) && m.deadlines.top()!.deadline <= now) {
        if (w + 2 > out.length) return more();
        const rid = m.deadlines.pop()!.id;
        this.drop(m, this.slots[rid]!);
        out[w++] = OP_EXPIRED;
        out[w++] = rid;
      }
      while (m.running < m.config.instances && m.queued > 0) {
        const n = this.batchTarget(m, now);
        if (n === 0) break;
        if (w + 3 + n > out.length) {
          if (w === 0) invalid(`out: capacity ${out.length} cannot hold one batch of ${n}`);
          return more();
        }
        out[w++] = OP_BATCH;
        out[w++] = id;
        out[w++] = n;
        for (let k = 0; k < n; k++) out[w++] = this.pick(m);
        m.running++;
      }
    }
    let wake = Infinity;
    for (const m of this.models.values()) wake = Math.min(wake, this.nextWake(m));
    meta[0] = wake;
    meta[1] = 0;
    return w;
  }

  private alive = (e: { seq: number; id: number }): boolean => {
    const s = this.slots[e.id];
    return s !== undefined && s.queued && s.seq === e.seq;
  };

  private oldest(m: Model): { seq: number; id: number } | undefined {
    while (m.head < m.arrivals.length && !this.alive(m.arrivals[m.head]!)) m.head++;
    return m.arrivals[m.head];
  }

  private drop(m: Model, s: Slot): void {
    s.queued = false;
    m.queued--;
    const cls = m.classes[s.priority]!;
    cls.live--;
    const q = cls.tenants.get(s.tenant)!;
    if (--q.live === 0) {
      q.active = false;
      q.requests.clear();
      cls.active--;
      cls.turns.compact(cls.active, cls.turnValid);
    } else {
      q.requests.compact(q.live, this.alive);
    }
    if (m.queued === 0) {
      m.arrivals = [];
      m.head = 0;
      m.deadlines.clear();
    } else {
      if (m.arrivals.length - m.head > 2 * m.queued + 64) {
        m.arrivals = m.arrivals.slice(m.head).filter(this.alive);
        m.head = 0;
      }
      m.deadlines.compact(m.queued, this.alive);
    }
  }

  private pick(m: Model): number {
    const cls = m.classes.find((c) => c.live > 0)!;
    const q = cls.takeTurn();
    q.requests.prune(this.alive);
    const e = q.requests.pop()!;
    cls.vtime = q.pass;
    q.pass += this.strides[q.tenant] ?? 1;
    this.drop(m, this.slots[e.id]!);
    if (q.active) cls.turns.push({ pass: q.pass, tenant: q.tenant, epoch: q.epoch });
    return e.id;
  }

  private batchTarget(m: Model, now: number): number {
    const limit = Math.min(m.queued, m.config.maxBatchSize);
    if (m.config.whenIdle && m.running === 0) return limit;
    let best = 0;
    for (const p of m.config.preferred) if (p <= limit) best = p;
    if (best > 0) return best;
    const o = this.oldest(m);
    return o && this.slots[o.id]!.arrival + m.config.delay <= now ? limit : 0;
  }

  private nextWake(m: Model): number {
    let wake = Infinity;
    if (m.queued > 0 && m.running < m.config.instances) wake = this.slots[this.oldest(m)!.id]!.arrival + m.config.delay;
    if (m.deadlines.prune(this.alive)) wake = Math.min(wake, m.deadlines.top()!.deadline);
    return wake;
  }
}
