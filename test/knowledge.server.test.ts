// Two whale nodes on one bus (issue 20, models that share and collaborate): every hosted model is registered with
// the FederationService on its own topic; an answer on node A is shared as knowledge that a search on node B finds
// (HTTP and the bus); a deep request on node A is joined by the model answering on node B.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { silentLogger } from '../src/common/logger.js';
import { parseConfig } from '../src/config/whale-config.js';
import { KnowledgeManager } from '../src/core/federation/knowledge-sharing/knowledge-manager.js';
import { KnowledgeExtension, knowledgeExtension } from '../src/server/extensions/knowledge.js';
import { WhaleServer } from '../src/server/whale-server.js';
import { MessagingService } from '../src/services/messaging-service.js';
import { MemoryStateStore } from '../src/services/state-store.js';
import { createEnvelope } from '../src/transport/envelope.js';
import { LocalBus } from '../src/transport/local-bus.js';
import { TopicManager } from '../src/transport/topic-manager.js';
import { KNOWLEDGE_SEARCH_TOPIC, modelTopic } from '../src/transport/topics.js';
import type { ProvisionReport, TopicPlan } from '../src/transport/kafka-admin.js';
import { until } from './helpers.js';
import { http, rowsInput, scaleModel } from './support/serving.js';

interface Node {
  server: WhaleServer;
  url: string;
  ext: KnowledgeExtension;
}

async function startNode(bus: LocalBus, nodeId: string, factor: number, extra: Record<string, unknown> = {}) {
  const config = parseConfig(
    {
      http: { port: 0 },
      models: [{ name: 'scale', adapter: 'onnx', path: '/unused/scale.onnx' }],
      knowledge: { dim: 16, share: { maxPerSecond: 1000 } },
      collaboration: { deep: true, timeoutMs: 3000 },
      shutdownGraceMs: 1000,
      ...extra,
    },
    '/',
  );
  const ext = new KnowledgeExtension({
    knowledge: config.knowledge!,
    collaboration: config.collaboration!,
    logger: silentLogger,
  });
  const messaging = new MessagingService({ bus, store: new MemoryStateStore(), nodeId, logger: silentLogger });
  const server = new WhaleServer({
    config,
    messaging,
    models: [scaleModel('scale', factor).model],
    logger: silentLogger,
    extensions: [ext],
  });
  const { url } = await server.start();
  return { server, url, ext };
}

describe('knowledge and collaboration across two nodes (LocalBus)', () => {
  const bus = new LocalBus();
  let a: Node;
  let b: Node;

  beforeAll(async () => {
    a = await startNode(bus, 'node-a', 1);
    b = await startNode(bus, 'node-b', 3);
  });
  afterAll(async () => {
    await a?.server.stop();
    await b?.server.stop();
    await bus.close();
  });

  it('registers every hosted model with the FederationService, on its own topic', () => {
    expect(a.server.messaging.federation.registeredModels()).toEqual(['scale']);
    expect(b.ext.stats().models).toEqual(['scale']);
    expect(modelTopic('scale')).toBe('whale.models.scale.collaboration');
  });

  it('an answer on node A is found by a search on node B (HTTP and the bus), privacy guard applied', async () => {
    const row = [0.5, 2, -1, 4];
    const r = await http(`${a.url}/v2/models/scale/infer`, { json: rowsInput([row]) });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(await until(() => b.ext.stats().items > 0 && a.ext.stats().items > 0, 5000)).toBe(true);

    const s = await http(`${b.url}/v1/knowledge/search`, { json: { ...rowsInput([row]), k: 3, topic: 'answers' } });
    expect(s.status, JSON.stringify(s.body)).toBe(200);
    expect(s.body.node).toBe('node-b');
    const hit = s.body.hits[0];
    expect(hit).toMatchObject({ sourceModel: 'scale', topic: 'answers', data: { node: 'node-a', model: 'scale' } });
    expect(hit.distance).toBeLessThan(1e-2);
    expect(hit.data.answer.y.values).toEqual(row);
    expect(hit.data.embedding).toBeUndefined(); // the vector lives in the index, not in the item

    const reply = await bus.request(
      KNOWLEDGE_SEARCH_TOPIC,
      createEnvelope({ type: 'KnowledgeSearch', source: 'test', payload: { ...rowsInput([row]), k: 1 } }),
      { timeoutMs: 5000 },
    );
    expect((reply.payload as { hits: Array<{ data: { node: string } }> }).hits[0]!.data.node).toBe('node-a');

    const info = await http(`${b.url}/v1/knowledge`);
    expect(info.body).toMatchObject({ node: 'node-b', dim: 16, models: ['scale'] });
  });

  it('refuses bad searches with the field named; searching as a model needs an operator key', async () => {
    const bad = await http(`${b.url}/v1/knowledge/search`, { json: { vector: [1, 0], k: 0 } });
    expect(bad.status).toBe(400);
    expect(bad.body.error).toMatch(/body\.k/);
    const both = await http(`${b.url}/v1/knowledge/search`, { json: { vector: [1], text: 'x' } });
    expect(both.status).toBe(400);
    const dim = await http(`${b.url}/v1/knowledge/search`, { json: { vector: [1, 0, 0] } });
    expect(dim.status).toBe(400);
    expect(dim.body.error).toMatch(/vector/);
    const as = await http(`${b.url}/v1/knowledge/search`, { json: { text: 'rain', as: 'scale' } });
    expect(as.status).toBe(403);
  });

  it('a deep request on node A combines its own model with the model answering from node B', async () => {
    const body = { ...rowsInput([[1, 2, 3, 4]]), parameters: { level: 'deep' } };
    const r = await http(`${a.url}/v2/models/scale/infer`, { json: body });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    // node A: y = x, node B: y = 3x; combined: the mean, 2x
    expect(r.body.outputs[0].data).toEqual([2, 4, 6, 8]);
    expect(String(r.body.parameters.models).split(',')).toEqual(['scale', 'scale@node-b']);
  });
});

describe('one node: anonymous sharing; knowledge turned off', () => {
  it('anonymous items name neither model nor node; enabled: false registers the models and serves no search', async () => {
    const bus = new LocalBus();
    const anon = await startNode(bus, 'node-anon', 2, {
      knowledge: { dim: 8, maxItems: 2, share: { privacy: 'anonymous', maxPerSecond: 1000 } },
    });
    try {
      expect((await http(`${anon.url}/v2/models/scale/infer`, { json: rowsInput([[1, 1, 0, 2]]) })).status).toBe(200);
      expect(await until(() => anon.ext.stats().items === 1, 5000)).toBe(true);
      const [item] = anon.ext.manager.list();
      expect(item!.sourceModel).toBeUndefined();
      expect(item!.privacy).toBe('anonymous');
      expect(item!.data).not.toHaveProperty('model');
      expect(item!.data).not.toHaveProperty('node');
      expect(item!.data).toMatchObject({ answer: { y: { values: [2, 2, 0, 4], top: 3 } } });
      // Beyond knowledge.maxItems the oldest answers go.
      for (const row of [
        [0, 1, 0, 0],
        [0, 0, 1, 0],
      ]) {
        expect((await http(`${anon.url}/v2/models/scale/infer`, { json: rowsInput([row]) })).status).toBe(200);
        await new Promise((r) => setTimeout(r, 5)); // distinct times
      }
      expect(await until(() => anon.ext.stats().items === 3, 5000)).toBe(true);
      expect(await anon.ext.prune()).toBe(1);
      expect(anon.ext.manager.list().map((i) => (i.data as { answer: { y: { top: number } } }).answer.y.top)).toEqual([
        2, 1,
      ]);
    } finally {
      await anon.server.stop();
    }
    const config = parseConfig(
      {
        http: { port: 0 },
        models: [{ name: 'scale', adapter: 'onnx', path: '/unused/scale.onnx' }],
        knowledge: { enabled: false },
      },
      '/',
    );
    const ext = knowledgeExtension(config, {});
    expect(ext.name).toBe('federation-models');
    const messaging = new MessagingService({
      bus,
      store: new MemoryStateStore(),
      nodeId: 'node-off',
      logger: silentLogger,
    });
    const server = new WhaleServer({
      config,
      messaging,
      models: [scaleModel('scale', 1).model],
      logger: silentLogger,
      extensions: [ext],
    });
    const { url } = await server.start();
    try {
      expect(messaging.federation.registeredModels()).toEqual(['scale']);
      expect((await http(`${url}/v1/knowledge/search`, { json: { text: 'x' } })).status).toBe(404);
    } finally {
      await server.stop();
      await bus.close();
    }
  });
});

describe('TopicManager', () => {
  it('creates each model topic (and its .dlq) once, partitions from kafka.topics; a no-op without Kafka', async () => {
    const asked: TopicPlan[][] = [];
    const admin = {
      provision: async (plans: TopicPlan[]): Promise<ProvisionReport> => {
        asked.push(plans);
        return { created: plans.map((p) => p.topic), existing: [], mismatched: [], skipped: [] };
      },
      close: async () => undefined,
    };
    const tm = new TopicManager({
      kafka: {
        brokers: ['k1:9092'],
        topics: {
          provision: true,
          defaults: { partitions: 6 },
          overrides: { 'whale.models.big.collaboration': { partitions: 12 } },
          extra: [],
        },
      },
      admin: () => admin,
    });
    await tm.ensureModelTopics(['small', 'big']);
    await tm.ensureModelTopics(['small']);
    expect(asked).toHaveLength(1);
    expect(asked[0]).toEqual([
      { topic: 'whale.models.small.collaboration', spec: { partitions: 6 } },
      { topic: 'whale.models.small.collaboration.dlq', spec: { partitions: 6 } },
      { topic: 'whale.models.big.collaboration', spec: { partitions: 12 } },
      { topic: 'whale.models.big.collaboration.dlq', spec: { partitions: 12 } },
    ]);
    const local = new TopicManager({ admin: () => admin });
    expect(local.enabled).toBe(false);
    expect(await local.ensureModelTopics(['x'])).toBeUndefined();
    expect(() => tm.modelTopics('bad name')).toThrow(/model/);
  });
});

describe('knowledge and collaboration settings, the facade', () => {
  it('whale.config.json sections: defaults, and errors naming the field', () => {
    const base = { models: [{ name: 'm', adapter: 'onnx', path: '/unused/m.onnx' }] };
    const d = parseConfig(base, '/');
    expect(d.knowledge).toMatchObject({
      enabled: true,
      dim: 64,
      dir: false,
      share: { sample: 1, privacy: 'standard' },
    });
    expect(d.collaboration).toEqual({ deep: 'auto', timeoutMs: 5000 });
    const c = parseConfig({ ...base, knowledge: { dir: 'kn' }, collaboration: { deep: false, models: ['x'] } }, '/srv');
    expect(c.knowledge!.dir).toBe('/srv/kn');
    expect(c.collaboration).toEqual({ deep: false, timeoutMs: 5000, models: ['x'] });
    const bad = (extra: Record<string, unknown>, field: string) =>
      expect(() => parseConfig({ ...base, ...extra }, '/')).toThrow(
        expect.objectContaining({ code: 'ERR_CONFIG', field }) as Error,
      );
    bad({ knowledge: { dim: 1 } }, 'knowledge.dim');
    bad({ knowledge: { share: { sample: 2 } } }, 'knowledge.share.sample');
    bad({ knowledge: { share: { privacy: 'encrypted' } } }, 'knowledge.share.privacy');
    bad({ knowledge: { colour: 1 } }, 'knowledge.colour');
    bad({ collaboration: { deep: 'yes' } }, 'collaboration.deep');
    bad({ collaboration: { timeoutMs: 0 } }, 'collaboration.timeoutMs');
  });

  it('KnowledgeManager.prune drops expired items (kept in memory until then)', async () => {
    let now = 1_000;
    const km = await KnowledgeManager.open({ dim: 4, dir: false, now: () => now });
    try {
      await km.store({ topic: 't', data: 1, ttlMs: 10, embedding: [1, 0, 0, 0] });
      await km.store({ topic: 't', data: 2, embedding: [0, 1, 0, 0] });
      now += 11;
      expect(km.stats().items).toBe(2);
      expect(await km.prune()).toBe(1);
      expect(km.list().map((i) => i.data)).toEqual([2]);
    } finally {
      await km.close();
    }
  });

  it('MessagingService: respondToCollaboration and requestBatchData', async () => {
    const bus = new LocalBus();
    const m = new MessagingService({ bus, store: new MemoryStateStore(), nodeId: 'n1', logger: silentLogger });
    await m.initialize();
    try {
      const id = await m.requestCollaboration('asker', 'p', { targets: ['helper'], timeoutMs: 5000 });
      await m.respondToCollaboration(id, 'helper', { hint: 42 });
      const s = await m.federation.awaitCollaboration(id);
      expect(s).toMatchObject({ status: 'completed', responses: [{ responder: 'helper', solution: { hint: 42 } }] });
      const batch = await m.requestBatchData('model-a', [{ query: { sql: 'a' } }, { query: { sql: 'b' } }]);
      expect(batch.requestIds).toHaveLength(2);
      for (const r of batch.requestIds) expect((await m.data.getRequestStatus(r)).batchId).toBe(batch.batchId);
      await expect(m.requestBatchData('model-a', [])).rejects.toMatchObject({ field: 'queries' });
    } finally {
      await m.shutdown();
      await bus.close();
    }
  });
});
