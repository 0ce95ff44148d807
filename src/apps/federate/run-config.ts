/**
 * `whale federate --config federation.json` and `whale learner --config`:
 * a federation of the author's model from one file (see ./config.ts).
 */
import { join } from 'node:path';

import { env } from '../../common/env.js';
import { WhaleError } from '../../common/errors.js';
import { packageRoot } from '../../native/loader.js';
import { RoundDefense } from '../../core/federation/security/round-defense.js';
import { AccessControl } from '../../core/federation/security/access-control.js';
import { Identity } from '../../core/federation/security/identity.js';
import { COORDINATOR_IDENTITY } from '../../core/federation/security/secure-bus.js';
import type { LearnerPool } from '../../core/federation/learning/client/learner-pool.js';
import type { Logger } from '../../common/logger.js';
import type { ModelCoordinator } from '../../core/federation/orchestration/model-coordinator.js';
import type { RoundResult } from '../../core/federation/orchestration/round-result.js';
import { readDataset } from '../../core/federation/learning/data/read-dataset.js';
import type { FederationConfig, LearnerConfig } from './config.js';
import { runLearner, LEARNER_GIVE_UP_MS } from './learner-run.js';
import { readClientsThroughDataNode } from './learner-data.js';
import { loadTrainer, readClients } from './model-spec.js';
import { runFederation, type FederationRunResult, type LearnerPlacement } from './run-federation.js';

export interface ConfigRunHooks {
  /** How to start a learner process (default: node bin/whale.js learner). */
  learnerCommand?: string[];
  brokers?: string[];
  kafkaIdempotent?: boolean;
  logger?: Logger;
  onRound?: (r: RoundResult) => void;
  onPlan?: (plan: { federationId: string; storeDir: string; temporary: boolean }) => void;
  onLearnerExit?: (learnerId: string, code: number | null, signal: string | null) => void;
  onStarted?: (ctx: { pool?: LearnerPool; coordinator: ModelCoordinator }) => void;
}

export async function runConfigFederation(c: FederationConfig, h: ConfigRunHooks = {}): Promise<FederationRunResult> {
  const brokers = h.brokers ?? env.kafkaBrokers;
  const run = c.run ?? (brokers.length > 0 ? 'processes' : 'in-process');
  if (run === 'external' && !c.storeDir && !c.redisUrl)
    throw new WhaleError(
      'ERR_CONFIG',
      `${c.file}: run 'external': learners on other machines need the blob store named: storeDir (a shared directory) or redisUrl`,
      {
        field: 'storeDir',
        file: c.file,
      },
    );
  const trainer = await loadTrainer(c.model);
  const test = c.test ? await readDataset(c.test, c.data) : undefined;
  let learners: LearnerPlacement;
  if (run === 'in-process') {
    const clients = await readClients(
      Object.assign({}, ...c.learners.map((l) => l.clients)) as Record<string, string>,
      c.data,
    );
    learners = { kind: 'in-process', clients, trainer };
  } else if (run === 'processes') {
    learners = {
      kind: 'processes',
      command: h.learnerCommand ?? [process.execPath, join(packageRoot(), 'bin', 'whale.js'), 'learner'],
      args: (storeDir) => ['--config', c.file, '--store-dir', storeDir],
      learners: c.learners.map((l) => ({ id: l.id, args: ['--learner', l.id] })),
    };
  } else learners = { kind: 'external' };
  const clientIds = c.learners.flatMap((l) => Object.keys(l.clients));
  const defended = c.dp !== undefined || c.normBound !== undefined;
  return runFederation({
    federationId: c.federationId,
    trainer,
    ...(test ? { test } : {}),
    learners,
    rounds: c.rounds,
    fraction: c.fraction,
    ...(c.minClients === undefined ? {} : { minClients: c.minClients }),
    expectClients: clientIds.length,
    epochs: c.epochs,
    batch: c.batchSize,
    lr: c.learningRate,
    ...(c.target === undefined ? {} : { target: c.target }),
    ...(c.proximalMu === undefined ? {} : { mu: c.proximalMu }),
    ...(c.lrDecay === undefined ? {} : { clientLrDecay: c.lrDecay }),
    ...(c.serverLr === undefined ? {} : { serverLr: c.serverLr }),
    strategy: c.strategy,
    ...(c.byzantine === undefined ? {} : { byzantine: c.byzantine }),
    ...(c.trim === undefined ? {} : { trim: c.trim }),
    uplink: c.uplink,
    ...(c.topkRatio === undefined ? {} : { topkRatio: c.topkRatio }),
    seed: c.seed,
    ...(c.roundTimeoutMs === undefined ? {} : { roundTimeoutMs: c.roundTimeoutMs }),
    ...(c.storeDir === undefined ? {} : { storeDir: c.storeDir }),
    ...(c.redisUrl === undefined ? {} : { redisUrl: c.redisUrl }),
    brokers: run === 'in-process' && c.run === 'in-process' ? [] : brokers,
    ...(h.kafkaIdempotent === undefined ? {} : { kafkaIdempotent: h.kafkaIdempotent }),
    ...(defended
      ? {
          roundHook: new RoundDefense({
            clients: clientIds,
            ...(c.normBound === undefined ? {} : { normBound: { factor: c.normBound } }),
            ...(c.dp ? { dp: { ...c.dp, sampleRate: c.fraction } } : {}),
          }),
        }
      : {}),
    ...(c.secure
      ? {
          secure: c.securityFiles
            ? {
                identity: Identity.load(COORDINATOR_IDENTITY, c.securityFiles.keyFile),
                acl: AccessControl.fromFile(c.securityFiles.policyFile),
              }
            : true,
        }
      : {}),
    ...(h.logger ? { logger: h.logger } : {}),
    ...(h.onRound ? { onRound: h.onRound } : {}),
    ...(h.onPlan ? { onPlan: h.onPlan } : {}),
    ...(h.onLearnerExit ? { onLearnerExit: h.onLearnerExit } : {}),
    ...(h.onStarted ? { onStarted: h.onStarted } : {}),
  });
}

export interface ConfigLearnerArgs {
  /** Signed messages with keys a coordinator wrote (--identity-dir); else the config's security files. */
  security?: { keyFile: string; policyFile: string };
  /** Override the config's store directory (a coordinator passes its own). */
  storeDir?: string;
  parentPid?: number;
  heartbeatMs?: number;
  giveUpAfterMs?: number;
  brokers: string[];
}

/** One learner of a config, until its federation ends. */
export function runConfigLearner(c: LearnerConfig, a: ConfigLearnerArgs): Promise<number> {
  const storeDir = a.storeDir ?? c.storeDir;
  if (!storeDir && !c.redisUrl)
    throw new WhaleError(
      'ERR_CONFIG',
      `${c.file}: a learner needs the federation's blob store: storeDir (a directory shared with the coordinator) or redisUrl`,
      {
        field: 'storeDir',
        file: c.file,
      },
    );
  return runLearner(
    {
      federationId: c.federationId,
      learnerId: c.learnerId,
      storeDir: storeDir ?? '',
      ...(c.redisUrl ? { redisUrl: c.redisUrl } : {}),
      seed: c.seed,
      heartbeatMs: a.heartbeatMs ?? 2000,
      giveUpAfterMs: a.giveUpAfterMs ?? LEARNER_GIVE_UP_MS,
      ...(a.parentPid === undefined ? {} : { parentPid: a.parentPid }),
      brokers: a.brokers,
      ...(a.security || c.security ? { security: (a.security ?? c.security)! } : {}),
    },
    // The clients' data through the DataRequest service from the learner's own data node, never the coordinator.
    async () => ({
      trainer: await loadTrainer(c.model),
      clients: await readClientsThroughDataNode(c.clients, c.data, { nodeId: c.learnerId, modelId: c.federationId }),
    }),
  );
}
