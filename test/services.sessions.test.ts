// User sessions: bounded per node (count, metadata bytes, idle expiry), tied to the model that serves them, and
// held in Redis so that another node continues them (two WhaleServers on one Redis, driven over HTTP and the bus).
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';

import { silentLogger } from '../src/common/logger.js';
import { parseConfig } from '../src/config/whale-config.js';
import { defineModel } from '../src/core/base/model.js';
import { WhaleServer } from '../src/server/whale-server.js';
import { MessagingService } from '../src/services/messaging-service.js';
import { MemoryStateStore, RedisStateStore } from '../src/services/state-store.js';
import { UserService, type ResponseChunk } from '../src/services/user-service.js';
import { LocalBus } from '../src/transport/local-bus.js';
import { TOPICS } from '../src/transport/topics.js';
import { expectWhaleError, until } from './helpers.js';
import { RedisServer } from './support/redis-server.js';
import { http } from './support/serving.js';

/** Echoes its input back in `steps` steps (a model with its own generate()). */
function echoModel(steps: number) {
  return defineModel({
    name: 'echo',
    inputs: [{ name: 'n', datatype: 'INT32', shape: [1] }],
    outputs: [{ name: 'value', datatype: 'INT32', shape: [1] }],
    process: (input) => ({ value: { name: 'value', datatype: 'INT32', shape: [1], data: input.n!.data } }),
    async *generate(input) {
      for (let i = 1; i <= steps; i++) {
        await new Promise((r) => setImmediate(r));
        yield { outputs: { value: { ...input.n!, name: 'value' } }, final: i === steps };
      }
    },
  });
}

describe('user sessions are bounded', () => {
  it('by open sessions per node, metadata bytes and idle expiry', async () => {
    const bus = new LocalBus();
    const user = new UserService(bus, new MemoryStateStore(), {
      nodeId: 'n1',
      maxSessions: 2,
      maxMetadataBytes: 64,
      idleTimeoutMs: 60_000,
    });
    await user.initialize();
    const a = await user.registerUserSession('u1');
    await user.registerUserSession('u2', {}, { model: 'echo' });
    await expectWhaleError(() => user.registerUserSession('u3'), 'ERR_OVERLOADED', 'userId');
    await user.endUserSession(a.sessionId);
    const c = await user.registerUserSession('u3');
    expect(user.openSessions).toBe(2);
    await expectWhaleError(
      () => user.registerUserSession('u4', { note: 'x'.repeat(100) }),
      'ERR_INVALID_ARG',
      'metadata',
    );
    await expectWhaleError(() => user.registerUserSession('u4', {}, { model: '' }), 'ERR_INVALID_ARG', 'options.model');
    // Sessions idle past the timeout no longer count, and are expired by the sweep (the clock moved a minute on).
    vi.useFakeTimers({ toFake: ['Date'] });
    try {
      vi.setSystemTime(Date.now() + 61_000);
      expect(user.openSessions).toBe(0);
      expect(await user.expireIdle()).toBe(2);
      expect((await user.getSessionInfo(c.sessionId)).status).toBe('expired');
    } finally {
      vi.useRealTimers();
      await user.shutdown();
      await bus.close();
    }
  });
});

describe('a session opened on one node continues on another (sessions in Redis)', () => {
  let redis: RedisServer;
  const bus = new LocalBus();
  const nodes: WhaleServer[] = [];
  const urls: string[] = [];
  const chunks: ResponseChunk[] = [];

  beforeAll(async () => {
    redis = await RedisServer.start();
    for (const id of ['node-a', 'node-b']) {
      const config = parseConfig(
        { http: { port: 0 }, models: [{ name: 'echo', adapter: 'onnx', path: '/unused.onnx' }] },
        '/',
      );
      const messaging = new MessagingService({
        bus,
        store: new RedisStateStore(redis.url),
        nodeId: id,
        logger: silentLogger,
      });
      const node = new WhaleServer({ config, messaging, models: [echoModel(3)], logger: silentLogger });
      nodes.push(node);
      urls.push((await node.start()).url);
    }
    await bus.subscribe(TOPICS.userResponses, (e) => void chunks.push(e.payload as ResponseChunk), {
      group: 'client',
    });
  }, 60_000);
  afterAll(async () => {
    for (const n of nodes) {
      await n.stop();
      await n.messaging.store.close();
    }
    await bus.close();
    await redis.stop();
  });

  it('node A registers, node B streams on it and ends it, node A sees it ended', async () => {
    const [a, b] = nodes as [WhaleServer, WhaleServer];
    const session = await a.messaging.registerUserSession('carol', { plan: 'pro' }, { model: 'echo' });
    const res = await fetch(`${urls[1]}/v2/models/echo/generate_stream`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ n: 7, parameters: { session_id: session.sessionId } }),
    });
    const text = await res.text();
    expect(text.split('\n\n').filter((e) => e.startsWith('data: '))).toHaveLength(3);
    const mine = () => chunks.filter((c) => c.sessionId === session.sessionId);
    expect(await until(() => mine().length === 3, 5_000)).toBe(true);
    expect(mine().map((c) => [c.seq, c.final])).toEqual([
      [0, false],
      [1, false],
      [2, true],
    ]);
    // Node A continues the same session's numbering.
    expect((await a.messaging.user.getSessionInfo(session.sessionId)).nextSeq).toBe(3);
    const ended = await b.messaging.endUserSession(session.sessionId, 'done');
    expect(ended).toMatchObject({ status: 'ended', endReason: 'done', model: 'echo', metadata: { plan: 'pro' } });
    const late = await http(`${urls[0]}/v2/models/echo/generate`, {
      json: { n: 1, parameters: { session_id: session.sessionId } },
    });
    expect([late.status, late.body.code, late.body.field]).toEqual([409, 'ERR_CONFLICT', 'parameters.session_id']);
  });
});
