/**
 * The real workload: MNIST federated as in McMahan et al. 2017, coordinator
 * here, learners in this process (LocalBus) or in K child processes over
 * Kafka. Used by `whale federate` and `npm run bench -- federated`.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { childEnv, env } from '../../common/env.js';
import { WhaleError } from '../../common/errors.js';
import { createLogger, silentLogger, type Logger } from '../../common/logger.js';
import { readMnist } from '../../models/mnist-idx.js';
import { packageRoot } from '../../native/loader.js';
import type { TfjsBackendChoice } from '../../models/tfjs-backend.js';
import type { Bus } from '../../transport/bus.js';
import { KafkaBus } from '../../transport/kafka-bus.js';
import { resolveKafkaSecurity } from '../../transport/kafka-options.js';
import { LocalBus } from '../../transport/local-bus.js';
import type { Strategy } from '../../core/federation/learning/types.js';
import { FederatedLearner } from '../../core/federation/learning/client/federated-learner.js';
import { LearnerPool } from '../../core/federation/learning/client/learner-pool.js';
import { clientId, gather, partitionIndices, type Partition } from './mnist-partition.js';
import { createMnistTrainer, type MnistArch } from './tfjs-trainer.js';
import { openKv } from '../../core/federation/orchestration/kv-store.js';
import type { Uplink } from '../../core/federation/orchestration/messages.js';
import { ModelCoordinator, type FederationSummary } from '../../core/federation/orchestration/model-coordinator.js';
import type { RoundResult } from '../../core/federation/orchestration/round-result.js';
import type { RoundHook } from '../../core/federation/security/round-defense.js';

/** minClients of a run whose options do not set it. */
export const MNIST_MIN_CLIENTS = 1;
import { securedFederationBuses } from '../../core/federation/security/federation-buses.js';

export interface MnistFederationOptions {
  model: MnistArch;
  partition: Partition;
  clients: number;
  fraction: number;
  epochs: number;
  /** 0: B = infinity (the whole shard). */
  batch: number;
  lr: number;
  rounds: number;
  target?: number;
  /** 0: learners in this process over the LocalBus; K: K child processes over Kafka. */
  processes?: number;
  strategy?: Strategy;
  /** Krum / Multi-Krum: Byzantine clients tolerated per round (f; needs received >= 2f + 3). Default 0. */
  byzantine?: number;
  /** Trimmed mean: fraction trimmed at each end per coordinate (beta, default 0.1). */
  trim?: number;
  seed?: number;
  /** Use the first N training / test images only (small runs, tests). */
  trainCount?: number;
  testCount?: number;
  uplink?: Uplink;
  topkRatio?: number;
  mu?: number;
  clientLrDecay?: number;
  serverLr?: number;
  minClients?: number;
  roundTimeoutMs?: number;
  /** Default: KAFKA_BROKERS. */
  brokers?: string[];
  /** librdkafka's mock cluster cannot serve idempotent producers (tests). Default: WHALE_KAFKA_IDEMPOTENT (true). */
  kafkaIdempotent?: boolean;
  /**
   * Blob store and checkpoints. Default: a fresh temporary directory, removed at a clean end (nothing is
   * left to resume) and kept when the run fails or is killed (onPlan says where it is, to resume it).
   */
  storeDir?: string;
  redisUrl?: string;
  federationId?: string;
  backend?: TfjsBackendChoice;
  /** How to start a learner process (default: node bin/whale.js learner). */
  learnerCommand?: string[];
  onRound?: (r: RoundResult) => void;
  /** Called once the federation id and store directory are settled, before any training (to print how to resume). */
  onPlan?: (plan: { federationId: string; storeDir: string; temporary: boolean }) => void;
  onLearnerExit?: (learnerId: string, code: number | null, signal: string | null) => void;
  /** Called once the learners are up (the pool, when there are processes). */
  onStarted?: (ctx: { pool?: LearnerPool; coordinator: ModelCoordinator }) => void;
  logger?: Logger;
  /** Attack simulation, norm-bound filter, DP around aggregation (security/round-defense). */
  roundHook?: RoundHook;
  /** Sign and verify every federation message (Ed25519, access control at the receiving side); in-process learners only. */
  secure?: boolean;
}

export interface MnistFederationResult extends FederationSummary {
  params: number;
  backend: string;
  processes: number;
  crashedLearners: Array<{ learnerId: string; code: number | null; signal: string | null }>;
}

export async function runMnistFederation(o: MnistFederationOptions): Promise<MnistFederationResult> {
  const seed = o.seed ?? 1;
  const processes = o.processes ?? 0;
  const federationId = o.federationId ?? `mnist-${o.model}-${o.partition}-${Date.now().toString(36)}`;
  if (!/^[A-Za-z0-9._-]{1,100}$/.test(federationId)) {
    throw new WhaleError(
      'ERR_CONFIG',
      `--federation-id: 1-100 of the characters A-Z a-z 0-9 . _ -, got '${federationId}'`,
      { field: 'federationId' },
    );
  }
  const temporary = o.storeDir === undefined;
  const storeDir = o.storeDir ?? mkdtempSync(join(tmpdir(), 'whale-federation-'));
  o.onPlan?.({ federationId, storeDir, temporary });
  const logger = o.logger ?? createLogger('federate');
  const brokers = o.brokers ?? env.kafkaBrokers;
  if (processes > 0 && brokers.length === 0) {
    throw new WhaleError(
      'ERR_CONFIG',
      '--processes: learner processes reach the coordinator over Kafka; set KAFKA_BROKERS (or run without --processes)',
      { field: 'processes' },
    );
  }
  const evaluator = await createMnistTrainer(o.model, { ...(o.backend ? { backend: o.backend } : {}), seed });
  const test = readMnist('test', o.testCount === undefined ? {} : { count: o.testCount });
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
  if (o.secure && processes > 0)
    throw new WhaleError(
      'ERR_CONFIG',
      '--secure: learner processes need their identity keys distributed (WHALE_IDENTITY_KEY_FILE); only in-process learners are wired',
      { field: 'secure' },
    );
  const secured = o.secure ? securedFederationBuses(rawBus, federationId, [`${federationId}-local`]) : undefined;
  const bus: Bus = secured ? secured.coordinator : rawBus;
  const coordinator = new ModelCoordinator({
    federationId,
    bus,
    store,
    initialModel: () => evaluator.initialWeights(seed),
    evaluate: (w) => evaluator.evaluate(w, test),
    rounds: o.rounds,
    fraction: o.fraction,
    minClients: o.minClients ?? MNIST_MIN_CLIENTS,
    expectClients: o.clients,
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
    waitForClientsMs: 60_000,
    ...(o.onRound ? { onRound: (r: RoundResult) => o.onRound!(r) } : {}),
    ...(o.roundHook ? { roundHook: o.roundHook } : {}),
    logger,
  });
  let pool: LearnerPool | undefined;
  let local: FederatedLearner | undefined;
  let cleanEnd = false;
  try {
    await coordinator.open(); // hear the learners' first registrations
    if (processes > 0) {
      const args = [
        '--federation',
        federationId,
        '--total-clients',
        String(o.clients),
        '--partition',
        o.partition,
        '--model',
        o.model,
        '--store-dir',
        storeDir,
        '--seed',
        String(seed),
        '--heartbeat-ms',
        '2000',
        ...(o.redisUrl ? ['--redis-url', o.redisUrl] : []),
        ...(o.trainCount === undefined ? [] : ['--train-count', String(o.trainCount)]),
        ...(o.backend ? ['--backend', o.backend] : []),
      ];
      pool = new LearnerPool({
        federationId,
        processes,
        totalClients: o.clients,
        args,
        bus,
        env: childEnv({
          KAFKA_BROKERS: brokers.join(','),
          ...(o.kafkaIdempotent === false ? { WHALE_KAFKA_IDEMPOTENT: '0' } : {}),
        }),
        command: o.learnerCommand ?? [process.execPath, join(packageRoot(), 'bin', 'whale.js'), 'learner'],
        ...(o.onLearnerExit ? { onExit: o.onLearnerExit } : {}),
      });
      await pool.start();
    } else {
      const train = readMnist('train', o.trainCount === undefined ? {} : { count: o.trainCount });
      const parts = partitionIndices(train.labels, { kind: o.partition, clients: o.clients, seed });
      const clients = new Map(parts.map((idx, i) => [clientId(i), gather(train, idx)] as const));
      const trainer = await createMnistTrainer(o.model, { ...(o.backend ? { backend: o.backend } : {}), seed });
      local = new FederatedLearner({
        federationId,
        learnerId: `${federationId}-local`,
        bus: secured ? secured.learner(`${federationId}-local`) : bus,
        store,
        trainer,
        clients,
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
      params: evaluator.params,
      backend: evaluator.backend,
      processes,
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
