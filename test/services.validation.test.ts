// Services check their own arguments, leave no state behind when a publish fails, and restart after shutdown.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { WhaleError } from '../src/common/errors.js';
import { silentLogger } from '../src/common/logger.js';
import { DataRequestService } from '../src/services/data-request-service.js';
import {
  dataRequestService,
  federationService,
  MessagingService,
  messagingService,
  userService,
} from '../src/services/messaging-service.js';
import { MemoryStateStore } from '../src/services/state-store.js';
import { UserService } from '../src/services/user-service.js';
import { LocalBus } from '../src/transport/local-bus.js';
import { TOPICS } from '../src/transport/topics.js';
import { expectWhaleError } from './helpers.js';

const circular = () => {
  const o: Record<string, unknown> = { a: 1 };
  o.self = o;
  return o;
};

/** A LocalBus whose publish fails on the named topics (a broker outage, as the caller sees it). */
class FlakyBus extends LocalBus {
  readonly failing = new Set<string>();
  override async publish(...args: Parameters<LocalBus['publish']>): Promise<void> {
    if (this.failing.has(args[0]))
      throw new WhaleError('ERR_TIMEOUT', `publish to ${args[0]} timed out`, { retriable: true });
    return super.publish(...args);
  }
}

describe('publishers validate their own arguments', () => {
  let bus: FlakyBus;
  let store: MemoryStateStore;
  let svc: MessagingService;
  beforeEach(async () => {
    bus = new FlakyBus();
    store = new MemoryStateStore();
    svc = new MessagingService({ bus, store, nodeId: 'n', logger: silentLogger, env: {} });
    await svc.initialize();
  });
  afterEach(async () => {
    await svc.shutdown();
    await bus.close();
  });

  it('data requests: bad timeouts and options fail the call and leave nothing pending or published', async () => {
    for (const timeoutMs of [Infinity, 1e20, -1, 0, NaN, '100']) {
      await expectWhaleError(
        () => svc.requestData('m', { q: 1 }, { timeoutMs } as never),
        'ERR_INVALID_OPTION',
        'options.timeoutMs',
      );
    }
    await expectWhaleError(
      () => svc.requestData('m', { q: 1 }, { priority: '5' } as never),
      'ERR_INVALID_OPTION',
      'options.priority',
    );
    await expectWhaleError(
      () => svc.requestData('m', { q: 1 }, { sourceType: '' }),
      'ERR_INVALID_OPTION',
      'options.sourceType',
    );
    await expectWhaleError(
      () => svc.requestData('m', { q: 1 }, { parameters: [] as never }),
      'ERR_INVALID_OPTION',
      'options.parameters',
    );
    await expectWhaleError(() => svc.requestData('m', { q: 1 }, 'fast' as never), 'ERR_INVALID_OPTION', 'options');
    await expectWhaleError(
      () => svc.data.requestBatch('m', [{ query: 1 }, { query: 2, options: { timeoutMs: Infinity } }]),
      'ERR_INVALID_OPTION',
      'queries[1].options.timeoutMs',
    );
    expect(await store.keys('data:')).toEqual([]);
    expect(bus.retained(TOPICS.dataRequests)).toHaveLength(0);
  });

  it('metrics and events: NaN, Infinity, non-string labels fail the call; nothing is published', async () => {
    await expectWhaleError(() => svc.publishMetric('cpu', NaN), 'ERR_INVALID_ARG', 'value');
    await expectWhaleError(() => svc.publishMetric('cpu', Infinity), 'ERR_INVALID_ARG', 'value');
    await expectWhaleError(() => svc.publishMetric('cpu', '5' as never), 'ERR_INVALID_ARG', 'value');
    await expectWhaleError(() => svc.publishMetric('', 1), 'ERR_INVALID_ARG', 'name');
    await expectWhaleError(() => svc.publishMetric('cpu', 1, { core: 3 } as never), 'ERR_INVALID_ARG', 'labels.core');
    await expectWhaleError(() => svc.publishEvent('deploy', { n: 10n }), 'ERR_INVALID_ARG', 'data.n');
    expect(bus.retained(TOPICS.metrics)).toHaveLength(0);
    expect(bus.retained(TOPICS.events)).toHaveLength(0);
  });

  it('BigInt, circular and non-JSON payloads give a WhaleError naming the path (not a TypeError)', async () => {
    await expectWhaleError(() => svc.requestData('m', { n: 1n }), 'ERR_INVALID_ARG', 'query.n');
    await expectWhaleError(() => svc.requestData('m', circular()), 'ERR_INVALID_ARG', 'query.self');
    await expectWhaleError(() => svc.shareKnowledge('a', 'b', { w: [1n] }), 'ERR_INVALID_ARG', 'data.w[0]');
    await expectWhaleError(
      () => svc.shareKnowledge('a', 'b', circular(), { privacy: 'anonymous' }),
      'ERR_INVALID_ARG',
      'data.self',
    );
    await expectWhaleError(() => svc.shareKnowledge('a', 'b', { m: new Map([[1, 2]]) }), 'ERR_INVALID_ARG', 'data.m');
    await expectWhaleError(() => svc.requestCollaboration('a', { big: 2n ** 70n }), 'ERR_INVALID_ARG', 'problem.big');
    await expectWhaleError(
      () => svc.requestCollaboration('a', 'p', { timeoutMs: Infinity }),
      'ERR_INVALID_OPTION',
      'options.timeoutMs',
    );
    await expectWhaleError(
      () => svc.requestCollaboration('a', 'p', { targets: ['b', ''] }),
      'ERR_INVALID_ARG',
      'options.targets[1]',
    );
    await expectWhaleError(
      () => svc.user.registerUserSession('u', { id: 1n } as never),
      'ERR_INVALID_ARG',
      'metadata.id',
    );
    const { sessionId } = await svc.user.registerUserSession('u');
    await expectWhaleError(() => svc.streamResponse(sessionId, circular()), 'ERR_INVALID_ARG', 'chunk.self');
    await expectWhaleError(() => svc.sendThinkingProcess(sessionId, { t: NaN }), 'ERR_INVALID_ARG', 'thought.t');
    await expectWhaleError(
      () => svc.streamResponse(sessionId, 'x', { final: 'yes' } as never),
      'ERR_INVALID_OPTION',
      'options.final',
    );
    await expectWhaleError(() => svc.user.receiveUserRequest(sessionId, 5n), 'ERR_INVALID_ARG', 'content');
    // Nothing of the refused calls went out; the session's stream has not advanced.
    expect((await svc.user.getSessionInfo(sessionId)).nextSeq).toBe(0);
    expect(await store.keys('collab:')).toEqual([]);
  });

  it('a data request whose publish fails does not stay pending; a failed cancel keeps it pending', async () => {
    bus.failing.add(TOPICS.dataRequests);
    await expectWhaleError(() => svc.requestData('m', { q: 1 }, { timeoutMs: 60_000 }), 'ERR_TIMEOUT');
    expect(await store.keys('data:')).toEqual([]);
    bus.failing.clear();
    const id = await svc.requestData('m', { q: 1 }, { timeoutMs: 60_000 });
    bus.failing.add(TOPICS.dataControl);
    await expectWhaleError(() => svc.data.cancelRequest(id), 'ERR_TIMEOUT');
    expect((await svc.data.getRequestStatus(id)).status).toBe('pending');
    bus.failing.clear();
    expect((await svc.data.cancelRequest(id)).status).toBe('cancelled');
  });

  it('sessions and collaborations whose announcement fails are not kept', async () => {
    bus.failing.add(TOPICS.userSessions);
    await expectWhaleError(() => svc.user.registerUserSession('u'), 'ERR_TIMEOUT');
    expect(await store.keys('session:')).toEqual([]);
    bus.failing.add(TOPICS.collaborationRequests);
    await expectWhaleError(() => svc.requestCollaboration('a', 'p'), 'ERR_TIMEOUT');
    expect(await store.keys('collab:')).toEqual([]);
  });
});

describe('session expiry when its announcement fails', () => {
  it('the session stays active and the next sweep expires and announces it', async () => {
    const bus = new FlakyBus();
    const store = new MemoryStateStore();
    const user = new UserService(bus, store, { nodeId: 'n', idleTimeoutMs: 50 });
    await user.initialize();
    const { sessionId } = await user.registerUserSession('u');
    await new Promise((r) => setTimeout(r, 80));
    bus.failing.add(TOPICS.userSessions);
    await expectWhaleError(() => user.expireIdle(), 'ERR_TIMEOUT');
    expect((await store.get<{ status: string }>(`session:${sessionId}`))?.status).toBe('active');
    bus.failing.clear();
    expect(await user.expireIdle()).toBe(1);
    expect((await user.getSessionInfo(sessionId)).status).toBe('expired');
    const events = bus
      .retained(TOPICS.userSessions)
      .map((r) => (JSON.parse(r.data.toString()) as { payload: { event: string } }).payload.event);
    expect(events).toEqual(['started', 'expired']);
    await user.shutdown();
    await bus.close();
  });
});

describe('shutdown and restart', () => {
  it('after shutdown, registerUserSession fails before storing anything', async () => {
    const store = new MemoryStateStore();
    const svc = new MessagingService({ store, nodeId: 'n', logger: silentLogger, env: {} });
    await svc.initialize();
    await svc.shutdown();
    await expectWhaleError(() => svc.user.registerUserSession('user-1'), 'ERR_BUS_CLOSED');
    await expectWhaleError(() => svc.publishMetric('cpu', 1), 'ERR_BUS_CLOSED');
    expect(await store.keys('')).toEqual([]);
  });

  it('refuses calls before initialize(), storing nothing (hardening round 2, item 21)', async () => {
    const store = new MemoryStateStore();
    const svc = new MessagingService({ store, nodeId: 'n', logger: silentLogger, env: {} });
    await expectWhaleError(() => svc.user.registerUserSession('user-1'), 'ERR_INVALID_STATE');
    await expectWhaleError(() => svc.data.requestData('m', 1), 'ERR_INVALID_STATE');
    await expectWhaleError(() => svc.federation.shareKnowledge('m', 'all', { x: 1 }), 'ERR_INVALID_STATE');
    await expectWhaleError(() => svc.publishMetric('cpu', 1), 'ERR_INVALID_STATE');
    expect(await store.keys('')).toEqual([]);
    await svc.initialize();
    expect((await svc.user.registerUserSession('user-1')).status).toBe('active');
    await svc.shutdown();
  });

  it('a service given its own bus refuses calls after its shutdown, and works again after initialize()', async () => {
    const bus = new LocalBus();
    const store = new MemoryStateStore();
    const user = new UserService(bus, store, { nodeId: 'n' });
    const data = new DataRequestService(bus, store, { nodeId: 'n' });
    await user.initialize();
    await data.initialize();
    await user.shutdown();
    await data.shutdown();
    await expectWhaleError(() => user.registerUserSession('u'), 'ERR_BUS_CLOSED');
    await expectWhaleError(() => data.requestData('m', 1), 'ERR_BUS_CLOSED');
    expect(await store.keys('')).toEqual([]);
    await user.initialize();
    expect((await user.registerUserSession('u')).status).toBe('active');
    await user.shutdown();
    await bus.close();
  });

  it('the shared instance is created on first use and can be initialised again after shutdown', async () => {
    const shared = messagingService();
    expect(messagingService()).toBe(shared);
    expect(federationService()).toBe(shared.federation);
    expect(userService()).toBe(shared.user);
    expect(dataRequestService()).toBe(shared.data);
    for (let round = 0; round < 2; round++) {
      await messagingService().initialize();
      const { sessionId } = await userService().registerUserSession(`user-${round}`);
      expect(await messagingService().streamResponse(sessionId, 'hi', { final: true })).toBe(0);
      await messagingService().publishMetric('rounds', round);
      await messagingService().shutdown();
    }
  });
});
