/**
 * The real workload: MNIST federated as in McMahan et al. 2017, coordinator
 * here, learners in this process (LocalBus) or in K child processes over
 * Kafka. Used by `whale federate` and `npm run bench -- federated`.
 */
import { join } from 'node:path';

import { env } from '../../common/env.js';
import { WhaleError } from '../../common/errors.js';
import type { Logger } from '../../common/logger.js';
import { readMnist } from '../../models/mnist-idx.js';
import { packageRoot } from '../../native/loader.js';
import type { TfjsBackendChoice } from '../../models/tfjs-backend.js';
import type { Strategy } from '../../core/federation/learning/types.js';
import type { LearnerPool } from '../../core/federation/learning/client/learner-pool.js';
import { clientId, gather, partitionIndices, type Partition } from './mnist-partition.js';
import { createMnistTrainer, mnistDataset, type MnistArch } from './mnist-presets.js';
import {
  FEDERATION_ID,
  runFederation,
  type FederationRunResult,
  type LearnerPlacement,
} from '../federate/run-federation.js';
import type { Uplink } from '../../core/federation/orchestration/messages.js';
import type { ModelCoordinator } from '../../core/federation/orchestration/model-coordinator.js';
import type { RoundResult } from '../../core/federation/orchestration/round-result.js';
import type { RoundHook } from '../../core/federation/security/round-defense.js';

/** minClients of a run whose options do not set it. */
export const MNIST_MIN_CLIENTS = 1;

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
  /** Sign and verify every federation message (Ed25519, access control at the receiving side); learner processes get their keys through --identity-dir. */
  secure?: boolean;
}

export type MnistFederationResult = FederationRunResult;

export async function runMnistFederation(o: MnistFederationOptions): Promise<MnistFederationResult> {
  const seed = o.seed ?? 1;
  const processes = o.processes ?? 0;
  const federationId = o.federationId ?? `mnist-${o.model}-${o.partition}-${Date.now().toString(36)}`;
  if (!FEDERATION_ID.test(federationId)) {
    throw new WhaleError(
      'ERR_CONFIG',
      `--federation-id: 1-100 of the characters A-Z a-z 0-9 . _ -, got '${federationId}'`,
      { field: 'federationId' },
    );
  }
  const brokers = o.brokers ?? env.kafkaBrokers;
  if (processes > 0 && brokers.length === 0) {
    throw new WhaleError(
      'ERR_CONFIG',
      '--processes: learner processes reach the coordinator over Kafka; set KAFKA_BROKERS (or run without --processes)',
      { field: 'processes' },
    );
  }
  const backend = o.backend ? { backend: o.backend } : {};
  const evaluator = await createMnistTrainer(o.model, { ...backend, seed });
  const test = mnistDataset(readMnist('test', o.testCount === undefined ? {} : { count: o.testCount }));
  let learners: LearnerPlacement;
  if (processes > 0) {
    const args = (storeDir: string) => [
      ...['--federation', federationId, '--total-clients', String(o.clients), '--partition', o.partition],
      ...['--model', o.model, '--store-dir', storeDir, '--seed', String(seed), '--heartbeat-ms', '2000'],
      ...(o.redisUrl ? ['--redis-url', o.redisUrl] : []),
      ...(o.trainCount === undefined ? [] : ['--train-count', String(o.trainCount)]),
      ...(o.backend ? ['--backend', o.backend] : []),
    ];
    const command = o.learnerCommand ?? [process.execPath, join(packageRoot(), 'bin', 'whale.js'), 'learner'];
    learners = { kind: 'processes', command, args, processes, totalClients: o.clients };
  } else {
    const train = readMnist('train', o.trainCount === undefined ? {} : { count: o.trainCount });
    const parts = partitionIndices(train.labels, { kind: o.partition, clients: o.clients, seed });
    const clients = new Map(parts.map((idx, i) => [clientId(i), mnistDataset(gather(train, idx))] as const));
    learners = { kind: 'in-process', clients, trainer: evaluator };
  }
  const {
    model: _m,
    partition: _p,
    clients,
    trainCount: _c,
    processes: _k,
    testCount: _t,
    backend: _b,
    learnerCommand: _l,
    ...rest
  } = o;
  return runFederation({
    ...rest,
    federationId,
    trainer: evaluator,
    test,
    brokers,
    minClients: o.minClients ?? MNIST_MIN_CLIENTS,
    expectClients: clients,
    learners,
  });
}
