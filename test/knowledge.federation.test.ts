// Knowledge shared between two models over the bus is stored by the receiver's KnowledgeManager and found by search.
import { randomBytes } from 'node:crypto';

import { afterEach, describe, expect, it } from 'vitest';

import { KnowledgeManager, knowledgeSink } from '../src/core/federation/knowledge-sharing/index.js';
import { FederationService, type Knowledge } from '../src/services/federation-service.js';
import { MemoryStateStore } from '../src/services/state-store.js';
import { LocalBus } from '../src/transport/local-bus.js';
import { until } from './helpers.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe('knowledge over the federation bus', () => {
  it('model B finds what model A shared (standard, anonymous, encrypted for B), and only what B may see', async () => {
    const bus = new LocalBus();
    const secret = randomBytes(32).toString('base64');
    const sender = new FederationService(bus, new MemoryStateStore(), { nodeId: 'node-a', secret, env: {} });
    const manager = await KnowledgeManager.open({ dim: 4, dir: false });
    const receiver = new FederationService(bus, new MemoryStateStore(), {
      nodeId: 'node-b',
      secret,
      env: {},
      knowledge: knowledgeSink(manager),
    });
    cleanups.push(
      async () => bus.close(),
      () => manager.close(),
      () => sender.shutdown(),
      () => receiver.shutdown(),
    );
    const seenByB: Knowledge[] = [];
    sender.registerModel('model-a');
    receiver.registerModel('model-b', { onKnowledge: (k) => void seenByB.push(k) });
    await sender.initialize();
    await receiver.initialize();

    await sender.shareKnowledge('model-a', 'model-b', {
      topic: 'weather',
      key: 'today',
      text: 'rain in Oslo',
      embedding: [1, 0, 0, 0],
    });
    await sender.shareKnowledge(
      'model-a',
      'all',
      { topic: 'weather', embedding: [0.9, 0.1, 0, 0], city: 'Bergen' },
      { privacy: 'anonymous' },
    );
    await sender.shareKnowledge(
      'model-a',
      'model-b',
      { topic: 'secrets', embedding: [0.8, 0.2, 0, 0], code: 42 },
      { privacy: 'encrypted' },
    );
    await sender.shareKnowledge('model-a', 'model-c', { topic: 'weather', embedding: [0.95, 0, 0.05, 0] });
    expect(await until(() => manager.stats().items === 4, 5000)).toBe(true);
    expect(await until(() => seenByB.length === 3, 5000)).toBe(true);

    const hits = await manager.search({ vector: [1, 0, 0, 0], k: 10, as: 'model-b' });
    expect(hits.map((h) => h.item.data)).toEqual([
      { topic: 'weather', key: 'today', text: 'rain in Oslo' },
      { topic: 'weather', city: 'Bergen' },
      { topic: 'secrets', code: 42 },
    ]);
    expect(hits[0]!.item).toMatchObject({
      sourceModel: 'model-a',
      targetModel: 'model-b',
      privacy: 'standard',
      key: 'today',
      topic: 'weather',
    });
    expect(hits[1]!.item.sourceModel).toBeUndefined(); // anonymous
    expect(hits[2]!.item.privacy).toBe('encrypted');
    // Another model does not see B's encrypted item nor the one addressed to B.
    const other = await manager.search({ vector: [1, 0, 0, 0], k: 10, as: 'model-c' });
    expect(other.map((h) => h.item.data)).toEqual([{ topic: 'weather' }, { topic: 'weather', city: 'Bergen' }]);
    expect(other.some((h) => h.item.privacy === 'encrypted' || h.item.targetModel === 'model-b')).toBe(false);
    expect(await manager.search({ vector: [1, 0, 0, 0], k: 10, as: 'model-c', filter: { topic: 'secrets' } })).toEqual(
      [],
    );
    // A model that leaves the federation can have its knowledge removed.
    expect(await manager.forget({ sourceModel: 'model-a' })).toBe(3);
    expect(
      (await manager.search({ vector: [1, 0, 0, 0], k: 10, as: 'model-b' })).map((h) => h.item.sourceModel),
    ).toEqual([undefined]);
  });

  it('a redelivered message replaces its item instead of adding a copy; a bad embedding is dead-lettered', async () => {
    const bus = new LocalBus();
    const manager = await KnowledgeManager.open({ dim: 4, dir: false });
    const fed = new FederationService(bus, new MemoryStateStore(), {
      nodeId: 'n',
      env: {},
      knowledge: knowledgeSink(manager),
    });
    cleanups.push(
      async () => bus.close(),
      () => manager.close(),
      () => fed.shutdown(),
    );
    fed.registerModel('m', {});
    await fed.initialize();
    let failOnce = true;
    fed.registerModel('m', {
      onKnowledge: () => {
        if (failOnce) {
          failOnce = false;
          throw new Error('transient');
        }
      },
    });
    await fed.shareKnowledge('x', 'm', { topic: 't', embedding: [1, 2, 3, 4] });
    expect(await until(() => !failOnce, 5000)).toBe(true);
    await new Promise((r) => setTimeout(r, 300));
    expect(manager.stats().items).toBe(1);
    await fed.shareKnowledge('x', 'm', { topic: 't', embedding: [1, 2, 3] });
    expect(await until(() => bus.retained('whale.federation.knowledge.dlq').length === 1, 10_000)).toBe(true);
    expect(manager.stats().items).toBe(1);
  }, 30_000);
});
