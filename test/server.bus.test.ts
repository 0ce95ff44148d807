// Inference over the bus: user requests → pipeline → answers streamed on the session, on LocalBus and KafkaBus.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { silentLogger } from '../src/common/logger.js';
import { parseConfig } from '../src/config/whale-config.js';
import { WhaleServer } from '../src/server/whale-server.js';
import { MessagingService } from '../src/services/messaging-service.js';
import { MemoryStateStore } from '../src/services/state-store.js';
import type { ResponseChunk } from '../src/services/user-service.js';
import { dlqTopic } from '../src/transport/bus.js';
import { allTopics, TOPICS } from '../src/transport/topics.js';
import { until } from './helpers.js';
import { kafkaHarness, localHarness, type BusHarness } from './support/buses.js';
import { scaleModel, WIDTH } from './support/serving.js';

describe.each([
  ['local', localHarness],
  [
    'kafka',
    () =>
      kafkaHarness(
        allTopics().flatMap(
          (t) =>
            [
              [t, 3],
              [dlqTopic(t), 3],
            ] as Array<[string, number]>,
        ),
      ),
  ],
] as const)('inference over the %s bus', (name, makeHarness) => {
  let h: BusHarness;
  const store = new MemoryStateStore();
  const nodes: WhaleServer[] = [];
  const models = [scaleModel('double', 2), scaleModel('double', 2)];

  beforeAll(async () => {
    h = await makeHarness();
    // Two nodes on one bus and one shared state store (Redis in production): they share the requests.
    // They start together, as replicas of one deployment do, and join the inference group at once.
    const count = name === 'kafka' ? 2 : 1;
    for (let i = 0; i < count; i++) {
      const config = parseConfig(
        { http: { port: 0 }, models: [{ name: 'double', adapter: 'onnx', path: '/unused.onnx' }] },
        '/',
      );
      const messaging = new MessagingService({ bus: h.bus(), store, nodeId: `node-${i}`, logger: silentLogger });
      nodes.push(new WhaleServer({ config, messaging, models: [models[i]!.model], logger: silentLogger }));
    }
    await Promise.all(nodes.map((n) => n.start()));
  }, 180_000);
  afterAll(async () => {
    for (const n of nodes) await n.stop();
    await h.stop();
  }, 60_000);

  it('answers every request exactly once on its session, and bad requests with a typed error', async () => {
    const user = nodes[0]!.messaging.user;
    const client = h.bus();
    const chunks = new Map<string, ResponseChunk[]>();
    await client.subscribe(
      TOPICS.userResponses,
      (e) => {
        const c = e.payload as ResponseChunk;
        chunks.set(c.sessionId, [...(chunks.get(c.sessionId) ?? []), c]);
      },
      { group: `client-${name}` },
    );
    const sessions: string[] = [];
    for (let i = 0; i < 20; i++) {
      const { sessionId } = await user.registerUserSession(`user-${i}`);
      sessions.push(sessionId);
      await user.receiveUserRequest(sessionId, {
        id: `r${i}`,
        model: 'double',
        inputs: [{ name: 'x', datatype: 'FP32', shape: [1, WIDTH], data: [i, 1, 2, 3] }],
      });
    }
    const bad = (await user.registerUserSession('user-bad')).sessionId;
    await user.receiveUserRequest(bad, {
      id: 'bad',
      inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 2], data: [1, 2] }],
    });
    const chat = (await user.registerUserSession('user-chat')).sessionId;
    await user.receiveUserRequest(chat, 'not an inference request: left to other consumers');

    expect(await until(() => sessions.every((s) => chunks.has(s)) && chunks.has(bad), 30_000)).toBe(true);
    await new Promise((r) => setTimeout(r, 300));
    sessions.forEach((s, i) => {
      const got = chunks.get(s)!;
      expect(got).toHaveLength(1);
      expect(got[0]).toMatchObject({ seq: 0, final: true, kind: 'response' });
      expect(got[0]!.chunk).toMatchObject({ id: `r${i}`, model_name: 'double', level: 'normal' });
      expect((got[0]!.chunk as { outputs: { data: number[] }[] }).outputs[0]!.data).toEqual([2 * i, 2, 4, 6]);
    });
    expect(chunks.get(bad)![0]!.chunk).toMatchObject({ id: 'bad', code: 'ERR_SHAPE_MISMATCH' });
    expect(chunks.has(chat)).toBe(false);
    if (name === 'kafka') {
      // Both nodes took part (the requests are spread over three partitions by session key).
      expect(models[0]!.calls.batches).toBeGreaterThan(0);
      expect(models[1]!.calls.batches).toBeGreaterThan(0);
    }
  }, 60_000);
});
