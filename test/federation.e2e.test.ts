/**
 * Federated MNIST end to end: the coordinator here, learners in separate
 * processes talking over Kafka (librdkafka's mock cluster), real images.
 * One learner process is killed in the middle of a round: the round
 * completes with the others and the kill is reported.
 */
import { createRequire } from 'node:module';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { silentLogger } from '../src/common/logger.js';
import type { LearnerPool } from '../src/core/federation/learning/client/learner-pool.js';
import { runMnistFederation } from '../src/apps/mnist/mnist-federation.js';
import type { RoundResult } from '../src/core/federation/orchestration/round-result.js';
import { FEDERATION_TOPICS } from '../src/core/federation/orchestration/topics.js';
import { main } from '../src/cli/main.js';
import { KafkaBus } from '../src/transport/kafka-bus.js';
import { KafkaMock } from './support/kafka-mock.js';

const viteNode = createRequire(import.meta.url).resolve('vite-node/vite-node.mjs');
const LEARNER = [process.execPath, viteNode, 'test/support/learner-entry.ts'];

describe('federated MNIST over Kafka with learner processes', () => {
  let mock: KafkaMock;
  beforeAll(async () => {
    const topics = [
      FEDERATION_TOPICS.clients,
      FEDERATION_TOPICS.rounds,
      FEDERATION_TOPICS.updates,
      FEDERATION_TOPICS.events,
      FEDERATION_TOPICS.metrics,
      'whale.replies',
    ];
    mock = await KafkaMock.start(topics.map((t) => [t, 1]));
  }, 60_000);
  afterAll(() => mock?.stop());

  it('accuracy rises over rounds; a learner killed mid-round is reported and the round completes with the rest', async () => {
    const rounds: RoundResult[] = [];
    const exits: Array<{ id: string; signal: string | null }> = [];
    let pool: LearnerPool | undefined;
    let victim: string | undefined;
    // Watch the coordinator's events to kill a learner as round 2 opens (its clients are selected, none has answered).
    const watcher = new KafkaBus({ brokers: mock.brokers, idempotent: false, logger: silentLogger });
    await watcher.subscribe(
      FEDERATION_TOPICS.events,
      (e) => {
        const ev = e.payload as { type: string; data: { round?: number } };
        if (ev.type === 'federation.round.started' && ev.data.round === 2 && pool && !victim) {
          victim = pool.learnerIds[2]!;
          pool.kill(victim);
        }
      },
      { group: 'e2e-watcher' },
    );
    try {
      const result = await runMnistFederation({
        model: '2nn',
        partition: 'iid',
        clients: 6,
        fraction: 1,
        epochs: 1,
        batch: 10,
        lr: 0.1,
        rounds: 3,
        trainCount: 1800, // 300 examples per client
        testCount: 2000,
        processes: 3,
        minClients: 2,
        brokers: mock.brokers,
        kafkaIdempotent: false,
        learnerCommand: LEARNER,
        roundTimeoutMs: 90_000,
        onStarted: ({ pool: p }) => (pool = p),
        onRound: (r) => rounds.push(r),
        onLearnerExit: (id, _code, signal) => exits.push({ id, signal }),
        logger: silentLogger,
      });
      expect(result.completedRounds).toBe(3);
      expect(rounds.map((r) => r.round)).toEqual([1, 2, 3]);
      const [r1, r2, r3] = rounds as [RoundResult, RoundResult, RoundResult];
      expect(r1.received).toBe(6);
      // Round 2: the killed learner's two clients did not answer; the other four did.
      expect(victim).toBeDefined();
      expect(r2.selected).toBe(6);
      expect(r2.received).toBe(4);
      expect(r2.failed.length + r2.missing.length).toBe(2);
      // Round 3 selects only the live learners' clients.
      expect(r3.selected).toBe(4);
      expect(r3.received).toBe(4);
      expect(result.crashedLearners).toEqual([expect.objectContaining({ learnerId: victim, signal: 'SIGKILL' })]);
      expect(exits.find((x) => x.id === victim)?.signal).toBe('SIGKILL');
      // Learning works across processes: the bar is 75% on 2,000 test images after 3 rounds of 1,200-1,800 examples (about 80% measured).
      expect(r3.testAccuracy!).toBeGreaterThan(0.75);
      expect(r3.testAccuracy!).toBeGreaterThan(r1.testAccuracy!);
      // The 2NN (199,210 floats, ~797 KB) travelled by claim-check, not inside Kafka messages.
      expect(result.params).toBe(199_210);
      expect(r1.bytesDown).toBe(6 * (199_210 * 4 + 28));
    } finally {
      await watcher.close();
    }
  }, 300_000);
});

describe('whale federate', () => {
  it('prints one line per round and a summary (learners in this process)', async () => {
    let out = '';
    let err = '';
    const code = await main(
      [
        'federate',
        '--model',
        '2nn',
        '--partition',
        'noniid',
        '--clients',
        '10',
        '--fraction',
        '0.5',
        '--epochs',
        '1',
        '--batch',
        '10',
        '--lr',
        '0.05',
        '--rounds',
        '2',
        '--train-count',
        '3000',
        '--target',
        '0.99',
      ],
      { out: (s) => void (out += s), err: (s) => void (err += s) },
    );
    expect(err).toBe('');
    expect(code).toBe(0);
    const lines = out.trim().split('\n');
    expect(
      lines.filter((l) => /^round +\d+ +selected +5 +received +5 +test acc +\d+\.\d+% +loss/.test(l)),
    ).toHaveLength(2);
    expect(lines.at(-1)).toMatch(
      /^summary: 2 rounds, best test accuracy \d+\.\d+%\s+rounds to 99\.0%: not reached in 2, wall/,
    );
  }, 120_000);

  it('refuses bad options with exit code 2 naming the option', async () => {
    let err = '';
    const code = await main(['federate', '--fraction', '2'], { out: () => undefined, err: (s) => void (err += s) });
    expect(code).toBe(2);
    expect(err).toMatch(/--fraction/);
    const noKafka = await main(['federate', '--processes', '2', '--rounds', '1'], {
      out: () => undefined,
      err: (s) => void (err += s),
    });
    expect(noKafka).toBe(2);
    expect(err).toMatch(/KAFKA_BROKERS/);
  });
});
