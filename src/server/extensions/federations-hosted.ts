/**
 * One federation hosted by `whale start`: a ModelCoordinator on the server's bus that trains the served
 * model (its dense ONNX weights) with learners elsewhere, evaluates every round on the held-out set, and
 * hands each round that passes the quality gate (held-out accuracy >= the served version's + margin) to
 * `publish`, which makes it a new version of the served model.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { WhaleError } from '../../common/errors.js';
import type { Logger } from '../../common/logger.js';
import type { FederationConfig } from '../../config/federations.js';
import { openKv } from '../../core/federation/orchestration/kv-store.js';
import { ModelCoordinator } from '../../core/federation/orchestration/model-coordinator.js';
import type { RoundResult } from '../../core/federation/orchestration/round-result.js';
import type { Bus } from '../../transport/bus.js';
import { denseWithWeights, evaluateOnnx, flattenDense, loadHeldOut, type DenseNet } from './federations-onnx.js';

export type FederationState = 'starting' | 'running' | 'completed' | 'failed' | 'stopped';

export interface FederationRoundInfo {
  round: number;
  accuracy?: number;
  loss?: number;
  selected: number;
  received: number;
  missing: number;
  rejected: number;
  seconds: number;
  /** The version this round became, when it passed the gate. */
  version?: string;
  gate?: 'passed' | 'below';
}

export interface Evaluation {
  accuracy: number;
  loss: number;
}

export interface PublishRequest {
  federationId: string;
  model: string;
  round: number;
  bytes: Uint8Array;
  evaluation: Evaluation;
  served: { version: string; evaluation: Evaluation };
}

export interface HostedFederationOptions {
  id: string;
  model: string;
  config: FederationConfig;
  bus: Bus;
  /** The served version's ONNX bytes and version name. */
  served: { version: string; bytes: Uint8Array; net: DenseNet };
  /** Default directory of the blob store when the config names none. */
  storeRoot?: string;
  /** Makes a passing round a new version; resolves with the version name. */
  publish: (p: PublishRequest) => Promise<string>;
  event: (type: string, data: Record<string, unknown>) => void;
  logger: Logger;
}

export class HostedFederation {
  state: FederationState = 'starting';
  readonly rounds: FederationRoundInfo[] = [];
  readonly versions: string[] = [];
  readonly startedAt = new Date().toISOString();
  endedAt: string | undefined;
  error: string | undefined;
  served: Evaluation | undefined;
  private coordinator: ModelCoordinator | undefined;
  private publishing: Promise<void> = Promise.resolve();
  private bar = -Infinity;
  private stopRequested = false;
  /** Settles when the federation is over (completed, failed or stopped). */
  readonly done: Promise<void>;

  constructor(private readonly o: HostedFederationOptions) {
    this.done = this.run();
  }

  get id(): string {
    return this.o.id;
  }

  get model(): string {
    return this.o.model;
  }

  /** Completed, failed or stopped. */
  get over(): boolean {
    return this.state === 'completed' || this.state === 'failed' || this.state === 'stopped';
  }

  stop(): void {
    this.stopRequested = true;
    this.coordinator?.stop('stopped over DELETE /v1/federations');
  }

  /** GET /v1/federations/{id}. */
  info(): Record<string, unknown> {
    const c = this.coordinator;
    return {
      id: this.o.id,
      model: this.o.model,
      state: this.state,
      startedAt: this.startedAt,
      ...(this.endedAt ? { endedAt: this.endedAt } : {}),
      ...(this.error ? { error: this.error } : {}),
      servedVersion: this.o.served.version,
      ...(this.served ? { servedEvaluation: this.served } : {}),
      gate: { margin: this.o.config.gate.margin, publish: this.o.config.publish },
      rounds: this.rounds,
      versions: this.versions,
      clients: c ? c.registry.active() : [],
      rejected: c ? { ...c.tasks.rejectedByReason } : {},
      config: { ...this.o.config, storeDir: undefined, redisUrl: undefined },
    };
  }

  private async run(): Promise<void> {
    const { config: cfg, served } = this.o;
    // Under federations.storeDir a federation keeps one directory per id (a restart with the same id resumes).
    const temporary = cfg.storeDir === undefined && this.o.storeRoot === undefined;
    const dir =
      cfg.storeDir ??
      (this.o.storeRoot
        ? join(this.o.storeRoot, this.o.id)
        : mkdtempSync(join(tmpdir(), `whale-federation-${this.o.id}-`)));
    mkdirSync(dir, { recursive: true });
    const store = await openKv({ dir, redisUrl: cfg.redisUrl });
    try {
      const held = loadHeldOut(cfg.heldOut);
      this.served = await evaluateOnnx(served.bytes, served.net, held);
      this.bar = this.served.accuracy + cfg.gate.margin;
      if (this.stopRequested) throw new WhaleError('ERR_CANCELLED', 'stopped before it started');
      const weightsOf = (w: Float32Array) => denseWithWeights(served.net, w);
      this.coordinator = new ModelCoordinator({
        federationId: this.o.id,
        bus: this.o.bus,
        store,
        initialModel: () => flattenDense(served.net),
        evaluate: (w) => evaluateOnnx(weightsOf(w), served.net, held),
        rounds: cfg.rounds,
        fraction: cfg.fraction,
        minClients: cfg.minClients,
        expectClients: cfg.expectClients,
        seed: cfg.seed,
        epochs: cfg.epochs,
        batch: cfg.batch,
        learning: { clientLr: cfg.lr },
        aggregator: { strategy: cfg.strategy },
        uplink: cfg.uplink,
        roundTimeoutMs: cfg.roundTimeoutMs,
        waitForClientsMs: cfg.waitForClientsMs,
        onRound: (r, d) => this.onRound(r, d.global),
        logger: this.o.logger,
      });
      await this.coordinator.open();
      this.state = 'running';
      this.o.event('federation.hosted.started', { federationId: this.o.id, model: this.o.model });
      await this.coordinator.run();
      await this.publishing;
      this.state = 'completed';
    } catch (err) {
      await this.publishing.catch(() => undefined);
      this.state = this.stopRequested ? 'stopped' : 'failed';
      if (!this.stopRequested) {
        this.error = (err as Error).message;
        this.o.logger.warn('hosted federation failed', { federationId: this.o.id, error: this.error });
      }
    } finally {
      this.endedAt = new Date().toISOString();
      await store.close().catch(() => undefined);
      // A temporary store of a finished federation holds nothing to resume.
      if (temporary && this.state === 'completed') rmSync(dir, { recursive: true, force: true });
      this.o.event('federation.hosted.ended', { federationId: this.o.id, state: this.state, versions: this.versions });
    }
  }

  private onRound(r: RoundResult, global: Float32Array): void {
    const info: FederationRoundInfo = {
      round: r.round,
      ...(r.testAccuracy === undefined ? {} : { accuracy: r.testAccuracy }),
      ...(r.testLoss === undefined ? {} : { loss: r.testLoss }),
      selected: r.selected,
      received: r.received,
      missing: r.missing.length,
      rejected: r.rejected,
      seconds: r.seconds,
    };
    this.rounds.push(info);
    if (!this.o.config.publish || r.testAccuracy === undefined) return;
    if (r.testAccuracy < this.bar) {
      info.gate = 'below';
      return;
    }
    info.gate = 'passed';
    this.bar = Math.max(this.bar, r.testAccuracy); // a later round must do at least as well
    const evaluation = { accuracy: r.testAccuracy, loss: r.testLoss ?? Number.NaN };
    const bytes = denseWithWeights(this.o.served.net, global, {
      federation_id: this.o.id,
      federation_round: String(r.round),
      held_out_accuracy: String(r.testAccuracy),
    });
    const request: PublishRequest = {
      federationId: this.o.id,
      model: this.o.model,
      round: r.round,
      bytes,
      evaluation,
      served: { version: this.o.served.version, evaluation: this.served! },
    };
    // In round order; a version that fails to load is reported and the served one stays (ModelHost rolls back).
    this.publishing = this.publishing.then(async () => {
      try {
        const version = await this.o.publish(request);
        info.version = version;
        this.versions.push(version);
      } catch (err) {
        info.gate = 'passed';
        this.o.logger.warn('new version not served', {
          federationId: this.o.id,
          round: r.round,
          error: (err as Error).message,
        });
        this.o.event('federation.version.failed', {
          federationId: this.o.id,
          round: r.round,
          error: (err as Error).message,
        });
      }
    });
  }
}
