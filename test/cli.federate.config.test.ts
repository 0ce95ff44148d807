/** `whale federate --config` in this process (JSON Lines datasets, a defineTrainer module) and its refusals; `whale learner --config` refusals. */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import { main } from '../src/cli/main.js';
import { MNIST_PIXELS, readMnist } from '../src/models/mnist-idx.js';

const dir = mkdtempSync(join(tmpdir(), 'whale-federate-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function whale(args: string[], env: Record<string, string | undefined> = {}) {
  let out = '';
  let err = '';
  const saved = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]));
  Object.assign(process.env, env);
  for (const [k, v] of Object.entries(env)) if (v === undefined) delete process.env[k];
  try {
    const code = await main(args, { out: (s) => void (out += s), err: (s) => void (err += s) });
    return { code, out, err };
  } finally {
    for (const [k, v] of Object.entries(saved))
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
  }
}

function config(name: string, body: object): string {
  const file = join(dir, `${name}.json`);
  writeFileSync(file, JSON.stringify(body));
  return file;
}

/** JSON Lines: {"x": [784 floats], "y": digit} per line. */
function jsonl(path: string, from: number, n: number, split: 'train' | 'test'): void {
  const s = readMnist(split, { count: from + n });
  mkdirSync(path, { recursive: true });
  const lines = Array.from({ length: n }, (_, i) =>
    JSON.stringify({
      x: Array.from(
        s.images.subarray((from + i) * MNIST_PIXELS, (from + i + 1) * MNIST_PIXELS),
        (v) => Math.round(v * 100) / 100,
      ),
      y: s.labels[from + i],
    }),
  );
  writeFileSync(join(path, 'part-0.jsonl'), `${lines.join('\n')}\n`);
}

describe('whale federate --config', () => {
  it('federates a defineTrainer module over JSON Lines datasets in this process, one line per round', async () => {
    ['a1', 'a2', 'b1', 'b2'].forEach((c, i) => jsonl(join(dir, 'data', c), i * 150, 150, 'train'));
    jsonl(join(dir, 'data', 'test'), 0, 500, 'test');
    const file = config('federation', {
      federationId: 'cli-logreg',
      model: { module: join(process.cwd(), 'test/fixtures/logreg-trainer.ts') },
      test: 'data/test',
      learners: [
        { id: 'site-a', clients: { a1: 'data/a1', a2: 'data/a2' } },
        { id: 'site-b', clients: { b1: 'data/b1', b2: 'data/b2' } },
      ],
      run: 'in-process',
      rounds: 2,
      fraction: 1,
      batchSize: 10,
      learningRate: 0.1,
      strategy: 'trimmed-mean',
      trim: 0.25,
      uplink: 'int8',
    });
    const r = await whale(['federate', '--config', file]);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    const lines = r.out.trim().split('\n');
    expect(lines[0]).toMatch(
      /^federate: cli-logreg: module .*logreg-trainer\.ts, 2 learner\(s\), 4 clients, C=1, E=1, B=10, lr=0\.1, 2 rounds, trimmed-mean, uplink int8$/,
    );
    const rounds = lines.filter((l) => /^round +\d+ +selected +4 +received +4 +test acc +\d+\.\d+%/.test(l));
    expect(rounds).toHaveLength(2);
    expect(lines.at(-1)).toMatch(
      /^summary: 2 rounds, best test accuracy (\d+\.\d+)%, wall [\d.]+ s, 7850 parameters on typescript$/,
    );
    // 600 digits, 2 rounds of logistic regression: above 60% (about 70% measured).
    expect(Number(/best test accuracy (\d+\.\d+)%/.exec(lines.at(-1)!)![1])).toBeGreaterThan(60);
  }, 120_000);

  it('refuses a bad config with exit 2 naming the file and the field', async () => {
    const cases: Array<[object, RegExp]> = [
      [{ federationId: 'x', model: { preset: '2nn' } }, /bad-0\.json: learners: expected a non-empty array/],
      [
        { federationId: 'x', model: { preset: '2nn', tfjs: 'm.json' }, learners: [{ id: 'a', clients: { c: 'd' } }] },
        /model\.: give exactly one of tfjs/,
      ],
      [
        { federationId: 'x', model: { preset: '3nn' }, learners: [{ id: 'a', clients: { c: 'd' } }] },
        /model\.preset: one of 2nn, cnn/,
      ],
      [
        { federationId: 'x', model: { preset: '2nn' }, learners: [{ id: 'a', clients: { c: 'd' } }], fraction: 2 },
        /fraction: expected a number in \(0, 1\]/,
      ],
      [
        {
          federationId: 'x',
          model: { preset: '2nn' },
          learners: [
            { id: 'a', clients: { c: 'd' } },
            { id: 'a', clients: { e: 'f' } },
          ],
        },
        /learners\.1: a appears twice/,
      ],
      [
        { federationId: 'x', model: { preset: '2nn' }, learners: [{ id: 'a', clients: {} }] },
        /learners\.0\.clients\.: at least one client/,
      ],
      [
        {
          federationId: 'x',
          model: { preset: '2nn' },
          learners: [{ id: 'a', clients: { c: 'd' } }],
          strategy: 'median',
          dp: { clip: 1, noiseMultiplier: 1 },
        },
        /dp: DP-FedAvg .* use strategy fedavg/,
      ],
    ];
    for (const [i, [body, message]] of cases.entries()) {
      const r = await whale(['federate', '--config', config(`bad-${i}`, body)]);
      expect(r.code).toBe(2);
      expect(r.err).toMatch(message);
    }
    const missing = await whale(['federate', '--config', join(dir, 'nope.json')]);
    expect(missing.code).toBe(2);
    expect(missing.err).toMatch(/nope\.json: cannot read: ENOENT/);
  });
});

describe('whale learner --config', () => {
  it('refuses what it cannot run with exit 2', async () => {
    const fed = config('fed-for-learner', {
      federationId: 'x',
      model: { preset: '2nn' },
      learners: [{ id: 'a', clients: { c: 'd' } }],
    });
    const noLearner = await whale(['learner', '--config', fed], { KAFKA_BROKERS: '127.0.0.1:1' });
    expect(noLearner.code).toBe(2);
    expect(noLearner.err).toMatch(/--learner: .* is a federation config; name the learner/);
    const unknown = await whale(['learner', '--config', fed, '--learner', 'zz'], { KAFKA_BROKERS: '127.0.0.1:1' });
    expect(unknown.err).toMatch(/no learner 'zz' \(learners: a\)/);
    const noKafka = await whale(['learner', '--config', fed, '--learner', 'a'], { KAFKA_BROKERS: undefined });
    expect(noKafka.code).toBe(2);
    expect(noKafka.err).toMatch(/KAFKA_BROKERS is not set/);
    const lone = config('learner', {
      federationId: 'x',
      learnerId: 'a',
      model: { preset: '2nn' },
      clients: { c: 'd' },
    });
    const noStore = await whale(['learner', '--config', lone], { KAFKA_BROKERS: '127.0.0.1:1' });
    expect(noStore.code).toBe(2);
    expect(noStore.err).toMatch(/a learner needs the federation's blob store: storeDir .* or redisUrl/);
    const unsigned = config('learner-sec', {
      federationId: 'x',
      learnerId: 'a',
      model: { preset: '2nn' },
      clients: { c: 'd' },
      security: { signed: true },
    });
    expect((await whale(['learner', '--config', unsigned], { KAFKA_BROKERS: '127.0.0.1:1' })).err).toMatch(
      /security: a signed learner needs keyFile/,
    );
  });
});
