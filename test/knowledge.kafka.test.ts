// Hosted models' own topics on a real Kafka peer (librdkafka's mock cluster): the TopicManager asks the admin API
// (the mock cannot create topics, so they are left to auto-creation, as in the system test), a request sent with
// channel 'model' reaches only the node hosting its target, the asking node alone records the answer, and a request
// nobody hosts expires at its deadline.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { silentLogger } from '../src/common/logger.js';
import { parseConfig } from '../src/config/whale-config.js';
import { KnowledgeExtension } from '../src/server/extensions/knowledge.js';
import { WhaleServer } from '../src/server/whale-server.js';
import { MessagingService } from '../src/services/messaging-service.js';
import { FederationService, type CollaborationRequest } from '../src/services/federation-service.js';
import { MemoryStateStore, RedisStateStore } from '../src/services/state-store.js';
import { defaultProvisioning } from '../src/transport/kafka-admin.js';
import { TopicManager } from '../src/transport/topic-manager.js';
import { kafkaHarness, type BusHarness } from './support/buses.js';
import { RedisServer } from './support/redis-server.js';
import { http, rowsInput, scaleModel } from './support/serving.js';

describe('per-model collaboration topics on the Kafka mock', () => {
  let h: BusHarness;
  const services: FederationService[] = [];
  const managers: TopicManager[] = [];

  function node(id: string): FederationService {
    const topics = new TopicManager({
      kafka: { brokers: h.mock!.brokers, topics: defaultProvisioning() },
      logger: silentLogger,
    });
    managers.push(topics);
    const s = new FederationService(h.bus(), new MemoryStateStore(), { nodeId: id, env: {}, topics });
    services.push(s);
    return s;
  }

  beforeAll(async () => {
    h = await kafkaHarness();
  }, 60_000);
  afterAll(async () => {
    await Promise.allSettled(services.map((s) => s.shutdown()));
    await Promise.allSettled(managers.map((m) => m.close()));
    await h?.stop();
  }, 60_000);

  it('reaches only the node hosting the target; the asker records the answer; expiry without one', async () => {
    const seenByC: CollaborationRequest[] = [];
    const a = node('node-a');
    const b = node('node-b');
    const c = node('node-c');
    await Promise.all([a.initialize(), b.initialize(), c.initialize()]);
    await Promise.all([
      a.hostModel('asker'),
      b.hostModel('solver', { onCollaborationRequest: (r) => ({ answer: `solved ${String(r.problem)}` }) }),
      c.hostModel('bystander', { onCollaborationRequest: (r) => void seenByC.push(r) }),
    ]);
    expect(b.registeredModels()).toEqual(['solver']);

    const id = await a.requestCollaboration('asker', 'x+1', {
      targets: ['solver'],
      channel: 'model',
      timeoutMs: 20_000,
    });
    const done = await a.awaitCollaboration(id);
    expect(done.status).toBe('completed');
    expect(done.node).toBe('node-a');
    expect(done.responses).toEqual([
      expect.objectContaining({ responder: 'solver', node: 'node-b', solution: { answer: 'solved x+1' } }),
    ]);
    expect(seenByC).toEqual([]); // not on its topic

    const started = Date.now();
    const lonely = await a.requestCollaboration('asker', 'nobody', {
      targets: ['bystander-2'],
      channel: 'model',
      timeoutMs: 500,
    });
    const expired = await a.awaitCollaboration(lonely);
    expect(expired.status).toBe('expired');
    expect(Date.now() - started).toBeGreaterThanOrEqual(450);

    await expect(a.requestCollaboration('asker', 'p', { channel: 'model' })).rejects.toMatchObject({
      code: 'ERR_INVALID_OPTION',
      field: 'options.targets',
    });
  }, 90_000);

  it('two servers on one Redis: a deep request on A is joined by B, without waiting for a model only A hosts; B finds what A answered', async () => {
    const redis = await RedisServer.start();
    const servers: WhaleServer[] = [];
    try {
      const nodes = [
        { nodeId: 'kafka-a', models: [scaleModel('scale', 1).model, scaleModel('solo', 2).model] },
        { nodeId: 'kafka-b', models: [scaleModel('scale', 3).model] },
      ];
      // Started together: each node joins its consumer groups on the mock.
      const urls = await Promise.all(
        nodes.map(async ({ nodeId, models }) => {
          const config = parseConfig(
            {
              http: { port: 0 },
              models: models.map((m) => ({ name: m.name, adapter: 'onnx', path: '/unused/m.onnx' })),
              knowledge: { dim: 16 },
              collaboration: { timeoutMs: 8000 }, // deep: 'auto' is on over Kafka
              shutdownGraceMs: 1000,
            },
            '/',
          );
          const store = new RedisStateStore(redis.url);
          const messaging = new MessagingService({ bus: h.bus(), store, nodeId, logger: silentLogger });
          const ext = new KnowledgeExtension({
            knowledge: config.knowledge!,
            collaboration: config.collaboration!,
            logger: silentLogger,
          });
          const server = new WhaleServer({ config, messaging, models, logger: silentLogger, extensions: [ext] });
          servers.push(server);
          const { url } = await server.start();
          return url;
        }),
      );
      const [a, b] = urls as [string, string];
      expect((await servers[0]!.messaging.federation.hostsOf('scale')).sort()).toEqual(['kafka-a', 'kafka-b']);
      expect(await servers[0]!.messaging.federation.hostsOf('solo')).toEqual(['kafka-a']);
      const started = Date.now();
      const body = { ...rowsInput([[1, 2, 3, 4]]), parameters: { level: 'deep' } };
      const r = await http(`${a}/v2/models/scale/infer`, { json: body });
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      expect(String(r.body.parameters.models).split(',')).toEqual(['scale', 'solo', 'scale@kafka-b']);
      expect(r.body.outputs[0].data).toEqual([2, 4, 6, 8]); // the mean of 1x, 2x (A) and 3x (B)
      // Only 'scale' was asked ('solo' has no other host), so it ended with B's answer, not at the 8 s deadline.
      expect(Date.now() - started).toBeLessThan(6000);
      let node: string | undefined;
      for (let i = 0; i < 40 && node !== 'kafka-a'; i++) {
        await new Promise((res) => setTimeout(res, 250));
        const s = await http(`${b}/v1/knowledge/search`, { json: { ...rowsInput([[1, 2, 3, 4]]), k: 3 } });
        node = s.body.hits.find((x: { data: { node: string } }) => x.data.node === 'kafka-a')?.data.node;
      }
      expect(node).toBe('kafka-a');
    } finally {
      for (const s of servers) await s.stop();
      await Promise.all(servers.map((s) => s.messaging.store.close()));
      await redis.stop();
    }
  }, 90_000);
});
