/**
 * A learner's own data node: an in-process bus, the DataRequestService and a DataSourceResponder over the
 * configured sources, and the blob store the answers are claim-checked into. A learner asks it for its
 * data (requestData / requestBatch, or fetch()); nothing of it is on the bus the learner shares with its
 * coordinator.
 *
 *   const node = await LocalDataNode.start({ nodeId: 'learner-1', sources: [new FilesDataSource({ dir })] });
 *   const { bytes } = await node.fetch('mnist', { path: 'client-0/train.csv' }, { sourceType: 'files' });
 */
import { MemoryKv, type KeyValueStore } from '../../core/federation/orchestration/kv-store.js';
import { ClaimCheck } from '../../core/federation/orchestration/claim-check.js';
import { silentLogger, type Logger } from '../../common/logger.js';
import type { Bus } from '../../transport/bus.js';
import { LocalBus } from '../../transport/local-bus.js';
import { DataRequestService, type DataPayload, type DataRequestOptions } from '../data-request-service.js';
import { MemoryStateStore } from '../state-store.js';
import { DataSourceResponder } from './responder.js';
import type { DataSource } from './types.js';

export interface LocalDataNodeOptions {
  nodeId: string;
  sources: readonly DataSource[];
  /** Default: a new in-process bus (the node's own). */
  bus?: Bus;
  /** Default: in memory. */
  store?: KeyValueStore;
  defaultTimeoutMs?: number;
  logger?: Logger;
}

export class LocalDataNode {
  private constructor(
    readonly service: DataRequestService,
    readonly responder: DataSourceResponder,
    readonly claims: ClaimCheck,
    private readonly bus: Bus,
    private readonly ownBus: boolean,
  ) {}

  static async start(o: LocalDataNodeOptions): Promise<LocalDataNode> {
    const bus = o.bus ?? new LocalBus();
    const store = o.store ?? new MemoryKv();
    const logger = o.logger ?? silentLogger;
    const service = new DataRequestService(bus, new MemoryStateStore(), {
      nodeId: o.nodeId,
      ...(o.defaultTimeoutMs === undefined ? {} : { defaultTimeoutMs: o.defaultTimeoutMs }),
    });
    const responder = new DataSourceResponder({ bus, store, sources: o.sources, nodeId: o.nodeId, logger });
    await responder.start();
    await service.initialize();
    return new LocalDataNode(service, responder, new ClaimCheck(store), bus, o.bus === undefined);
  }

  /** One query's answer (requestData + awaitData). */
  fetch(modelId: string, query: unknown, opts: DataRequestOptions = {}): Promise<DataPayload> {
    return this.service.fetchData(modelId, query, opts, this.claims);
  }

  /** Several queries as one batch (requestBatch), answers in the order asked. */
  async fetchBatch(
    modelId: string,
    queries: ReadonlyArray<{ query: unknown; options?: DataRequestOptions }>,
  ): Promise<DataPayload[]> {
    const { requestIds } = await this.service.requestBatch(modelId, queries);
    return Promise.all(requestIds.map((id) => this.service.awaitData(id, this.claims)));
  }

  async stop(): Promise<void> {
    await this.service.shutdown();
    await this.responder.stop();
    if (this.ownBus) await this.bus.close();
  }
}
