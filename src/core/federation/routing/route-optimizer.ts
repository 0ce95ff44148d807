/**
 * RouteOptimizer: learns which model (and pipeline level) should answer each
 * request of a task. A contextual bandit (LinUCB on one-hot request features,
 * see features.ts) keeps two ridge models per arm: quality in [0, 1] (from
 * feedback or evaluator scores, learned when it arrives) and cost (latency
 * latencyMs/(latencyMs + latencyScaleMs) and resource use, learned on every
 * answer). An arm's value is w_q·quality − cost, with
 * cost = w_l·latency term + w_r·resource. Exploration, per context:
 * - every arm is first tried `minTries` times in the request's context (so a
 *   small alpha cannot lock the router onto the first arm it meets);
 * - then the choice maximises the optimistic value, quality estimate +
 *   alpha·(σ̂·w + 1.5·alpha·w²) with w = √(xᵀA⁻¹x) (≈ 1/√tries), where σ̂ is
 *   the spread of the quality feedback the arm has shown in that context: an
 *   empirical-Bernstein (UCB-V) bonus in LinUCB's width, so a reward that
 *   varies by ±0.1 needs far fewer tries than one that varies by ±0.5, while
 *   the w² term keeps a few tries from trusting a spread seen on little data;
 * - choices that differ from the greedy one are capped twice: at
 *   maxExploreShare of the recent decisions of the task (a moving average),
 *   and at (K·n²)^⅓ explorations among the n decisions of the context (K
 *   usable arms): ε-greedy's (K/n)^⅓ schedule, the rate that bounds regret by
 *   O(n^⅔) without knowing the gaps, so the share decays as n^−⅓ while near-ties
 *   still get enough tries to be told apart. The context's decision counts
 *   fade with the same discount as the models, so with discount < 1 the share
 *   levels off (near (K(1 − γ))^⅓) instead of vanishing.
 * On top: canary share for a new version, shadow copies, sticky sessions,
 * policy shifts and disabled arms.
 */
import { randomBytes } from 'node:crypto';

import { WhaleError } from '../../../common/errors.js';
import { BoundedMap } from '../../quality/metrics/bounded-map.js';
import type { Level } from '../../processing/processing-pipeline.js';
import { featureDim, featurize, type RouteContext } from './features.js';
import { bad, checkRouting, num } from './route-checks.js';
import { NOISE_FLOOR, NOISE_PRIOR, exploreBudget, fadeAll, minOver, optimism } from './exploration.js';
import { LinearArm } from './linear-arm.js';
import { SeededRandom } from '../../base/random.js';

export interface RouteArm {
  id: string;
  model: string;
  level?: Level;
}

export interface TaskRouting {
  arms: RouteArm[];
  /** This share of requests goes to the arm (a new version) whatever the bandit says. */
  canary?: { arm: string; share: number };
  /** This share of requests is also run on the arm, its answer discarded. */
  shadow?: { arm: string; share: number };
  /** Requests naming a session keep the session's first route. */
  sticky?: boolean;
}

export interface BanditOptions {
  /** Width of the optimism bonus, in standard deviations of the quality feedback seen (default 1). */
  alpha?: number;
  /** Per-update discount of past observations, 1 = stationary (default 1). */
  discount?: number;
  ridge?: number;
  /** Largest share of recent decisions that may differ from the greedy choice (default 0.3); per context the share also decays, as (arms/decisions)^⅓. */
  maxExploreShare?: number;
  /** Tries of every arm in a context before its estimates are trusted (default 2; they count as explorations). */
  minTries?: number;
  tenantBuckets?: number;
}

export interface RewardWeights {
  quality?: number;
  latency?: number;
  resource?: number;
  latencyScaleMs?: number;
}

export interface RouteOptimizerOptions {
  tasks: Record<string, TaskRouting>;
  bandit?: BanditOptions;
  reward?: RewardWeights;
  seed?: number;
  /** Decisions remembered for late feedback (default 100 000), and their estimated bytes (default 32 MiB: request ids are the client's). */
  maxPending?: number;
  maxPendingBytes?: number;
  /** Sticky sessions kept (default 10 000 and 8 MiB of keys: session names are the client's). */
  sessions?: { max?: number; ttlMs?: number; maxBytes?: number };
  now?: () => number;
}

export type DecisionReason = 'bandit' | 'explore' | 'canary' | 'sticky' | 'shift' | 'only';

export interface RouteDecision {
  requestId: string;
  task: string;
  arm: RouteArm;
  reason: DecisionReason;
  shadow?: RouteArm;
}

interface ArmState {
  arm: RouteArm;
  quality: LinearArm;
  cost: LinearArm;
  enabled: boolean;
  decisions: number;
  /** Decisions for this arm per feature: min over a context's features = tries there. */
  tried: Float64Array;
  qualitySum: number;
  qualityN: number;
  costSum: number;
  costN: number;
}

interface TaskState {
  name: string;
  routing: TaskRouting;
  arms: ArmState[];
  exploreRate: number;
  decisions: number;
  /** Decisions per feature, and the optimism-driven explorations among them (both faded by the discount). */
  seen: Float64Array;
  explored: Float64Array;
  shifts: Map<string, { to: string; share: number }>;
}

interface Choice {
  arm: ArmState;
  reason: DecisionReason;
  /** An exploration the optimism bonus asked for (not a first try): counted against the context's (K·n²)^⅓ budget. */
  optimism?: boolean;
}

interface Pending {
  task: TaskState;
  arm: ArmState;
  x: number[];
  costDone: boolean;
  qualityDone: boolean;
}

/** Quality is learned around this prior so an untried arm starts neither good nor bad. */
const QUALITY_PRIOR = 0.5;
const EXPLORE_RATE_DECAY = 0.01;

export class RouteOptimizer {
  private readonly tasksByName = new Map<string, TaskState>();
  private readonly pending: BoundedMap<string, Pending>;
  private readonly sessions: BoundedMap<string, { arm: string; at: number }>;
  private readonly rng: SeededRandom;
  private readonly alpha: number;
  private readonly maxExplore: number;
  private readonly minTries: number;
  private readonly fade: number;
  private readonly buckets: number;
  private readonly w: Required<RewardWeights>;
  private readonly maxPending: number;
  private readonly maxSessions: number;
  private readonly sessionTtlMs: number;
  private readonly now: () => number;

  constructor(o: RouteOptimizerOptions) {
    const b = o.bandit ?? {};
    this.alpha = num(b.alpha ?? 1, 'bandit.alpha', (v) => v >= 0);
    this.maxExplore = num(b.maxExploreShare ?? 0.3, 'bandit.maxExploreShare', (v) => v >= 0 && v <= 1);
    this.buckets = num(b.tenantBuckets ?? 4, 'bandit.tenantBuckets', (v) => Number.isInteger(v) && v >= 0 && v <= 64);
    this.minTries = num(b.minTries ?? 2, 'bandit.minTries', (v) => Number.isInteger(v) && v >= 0 && v <= 1000);
    const discount = num(b.discount ?? 1, 'bandit.discount', (v) => v > 0 && v <= 1);
    this.fade = discount;
    const ridge = num(b.ridge ?? 1, 'bandit.ridge', (v) => v > 0);
    const r = o.reward ?? {};
    this.w = {
      quality: num(r.quality ?? 1, 'reward.quality', (v) => v >= 0),
      latency: num(r.latency ?? 0.2, 'reward.latency', (v) => v >= 0),
      resource: num(r.resource ?? 0, 'reward.resource', (v) => v >= 0),
      latencyScaleMs: num(r.latencyScaleMs ?? 100, 'reward.latencyScaleMs', (v) => v > 0),
    };
    this.maxPending = num(o.maxPending ?? 100_000, 'maxPending', (v) => Number.isInteger(v) && v > 0);
    this.maxSessions = num(o.sessions?.max ?? 10_000, 'sessions.max', (v) => Number.isInteger(v) && v > 0);
    this.sessionTtlMs = num(o.sessions?.ttlMs ?? 1_800_000, 'sessions.ttlMs', (v) => v > 0);
    const pendingBytes = num(o.maxPendingBytes ?? 32 * 1024 * 1024, 'maxPendingBytes', (v) => v > 0);
    const sessionBytes = num(o.sessions?.maxBytes ?? 8 * 1024 * 1024, 'sessions.maxBytes', (v) => v > 0);
    this.pending = new BoundedMap(this.maxPending, {
      maxBytes: pendingBytes,
      sizeOf: (k, p) => 96 + 2 * k.length + 8 * p.x.length,
    });
    this.sessions = new BoundedMap(this.maxSessions, {
      maxBytes: sessionBytes,
      sizeOf: (k, s) => 64 + 2 * (k.length + s.arm.length),
    });
    this.rng = new SeededRandom(o.seed ?? 1);
    this.now = o.now ?? Date.now;
    if (typeof o.tasks !== 'object' || o.tasks === null) throw bad('tasks', 'must be an object of task routings');
    const dim = featureDim(this.buckets);
    for (const [name, routing] of Object.entries(o.tasks)) {
      checkRouting(name, routing);
      this.tasksByName.set(name, {
        name,
        routing,
        arms: routing.arms.map((arm) => ({
          arm: { ...arm },
          quality: new LinearArm(dim, ridge, discount, NOISE_PRIOR),
          cost: new LinearArm(dim, ridge, discount, NOISE_PRIOR),
          enabled: true,
          decisions: 0,
          tried: new Float64Array(dim),
          qualitySum: 0,
          qualityN: 0,
          costSum: 0,
          costN: 0,
        })),
        exploreRate: 0,
        decisions: 0,
        seen: new Float64Array(dim),
        explored: new Float64Array(dim),
        shifts: new Map(),
      });
    }
  }

  hasTask(name: string): boolean {
    return this.tasksByName.has(name);
  }

  taskNames(): string[] {
    return [...this.tasksByName.keys()];
  }

  /** Picks the arm for one request; `available` can rule arms out (e.g. a model not ready). */
  chooseRoute(task: string, ctx: RouteContext = {}, available?: (arm: RouteArm) => boolean): RouteDecision {
    const t = this.tasksByName.get(task);
    if (!t)
      throw new WhaleError(
        'ERR_MODEL_NOT_FOUND',
        `task '${task}': not routed here (tasks: ${this.taskNames().join(', ') || 'none'})`,
        { field: 'task' },
      );
    const usable = (a: ArmState) => a.enabled && (available === undefined || available(a.arm));
    const x = featurize(ctx, this.buckets);
    let choice: Choice | undefined;
    const canary = t.routing.canary;
    if (canary && this.rng.next() < canary.share) {
      const a = t.arms.find((s) => s.arm.id === canary.arm)!;
      if (usable(a)) choice = { arm: a, reason: 'canary' };
    }
    const stickyKey = t.routing.sticky && ctx.session !== undefined ? `${task}\u0000${ctx.session}` : undefined;
    if (!choice && stickyKey) {
      const s = this.sessions.get(stickyKey);
      const a = s && this.now() - s.at < this.sessionTtlMs ? t.arms.find((c) => c.arm.id === s.arm) : undefined;
      if (a && usable(a)) choice = { arm: a, reason: 'sticky' };
    }
    choice ??= this.banditChoice(t, x, usable);
    const shift = t.shifts.get(choice.arm.arm.id);
    if (shift && choice.reason !== 'canary' && choice.reason !== 'sticky' && this.rng.next() < shift.share) {
      const to = t.arms.find((a) => a.arm.id === shift.to);
      if (to && usable(to)) choice = { arm: to, reason: 'shift' };
    }
    if (stickyKey) this.remember(stickyKey, choice.arm.arm.id);
    this.count(t, choice.arm, x, choice.reason === 'explore' && choice.optimism === true);
    choice.arm.decisions++;
    t.decisions++;
    // Unguessable (128 random bits): feedback names the answer by this id, so no client can vote on another's.
    const requestId = ctx.requestId ?? `r-${randomBytes(16).toString('base64url')}`;
    this.pending.set(requestId, { task: t, arm: choice.arm, x, costDone: false, qualityDone: false });
    const decision: RouteDecision = { requestId, task, arm: choice.arm.arm, reason: choice.reason };
    const shadow = t.routing.shadow;
    if (shadow && shadow.arm !== choice.arm.arm.id && this.rng.next() < shadow.share) {
      const s = t.arms.find((a) => a.arm.id === shadow.arm)!;
      if (usable(s)) decision.shadow = s.arm;
    }
    return decision;
  }

  /** The answer's cost: latency and (optionally) resource use as a share in [0, 1]. Learned once per request. */
  recordOutcome(requestId: string, o: { latencyMs: number; resource?: number }): boolean {
    const p = this.pending.get(requestId);
    if (!p || p.costDone) return false;
    if (!(Number.isFinite(o.latencyMs) && o.latencyMs >= 0)) throw bad('latencyMs', 'must be a finite number >= 0');
    const resource = o.resource ?? 0;
    if (!(resource >= 0 && resource <= 1)) throw bad('resource', 'must be a share in [0, 1]');
    const cost = this.w.latency * (o.latencyMs / (o.latencyMs + this.w.latencyScaleMs)) + this.w.resource * resource;
    p.costDone = true;
    p.arm.cost.update(p.x, cost);
    p.arm.costSum += cost;
    p.arm.costN++;
    this.forgetIfDone(requestId, p);
    return true;
  }

  /** The answer's quality in [0, 1] (feedback, evaluator score; 0 for a failed answer). Learned once per request. */
  recordQuality(requestId: string, quality: number): boolean {
    const p = this.pending.get(requestId);
    if (!p || p.qualityDone) return false;
    if (!(quality >= 0 && quality <= 1)) throw bad('quality', `must be in [0, 1], got ${quality}`);
    p.qualityDone = true;
    p.arm.quality.update(p.x, quality - QUALITY_PRIOR);
    p.arm.qualitySum += quality;
    p.arm.qualityN++;
    this.forgetIfDone(requestId, p);
    return true;
  }

  /** Sends `share` of the traffic the bandit gives `from` to `to` instead (0 removes the shift). */
  shiftTraffic(task: string, from: string, to: string, share: number): void {
    const t = this.task(task);
    for (const [id, f] of [
      [from, 'from'],
      [to, 'to'],
    ] as const)
      if (!t.arms.some((a) => a.arm.id === id)) throw bad(f, `task '${task}' has no arm '${id}'`);
    if (!(share >= 0 && share <= 1)) throw bad('share', 'must be in [0, 1]');
    if (share === 0) t.shifts.delete(from);
    else t.shifts.set(from, { to, share });
  }

  setArmEnabled(task: string, armId: string, enabled: boolean): void {
    const a = this.task(task).arms.find((s) => s.arm.id === armId);
    if (!a) throw bad('arm', `task '${task}' has no arm '${armId}'`);
    a.enabled = enabled;
  }

  /** Arms serving `model` in any task (for version rollbacks). */
  armsOfModel(model: string): { task: string; arm: string }[] {
    const out: { task: string; arm: string }[] = [];
    for (const t of this.tasksByName.values())
      for (const a of t.arms) if (a.arm.model === model) out.push({ task: t.name, arm: a.arm.id });
    return out;
  }

  stats(task: string) {
    const t = this.task(task);
    return {
      task,
      decisions: t.decisions,
      exploreRate: t.exploreRate,
      arms: t.arms.map((a) => ({
        id: a.arm.id,
        model: a.arm.model,
        ...(a.arm.level === undefined ? {} : { level: a.arm.level }),
        enabled: a.enabled,
        decisions: a.decisions,
        share: t.decisions === 0 ? 0 : a.decisions / t.decisions,
        quality: { n: a.qualityN, mean: a.qualityN === 0 ? null : a.qualitySum / a.qualityN },
        cost: { n: a.costN, mean: a.costN === 0 ? null : a.costSum / a.costN },
        shift: t.shifts.get(a.arm.id) ?? null,
      })),
    };
  }

  private banditChoice(t: TaskState, x: number[], usable: (a: ArmState) => boolean): Choice {
    let greedy: ArmState | undefined;
    let optimistic: ArmState | undefined;
    let untried: ArmState | undefined;
    let gBest = -Infinity;
    let oBest = -Infinity;
    let fewest = this.minTries;
    let candidates = 0;
    for (const a of t.arms) {
      if (!usable(a)) continue;
      candidates++;
      const tries = minOver(a.tried, x);
      if (tries < fewest) [fewest, untried] = [tries, a];
      const q = a.quality.mean(x) + QUALITY_PRIOR;
      const c = a.cost.mean(x);
      const g = this.w.quality * q - c;
      // Costs are observed on every answer, so their uncertainty shrinks fast: optimism is on quality only,
      // in units of the quality feedback's own spread in this context.
      const o = g + this.w.quality * optimism(this.alpha, a.quality.noise(x, NOISE_FLOOR), a.quality.width(x));
      if (g > gBest) [gBest, greedy] = [g, a];
      if (o > oBest) [oBest, optimistic] = [o, a];
    }
    if (!greedy || !optimistic)
      throw new WhaleError('ERR_MODEL_NOT_READY', `task '${t.name}': no arm can take requests now`, {
        field: 'task',
        retriable: true,
      });
    if (candidates === 1) return { arm: greedy, reason: 'only' };
    const underCap = t.exploreRate < this.maxExplore;
    let choice: Choice = { arm: greedy, reason: 'bandit' };
    if (untried && untried !== greedy && underCap) choice = { arm: untried, reason: 'explore' };
    else if (
      optimistic !== greedy &&
      underCap &&
      minOver(t.explored, x) < exploreBudget(candidates, minOver(t.seen, x))
    )
      choice = { arm: optimistic, reason: 'explore', optimism: true };
    t.exploreRate += EXPLORE_RATE_DECAY * ((choice.reason === 'explore' ? 1 : 0) - t.exploreRate);
    return choice;
  }

  /** Counts a decision in its context's features; fades the context's decision and exploration counts by the discount (not the tries). */
  private count(t: TaskState, a: ArmState, x: number[], explored: boolean): void {
    if (this.fade !== 1) {
      fadeAll(t.seen, this.fade);
      fadeAll(t.explored, this.fade);
    }
    for (let k = 0; k < x.length; k++) {
      const f = x[k]!;
      t.seen[f]!++;
      a.tried[f]!++;
      if (explored) t.explored[f]!++;
    }
  }

  private remember(key: string, arm: string): void {
    this.sessions.set(key, { arm, at: this.now() });
  }

  private forgetIfDone(requestId: string, p: Pending): void {
    if (p.costDone && p.qualityDone) this.pending.delete(requestId);
  }

  private task(name: string): TaskState {
    const t = this.tasksByName.get(name);
    if (!t) throw new WhaleError('ERR_MODEL_NOT_FOUND', `task '${name}': not routed here`, { field: 'task' });
    return t;
  }
}
