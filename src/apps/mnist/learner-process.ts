/**
 * `whale learner …`: one learner process. It loads only its own clients'
 * shards (the split is deterministic from the seed), talks to the coordinator
 * over Kafka (KAFKA_BROKERS) and exits when the federation ends.
 */
import { parseArgs } from 'node:util';

import { env, readEnv, type EnvSource } from '../../common/env.js';
import { WhaleError } from '../../common/errors.js';
import { createLogger } from '../../common/logger.js';
import { readMnist } from '../../models/mnist-idx.js';
import { KafkaBus } from '../../transport/kafka-bus.js';
import { resolveKafkaSecurity } from '../../transport/kafka-options.js';
import { openKv } from '../../core/federation/orchestration/kv-store.js';
import type { TfjsBackendChoice } from '../../models/tfjs-backend.js';
import { FederatedLearner } from '../../core/federation/learning/client/federated-learner.js';
import { clientId, gather, partitionIndices, type Partition } from './mnist-partition.js';
import { createMnistTrainer, type MnistArch } from './tfjs-trainer.js';

export const LEARNER_USAGE = `Usage: whale learner --federation ID --learner-id ID --clients I,J,... --total-clients N
         --partition iid|noniid --model 2nn|cnn --store-dir DIR [--redis-url URL] [--seed S]
         [--train-count N] [--backend auto|wasm|cpu|tensorflow] [--heartbeat-ms MS]
         [--give-up-after-ms MS] [--parent-pid PID]

Hosts the given clients (indices into the split of the MNIST training set) and trains them in the
federation's rounds. Needs KAFKA_BROKERS. Exits 0 when the coordinator ends the federation.

  --give-up-after-ms MS  leave and exit 1 when nothing of the federation was heard for MS while this
                         learner had no work (a coordinator that died); default 900000 (15 min, above a
                         round's default 10 min deadline plus its 1 min wait for clients); 0: never
  --parent-pid PID       started by a coordinator (whale federate --processes): exit as soon as that
                         process is gone (its stdin pipe closes or the parent changes)
`;

export interface LearnerArgs {
  federationId: string;
  learnerId: string;
  clients: number[];
  totalClients: number;
  partition: Partition;
  model: MnistArch;
  storeDir: string;
  redisUrl?: string;
  seed: number;
  trainCount?: number;
  backend: TfjsBackendChoice;
  heartbeatMs: number;
  /** 0: never give up on a silent coordinator. */
  giveUpAfterMs: number;
  /** The coordinator process that started this learner: exit when it is gone. */
  parentPid?: number;
  brokers: string[];
}

/** Default of --give-up-after-ms: a round's default deadline (10 min) + its wait for clients (1 min), with margin. */
export const LEARNER_GIVE_UP_MS = 900_000;

export function parseLearnerArgs(argv: string[], source?: EnvSource): LearnerArgs {
  const { values: v } = parseArgs({
    args: argv,
    options: {
      federation: { type: 'string' },
      'learner-id': { type: 'string' },
      clients: { type: 'string' },
      'total-clients': { type: 'string' },
      partition: { type: 'string', default: 'iid' },
      model: { type: 'string', default: '2nn' },
      'store-dir': { type: 'string' },
      'redis-url': { type: 'string' },
      seed: { type: 'string', default: '1' },
      'train-count': { type: 'string' },
      backend: { type: 'string', default: 'auto' },
      'heartbeat-ms': { type: 'string', default: '2000' },
      'give-up-after-ms': { type: 'string', default: String(LEARNER_GIVE_UP_MS) },
      'parent-pid': { type: 'string' },
    },
  });
  const need = (name: string, val: string | undefined): string => {
    if (val === undefined || val === '')
      throw new WhaleError('ERR_CONFIG', `--${name} is required\n\n${LEARNER_USAGE}`, { field: name });
    return val;
  };
  const int = (name: string, val: string): number => {
    const n = Number(val);
    if (!/^\d+$/.test(val) || !Number.isSafeInteger(n))
      throw new WhaleError('ERR_CONFIG', `--${name}: expected a whole number, got '${val}'`, { field: name });
    return n;
  };
  const brokers = readEnv(source).kafkaBrokers;
  if (brokers.length === 0)
    throw new WhaleError(
      'ERR_CONFIG',
      'KAFKA_BROKERS is not set: a learner process reaches its coordinator over Kafka',
      { field: 'KAFKA_BROKERS' },
    );
  const partition = v.partition as Partition;
  if (partition !== 'iid' && partition !== 'noniid')
    throw new WhaleError('ERR_CONFIG', `--partition: iid or noniid, got '${partition}'`, { field: 'partition' });
  const model = v.model as MnistArch;
  if (model !== '2nn' && model !== 'cnn')
    throw new WhaleError('ERR_CONFIG', `--model: 2nn or cnn, got '${model}'`, { field: 'model' });
  return {
    federationId: need('federation', v.federation),
    learnerId: need('learner-id', v['learner-id']),
    clients: need('clients', v.clients)
      .split(',')
      .map((s) => int('clients', s)),
    totalClients: int('total-clients', need('total-clients', v['total-clients'])),
    partition,
    model,
    storeDir: need('store-dir', v['store-dir']),
    ...(v['redis-url'] ? { redisUrl: v['redis-url'] } : {}),
    seed: int('seed', v.seed),
    ...(v['train-count'] ? { trainCount: int('train-count', v['train-count']) } : {}),
    backend: v.backend as TfjsBackendChoice,
    heartbeatMs: int('heartbeat-ms', v['heartbeat-ms']),
    giveUpAfterMs: int('give-up-after-ms', v['give-up-after-ms']!),
    ...(v['parent-pid'] ? { parentPid: int('parent-pid', v['parent-pid']) } : {}),
    brokers,
  };
}

/** Runs until the federation ends (0), or a signal stops it (leaving the federation first). */
export async function runLearnerProcess(a: LearnerArgs): Promise<number> {
  const logger = createLogger(`federation-learner/${a.learnerId}`);
  // Watched from the first moment: a coordinator killed while this learner loads its data must not leave it behind.
  const parentGone = a.parentPid === undefined ? undefined : watchParent(a.parentPid);
  const train = readMnist('train', a.trainCount === undefined ? {} : { count: a.trainCount });
  const parts = partitionIndices(train.labels, { kind: a.partition, clients: a.totalClients, seed: a.seed });
  const clients = new Map(
    a.clients.map((i) => {
      const idx = parts[i];
      if (!idx)
        throw new WhaleError('ERR_CONFIG', `--clients: ${i} is outside 0..${a.totalClients - 1}`, { field: 'clients' });
      return [clientId(i), gather(train, idx)] as const;
    }),
  );
  const trainer = await createMnistTrainer(a.model, { backend: a.backend });
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
    bus,
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
