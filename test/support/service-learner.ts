/**
 * A learner process of test/federation.service.test.ts (run from source with vite-node): it gets its
 * local data through the DataRequest service from a data-source responder on its own node (a files
 * directory; requestBatch, answers claim-checked into this process's memory), then trains the MNIST
 * 2NN preset in the federation over Kafka (KAFKA_BROKERS). Prints `DATA <sha256>…` (the data blobs'
 * hashes), `READY`, and `DONE <stats>`.
 *   service-learner.ts --federation ID --learner-id ID --data-dir DIR --store-dir DIR
 */
import { createHash } from 'node:crypto';
import { parseArgs } from 'node:util';

import { env } from '../../src/common/env.js';
import { silentLogger } from '../../src/common/logger.js';
import { InMemoryDataset } from '../../src/core/federation/learning/dataset.js';
import { FederatedLearner } from '../../src/core/federation/learning/client/federated-learner.js';
import { openKv } from '../../src/core/federation/orchestration/kv-store.js';
import { createMnistTrainer } from '../../src/apps/mnist/mnist-presets.js';
import { FilesDataSource, LocalDataNode } from '../../src/services/data-sources/index.js';
import { KafkaBus } from '../../src/transport/kafka-bus.js';

const { values: a } = parseArgs({
  options: {
    federation: { type: 'string' },
    'learner-id': { type: 'string' },
    'data-dir': { type: 'string' },
    'store-dir': { type: 'string' },
  },
});
const learnerId = a['learner-id']!;

const node = await LocalDataNode.start({ nodeId: learnerId, sources: [new FilesDataSource({ dir: a['data-dir']! })] });
const [images, labels] = await node.fetchBatch('mnist', [
  { query: { path: 'images.u8' }, options: { sourceType: 'files' } },
  { query: { path: 'labels.u8' }, options: { sourceType: 'files' } },
]);
await node.stop();
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
process.stdout.write(`DATA ${sha(images!.bytes)} ${sha(labels!.bytes)} ${node.responder.counts.completed}\n`);
const dataset = new InMemoryDataset({
  x: { data: Float32Array.from(images!.bytes, (p) => p / 255), shape: [784] },
  y: { data: Int32Array.from(labels!.bytes), dtype: 'int32' },
});

const trainer = await createMnistTrainer('2nn');
const store = await openKv({ dir: a['store-dir']! });
const bus = new KafkaBus({
  brokers: env.kafkaBrokers,
  clientId: `learner-${learnerId}`,
  idempotent: false,
  logger: silentLogger,
});
const learner = new FederatedLearner({
  federationId: a.federation!,
  learnerId,
  bus,
  store,
  trainer,
  clients: new Map([[`${learnerId}-c0`, dataset]]),
  heartbeatMs: 1000,
  logger: silentLogger,
});
await learner.start();
process.stdout.write('READY\n');
await learner.ended;
await learner.stop('federation over');
await bus.close();
await store.close();
process.stdout.write(`DONE ${JSON.stringify(learner.stats)}\n`);
setTimeout(() => process.exit(0), 2000).unref();
