/**
 * The cost of the model-agnostic path (issue 21) against the MNIST-specific
 * one it replaced, on the same rounds: 2NN, 100 IID clients of 600 images,
 * C = 0.1, E = 1, B = 10, every round evaluated on the 10,000 test images,
 * learners in this process. "generic" is the shipped preset (TfjsTrainer over
 * ClientDatasets); "mnist-specific" is the trainer of commit db5f8e0 (images
 * and labels read straight from the split, one shuffled copy per epoch,
 * weights out and the delta taken by the learner), kept here as the reference.
 * The two alternate run by run (and which goes first); medians of seconds per round, wall and CPU
 * (this process's user + system time: learners, aggregation and evaluation
 * all run here, so CPU seconds stay comparable on a shared machine).
 *
 * The generic path's median s/round is also the "2NN round with 10 clients" figure (goal < 2 s).
 *
 *   npm run build:ts && npm run bench -- federation-generic [--runs 3] [--max-rounds 3] [--quick] [--json FILE]
 *   node dist/bench/federation-generic.js [--rounds 3] [--runs 3] [--json FILE]      (standalone)
 */
import { writeFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

import { silentLogger } from '../src/common/logger.js';
import type { Trainer } from '../src/core/federation/learning/trainer.js';
import { runFederation } from '../src/apps/federate/run-federation.js';
import { clientId, gather, partitionIndices } from '../src/apps/mnist/mnist-partition.js';
import { buildMnistModel, createMnistTrainer, mnistDataset } from '../src/apps/mnist/mnist-presets.js';
import { readMnist } from '../src/models/mnist-idx.js';
import { tfjsRuntime } from '../src/models/tfjs-backend.js';
import { median, table } from './stats.js';
import { MnistSpecificTrainer } from './federation-generic-ref.js';

export interface FederationGenericOptions {
  /** Rounds per run (default 3). */
  rounds?: number;
  /** Runs of each path, alternating (default 3). */
  runs?: number;
  /** One run of one round each (a smoke run). */
  quick?: boolean;
  /** Progress lines (default: stderr). */
  log?: (line: string) => void;
}

type PathName = 'mnist-specific' | 'generic';

export interface FederationGenericResult {
  text: string;
  rounds: number;
  runs: number;
  seconds: Record<PathName, number[]>;
  cpuSeconds: Record<PathName, number[]>;
  accuracy: Record<PathName, number[]>;
  /** generic / specific, medians of s/round (wall) and CPU s/round. */
  ratio: number;
  cpuRatio: number;
  /** Median s/round of the generic path: a 2NN round with 10 clients (goal < 2 s). */
  roundMedian: number;
}

export async function benchFederationGeneric(o: FederationGenericOptions = {}): Promise<FederationGenericResult> {
  const rounds = o.quick ? 1 : (o.rounds ?? 3);
  const runs = o.quick ? 1 : (o.runs ?? 3);
  const log = o.log ?? ((line: string) => void process.stderr.write(`${line}\n`));
  const rt = await tfjsRuntime();
  const train = readMnist('train');
  const test = mnistDataset(readMnist('test'));
  const parts = partitionIndices(train.labels, { kind: 'iid', clients: 100, seed: 1 });
  const clients = new Map(parts.map((idx, i) => [clientId(i), mnistDataset(gather(train, idx))] as const));
  const generic = await createMnistTrainer('2nn');
  const specific = new MnistSpecificTrainer(rt.tf, rt.backend, buildMnistModel(rt.tf, '2nn', 1));

  async function run(trainer: Trainer): Promise<{ perRound: number[]; cpu: number[]; accuracy: number }> {
    const perRound: number[] = [];
    const cpu: number[] = [];
    let last = process.cpuUsage();
    const r = await runFederation({
      federationId: `bench-generic-${Date.now().toString(36)}`,
      trainer,
      test,
      learners: { kind: 'in-process', clients, trainer },
      brokers: [],
      rounds,
      fraction: 0.1,
      expectClients: 100,
      epochs: 1,
      batch: 10,
      lr: 0.1,
      seed: 1,
      logger: silentLogger,
      onStarted: () => (last = process.cpuUsage()),
      onRound: (x) => {
        const now = process.cpuUsage(last);
        last = process.cpuUsage();
        cpu.push((now.user + now.system) / 1e6);
        perRound.push(x.seconds);
      },
    });
    return { perRound, cpu, accuracy: r.bestAccuracy ?? NaN };
  }

  const seconds: Record<PathName, number[]> = { 'mnist-specific': [], generic: [] };
  const cpuSeconds: Record<PathName, number[]> = { 'mnist-specific': [], generic: [] };
  const accuracy: Record<PathName, number[]> = { 'mnist-specific': [], generic: [] };
  for (let i = 0; i < runs; i++) {
    const pair = [
      ['mnist-specific', specific],
      ['generic', generic],
    ] as const;
    // Which path goes first alternates too.
    for (const [name, t] of i % 2 === 0 ? pair : [...pair].reverse()) {
      const r = await run(t);
      seconds[name].push(...r.perRound);
      cpuSeconds[name].push(...r.cpu);
      accuracy[name].push(r.accuracy);
      log(
        `run ${i + 1} ${name}: ${r.perRound.map((s) => s.toFixed(2)).join(' ')} s/round (cpu ${r.cpu.map((s) => s.toFixed(2)).join(' ')}), accuracy ${(r.accuracy * 100).toFixed(2)}%`,
      );
    }
  }
  const ms = median(seconds['mnist-specific']);
  const mg = median(seconds.generic);
  const cs = median(cpuSeconds['mnist-specific']);
  const cg = median(cpuSeconds.generic);
  const text = [
    table(
      [
        'path',
        'rounds',
        'median s/round',
        'min s/round',
        'median cpu s/round',
        `accuracy after ${rounds}`,
        'wall vs specific',
        'cpu vs specific',
      ],
      (['mnist-specific', 'generic'] as const).map((k) => [
        k,
        String(seconds[k].length),
        median(seconds[k]).toFixed(3),
        Math.min(...seconds[k]).toFixed(3),
        median(cpuSeconds[k]).toFixed(3),
        `${(median(accuracy[k]) * 100).toFixed(2)}%`,
        `${((median(seconds[k]) / ms - 1) * 100).toFixed(1)}%`,
        `${((median(cpuSeconds[k]) / cs - 1) * 100).toFixed(1)}%`,
      ]),
    ),
    `tfjs ${rt.backend}; 2NN, 100 IID clients, C=0.1, E=1, B=10, ${rounds} rounds x ${runs} runs each, alternating; generic/specific = ${(mg / ms).toFixed(3)} wall, ${(cg / cs).toFixed(3)} cpu`,
    `2NN round with 10 clients (generic path): median ${mg.toFixed(3)} s over ${seconds.generic.length} rounds (goal < 2 s: ${mg < 2 ? 'met' : 'not met'})`,
  ].join('\n');
  return {
    text,
    rounds,
    runs,
    seconds,
    cpuSeconds,
    accuracy,
    ratio: mg / ms,
    cpuRatio: cg / cs,
    roundMedian: mg,
  };
}

// Standalone: node dist/bench/federation-generic.js [--rounds N] [--runs N] [--json FILE]
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { values: v } = parseArgs({
    options: {
      rounds: { type: 'string', default: '3' },
      runs: { type: 'string', default: '3' },
      json: { type: 'string' },
    },
  });
  const r = await benchFederationGeneric({ rounds: Number(v.rounds), runs: Number(v.runs) });
  console.log(r.text);
  if (v.json) writeFileSync(v.json, JSON.stringify({ ...r, text: undefined }, null, 2));
}
