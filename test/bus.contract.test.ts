// One contract, two buses: LocalBus in-process and KafkaBus against librdkafka's
// mock Kafka cluster (a real Kafka protocol peer on loopback).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { silentLogger } from '../src/common/logger.js';
import { DLQ_HEADERS, dlqTopic, type Bus } from '../src/transport/bus.js';
import { createEnvelope, type Envelope } from '../src/transport/envelope.js';
import { KafkaBus } from '../src/transport/kafka-bus.js';
import { TOPICS } from '../src/transport/topics.js';
import { expectWhaleError, until } from './helpers.js';
import { kafkaHarness, localHarness, type BusHarness } from './support/buses.js';

const msg = (type: string, payload: unknown, source = 'test') => createEnvelope({ type, source, payload });

describe.each([
  ['local', localHarness],
  ['kafka', kafkaHarness],
] as const)('Bus contract: %s', (_name, makeHarness) => {
  let h: BusHarness;
  let bus: Bus;
  let n = 0;
  const topic = async (base: string) => {
    const t = `c.${base}.${n++}`;
    await h.createTopics([t, dlqTopic(t)]);
    return t;
  };

  beforeAll(async () => {
    h = await makeHarness();
    bus = h.bus();
  }, 60_000);
  afterAll(async () => h.stop(), 30_000);

  it('delivers a published envelope intact', async () => {
    const t = await topic('basic');
    const got: Envelope[] = [];
    await bus.subscribe(t, (e) => void got.push(e), { group: 'g-basic' });
    const sent = createEnvelope({
      type: 'greeting',
      source: 'a',
      target: 'b',
      payload: { hello: 'world', n: [1, 2] },
      headers: { h: 'v' },
    });
    await bus.publish(t, sent, { key: 'k' });
    expect(await until(() => got.length === 1, 15_000)).toBe(true);
    expect(got[0]).toEqual(sent);
  });

  it('keeps order per key over 1,000 messages', async () => {
    const t = await topic('order');
    const seen: number[] = [];
    await bus.subscribe(t, (e) => void seen.push((e.payload as { i: number }).i), { group: 'g-order' });
    for (let i = 0; i < 1000; i++) await bus.publish(t, msg('seq', { i }), { key: 'same-key' });
    expect(await until(() => seen.length >= 1000, 60_000), `received ${seen.length}`).toBe(true);
    expect(seen.slice(0, 1000)).toEqual(Array.from({ length: 1000 }, (_, i) => i));
  }, 90_000);

  it('retries a failing handler (at least once) without dead-lettering', async () => {
    const t = await topic('retry');
    const attempts: number[] = [];
    await bus.subscribe(
      t,
      (_e, ctx) => {
        attempts.push(ctx.attempt);
        if (ctx.attempt < 3) throw new Error('transient');
      },
      { group: 'g-retry', maxAttempts: 3, backoffMs: 10 },
    );
    await bus.publish(t, msg('work', {}));
    expect(await until(() => attempts.length === 3, 15_000)).toBe(true);
    expect(attempts).toEqual([1, 2, 3]);
  });

  it('dead-letters a message whose handler keeps failing, and moves on', async () => {
    const t = await topic('poison');
    const dlq = await h.collect(dlqTopic(t));
    const handled: string[] = [];
    await bus.subscribe(
      t,
      (e) => {
        if (e.type === 'poison') throw new Error('cannot handle poison');
        handled.push(e.type);
      },
      { group: 'g-poison', maxAttempts: 2, backoffMs: 5 },
    );
    await bus.publish(t, msg('poison', { x: 1 }), { key: 'k' });
    await bus.publish(t, msg('fine', {}), { key: 'k' });
    expect(await until(() => handled.length === 1, 15_000)).toBe(true);
    const [dead] = await dlq.take(1);
    expect(dead?.headers[DLQ_HEADERS.reason]).toMatch(/handler failed 2 time\(s\): cannot handle poison/);
    expect(dead?.headers[DLQ_HEADERS.topic]).toBe(t);
    expect(JSON.parse(dead!.value.toString()).type).toBe('poison');
  });

  it('dead-letters malformed messages with the reason; they never reach the handler', async () => {
    const t = await topic('malformed');
    const dlq = await h.collect(dlqTopic(t));
    const handled: Envelope[] = [];
    await bus.subscribe(t, (e) => void handled.push(e), { group: 'g-malformed' });
    await bus.publishRaw(t, Buffer.from('{not json'), { key: 'k' });
    await bus.publishRaw(t, Buffer.from(JSON.stringify({ v: 1, type: 'x' })), { key: 'k' });
    await bus.publish(t, msg('valid', {}), { key: 'k' });
    expect(await until(() => handled.length === 1, 15_000)).toBe(true);
    expect(handled[0]!.type).toBe('valid');
    const dead = await dlq.take(2);
    expect(dead.map((d) => d.headers[DLQ_HEADERS.reason])).toEqual([
      expect.stringMatching(/^invalid message: not JSON/),
      expect.stringMatching(/^invalid message: id: must be a non-empty string/),
    ]);
    expect(dead[0]!.value.toString()).toBe('{not json');
  });

  it('request/reply round trip, and a typed timeout when nobody answers', async () => {
    const t = await topic('rpc');
    const server = h.bus();
    await server.subscribe(t, async (req) => server.reply(req, msg('pong', { echo: req.payload }, 'server')), {
      group: 'g-rpc',
    });
    const reply = await bus.request(t, msg('ping', { n: 42 }), { timeoutMs: 15_000 });
    expect(reply.type).toBe('pong');
    expect(reply.payload).toEqual({ echo: { n: 42 } });
    const silent = await topic('silent');
    const e = await expectWhaleError(() => bus.request(silent, msg('ping', {}), { timeoutMs: 300 }), 'ERR_TIMEOUT');
    expect(e.retriable).toBe(true);
  }, 60_000);

  it('a publisher cannot send what its consumers would dead-letter: typed error naming the field, nothing sent', async () => {
    const t = TOPICS.metrics;
    await h.createTopics([t, dlqTopic(t)]);
    const seen = await h.collect(t);
    const circular: Record<string, unknown> = { a: 1 };
    circular.self = circular;
    const metric = (payload: unknown) => createEnvelope({ type: 'Metric', source: 'node', payload });
    const bad: Array<[Envelope, string]> = [
      [metric({ name: 'cpu', value: Number.NaN }), 'payload.value'],
      [metric({ name: 'cpu', value: Infinity }), 'payload.value'],
      [metric({ name: 'cpu' }), 'payload.value'],
      [metric({ name: 'cpu', value: 1, labels: { big: 10n } }), 'payload.labels.big'],
      [metric({ name: 'cpu', value: 1, labels: circular }), 'payload.labels.self'],
      [metric({ name: 'cpu', value: 1, labels: { at: new Map() } }), 'payload.labels.at'],
      [createEnvelope({ type: 'Event', source: 'node', payload: { type: 'x' } }), 'type'],
      [{ ...metric({ name: 'cpu', value: 1 }), timestamp: Number.NaN }, 'timestamp'],
      [null as unknown as Envelope, 'message'],
    ];
    for (const [m, field] of bad)
      await expectWhaleError(() => bus.publish(t, m, { key: 'cpu' }), 'ERR_INVALID_MESSAGE', field);
    const deadline = Date.now() + 1e9;
    await expectWhaleError(
      () =>
        bus.publish(
          TOPICS.dataRequests,
          createEnvelope({
            type: 'DataRequested',
            source: 'm',
            payload: {
              requestId: 'r',
              modelId: 'm',
              query: 'q',
              sourceType: 'sql',
              priority: 5,
              deadline: deadline + Infinity,
            },
          }),
        ),
      'ERR_INVALID_MESSAGE',
      'payload.deadline',
    );
    // Topics the AsyncAPI document does not declare still take any type, but never non-JSON values.
    await expectWhaleError(
      () => bus.publish('c.free', msg('anything', { n: [1, Number.NaN] })),
      'ERR_INVALID_MESSAGE',
      'payload.n[1]',
    );
    await bus.publish(t, metric({ name: 'cpu', value: 0.5 }), { key: 'cpu' });
    const got = await seen.take(2, 3_000);
    expect(got.map((r) => JSON.parse(r.value.toString()).payload)).toEqual([{ name: 'cpu', value: 0.5 }]);
  }, 30_000);

  it('request() validates its message and timeout before sending anything', async () => {
    const t = await topic('rpc-bad');
    const seen = await h.collect(t);
    await expectWhaleError(
      () => bus.request(t, msg('ping', { x: 10n }), { timeoutMs: 1000 }),
      'ERR_INVALID_MESSAGE',
      'payload.x',
    );
    for (const timeoutMs of [Infinity, Number.NaN, 0, 2 ** 31, '5' as unknown as number]) {
      await expectWhaleError(
        () => bus.request(t, msg('ping', {}), { timeoutMs }),
        'ERR_INVALID_OPTION',
        'options.timeoutMs',
      );
    }
    await expectWhaleError(
      () => bus.request(t, msg('ping', {}), undefined as unknown as { timeoutMs: number }),
      'ERR_INVALID_OPTION',
      'options',
    );
    expect(await seen.take(1, 1_500)).toEqual([]);
  }, 30_000);

  it('rejects bad publish arguments with typed errors', async () => {
    await expectWhaleError(() => bus.publish('', msg('x', {})), 'ERR_INVALID_ARG', 'topic');
    await expectWhaleError(
      () => bus.publish('c.args', msg('x', {}), { key: 42 as unknown as string }),
      'ERR_INVALID_ARG',
      'options.key',
    );
    await expectWhaleError(() => bus.publishRaw('c.args', 'text' as unknown as Buffer), 'ERR_INVALID_ARG', 'data');
    await expectWhaleError(
      () => bus.publishRaw('c.args', Buffer.from('{}'), { headers: { n: 1 as unknown as string } }),
      'ERR_INVALID_ARG',
      'options.headers.n',
    );
    await expectWhaleError(
      () => bus.subscribe('c.args', 'nope' as unknown as () => void, { group: 'g' }),
      'ERR_INVALID_ARG',
      'handler',
    );
    await expectWhaleError(
      () => bus.subscribe('c.args', () => undefined, { group: 'g', backoffMs: Infinity }),
      'ERR_INVALID_OPTION',
      'options.backoffMs',
    );
  });

  it('rejects bad subscribe options with the field named', async () => {
    await expectWhaleError(
      () => bus.subscribe('x', () => undefined, { group: '' }),
      'ERR_INVALID_OPTION',
      'options.group',
    );
    await expectWhaleError(
      () => bus.subscribe('x', () => undefined, { group: 'g', maxAttempts: 0 }),
      'ERR_INVALID_OPTION',
      'options.maxAttempts',
    );
  });
});

describe('KafkaBus: a broker taken down mid-stream', () => {
  let h: BusHarness;
  beforeAll(async () => {
    h = await kafkaHarness([
      ['c.outage', 3],
      ['c.outage.dlq', 3],
    ]);
  }, 60_000);
  afterAll(async () => h.stop(), 30_000);

  it('loses no message once the broker is back', async () => {
    const bus = h.bus();
    const got = new Set<number>();
    await bus.subscribe('c.outage', (e) => void got.add((e.payload as { i: number }).i), { group: 'g-outage' });
    const total = 300;
    const sends: Array<Promise<void>> = [];
    for (let i = 0; i < total; i++) {
      if (i === 100) {
        await Promise.all(sends);
        await h.mock!.command('down 1');
        setTimeout(() => void h.mock!.command('up 1'), 1500);
      }
      sends.push(bus.publish('c.outage', msg('tick', { i }), { key: `k${i % 6}` }));
      if (i >= 100) await sends[i]; // sequential while the broker is away: each send waits for it
    }
    await Promise.all(sends);
    expect(await until(() => got.size === total, 60_000)).toBe(true);
  }, 120_000);
});

describe('KafkaBus options', () => {
  it('refuses bad timeouts and brokers with the field named, before connecting', async () => {
    const brokers = ['127.0.0.1:1'];
    await expectWhaleError(() => new KafkaBus({ brokers: [] }), 'ERR_INVALID_OPTION', 'options.brokers');
    for (const sessionTimeoutMs of [0, 999, 1.5, Number.NaN, 1_800_001]) {
      await expectWhaleError(
        () => new KafkaBus({ brokers, sessionTimeoutMs }),
        'ERR_INVALID_OPTION',
        'options.sessionTimeoutMs',
      );
    }
    await expectWhaleError(
      () => new KafkaBus({ brokers, joinTimeoutMs: -1 }),
      'ERR_INVALID_OPTION',
      'options.joinTimeoutMs',
    );
    const ok = new KafkaBus({ brokers, sessionTimeoutMs: 6000, joinTimeoutMs: 5000, logger: silentLogger });
    await ok.close();
  });
});

describe('KafkaBus: a consumer crashed by a non-retriable group error', () => {
  let h: BusHarness;
  beforeAll(async () => {
    h = await kafkaHarness([
      ['c.crash', 3],
      ['c.crash.dlq', 3],
    ]);
  }, 60_000);
  afterAll(async () => h.stop(), 30_000);

  it('is restarted and delivers, instead of never joining (SyncGroup answered INVALID_REQUEST)', async () => {
    const bus = h.bus();
    // Kafka API key 14 = SyncGroup, error 42 = INVALID_REQUEST: kafkajs does not restart on it.
    await h.mock!.command('request-errors 14 42 2');
    const got: number[] = [];
    const sub = await bus.subscribe('c.crash', (e) => void got.push((e.payload as { i: number }).i), {
      group: 'g-crash',
    });
    for (let i = 0; i < 20; i++) await bus.publish('c.crash', msg('tick', { i }), { key: `k${i % 3}` });
    expect(await until(() => got.length === 20, 30_000)).toBe(true);
    expect([...got].sort((a, b) => a - b)).toEqual(Array.from({ length: 20 }, (_, i) => i));
    await sub.close();
  }, 90_000);
});
