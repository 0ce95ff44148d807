// Encrypted knowledge: full GCM tags only, sender/target/id/time authenticated, replays and stale messages refused.
import { randomBytes } from 'node:crypto';

import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';

import type { Logger } from '../src/common/logger.js';
import { FederationService, type Knowledge } from '../src/services/federation-service.js';
import { resolveFederationKey } from '../src/services/federation-key.js';
import { open, seal, type Sealed } from '../src/services/knowledge-crypto.js';
import { MemoryStateStore } from '../src/services/state-store.js';
import { DLQ_HEADERS, dlqTopic, type Bus } from '../src/transport/bus.js';
import { createEnvelope, encodeEnvelope, type Envelope } from '../src/transport/envelope.js';
import { partitionOf } from '../src/transport/local-bus.js';
import { TOPICS } from '../src/transport/topics.js';
import { expectWhaleError, until } from './helpers.js';
import { localHarness, type BusHarness, type RawCollector } from './support/buses.js';

type Wire = { sourceModel: string; targetModel: string; privacy: 'encrypted'; encrypted: Sealed };

describe('encrypted knowledge on the bus', () => {
  const secret = randomBytes(32).toString('base64');
  const key = resolveFederationKey({ secret });
  let h: BusHarness;
  let bus: Bus;
  let fed: FederationService;
  let dlq: RawCollector;
  const received: Knowledge[] = [];
  const wire: Envelope<Wire>[] = [];
  const warnings: Array<Record<string, unknown> | undefined> = [];
  let failNext = 0;
  let slowMs = 0;

  const logger: Logger = { debug() {}, info() {}, error() {}, warn: (_m, f) => void warnings.push(f) };
  const forge = (payload: Wire, source = payload.sourceModel) =>
    bus.publish(TOPICS.federationKnowledge, createEnvelope({ type: 'KnowledgeShared', source, payload }), {
      key: payload.targetModel,
    });
  const deadNow = async () => (await dlq.take(0, 0)).map((r) => r.headers[DLQ_HEADERS.reason]!);
  /** Dead-letter reasons added since `before` (the local DLQ view is not in arrival order across partitions), sorted. */
  const deadSince = async (before: string[], n: number) => {
    const all = (await dlq.take(before.length + n, 5000)).map((r) => r.headers[DLQ_HEADERS.reason]!);
    for (const b of before) all.splice(all.indexOf(b), 1);
    return all.sort();
  };
  const kinds = (reasons: string[]) => reasons.map((r) => /rejected \(([a-z-]+)\)/.exec(r)?.[1]).sort();
  /** Shares one real message and returns it as captured on the wire. */
  const capture = async (data: unknown): Promise<Envelope<Wire>> => {
    const before = wire.length;
    await fed.shareKnowledge('model-a', 'model-c', data, { privacy: 'encrypted' });
    expect(await until(() => wire.length > before, 5000)).toBe(true);
    return wire[wire.length - 1]!;
  };

  beforeAll(async () => {
    h = await localHarness();
    bus = h.bus();
    fed = new FederationService(bus, new MemoryStateStore(), { nodeId: 'n1', secret, logger, env: {} });
    await fed.initialize();
    const onKnowledge = async (k: Knowledge) => {
      if (slowMs > 0) await new Promise((r) => setTimeout(r, slowMs));
      if (failNext > 0) {
        failNext--;
        throw new Error('model busy');
      }
      received.push(k);
    };
    fed.registerModel('model-c', { onKnowledge });
    fed.registerModel('model-d', { onKnowledge });
    await bus.subscribe(TOPICS.federationKnowledge, (e) => void wire.push(e as Envelope<Wire>), { group: 'wiretap' });
    dlq = await h.collect(dlqTopic(TOPICS.federationKnowledge));
  });
  afterAll(async () => {
    await fed.shutdown();
    await h.stop();
  });
  beforeEach(() => {
    received.length = 0;
  });

  it('delivers a genuine message once; the wire carries no plaintext', async () => {
    const e = await capture({ secret: 4242 });
    expect(await until(() => received.length === 1, 5000)).toBe(true);
    expect(received[0]).toEqual({
      sourceModel: 'model-a',
      targetModel: 'model-c',
      privacy: 'encrypted',
      data: { secret: 4242 },
    });
    expect(JSON.stringify(e)).not.toContain('4242');
    expect(e.payload.encrypted.v).toBe(2);
  });

  it('refuses truncated GCM tags (12, 8 and 4 bytes)', async () => {
    const e = await capture({ w: 1 });
    await until(() => received.length === 1, 5000);
    const tag = Buffer.from(e.payload.encrypted.tag, 'base64');
    expect(tag.length).toBe(16);
    const dlqBefore = await deadNow();
    for (const n of [12, 8, 4]) {
      const encrypted = { ...e.payload.encrypted, tag: tag.subarray(0, n).toString('base64') };
      // Also directly: open() itself refuses the short tag.
      await expectWhaleError(
        () => open(key, { sourceModel: 'model-a', targetModel: 'model-c' }, encrypted),
        'ERR_INVALID_MESSAGE',
        'encrypted.tag',
      );
      await forge({ ...e.payload, encrypted: { ...encrypted, messageId: `${encrypted.messageId}-${n}` } });
    }
    const reasons = await deadSince(dlqBefore, 3);
    expect(reasons).toHaveLength(3);
    for (const r of reasons) expect(r).toMatch(/rejected \(malformed\).*full 16-byte GCM tag/);
    expect(received).toHaveLength(1);
  });

  it('refuses a captured message re-labelled with another sender or target', async () => {
    const e = await capture({ plan: 'attack at dawn' });
    await until(() => received.length === 1, 5000);
    const before = fed.rejections();
    const dlqBefore = await deadNow();
    await forge({ ...e.payload, sourceModel: 'model-evil' }); // envelope source rewritten too
    await forge({ ...e.payload, sourceModel: 'model-evil' }, 'model-a'); // only the payload rewritten
    await forge({ ...e.payload, targetModel: 'model-d' });
    await forge({ ...e.payload, encrypted: { ...e.payload.encrypted, sentAt: e.payload.encrypted.sentAt + 1 } });
    await forge({ ...e.payload, encrypted: { ...e.payload.encrypted, messageId: 'another-id' } });
    const reasons = await deadSince(dlqBefore, 5);
    expect(kinds(reasons)).toEqual([
      'authentication',
      'authentication',
      'authentication',
      'authentication',
      'sender-mismatch',
    ]);
    expect(received).toHaveLength(1);
    expect(received[0]!.sourceModel).toBe('model-a');
    const after = fed.rejections();
    expect(after.authentication - before.authentication).toBe(4);
    expect(after['sender-mismatch'] - before['sender-mismatch']).toBe(1);
    expect(warnings.some((w) => w?.reason === 'authentication')).toBe(true);
  });

  it('refuses a replay of the exact bytes, and messages too old or from the future', async () => {
    const e = await capture({ n: 1 });
    await until(() => received.length === 1, 5000);
    const dlqBefore = await deadNow();
    await bus.publishRaw(TOPICS.federationKnowledge, encodeEnvelope(e), { key: 'model-c' });
    const now = Date.now();
    const old = seal(key, { sourceModel: 'model-a', targetModel: 'model-c', sentAt: now - 6 * 60_000 }, { n: 2 });
    const future = seal(key, { sourceModel: 'model-a', targetModel: 'model-c', sentAt: now + 5 * 60_000 }, { n: 3 });
    await forge({ ...e.payload, encrypted: old });
    await forge({ ...e.payload, encrypted: future });
    const reasons = await deadSince(dlqBefore, 3);
    expect(kinds(reasons)).toEqual(['from-the-future', 'replayed', 'too-old']);
    expect(received).toHaveLength(1);
    expect(fed.rejections()).toMatchObject({ replayed: 1, 'too-old': 1, 'from-the-future': 1 });
  });

  it('a redelivery after a failed handler is not mistaken for a replay, and the consumer keeps working', async () => {
    failNext = 1;
    await capture({ retry: true });
    expect(await until(() => received.length === 1, 5000)).toBe(true);
    expect(received[0]!.data).toEqual({ retry: true });
    await capture({ after: 'all that' });
    expect(await until(() => received.length === 2, 5000)).toBe(true);
  });

  it('a copy arriving on another partition while the original is being delivered is a replay', async () => {
    const e = await capture({ n: 'once' });
    await until(() => received.length === 1, 5000);
    // A fresh message, delivered slowly; its copy is sent under a key on another partition, so both are in flight at once.
    const fresh = seal(key, { sourceModel: 'model-a', targetModel: 'model-c' }, { n: 'slow' });
    const otherKey = ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'].find(
      (k) => partitionOf(k, 4) !== partitionOf('model-c', 4),
    )!;
    const copy = createEnvelope({
      type: 'KnowledgeShared',
      source: 'model-a',
      payload: { ...e.payload, encrypted: fresh },
    });
    const dlqBefore = await deadNow();
    slowMs = 200;
    try {
      await bus.publish(TOPICS.federationKnowledge, copy, { key: 'model-c' });
      await new Promise((r) => setTimeout(r, 50));
      await bus.publishRaw(TOPICS.federationKnowledge, encodeEnvelope(copy), { key: otherKey });
      expect(kinds(await deadSince(dlqBefore, 1))).toEqual(['replayed']);
      expect(await until(() => received.length === 2, 5000)).toBe(true);
    } finally {
      slowMs = 0;
    }
    await new Promise((r) => setTimeout(r, 100));
    expect(received.map((k) => k.data)).toEqual([{ n: 'once' }, { n: 'slow' }]);
  });
});
