/**
 * ModelCoordinator on the in-process bus with scripted clients: every update
 * is built by the test, so the aggregate can be checked against the
 * Aggregator, and bad updates (late, duplicate, wrong shape, NaN, wrong round,
 * unknown client, forged blob, malformed) can be sent on purpose.
 */
import { afterEach, describe, expect, it } from 'vitest';

import { Aggregator } from '../src/core/federation/learning/aggregator.js';
import { CheckpointStore } from '../src/core/federation/orchestration/checkpoint-store.js';
import { ClaimCheck, type TensorRef } from '../src/core/federation/orchestration/claim-check.js';
import { MemoryKv } from '../src/core/federation/orchestration/kv-store.js';
import { MESSAGE, type RoundStarted, type UpdateSubmitted } from '../src/core/federation/orchestration/messages.js';
import { ModelCoordinator, type FederationSummary } from '../src/core/federation/orchestration/model-coordinator.js';
import type { ModelCoordinatorOptions, RoundDetail } from '../src/core/federation/orchestration/coordinator-options.js';
import type { RoundResult } from '../src/core/federation/orchestration/round-result.js';
import { FEDERATION_TOPICS } from '../src/core/federation/orchestration/topics.js';
import { silentLogger } from '../src/common/logger.js';
import { encodeTensor } from '../src/core/memory/codec.js';
import { createEnvelope, type Envelope } from '../src/transport/envelope.js';
import { LocalBus } from '../src/transport/local-bus.js';
import type { Bus } from '../src/transport/bus.js';

const FED = 'fed-test';
const P = 5000; // parameters: 20 KB in f32, above the 4 KB inline threshold used here

type Behaviour = (r: RoundStarted, clientId: string, claims: ClaimCheck) => Promise<UpdateSubmitted[] | 'silent'>;

/** Learner stand-in: registers clients and answers rounds with what `behave` builds. */
async function scriptedClients(bus: Bus, store: MemoryKv, ids: string[], behave: Behaviour, learnerId = 'scripted') {
  const seen: RoundStarted[] = [];
  const sub = await bus.subscribe(
    FEDERATION_TOPICS.rounds,
    async (e: Envelope) => {
      if (e.type !== MESSAGE.roundStarted) return;
      const r = e.payload as RoundStarted;
      seen.push(r);
      const claims = new ClaimCheck(store, r.config.inlineBytes);
      for (const c of r.clients.filter((c) => ids.includes(c))) {
        const out = await behave(r, c, claims);
        if (out === 'silent') continue;
        for (const u of out)
          await bus.publish(
            FEDERATION_TOPICS.updates,
            createEnvelope({ type: MESSAGE.update, source: 't', payload: u }),
          );
      }
    },
    { group: `scripted-${learnerId}` },
  );
  const register = () =>
    bus.publish(
      FEDERATION_TOPICS.clients,
      createEnvelope({
        type: MESSAGE.registered,
        source: 't',
        payload: { federationId: FED, learnerId, clients: ids.map((id, i) => ({ id, examples: 100 + 50 * i })) },
      }),
    );
  await register();
  const beat = setInterval(() => void register(), 200);
  return { seen, close: async () => (clearInterval(beat), sub.close()) };
}

/** A deterministic delta per (client, round). */
function deltaFor(clientId: string, round: number): Float32Array {
  const d = new Float32Array(P);
  const k = Number(clientId.slice(1)) + 1;
  for (let i = 0; i < P; i++) d[i] = Math.sin(i * 0.01 * k + round) * 0.01 * k;
  return d;
}

async function honest(
  r: RoundStarted,
  clientId: string,
  claims: ClaimCheck,
  examples = 100 + 50 * Number(clientId.slice(1)),
): Promise<UpdateSubmitted> {
  const update = await claims.packDense(deltaFor(clientId, r.round), 'f32');
  return {
    federationId: FED,
    round: r.round,
    clientId,
    learnerId: 'scripted',
    examples,
    update,
    localAccuracy: 0.5,
    trainLoss: 1,
  };
}

const ids = (n: number) => Array.from({ length: n }, (_, i) => `c${i}`);

let cleanup: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const f of cleanup.reverse()) await f();
  cleanup = [];
});

function setup(over: Partial<ModelCoordinatorOptions> = {}) {
  const bus = (over.bus as LocalBus | undefined) ?? new LocalBus();
  const store = (over.store as MemoryKv | undefined) ?? new MemoryKv();
  const rounds: Array<{ r: RoundResult; d: RoundDetail }> = [];
  const coordinator = new ModelCoordinator({
    federationId: FED,
    bus,
    store,
    initialModel: () => new Float32Array(P).fill(0.5),
    rounds: 3,
    fraction: 1,
    minClients: 2,
    epochs: 1,
    batch: 10,
    learning: { clientLr: 0.1 },
    inlineBytes: 4096,
    roundTimeoutMs: 1500,
    waitForClientsMs: 2000,
    logger: silentLogger,
    onRound: (r, d) => rounds.push({ r, d }),
    ...over,
  });
  return { bus, store, coordinator, rounds };
}

describe('ModelCoordinator', () => {
  it('aggregates each round with the Aggregator on exactly the accepted updates, and the server step applies it', async () => {
    const { bus, store, coordinator, rounds } = setup({ aggregator: { strategy: 'trimmed-mean', beta: 0.2 } });
    const clients = await scriptedClients(bus, store, ids(5), async (r, c, claims) => [await honest(r, c, claims)]);
    cleanup.push(
      () => clients.close(),
      () => bus.close(),
    );
    const before = new Float32Array(P).fill(0.5);
    const summary = await coordinator.run();
    expect(summary.completedRounds).toBe(3);
    let global = before;
    for (const { r, d } of rounds) {
      expect(r.received).toBe(5);
      const expected = await new Aggregator({ strategy: 'trimmed-mean', beta: 0.2 }).aggregate(
        ids(5).map((c) => deltaFor(c, r.round)),
        ids(5).map((_, i) => 100 + 50 * i),
      );
      expect(d.updates.map((u) => u.clientId)).toEqual(ids(5));
      expect(Array.from(d.aggregate)).toEqual(Array.from(expected.params));
      // fedavgm with lr 1 and beta1 0: the new global is the old one plus the aggregate.
      const next = global.map((g, i) => Math.fround(g + expected.params[i]!));
      for (let i = 0; i < P; i += 97) expect(d.global[i]).toBeCloseTo(next[i]!, 5);
      global = d.global;
      const blobBytes = encodeTensor(new Float32Array(P), { codec: 'f32' }).length;
      expect(r.bytesUp).toBe(5 * blobBytes);
      expect(r.bytesDown).toBe(5 * blobBytes);
    }
  });

  it('rejects late, duplicate, malformed, wrong-shape, NaN, wrong-round, unknown-client and forged updates, counting each; none reaches the aggregate', async () => {
    const { bus, store, coordinator, rounds } = setup({ rounds: 2, roundTimeoutMs: 1200 });
    const behave: Behaviour = async (r, c, claims) => {
      const good = await honest(r, c, claims);
      switch (c) {
        case 'c0': // duplicate: the same update twice
          return [good, good];
        case 'c1': {
          // wrong shape
          return [{ ...good, update: await claims.packDense(new Float32Array(P - 1), 'f32') }];
        }
        case 'c2': {
          // NaN: a blob with a valid checksum around a NaN (the encoder itself refuses NaN)
          const bad = deltaFor(c, r.round);
          bad[17] = NaN;
          return [{ ...good, update: await forgedF32(claims, bad) }];
        }
        case 'c3': // wrong round and unknown client and malformed, then its real update
          return [{ ...good, round: r.round + 5 }, { ...good, clientId: 'nobody' }, { ...good, examples: -3 }, good];
        case 'c4': {
          // hash mismatch: the reference names one blob, the store holds other bytes under it
          const ref = good.update;
          const other = await claims.packDense(deltaFor('c9', r.round), 'f32');
          const forged: TensorRef = { ...ref, data: { ...other.data, sha256: ref.data.sha256 } };
          await store.set(`fed/blob/${ref.data.sha256}`, (await store.get(`fed/blob/${other.data.sha256}`))!);
          return [{ ...good, update: forged }];
        }
        case 'c6': // late: after the deadline (last, since one handler answers for every client in turn)
          await new Promise((res) => setTimeout(res, r.deadline - Date.now() + 300));
          return [good];
        default:
          return [good];
      }
    };
    const clients = await scriptedClients(bus, store, ids(7), behave);
    cleanup.push(
      () => clients.close(),
      () => bus.close(),
    );
    const summary = await coordinator.run();
    await new Promise((res) => setTimeout(res, 400)); // the last late update arrives
    expect(summary.completedRounds).toBe(2);
    const rej = coordinator.tasks.rejectedByReason;
    expect(rej.duplicate).toBe(2);
    expect(rej.shape).toBe(2);
    expect(rej['non-finite']).toBe(2);
    expect(rej['wrong-round']).toBe(2);
    expect(rej['unknown-client']).toBe(2);
    expect(rej.malformed).toBe(2);
    expect(rej['hash-mismatch']).toBe(2);
    // Round 1's late update arrives while round 2 runs; round 2's after the coordinator finished.
    expect(rej.late).toBe(1);
    expect(coordinator.tasks.stateOf(1, 'c6')).toBe('late');
    for (const { r, d } of rounds) {
      expect(d.updates.map((u) => u.clientId)).toEqual(['c0', 'c3', 'c5']);
      const expected = await new Aggregator({ strategy: 'fedavg' }).aggregate(
        ['c0', 'c3', 'c5'].map((c) => deltaFor(c, r.round)),
        [100, 250, 350],
      );
      expect(Array.from(d.aggregate)).toEqual(Array.from(expected.params));
      expect(r.missing).toEqual(['c6']);
      expect(r.rejected).toBe(6); // per round: duplicate, shape, NaN, unknown client, malformed, forged (the wrong-round one names round + 5)
    }
    const reasons = new Set(coordinator.tasks.rejections.map((x) => x.reason));
    expect(coordinator.tasks.rejections.every((x) => x.detail.length > 0)).toBe(true);
    expect(reasons.has('hash-mismatch')).toBe(true);
  });

  it('a restarted coordinator resumes after the last completed round with the same weights', async () => {
    const bus = new LocalBus();
    const store = new MemoryKv();
    cleanup.push(() => bus.close());
    const first = setup({ bus, store, rounds: 5 });
    let stopAfter = 2;
    const clients = await scriptedClients(bus, store, ids(3), async (r, c, claims) => {
      if (r.round > stopAfter) {
        first.coordinator.stop('killed'); // mid-round: round 3 never completes
        return 'silent';
      }
      return [await honest(r, c, claims)];
    });
    cleanup.push(() => clients.close());
    await expect(first.coordinator.run()).rejects.toMatchObject({ code: 'ERR_CANCELLED' });
    expect(first.rounds.map((x) => x.r.round)).toEqual([1, 2]);
    const afterTwo = first.rounds[1]!.d.global;
    const ckpt = await new CheckpointStore(store).load(FED);
    expect(ckpt?.round).toBe(2);
    expect(Array.from(ckpt!.weights)).toEqual(Array.from(afterTwo));

    stopAfter = Infinity;
    const second = setup({ bus, store, rounds: 4, initialModel: () => new Float32Array(P) });
    const summary: FederationSummary = await second.coordinator.run();
    expect(summary.resumedFrom).toBe(2);
    expect(second.rounds.map((x) => x.r.round)).toEqual([3, 4]);
    expect(summary.history.map((h) => h.round)).toEqual([1, 2, 3, 4]);
    // Round 3 started from the checkpointed weights: global(3) = global(2) + aggregate(3).
    const d3 = second.rounds[0]!.d;
    for (let i = 0; i < P; i += 101) expect(d3.global[i]).toBeCloseTo(afterTwo[i]! + d3.aggregate[i]!, 5);
  });

  it('a round that cannot reach minClients is retried, then fails with ERR_NO_CLIENTS and an event', async () => {
    const { bus, store, coordinator } = setup({
      minClients: 3,
      maxRoundAttempts: 2,
      roundTimeoutMs: 300,
      waitForClientsMs: 300,
    });
    const events: string[] = [];
    const evSub = await bus.subscribe(
      FEDERATION_TOPICS.events,
      (e) => void events.push((e.payload as { type: string }).type),
      { group: 'ev' },
    );
    const clients = await scriptedClients(bus, store, ids(2), async (r, c, claims) => [await honest(r, c, claims)]);
    cleanup.push(
      () => clients.close(),
      () => evSub.close(),
      () => bus.close(),
    );
    await expect(coordinator.run()).rejects.toMatchObject({ code: 'ERR_NO_CLIENTS', field: 'minClients' });
    await new Promise((r) => setTimeout(r, 100));
    expect(events).toContain('federation.round.retry');
    expect(events).toContain('federation.round.failed');
    expect(events).not.toContain('federation.round.completed');
  });

  it('stragglers are dropped at the deadline and the round completes with the rest', async () => {
    const { bus, store, coordinator, rounds } = setup({ rounds: 1, roundTimeoutMs: 800 });
    const clients = await scriptedClients(bus, store, ids(4), async (r, c, claims) =>
      c === 'c2' ? 'silent' : [await honest(r, c, claims)],
    );
    cleanup.push(
      () => clients.close(),
      () => bus.close(),
    );
    const t0 = Date.now();
    await coordinator.run();
    expect(Date.now() - t0).toBeGreaterThanOrEqual(700);
    expect(rounds[0]!.r.received).toBe(3);
    expect(rounds[0]!.r.missing).toEqual(['c2']);
    expect(coordinator.tasks.stateOf(1, 'c2')).toBe('missing');
  });

  it('publishes round events on whale.events and figures on whale.metrics', async () => {
    const { bus, store, coordinator } = setup({ rounds: 1 });
    const events: string[] = [];
    const metrics: string[] = [];
    const subs = [
      await bus.subscribe(FEDERATION_TOPICS.events, (e) => void events.push((e.payload as { type: string }).type), {
        group: 'ev',
      }),
      await bus.subscribe(FEDERATION_TOPICS.metrics, (e) => void metrics.push((e.payload as { name: string }).name), {
        group: 'm',
      }),
    ];
    const clients = await scriptedClients(bus, store, ids(2), async (r, c, claims) => [await honest(r, c, claims)]);
    cleanup.push(
      () => clients.close(),
      async () => Promise.all(subs.map((s) => s.close())),
      () => bus.close(),
    );
    await coordinator.run();
    await new Promise((r) => setTimeout(r, 100));
    expect(events).toEqual(
      expect.arrayContaining(['federation.round.started', 'federation.round.completed', 'federation.ended']),
    );
    expect(metrics).toEqual(
      expect.arrayContaining([
        'federation.round',
        'federation.clients',
        'federation.round_bytes_up',
        'federation.round_seconds',
      ]),
    );
  });
});

/** An f32 codec blob holding `values` as they are (NaN included), with a correct CRC-32C trailer. */
async function forgedF32(claims: ClaimCheck, values: Float32Array): Promise<TensorRef> {
  const blob = encodeTensor(
    values.map((v) => (Number.isFinite(v) ? v : 0)),
    { codec: 'f32' },
  );
  const view = new DataView(blob.buffer, blob.byteOffset, blob.byteLength);
  values.forEach((v, i) => view.setFloat32(24 + 4 * i, v, true)); // header 24 bytes, then the values
  view.setUint32(blob.length - 4, crc32c(blob.subarray(0, blob.length - 4)), true);
  return { kind: 'dense', length: values.length, codec: 'f32', data: await claims.putBytes(blob) };
}

function crc32c(bytes: Uint8Array): number {
  let crc = 0xffffffff;
  for (const b of bytes) {
    crc ^= b;
    for (let k = 0; k < 8; k++) crc = crc & 1 ? (crc >>> 1) ^ 0x82f63b78 : crc >>> 1;
  }
  return (crc ^ 0xffffffff) >>> 0;
}
