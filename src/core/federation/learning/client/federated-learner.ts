/**
 * The client side of a federation, runnable in its own process: hosts one or
 * more clients (data shards), registers them (and repeats it as a
 * heartbeat), and for every round it is selected in: fetches the global model
 * (claim-check, hash verified), reports its accuracy on the local data
 * (federated evaluation), trains E epochs with batch B, and sends the delta
 * with its example count, compressed as the round asks.
 */
import { createLogger, type Logger } from '../../../../common/logger.js';
import { createEnvelope, type Envelope } from '../../../../transport/envelope.js';
import type { Bus, Subscription } from '../../../../transport/bus.js';
import { payloadProblem } from '../../../../transport/topics.js';
import { TopKCompressor } from '../../../memory/topk.js';
import { ClaimCheck } from '../../orchestration/claim-check.js';
import type { KeyValueStore } from '../../orchestration/kv-store.js';
import {
  MESSAGE,
  type FederationEnded,
  type RoundStarted,
  type UpdateSubmitted,
} from '../../orchestration/messages.js';
import { FEDERATION_TOPICS } from '../../orchestration/topics.js';
import type { ClientDataset } from '../dataset.js';
import { checkWeights, layoutSize, trainerLayout, type Trainer, type WeightLayout } from '../trainer.js';

export interface FederatedLearnerOptions {
  federationId: string;
  learnerId: string;
  bus: Bus;
  /** The blob store the coordinator uses (shared disk directory or Redis). */
  store: KeyValueStore;
  /** Trains and evaluates the model (any layout): TfjsTrainer, defineTrainer or your own. */
  trainer: Trainer;
  /** The clients this learner hosts: client id -> its local dataset. */
  clients: ReadonlyMap<string, ClientDataset>;
  /** Registration repeated this often (the coordinator's liveness signal). Default 2 s. */
  heartbeatMs?: number;
  /**
   * Give up (`ended` resolves, `gaveUp` is set) when nothing of this federation was heard on the rounds
   * topic for this long while the learner had no work of its own (a coordinator that died without
   * ending the federation). Must exceed the coordinator's longest silence: a round's deadline plus its
   * wait for clients. Default 0: wait forever.
   */
  giveUpAfterMs?: number;
  seed?: number;
  logger?: Logger;
}

export interface LearnerStats {
  rounds: number;
  updatesSent: number;
  failures: number;
  skippedLate: number;
  bytesSent: number;
}

export class FederatedLearner {
  readonly stats: LearnerStats = { rounds: 0, updatesSent: 0, failures: 0, skippedLate: 0, bytesSent: 0 };
  /** Resolves when the coordinator ends the federation (with its reason). */
  readonly ended: Promise<string>;
  private resolveEnded!: (reason: string) => void;
  private readonly logger: Logger;
  private readonly topk = new Map<number, TopKCompressor>();
  private sub: Subscription | undefined;
  private heartbeat: NodeJS.Timeout | undefined;
  private queue: Promise<void> = Promise.resolve();
  private readonly seen = new Set<string>();
  private closed = false;
  private lastHeard = Date.now();
  private busy = 0;
  private watchdog: NodeJS.Timeout | undefined;
  /** Set when the learner gave up on a silent coordinator (giveUpAfterMs). */
  gaveUp = false;
  private layout: WeightLayout | undefined;
  private params = 0;

  constructor(private readonly o: FederatedLearnerOptions) {
    this.logger = o.logger ?? createLogger(`federation-learner/${o.learnerId}`);
    this.ended = new Promise((resolve) => (this.resolveEnded = resolve));
  }

  async start(): Promise<void> {
    this.layout = await trainerLayout(this.o.trainer);
    this.params = layoutSize(this.layout);
    const group = `federation-learner-${this.o.learnerId}`;
    this.sub = await this.o.bus.subscribe(FEDERATION_TOPICS.rounds, (e) => this.onRounds(e), { group });
    await this.register();
    this.heartbeat = setInterval(
      () =>
        void this.register().catch((err) => this.logger.warn('registration failed', { error: (err as Error).message })),
      this.o.heartbeatMs ?? 2000,
    );
    this.heartbeat.unref();
    const giveUp = this.o.giveUpAfterMs ?? 0;
    if (giveUp > 0) {
      this.lastHeard = Date.now();
      this.watchdog = setInterval(
        () => {
          if (this.busy > 0 || this.closed || Date.now() - this.lastHeard < giveUp) return;
          clearInterval(this.watchdog);
          this.gaveUp = true;
          this.logger.warn('the coordinator is silent: giving up', {
            federationId: this.o.federationId,
            silentMs: Date.now() - this.lastHeard,
          });
          this.resolveEnded(
            `no word from the coordinator of ${this.o.federationId} for ${Math.round(giveUp / 1000)} s`,
          );
        },
        Math.max(50, Math.min(1000, giveUp / 4)),
      );
      this.watchdog.unref();
    }
  }

  /** Leaves the federation (the coordinator stops selecting these clients) and stops listening. */
  async stop(reason = 'stopped'): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.heartbeat);
    clearInterval(this.watchdog);
    await this.sub?.close();
    await this.queue.catch(() => undefined);
    const payload = { federationId: this.o.federationId, learnerId: this.o.learnerId, reason };
    await this.o.bus
      .publish(FEDERATION_TOPICS.clients, createEnvelope({ type: MESSAGE.left, source: this.source, payload }), {
        key: this.o.federationId,
      })
      .catch(() => undefined);
  }

  private get source(): string {
    return `federation-learner/${this.o.learnerId}`;
  }

  private async register(): Promise<void> {
    const clients = [...this.o.clients].map(([id, d]) => ({ id, examples: d.size }));
    const payload = { federationId: this.o.federationId, learnerId: this.o.learnerId, clients };
    await this.o.bus.publish(
      FEDERATION_TOPICS.clients,
      createEnvelope({ type: MESSAGE.registered, source: this.source, payload }),
      { key: this.o.federationId },
    );
  }

  private onRounds(e: Envelope): void {
    const p = e.payload as { federationId?: unknown };
    if (p?.federationId !== this.o.federationId || this.closed) return;
    this.lastHeard = Date.now();
    if (e.type === MESSAGE.ended) {
      this.resolveEnded((e.payload as FederationEnded).reason);
      return;
    }
    if (e.type !== MESSAGE.roundStarted) return;
    const problem = payloadProblem(MESSAGE.roundStarted, e.payload);
    if (problem) return void this.logger.warn('malformed round start ignored', { problem });
    const r = e.payload as RoundStarted;
    const mine = r.clients.filter((c) => this.o.clients.has(c));
    const key = `${r.round}:${e.id}`;
    if (mine.length === 0 || this.seen.has(key)) return;
    this.seen.add(key);
    // Training takes seconds: the handler returns at once (the bus keeps its heartbeats) and rounds queue up.
    this.busy++;
    this.queue = this.queue
      .then(() => this.runRound(r, mine))
      .catch((err) => this.logger.error('round failed', { round: r.round, error: (err as Error).message }))
      .finally(() => {
        // Silence is counted from the end of this learner's own work: the coordinator was waiting for it.
        this.busy--;
        this.lastHeard = Date.now();
      });
  }

  private async runRound(r: RoundStarted, mine: string[]): Promise<void> {
    if (this.closed) return;
    this.stats.rounds++;
    const claims = new ClaimCheck(this.o.store, r.config.inlineBytes);
    let global: Float32Array;
    try {
      global = await claims.unpack(r.model, this.params, 'model');
    } catch (err) {
      for (const c of mine) await this.fail(r, c, `global model unusable: ${(err as Error).message}`);
      return;
    }
    for (const clientId of mine) {
      if (this.closed) return;
      if (Date.now() > r.deadline) {
        this.stats.skippedLate++;
        continue; // the coordinator has counted it missing already
      }
      try {
        await this.trainOne(r, clientId, global, claims);
      } catch (err) {
        await this.fail(r, clientId, (err as Error).message);
      }
    }
  }

  private async trainOne(r: RoundStarted, clientId: string, global: Float32Array, claims: ClaimCheck): Promise<void> {
    const data = this.o.clients.get(clientId)!;
    const t0 = performance.now();
    const local = await this.o.trainer.evaluate(global, data);
    const seed = (this.o.seed ?? 1) * 7919 + r.round * 131 + Number.parseInt(clientId.replace(/\D/g, '') || '0', 10);
    const fit = await this.o.trainer.fit(global, data, {
      epochs: r.config.epochs,
      batchSize: r.config.batch,
      learningRate: r.config.lr,
      ...(r.config.mu === undefined ? {} : { proximalMu: r.config.mu }),
      seed,
      round: r.round,
    });
    const delta = checkWeights(fit.delta, this.layout!, 'fit().delta');
    const loss = fit.metrics.loss;
    const update =
      r.config.uplink === 'topk'
        ? await claims.packSparse(this.compressor(r.config.topkRatio ?? 0.1).compress(clientId, delta), 'f32')
        : await claims.packDense(delta, r.config.uplink);
    const payload: UpdateSubmitted = {
      federationId: this.o.federationId,
      round: r.round,
      clientId,
      learnerId: this.o.learnerId,
      examples: fit.examples,
      update,
      ...(finite(local.accuracy) ? { localAccuracy: local.accuracy } : {}),
      ...(finite(local.loss) ? { localLoss: local.loss } : {}),
      trainMs: performance.now() - t0,
      ...(finite(loss) ? { trainLoss: loss } : {}),
    };
    await this.o.bus.publish(
      FEDERATION_TOPICS.updates,
      createEnvelope({ type: MESSAGE.update, source: this.source, payload }),
      { key: this.o.federationId },
    );
    this.stats.updatesSent++;
    this.stats.bytesSent += update.data.bytes + (update.indices?.bytes ?? 0);
  }

  private compressor(ratio: number): TopKCompressor {
    let c = this.topk.get(ratio);
    if (!c) this.topk.set(ratio, (c = new TopKCompressor({ ratio })));
    return c;
  }

  private async fail(r: RoundStarted, clientId: string, reason: string): Promise<void> {
    this.stats.failures++;
    const payload = {
      federationId: this.o.federationId,
      round: r.round,
      clientId,
      learnerId: this.o.learnerId,
      reason,
    };
    await this.o.bus
      .publish(FEDERATION_TOPICS.updates, createEnvelope({ type: MESSAGE.failed, source: this.source, payload }), {
        key: this.o.federationId,
      })
      .catch(() => undefined);
  }
}

function finite(v: unknown): v is number {
  return typeof v === 'number' && Number.isFinite(v);
}
