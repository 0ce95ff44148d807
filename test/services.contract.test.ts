// The four services, the same suite on LocalBus and on KafkaBus (mock cluster).
import { randomBytes } from 'node:crypto';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { silentLogger } from '../src/common/logger.js';
import { MessagingService } from '../src/services/messaging-service.js';
import { MemoryStateStore, RedisStateStore } from '../src/services/state-store.js';
import { StreamAssembler, type ResponseChunk } from '../src/services/user-service.js';
import { DataRequestService } from '../src/services/data-request-service.js';
import { DLQ_HEADERS, dlqTopic, type Bus } from '../src/transport/bus.js';
import { createEnvelope, encodeEnvelope, type Envelope } from '../src/transport/envelope.js';
import { allTopics, TOPICS } from '../src/transport/topics.js';
import { expectWhaleError, until } from './helpers.js';
import { kafkaHarness, localHarness, type BusHarness } from './support/buses.js';
import { RedisServer } from './support/redis-server.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

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
] as const)('services on %s', (_name, makeHarness) => {
  let h: BusHarness;
  let bus: Bus;
  let svc: MessagingService;
  const requests: Envelope[] = [];
  const cancels: Envelope[] = [];
  let answerData = true;

  beforeAll(async () => {
    h = await makeHarness();
    bus = h.bus();
    svc = new MessagingService({ bus, store: new MemoryStateStore(), nodeId: 'node-1', logger: silentLogger });
    svc.federation['o'].secret = randomBytes(32).toString('base64');
    await svc.initialize();
    // The data-collection ("balance") module, as seen on the wire.
    const balance = h.bus();
    await balance.subscribe(
      TOPICS.dataRequests,
      async (e) => {
        requests.push(e);
        if (!answerData) return;
        await sleep(30);
        const p = e.payload as { requestId: string; query: unknown };
        await balance.publish(
          TOPICS.dataResponses,
          createEnvelope({
            type: 'DataResponded',
            source: 'balance',
            payload: { requestId: p.requestId, status: 'completed', data: { rows: [p.query] } },
          }),
          { key: p.requestId },
        );
      },
      { group: 'balance' },
    );
    await balance.subscribe(TOPICS.dataControl, (e) => void cancels.push(e), { group: 'balance-control' });
  }, 180_000);
  afterAll(async () => {
    await svc.shutdown();
    await h.stop();
  }, 60_000);

  it('streams 1,000 chunks (with thinking) that reassemble in order without gaps', async () => {
    const assembler = new StreamAssembler();
    const delivered: ResponseChunk[] = [];
    await bus.subscribe(
      TOPICS.userResponses,
      (e) => void delivered.push(...assembler.push(e.payload as ResponseChunk)),
      { group: 'client-1' },
    );
    const session = await svc.user.registerUserSession('user-1', { lang: 'en' });
    expect(await svc.sendThinkingProcess(session.sessionId, 'considering…')).toBe(0);
    for (let i = 1; i < 1000; i++) await svc.streamResponse(session.sessionId, `tok${i}`, { final: i === 999 });
    expect(await until(() => assembler.done, 60_000)).toBe(true);
    expect(delivered.map((c) => c.seq)).toEqual(Array.from({ length: 1000 }, (_, i) => i));
    expect(delivered[0]!.kind).toBe('thinking');
    expect(assembler.missing()).toEqual([]);
    expect((await svc.user.getSessionInfo(session.sessionId)).nextSeq).toBe(1000);
    await svc.user.endUserSession(session.sessionId, 'done');
    await expectWhaleError(() => svc.streamResponse(session.sessionId, 'late'), 'ERR_CONFLICT', 'sessionId');
  }, 90_000);

  it('a user request reaches the models and is answered on the stream', async () => {
    const session = await svc.user.registerUserSession('user-2');
    const off = svc.user.subscribeToUserRequests(async (r) => {
      await svc.streamResponse(r.sessionId, `echo:${String(r.content)}`, { final: true });
    });
    const got: ResponseChunk[] = [];
    await bus.subscribe(
      TOPICS.userResponses,
      (e) => {
        const c = e.payload as ResponseChunk;
        if (c.sessionId === session.sessionId) got.push(c);
      },
      { group: 'client-2' },
    );
    await svc.user.receiveUserRequest(session.sessionId, 'hello');
    expect(await until(() => got.length === 1, 20_000)).toBe(true);
    expect(got[0]).toMatchObject({ seq: 0, chunk: 'echo:hello', final: true });
    off();
  }, 30_000);

  it('collaboration: answered by its target, and expired when nobody answers', async () => {
    svc.registerModel('model-b', { onCollaborationRequest: (r) => ({ hint: `try ${String(r.problem)}` }) });
    const id = await svc.requestCollaboration('model-a', 'gradient clipping', {
      targets: ['model-b'],
      timeoutMs: 20_000,
    });
    expect(
      await until(async () => (await svc.federation.getCollaborationStatus(id)).status === 'completed', 20_000),
    ).toBe(true);
    const done = await svc.federation.getCollaborationStatus(id);
    expect(done.responses).toEqual([
      expect.objectContaining({ responder: 'model-b', solution: { hint: 'try gradient clipping' } }),
    ]);
    const lonely = await svc.requestCollaboration('model-a', 'nobody knows', { targets: ['model-z'], timeoutMs: 300 });
    expect((await svc.federation.getCollaborationStatus(lonely)).status).toBe('pending');
    await sleep(350);
    expect((await svc.federation.getCollaborationStatus(lonely)).status).toBe('expired');
    await expectWhaleError(() => svc.federation.getCollaborationStatus('nope'), 'ERR_NOT_FOUND', 'requestId');
  }, 30_000);

  it('knowledge: standard, anonymous (identity stripped), encrypted (only ciphertext on the wire)', async () => {
    const received: unknown[] = [];
    svc.registerModel('model-c', { onKnowledge: (k) => void received.push(k) });
    const wire: Envelope[] = [];
    await bus.subscribe(TOPICS.federationKnowledge, (e) => void wire.push(e), { group: 'wiretap' });
    await svc.shareKnowledge('model-a', 'model-c', { w: [1, 2] });
    await svc.shareKnowledge(
      'model-a',
      'model-c',
      { note: 'ask bob@example.com', userId: 'u1', w: [3] },
      { privacy: 'anonymous' },
    );
    await svc.shareKnowledge('model-a', 'model-c', { secret: 'launch-code-4242' }, { privacy: 'encrypted' });
    expect(await until(() => received.length === 3 && wire.length === 3, 20_000)).toBe(true);
    expect(received[0]).toEqual({
      sourceModel: 'model-a',
      targetModel: 'model-c',
      privacy: 'standard',
      data: { w: [1, 2] },
    });
    expect(received[1]).toEqual({
      targetModel: 'model-c',
      privacy: 'anonymous',
      data: { note: 'ask [email]', w: [3] },
    });
    expect(wire[1]!.source).toBe('anonymous');
    expect(received[2]).toMatchObject({ privacy: 'encrypted', data: { secret: 'launch-code-4242' } });
    expect(JSON.stringify(wire[2]!.payload)).not.toContain('launch-code');
    await expectWhaleError(
      () => svc.shareKnowledge('model-a', 'all', {}, { privacy: 'encrypted' }),
      'ERR_INVALID_OPTION',
      'options.privacy',
    );
  }, 30_000);

  it('data requests: answered, estimated from observed times, cancelled, timed out', async () => {
    answerData = true;
    const id = await svc.requestData('model-a', { sql: 'select 1' }, { sourceType: 'sql', priority: 7 });
    expect(await until(async () => (await svc.data.getRequestStatus(id)).status === 'completed', 20_000)).toBe(true);
    expect((await svc.data.getRequestStatus(id)).data).toEqual({ rows: [{ sql: 'select 1' }] });
    const est = svc.data.estimateProcessingTime('sql')!;
    expect(est.basis).toBe('source');
    expect(est.samples).toBe(1);
    expect(est.meanMs).toBeGreaterThanOrEqual(30);
    expect(svc.data.estimateProcessingTime('web')).toMatchObject({ basis: 'all' });

    answerData = false;
    const pending = await svc.requestData('model-a', { url: 'x' }, { sourceType: 'web' });
    expect(
      await until(() => requests.some((r) => (r.payload as { requestId: string }).requestId === pending), 20_000),
    ).toBe(true);
    const cancelled = await svc.data.cancelRequest(pending, 'no longer needed');
    expect(cancelled.status).toBe('cancelled');
    expect(
      await until(() => cancels.some((c) => (c.payload as { requestId: string }).requestId === pending), 20_000),
    ).toBe(true);
    await expectWhaleError(() => svc.data.cancelRequest(pending), 'ERR_CONFLICT', 'requestId');

    const slow = await svc.requestData('model-a', { q: 1 }, { timeoutMs: 200 });
    await sleep(250);
    expect((await svc.data.getRequestStatus(slow)).status).toBe('timeout');

    const batch = await svc.data.requestBatch('model-a', [{ query: 1 }, { query: 2 }]);
    expect(batch.requestIds).toHaveLength(2);
    expect((await svc.data.getRequestStatus(batch.requestIds[1]!)).batchId).toBe(batch.batchId);
    await expectWhaleError(
      () => svc.requestData('model-a', 'q', { priority: 11 }),
      'ERR_INVALID_OPTION',
      'options.priority',
    );
  }, 60_000);

  it('a message whose payload breaks the schema is dead-lettered with the reason', async () => {
    const dlq = await h.collect(dlqTopic(TOPICS.userRequests));
    // Bus.publish refuses it on the sending side, so it is injected as raw bytes, as a foreign producer would.
    const evil = createEnvelope({ type: 'UserRequest', source: 'evil', payload: { content: 'no session' } });
    await bus.publishRaw(TOPICS.userRequests, encodeEnvelope(evil));
    const [dead] = await dlq.take(1);
    expect(dead?.headers[DLQ_HEADERS.reason]).toMatch(/UserRequest: payload\.sessionId: is required/);
  }, 30_000);

  it('metrics and events are published', async () => {
    const seen: Envelope[] = [];
    await bus.subscribe(TOPICS.metrics, (e) => void seen.push(e), { group: 'metrics-reader' });
    await svc.publishMetric('latency_ms', 12.5, { model: 'a' });
    expect(await until(() => seen.length === 1, 20_000)).toBe(true);
    expect(seen[0]!.payload).toEqual({ name: 'latency_ms', value: 12.5, labels: { model: 'a' } });
  }, 30_000);
});

describe('state survives a restart with Redis', () => {
  let redis: RedisServer;
  beforeAll(async () => {
    redis = await RedisServer.start();
  });
  afterAll(async () => redis.stop());

  it('a pending data request and its estimates are still known to a new process', async () => {
    const h = await localHarness();
    const storeA = new RedisStateStore(redis.url);
    const a = new DataRequestService(h.bus(), storeA, { nodeId: 'a' });
    await a.initialize();
    const id = await a.requestData('m', { q: 1 }, { timeoutMs: 60_000 });
    await a.shutdown();
    await storeA.close();
    const storeB = new RedisStateStore(redis.url);
    const b = new DataRequestService(h.bus(), storeB, { nodeId: 'b' });
    await b.initialize();
    expect(await b.getRequestStatus(id)).toMatchObject({ requestId: id, status: 'pending', modelId: 'm' });
    await b.cancelRequest(id);
    expect((await b.getRequestStatus(id)).status).toBe('cancelled');
    await b.shutdown();
    await storeB.close();
    await h.stop();
  });
});
