/**
 * `whale learner …`: one learner process. It loads only its own clients'
 * shards (the split is deterministic from the seed), talks to the coordinator
 * over Kafka (KAFKA_BROKERS) and exits when the federation ends.
 */
import { parseArgs } from 'node:util';

import { readEnv, type EnvSource } from '../../common/env.js';
import { WhaleError } from '../../common/errors.js';
import { readMnist } from '../../models/mnist-idx.js';
import type { TfjsBackendChoice } from '../../models/tfjs-backend.js';
import {
  identityDirSecurity,
  LEARNER_GIVE_UP_MS,
  runLearner,
  type LearnerRunOptions,
} from '../federate/learner-run.js';
import { clientId, gather, partitionIndices, type Partition } from './mnist-partition.js';
import { createMnistTrainer, mnistDataset, type MnistArch } from './mnist-presets.js';

export const LEARNER_USAGE = `Usage: whale learner --federation ID --learner-id ID --clients I,J,... --total-clients N
         --partition iid|noniid --model 2nn|cnn --store-dir DIR [--redis-url URL] [--seed S]
         [--train-count N] [--backend auto|wasm|cpu|tensorflow] [--heartbeat-ms MS]
         [--give-up-after-ms MS] [--parent-pid PID] [--identity-dir DIR]

Hosts the given clients (indices into the split of the MNIST training set) and trains them in the
federation's rounds. Needs KAFKA_BROKERS. Exits 0 when the coordinator ends the federation.

  --give-up-after-ms MS  leave and exit 1 when nothing of the federation was heard for MS while this
                         learner had no work (a coordinator that died); default 900000 (15 min, above a
                         round's default 10 min deadline plus its 1 min wait for clients); 0: never
  --identity-dir DIR     signed messages (whale federate --secure): this learner's key DIR/<learner-id>.pem
                         and the federation's access policy DIR/policy.json, written by the coordinator
  --parent-pid PID       started by a coordinator (whale federate --processes): exit as soon as that
                         process is gone (its stdin pipe closes or the parent changes)
`;

export interface LearnerArgs extends LearnerRunOptions {
  clients: number[];
  totalClients: number;
  partition: Partition;
  model: MnistArch;
  trainCount?: number;
  backend: TfjsBackendChoice;
}

export { LEARNER_GIVE_UP_MS };

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
      'identity-dir': { type: 'string' },
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
    ...(v['identity-dir']
      ? { security: identityDirSecurity(v['identity-dir'], need('learner-id', v['learner-id'])) }
      : {}),
    brokers,
  };
}

/** Runs until the federation ends (0), or a signal stops it (leaving the federation first). */
export function runLearnerProcess(a: LearnerArgs): Promise<number> {
  return runLearner(a, async () => {
    const train = readMnist('train', a.trainCount === undefined ? {} : { count: a.trainCount });
    const parts = partitionIndices(train.labels, { kind: a.partition, clients: a.totalClients, seed: a.seed });
    const clients = new Map(
      a.clients.map((i) => {
        const idx = parts[i];
        if (!idx)
          throw new WhaleError('ERR_CONFIG', `--clients: ${i} is outside 0..${a.totalClients - 1}`, {
            field: 'clients',
          });
        return [clientId(i), mnistDataset(gather(train, idx))] as const;
      }),
    );
    return { trainer: await createMnistTrainer(a.model, { backend: a.backend }), clients };
  });
}
