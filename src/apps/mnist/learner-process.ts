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
import { openKv } from '../../core/federation/orchestration/kv-store.js';
import type { TfjsBackendChoice } from '../../models/tfjs-backend.js';
import { FederatedLearner } from '../../core/federation/learning/client/federated-learner.js';
import { clientId, gather, partitionIndices, type Partition } from './mnist-partition.js';
import { createMnistTrainer, type MnistArch } from './tfjs-trainer.js';

export const LEARNER_USAGE = `Usage: whale learner --federation ID --learner-id ID --clients I,J,... --total-clients N
         --partition iid|noniid --model 2nn|cnn --store-dir DIR [--redis-url URL] [--seed S]
         [--train-count N] [--backend auto|wasm|cpu|tensorflow] [--heartbeat-ms MS]

Hosts the given clients (indices into the split of the MNIST training set) and trains them in the
federation's rounds. Needs KAFKA_BROKERS. Exits 0 when the coordinator ends the federation.
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
  brokers: string[];
}

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
    },
  });
  const need = (name: string, val: string | undefined): string => {
    if (val === undefined || val === '') throw new WhaleError('ERR_CONFIG', `--${name} is required\n\n${LEARNER_USAGE}`, { field: name });
    return val;
  };
  const int = (name: string, val: string): number => {
    const n = Number(val);
    if (!/^\d+$/.test(val) || !Number.isSafeInteger(n)) throw new WhaleError('ERR_CONFIG', `--${name}: expected a whole number, got '${val}'`, { field: name });
    return n;
  };
  const brokers = readEnv(source).kafkaBrokers;
  if (brokers.length === 0) throw new WhaleError('ERR_CONFIG', 'KAFKA_BROKERS is not set: a learner process reaches its coordinator over Kafka', { field: 'KAFKA_BROKERS' });
  const partition = v.partition as Partition;
  if (partition !== 'iid' && partition !== 'noniid') throw new WhaleError('ERR_CONFIG', `--partition: iid or noniid, got '${partition}'`, { field: 'partition' });
  const model = v.model as MnistArch;
  if (model !== '2nn' && model !== 'cnn') throw new WhaleError('ERR_CONFIG', `--model: 2nn or cnn, got '${model}'`, { field: 'model' });
  return {
    federationId: need('federation', v.federation),
    learnerId: need('learner-id', v['learner-id']),
    clients: need('clients', v.clients).split(',').map((s) => int('clients', s)),
    totalClients: int('total-clients', need('total-clients', v['total-clients'])),
    partition,
    model,
    storeDir: need('store-dir', v['store-dir']),
    ...(v['redis-url'] ? { redisUrl: v['redis-url'] } : {}),
    seed: int('seed', v.seed),
    ...(v['train-count'] ? { trainCount: int('train-count', v['train-count']) } : {}),
    backend: v.backend as TfjsBackendChoice,
    heartbeatMs: int('heartbeat-ms', v['heartbeat-ms']),
    brokers,
  };
}

/** Runs until the federation ends (0), or a signal stops it (leaving the federation first). */
export async function runLearnerProcess(a: LearnerArgs): Promise<number> {
  const logger = createLogger(`federation-learner/${a.learnerId}`);
  const train = readMnist('train', a.trainCount === undefined ? {} : { count: a.trainCount });
  const parts = partitionIndices(train.labels, { kind: a.partition, clients: a.totalClients, seed: a.seed });
  const clients = new Map(a.clients.map((i) => {
    const idx = parts[i];
    if (!idx) throw new WhaleError('ERR_CONFIG', `--clients: ${i} is outside 0..${a.totalClients - 1}`, { field: 'clients' });
    return [clientId(i), gather(train, idx)] as const;
  }));
  const trainer = await createMnistTrainer(a.model, { backend: a.backend });
  const store = await openKv({ dir: a.storeDir, redisUrl: a.redisUrl });
  const bus = new KafkaBus({ brokers: a.brokers, clientId: `whale-learner-${a.learnerId}`, idempotent: env.kafkaIdempotent, logger });
  const learner = new FederatedLearner({ federationId: a.federationId, learnerId: a.learnerId, bus, store, trainer, clients, heartbeatMs: a.heartbeatMs, seed: a.seed, logger });
  let signalled: string | undefined;
  const stopOn = (sig: NodeJS.Signals) => {
    signalled = sig;
    void learner.stop(sig);
  };
  process.once('SIGTERM', stopOn);
  process.once('SIGINT', stopOn);
  await learner.start();
  process.stdout.write(`READY ${a.learnerId} ${clients.size}\n`);
  const reason = await Promise.race([learner.ended, new Promise<string>((r) => process.once('SIGTERM', () => r('SIGTERM')))]);
  await learner.stop(signalled ?? `federation ended: ${reason}`);
  await bus.close();
  await store.close();
  process.stdout.write(`DONE ${a.learnerId} ${JSON.stringify(learner.stats)}\n`);
  return 0;
}
