/**
 * Runs a federation's rounds over the bus: select clients, send the global
 * model (claim-checked), collect updates until every selected client answered
 * or the deadline passed, aggregate with the native Aggregator and apply the
 * ServerOptimizer, evaluate, checkpoint. A round that cannot gather
 * minClients updates is retried, then fails with ERR_NO_CLIENTS.
 *
 *   const c = new ModelCoordinator({ federationId: 'mnist', bus, store, initialModel, rounds: 10, fraction: 0.1,
 *                                    epochs: 1, batch: 10, learning: { clientLr: 0.05 } });
 *   const summary = await c.run();
 */
import { WhaleError } from '../../../common/errors.js';
import { createLogger, type Logger } from '../../../common/logger.js';
import { createEnvelope, type Envelope } from '../../../transport/envelope.js';
import type { Subscription } from '../../../transport/bus.js';
import { payloadProblem } from '../../../transport/topics.js';
import { Aggregator } from '../learning/aggregator.js';
import { ServerOptimizer } from '../learning/server-optimizer.js';
import { CheckpointStore } from './checkpoint-store.js';
import { ClaimCheck, refBytes, type TensorRef } from './claim-check.js';
import { ClientRegistry } from './client-registry.js';
import { selectClients } from './client-selector.js';
import {
  resolveCoordinatorOptions,
  type ModelCoordinatorOptions,
  type ResolvedCoordinatorOptions,
} from './coordinator-options.js';
import { MESSAGE, type ClientsRegistered, type LearnerLeft, type RoundStarted } from './messages.js';
import type { RoundResult } from './round-result.js';
import { TaskManager } from './task-manager.js';
import { FEDERATION_TOPICS } from './topics.js';
import { UpdateIntake, type OpenRound } from './update-intake.js';

export interface FederationSummary {
  federationId: string;
  /** Round the run started from (0: fresh; n: resumed after round n). */
  resumedFrom: number;
  completedRounds: number;
  history: RoundResult[];
  /** First round whose test accuracy reached the target, if any. */
  roundsToTarget?: number;
  bestAccuracy?: number;
  rejected: Partial<Record<string, number>>;
  wallSeconds: number;
  reason: 'rounds' | 'target';
}

export class ModelCoordinator {
  readonly options: ResolvedCoordinatorOptions;
  readonly tasks: TaskManager;
  readonly registry: ClientRegistry;
  private readonly claims: ClaimCheck;
  private readonly intake: UpdateIntake;
  private readonly checkpoints: CheckpointStore | undefined;
  private readonly aggregator: Aggregator;
  private readonly serverOpt: ServerOptimizer;
  private readonly logger: Logger;
  private global: Float32Array | undefined;
  private history: RoundResult[] = [];
  private subs: Subscription[] = [];
  private stopped: WhaleError | undefined;
  private wake: (() => void) | undefined;

  constructor(o: ModelCoordinatorOptions) {
    this.options = resolveCoordinatorOptions(o);
    this.logger = o.logger ?? createLogger('federation-coordinator');
    this.aggregator = new Aggregator(this.options.aggregator);
    this.serverOpt = new ServerOptimizer(this.options.serverOptimizer);
    this.tasks = new TaskManager(this.options.federationId, this.options.bus, this.logger);
    this.registry = new ClientRegistry({
      silentAfterMs: this.options.silentAfterMs,
      maxMissedRounds: this.options.maxMissedRounds,
    });
    this.claims = new ClaimCheck(this.options.store, this.options.inlineBytes);
    this.intake = new UpdateIntake(this.options.federationId, this.registry, this.tasks, this.claims);
    this.checkpoints = o.checkpoints === false ? undefined : (o.checkpoints ?? new CheckpointStore(this.options.store));
  }

  /** The current global model (a copy). */
  model(): Float32Array | undefined {
    return this.global?.slice();
  }

  /** Stops a running federation (run() rejects with ERR_CANCELLED); completed rounds stay checkpointed. */
  stop(reason = 'stopped'): void {
    this.stopped ??= new WhaleError('ERR_CANCELLED', `federation ${this.options.federationId}: ${reason}`);
    this.wake?.();
  }

  /** Subscribes to registrations and updates; run() does it too, call it first to hear learners that start before run(). */
  async open(): Promise<void> {
    if (this.subs.length === 0) await this.subscribe();
  }

  async run(): Promise<FederationSummary> {
    const o = this.options;
    const started = performance.now();
    const ckpt = this.checkpoints ? await this.checkpoints.load(o.federationId) : undefined;
    const initial = Float32Array.from(await o.initialModel());
    if (ckpt && ckpt.weights.length !== initial.length) {
      // Another model or architecture: say so now, not after rounds in which every update is refused.
      throw new WhaleError(
        'ERR_SHAPE_MISMATCH',
        `checkpoint of ${o.federationId} (after round ${ckpt.round}) holds ${ckpt.weights.length} parameters, this model has ${initial.length}: ` +
          'it was written for another model or architecture (resume it with that model, or start a new federation id)',
        { field: 'checkpoint' },
      );
    }
    this.global = ckpt ? ckpt.weights : initial;
    this.history = ckpt ? ckpt.history : [];
    const resumedFrom = ckpt?.round ?? 0;
    if (ckpt) await this.tasks.event('federation.resumed', { round: ckpt.round });
    await this.open();
    this.firstRound = resumedFrom + 1;
    let reason: FederationSummary['reason'] = 'rounds';
    try {
      const done = this.history.some((h) => o.learning.reachedTarget(h.testAccuracy));
      for (let round = resumedFrom + 1; round <= o.rounds && !done; round++) {
        const result = await this.runRound(round);
        if (o.learning.reachedTarget(result.testAccuracy)) {
          reason = 'target';
          break;
        }
      }
      await this.announceEnd(reason, this.history.at(-1)?.round);
    } catch (err) {
      // A stopped coordinator says nothing more (as if killed): learners keep waiting for its successor.
      if (!this.stopped)
        await this.announceEnd(`failed: ${(err as Error).message}`, this.intake.lastRound).catch(() => undefined);
      throw err;
    } finally {
      await this.unsubscribe();
    }
    return this.summary(resumedFrom, reason, (performance.now() - started) / 1000);
  }

  private summary(resumedFrom: number, reason: FederationSummary['reason'], wallSeconds: number): FederationSummary {
    const accs = this.history.map((h) => h.testAccuracy).filter((a): a is number => a !== undefined);
    const hit = this.history.find((h) => this.options.learning.reachedTarget(h.testAccuracy));
    return {
      federationId: this.options.federationId,
      resumedFrom,
      completedRounds: this.history.at(-1)?.round ?? 0,
      history: this.history,
      ...(hit ? { roundsToTarget: hit.round } : {}),
      ...(accs.length ? { bestAccuracy: Math.max(...accs) } : {}),
      rejected: { ...this.tasks.rejectedByReason },
      wallSeconds,
      reason,
    };
  }

  private async runRound(round: number): Promise<RoundResult> {
    const o = this.options;
    const t0 = performance.now();
    for (let attempt = 1; ; attempt++) {
      this.checkStopped();
      const open = await this.attempt(round, attempt);
      if (open && open.accepted.size >= o.minClients) return this.finishRound(round, attempt, open, t0);
      const got = open?.accepted.size ?? 0;
      // Too few updates: they are not aggregated, and their stored blobs are released.
      if (open) await this.release(open);
      if (attempt >= o.maxRoundAttempts) {
        const err = new WhaleError(
          'ERR_NO_CLIENTS',
          `round ${round}: ${got} update(s) after ${attempt} attempt(s), the federation needs minClients = ${o.minClients} (registered and active: ${this.registry.active().length})`,
          { field: 'minClients', retriable: true },
        );
        await this.tasks.event('federation.round.failed', {
          round,
          attempts: attempt,
          received: got,
          reason: err.message,
        });
        throw err;
      }
      await this.tasks.event('federation.round.retry', { round, attempt, received: got, minClients: o.minClients });
    }
  }

  /** One attempt at a round; undefined when not enough clients registered in time. */
  private async attempt(round: number, attempt: number): Promise<OpenRound | undefined> {
    const o = this.options;
    const waitUntil = Date.now() + o.waitForClientsMs;
    // The first round waits for the clients the caller expects (all learners up), later ones for minClients.
    const want = round === this.firstRound && attempt === 1 ? Math.max(o.minClients, o.expectClients) : o.minClients;
    while (this.registry.active().length < want && Date.now() < waitUntil && !this.stopped)
      await this.sleep(Math.min(100, waitUntil - Date.now()));
    this.checkStopped(); // stop() while waiting for clients ends the run now, not after waitForClientsMs
    const available = this.registry.active();
    if (available.length < o.minClients) return undefined;
    const selected = selectClients(available, {
      fraction: o.fraction,
      minClients: o.minClients,
      seed: o.seed,
      round: round * 101 + attempt,
    });
    this.tasks.startRound(round, attempt, selected);
    const model = await this.claims.packDense(this.global!, o.downlinkCodec);
    const deadline = Date.now() + o.roundTimeoutMs;
    let settle!: () => void;
    const settled = new Promise<void>((resolve) => (settle = resolve));
    const open: OpenRound = {
      round,
      clients: new Set(selected),
      deadline,
      params: this.global!.length,
      accepted: new Map(),
      onChange: () => {
        if (
          selected.every((c) => this.tasks.stateOf(round, c) !== 'sent' && this.tasks.stateOf(round, c) !== 'trained')
        )
          settle();
      },
    };
    const config = {
      epochs: o.epochs,
      batch: o.batch,
      lr: o.learning.clientLr(round),
      mu: o.learning.mu,
      uplink: o.uplink,
      inlineBytes: o.inlineBytes,
      ...(o.topkRatio === undefined ? {} : { topkRatio: o.topkRatio }),
    };
    const msg: RoundStarted = { federationId: o.federationId, round, clients: selected, model, deadline, config };
    for (const c of selected) this.tasks.setState(round, c, 'sent');
    this.intake.lastRound = round;
    this.intake.open = open;
    await this.tasks.event('federation.round.started', { round, attempt, selected: selected.length, deadline });
    this.roundModel = model;
    this.roundBytesDown = refBytes(model) * selected.length;
    try {
      await o.bus.publish(
        FEDERATION_TOPICS.rounds,
        createEnvelope({ type: MESSAGE.roundStarted, source: this.source, payload: msg }),
        { key: o.federationId },
      );
      const timer = setTimeout(settle, Math.max(0, deadline - Date.now()));
      this.wake = settle;
      await settled;
      clearTimeout(timer);
      this.wake = undefined;
    } finally {
      this.intake.open = undefined;
    }
    this.checkStopped();
    for (const c of selected) {
      const s = this.tasks.stateOf(round, c);
      if (s === 'sent' || s === 'trained') {
        this.tasks.setState(round, c, 'missing');
        this.registry.missed(c);
      } else if (s === 'received') this.registry.answered(c);
    }
    return open;
  }

  private firstRound = 1;
  private roundModel: TensorRef | undefined;
  private roundBytesDown = 0;
  private readonly source = `federation-coordinator`;

  private async finishRound(round: number, attempts: number, open: OpenRound, t0: number): Promise<RoundResult> {
    const o = this.options;
    const accepted = [...open.accepted.values()].sort((a, b) => (a.clientId < b.clientId ? -1 : 1));
    const updates = o.roundHook ? o.roundHook.beforeAggregate(round, accepted) : accepted;
    if (updates.length === 0)
      throw new WhaleError('ERR_NO_CLIENTS', `round ${round}: every update was filtered out before aggregation`, {
        field: 'updates',
      });
    const agg = await this.aggregator.aggregate(
      updates.map((u) => u.delta),
      updates.map((u) => u.examples),
    );
    if (o.roundHook) agg.params = o.roundHook.afterAggregate(round, agg.params, updates);
    const serverLr = o.learning.serverLr(round);
    const global = this.global!;
    const target = new Float32Array(global.length);
    for (let i = 0; i < global.length; i++) target[i] = global[i]! + serverLr * agg.params[i]!;
    await this.serverOpt.step(global, target);
    const evaluation = o.evaluate ? await o.evaluate(global) : undefined;
    const weighted = (pick: (u: (typeof updates)[number]) => number | undefined): number | undefined => {
      const have = updates.filter((u) => pick(u) !== undefined);
      const n = have.reduce((s, u) => s + u.examples, 0);
      return n > 0 ? have.reduce((s, u) => s + pick(u)! * u.examples, 0) / n : undefined;
    };
    const result: RoundResult = {
      round,
      attempts,
      selected: open.clients.size,
      received: updates.length,
      missing: this.tasks.clientsIn(round, 'missing'),
      failed: this.tasks.clientsIn(round, 'failed'),
      rejected: this.tasks.rejections.filter((r) => r.round === round).length,
      ...(Number.isFinite(evaluation?.accuracy) ? { testAccuracy: evaluation!.accuracy! } : {}),
      ...(Number.isFinite(evaluation?.loss) ? { testLoss: evaluation!.loss! } : {}),
      ...optional(
        'federatedAccuracy',
        weighted((u) => u.localAccuracy),
      ),
      ...optional(
        'trainLoss',
        weighted((u) => u.trainLoss),
      ),
      bytesUp: updates.reduce((s, u) => s + u.bytes, 0),
      bytesDown: this.roundBytesDown,
      clientLr: o.learning.clientLr(round),
      serverLr,
      aggregateDevice: agg.device,
      seconds: (performance.now() - t0) / 1000,
      ...(o.roundHook ? { security: o.roundHook.report(round) } : {}),
    };
    this.history.push(result);
    await this.checkpoints?.save({ federationId: o.federationId, round, weights: global, history: this.history });
    await this.release(open);
    o.onRound?.(result, { updates, aggregate: agg.params, global: global.slice() });
    await this.tasks.event('federation.round.completed', result);
    await this.tasks.metrics(round, {
      round_test_accuracy: result.testAccuracy,
      round_test_loss: result.testLoss,
      round_federated_accuracy: result.federatedAccuracy,
      round_received: result.received,
      round_missing: result.missing.length,
      round_bytes_up: result.bytesUp,
      round_bytes_down: result.bytesDown,
      round_seconds: result.seconds,
      updates_rejected_total: this.tasks.rejectedTotal,
    });
    return result;
  }

  /** Stored blobs of a finished round are not needed any more (late readers get ERR_NOT_FOUND). */
  private async release(open: OpenRound): Promise<void> {
    const refs = [...(this.roundModel ? [this.roundModel] : []), ...[...open.accepted.values()].map((u) => u.ref)];
    for (const ref of refs) await this.claims.release(ref).catch(() => undefined);
  }

  private async subscribe(): Promise<void> {
    const o = this.options;
    const group = `federation-coordinator-${o.federationId}`;
    this.subs.push(await o.bus.subscribe(FEDERATION_TOPICS.updates, (e) => this.intake.handle(e), { group }));
    this.subs.push(await o.bus.subscribe(FEDERATION_TOPICS.clients, (e) => this.onClients(e), { group }));
  }

  private async unsubscribe(): Promise<void> {
    const subs = this.subs.splice(0);
    await Promise.allSettled(subs.map((s) => s.close()));
  }

  private onClients(e: Envelope): void {
    const p = e.payload as { federationId?: unknown };
    if (p?.federationId !== this.options.federationId) return;
    if (e.type === MESSAGE.registered) {
      const problem = payloadProblem(MESSAGE.registered, e.payload);
      if (problem)
        return void this.tasks.reject({
          round: -1,
          clientId: undefined,
          reason: 'malformed',
          detail: `registration: ${problem}`,
        });
      const r = e.payload as ClientsRegistered;
      const fresh = r.clients.filter((c) => typeof c.id === 'string' && Number.isInteger(c.examples) && c.examples > 0);
      this.registry.register(r.learnerId, fresh);
    } else if (e.type === MESSAGE.left) {
      if (payloadProblem(MESSAGE.left, e.payload)) return;
      const l = e.payload as LearnerLeft;
      const gone = this.registry.leave(l.learnerId);
      void this.tasks.event('federation.learner.left', {
        learnerId: l.learnerId,
        reason: l.reason,
        clients: gone.length,
      });
      const open = this.intake.open;
      if (!open) return;
      for (const c of gone) {
        if (open.clients.has(c) && this.tasks.stateOf(open.round, c) === 'sent')
          this.tasks.setState(open.round, c, 'failed', `learner ${l.learnerId} left: ${l.reason}`);
      }
      open.onChange();
    }
  }

  private async announceEnd(reason: string, round: number | undefined): Promise<void> {
    const o = this.options;
    const payload = { federationId: o.federationId, reason, ...(round === undefined ? {} : { round }) };
    await o.bus.publish(
      FEDERATION_TOPICS.rounds,
      createEnvelope({ type: MESSAGE.ended, source: this.source, payload }),
      { key: o.federationId },
    );
    await this.tasks.event('federation.ended', payload);
    await this.tasks.flush();
  }

  private checkStopped(): void {
    if (this.stopped) throw this.stopped;
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(resolve, Math.max(0, ms));
      this.wake = () => {
        clearTimeout(t);
        resolve();
      };
    });
  }
}

function optional<K extends string>(key: K, v: number | undefined): { [P in K]?: number } {
  return (v === undefined ? {} : { [key]: v }) as { [P in K]?: number };
}
