// Hosted models' own topics on a real Kafka peer (librdkafka's mock cluster): the TopicManager asks the admin API
// (the mock cannot create topics, so they are left to auto-creation, as in the system test), a request sent with
// channel 'model' reaches only the node hosting its target, the asking node alone records the answer, and a request
// nobody hosts expires at its deadline.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { silentLogger } from '../src/common/logger.js';
import { FederationService, type CollaborationRequest } from '../src/services/federation-service.js';
import { MemoryStateStore } from '../src/services/state-store.js';
import { defaultProvisioning } from '../src/transport/kafka-admin.js';
import { TopicManager } from '../src/transport/topic-manager.js';
import { kafkaHarness, type BusHarness } from './support/buses.js';

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
});
