/**
 * Runs one federation of any model: the coordinator here (its Trainer gives
 * the initial model and evaluates on the held-out set), learners in this
 * process (LocalBus unless brokers are given), in child processes over Kafka
 * (LearnerPool), or started elsewhere (`whale learner --config`). The MNIST
 * presets (src/apps/mnist) and `whale federate --config` both run here.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { childEnv, env } from '../../common/env.js';
import { WhaleError } from '../../common/errors.js';
import { createLogger, silentLogger, type Logger } from '../../common/logger.js';
import type { Bus } from '../../transport/bus.js';
import { KafkaBus } from '../../transport/kafka-bus.js';
import { resolveKafkaSecurity } from '../../transport/kafka-options.js';
import { LocalBus } from '../../transport/local-bus.js';
import type { Strategy } from '../../core/federation/learning/types.js';
import type { ClientDataset } from '../../core/federation/learning/dataset.js';
import { layoutSize, trainerLayout, type Trainer } from '../../core/federation/learning/trainer.js';
import { FederatedLearner } from '../../core/federation/learning/client/federated-learner.js';
import { LearnerPool } from '../../core/federation/learning/client/learner-pool.js';
import { openKv } from '../../core/federation/orchestration/kv-store.js';
import type { Uplink } from '../../core/federation/orchestration/messages.js';
import { ModelCoordinator, type FederationSummary } from '../../core/federation/orchestration/model-coordinator.js';
import type { RoundResult } from '../../core/federation/orchestration/round-result.js';
import type { RoundHook } from '../../core/federation/security/round-defense.js';
import { securedFederationBuses } from '../../core/federation/security/federation-buses.js';
import type { AccessControl } from '../../core/federation/security/access-control.js';
import type { Identity } from '../../core/federation/security/identity.js';
import { securedBus, writeLearnerIdentities } from './learner-identities.js';

/** Where the learners run. */
export type LearnerPlacement =
  /** In this process, one learner hosting every client. */
  | { kind: 'in-process'; clients: ReadonlyMap<string, ClientDataset>; trainer: Trainer }
  /** Child processes over Kafka: `command ...args` plus each learner's own arguments (LearnerPool). */
  | {
      kind: 'processes';
      command: readonly string[];
      /** Arguments every learner gets (a function: from the store directory the run settled on). */
      args: readonly string[] | ((storeDir: string) => readonly string[]);
      /** K processes sharing totalClients indices … */
      processes?: number;
      totalClients?: number;
      /** … or one process per named learner. */
      learners?: ReadonlyArray<{ id: string; args: readonly string[] }>;
    }
  /** Learners started elsewhere (other machines): the coordinator waits for their registrations. */
  | { kind: 'external' };

export interface FederationRunOptions {
  federationId: string;
  /** The coordinator's trainer: the initial model (init(seed)) and the held-out evaluation. */
  trainer: Trainer;
  /** Held-out set the coordinator evaluates every round's model on. */
  test?: ClientDataset;
  learners: LearnerPlacement;
  rounds: number;
  fraction: number;
  minClients?: number;
  /** Clients the coordinator waits for before round 1 (default: none beyond minClients). */
  expectClients?: number;
  epochs: number;
  /** 0: the whole dataset per step. */
  batch: number;
  lr: number;
  target?: number;
  mu?: number;
  clientLrDecay?: number;
  serverLr?: number;
  strategy?: Strategy;
  byzantine?: number;
  trim?: number;
  uplink?: Uplink;
  topkRatio?: number;
  seed?: number;
  roundTimeoutMs?: number;
  waitForClientsMs?: number;
  /** Default: KAFKA_BROKERS; empty: the in-process LocalBus. */
  brokers?: string[];
  kafkaIdempotent?: boolean;
  storeDir?: string;
  redisUrl?: string;
  roundHook?: RoundHook;
  /**
   * Sign and verify every federation message (Ed25519, access control). `true`: fresh identities; learner
   * processes get theirs in `<storeDir>/identities` (--identity-dir). External learners: the coordinator's
   * key and the policy naming the learners' keys, from their operator.
   */
  secure?: boolean | { identity: Identity; acl: AccessControl };
  logger?: Logger;
  onRound?: (r: RoundResult) => void;
  onPlan?: (plan: { federationId: string; storeDir: string; temporary: boolean }) => void;
  onLearnerExit?: (learnerId: string, code: number | null, signal: string | null) => void;
  onStarted?: (ctx: { pool?: LearnerPool; coordinator: ModelCoordinator }) => void;
}

export interface FederationRunResult extends FederationSummary {
  params: number;
  backend: string;
  processes: number;
  crashedLearners: Array<{ learnerId: string; code: number | null; signal: string | null }>;
}

export const FEDERATION_ID = /^[A-Za-z0-9._-]{1,100}$/;

export async function runFederation(o: FederationRunOptions): Promise<FederationRunResult> {
  const seed = o.seed ?? 1;
  const { federationId } = o;
  if (!FEDERATION_ID.test(federationId))
    throw new WhaleError(
      'ERR_CONFIG',
      `federationId: 1-100 of the characters A-Z a-z 0-9 . _ -, got '${federationId}'`,
      {
        field: 'federationId',
      },
    );
  const where = o.learners;
  const brokers = o.brokers ?? env.kafkaBrokers;
  if (where.kind !== 'in-process' && brokers.length === 0)
    throw new WhaleError(
      'ERR_CONFIG',
      'learners: learners in other processes reach the coordinator over Kafka; set KAFKA_BROKERS (or run the learners in this process)',
      { field: 'learners' },
    );
  if (o.secure === true && where.kind === 'external')
    throw new WhaleError(
      'ERR_CONFIG',
      "secure: learners on other machines need their keys from their operator: give the coordinator's key and the policy (security.keyFile, security.policyFile)",
      { field: 'secure' },
    );
  const params = layoutSize(await trainerLayout(o.trainer));
  const temporary = o.storeDir === undefined;
  const storeDir = o.storeDir ?? mkdtempSync(join(tmpdir(), 'whale-federation-'));
  o.onPlan?.({ federationId, storeDir, temporary });
  const logger = o.logger ?? createLogger('federate');
  const store = await openKv({ dir: storeDir, redisUrl: o.redisUrl });
  const rawBus: Bus =
    brokers.length > 0
      ? new KafkaBus({
          brokers,
          idempotent: o.kafkaIdempotent ?? env.kafkaIdempotent,
          ...resolveKafkaSecurity({}, env),
          logger,
        })
      : new LocalBus();
  const localId = `${federationId}-local`;
  const secured =
    o.secure && where.kind === 'in-process' ? securedFederationBuses(rawBus, federationId, [localId]) : undefined;
  let bus: Bus = secured ? secured.coordinator : rawBus;
  let identityArgs: string[] = [];
  if (typeof o.secure === 'object') bus = securedBus(rawBus, o.secure.identity, o.secure.acl);
  else if (o.secure && where.kind === 'processes') {
    const ids =
      where.learners?.map((l) => l.id) ??
      Array.from({ length: where.processes ?? 1 }, (_, k) => `${federationId}-learner-${k}`);
    const dir = join(storeDir, 'identities');
    const keys = writeLearnerIdentities(dir, federationId, ids);
    bus = securedBus(rawBus, keys.coordinator, keys.acl);
    identityArgs = ['--identity-dir', dir];
  }
  const test = o.test;
  const coordinator = new ModelCoordinator({
    federationId,
    bus,
    store,
    initialModel: () => o.trainer.init(seed),
    ...(test ? { evaluate: (w: Float32Array) => o.trainer.evaluate(w, test) } : {}),
    rounds: o.rounds,
    fraction: o.fraction,
    minClients: o.minClients ?? 1,
    ...(o.expectClients === undefined ? {} : { expectClients: o.expectClients }),
    seed,
    epochs: o.epochs,
    batch: o.batch,
    learning: {
      clientLr: o.lr,
      ...(o.clientLrDecay === undefined ? {} : { clientLrDecay: o.clientLrDecay }),
      ...(o.serverLr === undefined ? {} : { serverLr: o.serverLr }),
      ...(o.mu === undefined ? {} : { mu: o.mu }),
      ...(o.target === undefined ? {} : { targetAccuracy: o.target }),
    },
    aggregator: {
      strategy: o.strategy ?? 'fedavg',
      ...(o.byzantine === undefined ? {} : { f: o.byzantine }),
      ...(o.trim === undefined ? {} : { beta: o.trim }),
    },
    uplink: o.uplink ?? 'f32',
    ...(o.topkRatio === undefined ? {} : { topkRatio: o.topkRatio }),
    roundTimeoutMs: o.roundTimeoutMs ?? 600_000,
    waitForClientsMs: o.waitForClientsMs ?? 60_000,
    ...(o.onRound ? { onRound: (r: RoundResult) => o.onRound!(r) } : {}),
    ...(o.roundHook ? { roundHook: o.roundHook } : {}),
    logger,
  });
  let pool: LearnerPool | undefined;
  let local: FederatedLearner | undefined;
  let cleanEnd = false;
  try {
    await coordinator.open(); // hear the learners' first registrations
    if (where.kind === 'processes') {
      pool = new LearnerPool({
        federationId,
        processes: where.processes ?? where.learners?.length ?? 1,
        totalClients: where.totalClients ?? where.learners?.length ?? 1,
        ...(where.learners ? { learners: where.learners } : {}),
        args: [...(typeof where.args === 'function' ? where.args(storeDir) : where.args), ...identityArgs],
        bus,
        env: childEnv({
          KAFKA_BROKERS: brokers.join(','),
          ...(o.kafkaIdempotent === false ? { WHALE_KAFKA_IDEMPOTENT: '0' } : {}),
        }),
        command: [...where.command],
        ...(o.onLearnerExit ? { onExit: o.onLearnerExit } : {}),
      });
      await pool.start();
    } else if (where.kind === 'in-process') {
      local = new FederatedLearner({
        federationId,
        learnerId: localId,
        bus: secured ? secured.learner(localId) : bus,
        store,
        trainer: where.trainer,
        clients: where.clients,
        seed,
        logger: silentLogger,
      });
      await local.start();
    }
    o.onStarted?.({ ...(pool ? { pool } : {}), coordinator });
    const summary = await coordinator.run();
    cleanEnd = true;
    return {
      ...summary,
      params,
      backend: o.trainer.backend,
      processes: where.kind === 'processes' ? (where.learners?.length ?? where.processes ?? 1) : 0,
      crashedLearners: pool?.crashed ?? [],
    };
  } finally {
    await local?.stop('federation over');
    await pool?.stop();
    await bus.close();
    await store.close();
    // A temporary store of a finished run holds nothing to resume: do not leave it in the temp folder.
    if (cleanEnd && temporary) rmSync(storeDir, { recursive: true, force: true });
  }
}
