/**
 * One learner process of any federation: hosts its clients' datasets, talks
 * to the coordinator over Kafka (KAFKA_BROKERS), exits 0 when the federation
 * ends, 1 when it gave up on a silent coordinator or its parent (the
 * coordinator that started it, `--parent-pid`) is gone. Used by the MNIST
 * presets' `whale learner --model` and by `whale learner --config`.
 */
import { join } from 'node:path';

import { env } from '../../common/env.js';
import { createLogger } from '../../common/logger.js';
import { KafkaBus } from '../../transport/kafka-bus.js';
import { resolveKafkaSecurity } from '../../transport/kafka-options.js';
import { openKv } from '../../core/federation/orchestration/kv-store.js';
import type { ClientDataset } from '../../core/federation/learning/dataset.js';
import type { Trainer } from '../../core/federation/learning/trainer.js';
import { FederatedLearner } from '../../core/federation/learning/client/federated-learner.js';
import { learnerSecureBus, POLICY_FILE } from './learner-identities.js';

export interface LearnerRunOptions {
  federationId: string;
  learnerId: string;
  storeDir: string;
  redisUrl?: string;
  seed: number;
  heartbeatMs: number;
  /** 0: never give up on a silent coordinator. */
  giveUpAfterMs: number;
  /** The coordinator process that started this learner: exit when it is gone. */
  parentPid?: number;
  brokers: string[];
  /** Signed messages: this learner's Ed25519 key (PEM) and the federation's access policy (JSON). */
  security?: { keyFile: string; policyFile: string };
}

/** A coordinator's --identity-dir: `<learnerId>.pem` and policy.json in it. */
export function identityDirSecurity(dir: string, learnerId: string): { keyFile: string; policyFile: string } {
  return { keyFile: join(dir, `${learnerId}.pem`), policyFile: join(dir, POLICY_FILE) };
}

/** Default of --give-up-after-ms: a round's default deadline (10 min) + its wait for clients (1 min), with margin. */
export const LEARNER_GIVE_UP_MS = 900_000;

/**
 * Runs until the federation ends (0), or a signal stops it (leaving the federation first). `load` reads the
 * clients' data and builds the trainer; the parent is watched while it runs.
 */
export async function runLearner(
  a: LearnerRunOptions,
  load: () => Promise<{ trainer: Trainer; clients: ReadonlyMap<string, ClientDataset> }>,
): Promise<number> {
  const logger = createLogger(`federation-learner/${a.learnerId}`);
  // Watched from the first moment: a coordinator killed while this learner loads its data must not leave it behind.
  const parentGone = a.parentPid === undefined ? undefined : watchParent(a.parentPid);
  const { trainer, clients } = await load();
  const store = await openKv({ dir: a.storeDir, redisUrl: a.redisUrl });
  const bus = new KafkaBus({
    brokers: a.brokers,
    clientId: `whale-learner-${a.learnerId}`,
    idempotent: env.kafkaIdempotent,
    ...resolveKafkaSecurity({}, env),
    logger,
  });
  const learner = new FederatedLearner({
    federationId: a.federationId,
    learnerId: a.learnerId,
    bus: a.security ? learnerSecureBus(bus, a.learnerId, a.security.keyFile, a.security.policyFile) : bus,
    store,
    trainer,
    clients,
    heartbeatMs: a.heartbeatMs,
    seed: a.seed,
    logger,
    giveUpAfterMs: a.giveUpAfterMs,
  });
  let signalled: string | undefined;
  const stopOn = (sig: NodeJS.Signals) => {
    signalled = sig;
    void learner.stop(sig);
  };
  process.once('SIGTERM', stopOn);
  process.once('SIGINT', stopOn);
  await learner.start();
  process.stdout.write(`READY ${a.learnerId} ${clients.size}\n`);
  const orphaned = parentGone?.arm().then((why) => `orphaned: ${why}`);
  const reason = await Promise.race([
    learner.ended,
    new Promise<string>((r) => process.once('SIGTERM', () => r('SIGTERM'))),
    ...(orphaned ? [orphaned] : []),
  ]);
  const gaveUp = learner.gaveUp || reason.startsWith('orphaned: ');
  if (gaveUp) {
    process.stderr.write(`whale learner: ${reason.replace(/^orphaned: /, '')}: leaving the federation\n`);
    // Leaving is best effort: a learner without its coordinator must be gone within seconds either way.
    setTimeout(() => process.exit(1), 2000);
  }
  await learner.stop(signalled ?? (gaveUp ? reason : `federation ended: ${reason}`));
  await bus.close();
  await store.close();
  process.stdout.write(`DONE ${a.learnerId} ${JSON.stringify(learner.stats)}\n`);
  return gaveUp ? 1 : 0;
}

/**
 * Resolves when the coordinator process that started this learner is gone: its end of our stdin pipe
 * closed (at once, however it died) or, as a fallback, our parent changed (re-parented after kill -9).
 * Until arm() (the learner is set up and can leave properly) it exits by itself at once.
 */
function watchParent(parentPid: number): { arm: () => Promise<string> } {
  let ready = false;
  const gone = new Promise<string>((resolve) => {
    const done = (why: string) => {
      clearInterval(poll);
      if (!ready) {
        process.stderr.write(`whale learner: ${why}: exiting\n`);
        process.exit(1);
      }
      resolve(why);
    };
    const poll = setInterval(() => {
      if (process.ppid !== parentPid) done(`the coordinator (pid ${parentPid}) is gone`);
    }, 500);
    poll.unref();
    if (!process.stdin.isTTY) {
      process.stdin.on('end', () => done(`the coordinator (pid ${parentPid}) closed its pipe`));
      process.stdin.on('error', () => done(`the coordinator (pid ${parentPid}) closed its pipe`));
      process.stdin.resume();
      // Reading stdin must not keep a finished learner alive.
      (process.stdin as unknown as { unref?: () => void }).unref?.();
    }
  });
  return {
    arm: () => {
      ready = true;
      return gone;
    },
  };
}
