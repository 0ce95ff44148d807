/**
 * Federated MNIST against McMahan et al. 2017 ("Communication-Efficient
 * Learning of Deep Networks from Decentralized Data"), Tables 1 and 2:
 * rounds to a target test accuracy at C = 0.1 with 100 clients, IID and
 * pathological non-IID, our run printed beside the paper's figure, with wall
 * time, seconds per round and bytes per round.
 *
 * Rounds to target as in the paper: the accuracy curve made monotone (best so
 * far) and the crossing round interpolated linearly. A row that does not reach
 * the target within --max-rounds says so with its best accuracy.
 *
 *   npm run bench -- federated [--rows 2nn-b10,cnn-e1-b10@0.1,...] [--partitions iid,noniid] [--max-rounds N] [--quick] [--json FILE]
 *
 * A row id may end in @LR to run it at that client learning rate instead of
 * the row's default (a learning-rate grid is one run per @LR). Every round
 * evaluates on the full 10,000 test images and the row stops at its target.
 */
import { WhaleError } from '../src/common/errors.js';
import { runMnistFederation } from '../src/apps/mnist/mnist-federation.js';
import type { RoundResult } from '../src/core/federation/orchestration/round-result.js';
import { silentLogger } from '../src/common/logger.js';
import type { Partition } from '../src/apps/mnist/mnist-partition.js';
import { createMnistTrainer } from '../src/apps/mnist/mnist-presets.js';
import { fmt, median, table } from './stats.js';

interface PaperRow {
  id: string;
  model: '2nn' | 'cnn';
  label: string;
  epochs: number;
  /** 0: B = infinity. */
  batch: number;
  target: number;
  /** Paper's rounds to target (IID, non-IID). */
  paper: { iid: number; noniid: number };
  /** Our client learning rate (the paper tuned theirs on a grid). */
  lr: number;
}

export const PAPER_ROWS: PaperRow[] = [
  {
    id: '2nn-binf',
    model: '2nn',
    label: '2NN FedSGD E=1 B=∞',
    epochs: 1,
    batch: 0,
    target: 0.97,
    paper: { iid: 1474, noniid: 1796 },
    lr: 0.5,
  },
  {
    id: '2nn-b10',
    model: '2nn',
    label: '2NN FedAvg E=1 B=10',
    epochs: 1,
    batch: 10,
    target: 0.97,
    paper: { iid: 87, noniid: 664 },
    lr: 0.1,
  },
  {
    id: 'cnn-binf',
    model: 'cnn',
    label: 'CNN FedSGD E=1 B=∞',
    epochs: 1,
    batch: 0,
    target: 0.99,
    paper: { iid: 626, noniid: 483 },
    lr: 0.2,
  },
  {
    id: 'cnn-e1-b50',
    model: 'cnn',
    label: 'CNN FedAvg E=1 B=50',
    epochs: 1,
    batch: 50,
    target: 0.99,
    paper: { iid: 65, noniid: 600 },
    lr: 0.1,
  },
  {
    id: 'cnn-e1-b10',
    model: 'cnn',
    label: 'CNN FedAvg E=1 B=10',
    epochs: 1,
    batch: 10,
    target: 0.99,
    paper: { iid: 34, noniid: 350 },
    lr: 0.05,
  },
  {
    id: 'cnn-e5-b50',
    model: 'cnn',
    label: 'CNN FedAvg E=5 B=50',
    epochs: 5,
    batch: 50,
    target: 0.99,
    paper: { iid: 29, noniid: 334 },
    lr: 0.1,
  },
  {
    id: 'cnn-e5-b10',
    model: 'cnn',
    label: 'CNN FedAvg E=5 B=10',
    epochs: 5,
    batch: 10,
    target: 0.99,
    paper: { iid: 20, noniid: 229 },
    lr: 0.05,
  },
  {
    id: 'cnn-e20-b10',
    model: 'cnn',
    label: 'CNN FedAvg E=20 B=10',
    epochs: 20,
    batch: 10,
    target: 0.99,
    paper: { iid: 18, noniid: 173 },
    lr: 0.05,
  },
];

/** "cnn-e1-b10" or "cnn-e1-b10@0.1" (that row at client learning rate 0.1). */
export function parseRowId(text: string): { id: string; lr?: number } {
  const [id, lr, extra] = text.split('@');
  if (lr === undefined) return { id: id! };
  const value = Number(lr);
  if (extra !== undefined || !(value > 0) || !Number.isFinite(value)) {
    throw new WhaleError(
      'ERR_INVALID_OPTION',
      `rows: expected ROW or ROW@LR with a positive learning rate, got ${JSON.stringify(text)}`,
      { field: 'rows' },
    );
  }
  return { id: id!, lr: value };
}

/** First (fractional) round where the best-so-far accuracy reaches the target, interpolated. */
export function roundsToTarget(
  curve: ReadonlyArray<{ round: number; accuracy: number }>,
  target: number,
): number | undefined {
  let best = 0;
  let prev = { round: 0, accuracy: 0 };
  for (const p of curve) {
    const acc = Math.max(best, p.accuracy);
    if (acc >= target) {
      const span = acc - prev.accuracy;
      return span > 0 ? prev.round + ((target - prev.accuracy) / span) * (p.round - prev.round) : p.round;
    }
    best = acc;
    prev = { round: p.round, accuracy: acc };
  }
  return undefined;
}

export interface FederatedRowResult {
  id: string;
  /** Test accuracy after each round. */
  curve?: Array<{ round: number; accuracy: number; seconds: number }>;
  label: string;
  partition: Partition;
  paper: number;
  ours?: number;
  ratio?: number;
  roundsRun: number;
  bestAccuracy?: number;
  lr: number;
  wallSeconds: number;
  secondsPerRound?: number;
  bytesUpPerRound?: number;
  bytesDownPerRound?: number;
  note?: string;
}

export async function benchFederated(o: {
  quick: boolean;
  rows?: string[];
  maxRounds?: number;
  partitions?: Partition[];
}): Promise<{ text: string; rows: FederatedRowResult[] }> {
  const wanted = (
    o.rows ??
    (o.quick ? ['2nn-b10'] : ['2nn-b10', '2nn-binf', ...PAPER_ROWS.filter((r) => r.model === 'cnn').map((r) => r.id)])
  ).map(parseRowId);
  const unknown = wanted.filter((w) => !PAPER_ROWS.some((r) => r.id === w.id));
  if (unknown.length)
    throw new WhaleError(
      'ERR_INVALID_OPTION',
      `rows: unknown row(s) ${unknown.map((w) => w.id).join(', ')}; known: ${PAPER_ROWS.map((r) => r.id).join(', ')}`,
      { field: 'rows' },
    );
  const partitions = o.partitions ?? (o.quick ? ['iid'] : ['iid', 'noniid']);
  const cnnProblem = await createMnistTrainer('cnn').then(
    () => undefined,
    (err: Error) => err.message,
  );
  const out: FederatedRowResult[] = [];
  for (const want of wanted) {
    const row = { ...PAPER_ROWS.find((r) => r.id === want.id)!, ...(want.lr === undefined ? {} : { lr: want.lr }) };
    for (const partition of partitions) {
      const paper = row.paper[partition];
      if (row.model === 'cnn' && cnnProblem) {
        out.push({
          id: row.id,
          label: row.label,
          partition,
          paper,
          roundsRun: 0,
          lr: row.lr,
          wallSeconds: 0,
          note: `not run: ${cnnProblem}`,
        });
        continue;
      }
      const maxRounds = o.maxRounds ?? (o.quick ? 20 : Math.ceil(paper * 1.3));
      const curve: Array<{ round: number; accuracy: number; seconds: number }> = [];
      const results: RoundResult[] = [];
      process.stderr.write(`federated: ${row.label} ${partition}, lr ${row.lr}, up to ${maxRounds} rounds\n`);
      const res = await runMnistFederation({
        model: row.model,
        partition,
        clients: 100,
        fraction: 0.1,
        epochs: row.epochs,
        batch: row.batch,
        lr: row.lr,
        rounds: maxRounds,
        target: row.target,
        logger: silentLogger,
        onRound: (r) => {
          results.push(r);
          curve.push({ round: r.round, accuracy: r.testAccuracy ?? 0, seconds: r.seconds });
          if (row.model === 'cnn' || r.round % 10 === 0)
            process.stderr.write(
              `  round ${r.round}: ${((r.testAccuracy ?? 0) * 100).toFixed(2)}% (${fmt(r.seconds)} s)\n`,
            );
        },
      });
      const ours = roundsToTarget(curve, row.target);
      out.push({
        id: row.id,
        label: row.label,
        partition,
        paper,
        curve,
        ...(ours === undefined ? {} : { ours, ratio: ours / paper }),
        roundsRun: res.completedRounds,
        ...(res.bestAccuracy === undefined ? {} : { bestAccuracy: res.bestAccuracy }),
        lr: row.lr,
        wallSeconds: res.wallSeconds,
        secondsPerRound: median(results.map((r) => r.seconds)),
        bytesUpPerRound: median(results.map((r) => r.bytesUp)),
        bytesDownPerRound: median(results.map((r) => r.bytesDown)),
        ...(ours === undefined ? { note: `target ${row.target} not reached in ${res.completedRounds} rounds` } : {}),
      });
    }
  }
  const mib = (b: number | undefined) => (b === undefined ? '-' : fmt(b / 2 ** 20, 2));
  const text = table(
    [
      'row',
      'data',
      'lr',
      'paper rounds',
      'our rounds',
      'ours/paper',
      'best acc %',
      'rounds run',
      'wall s',
      's/round',
      'MiB up/round',
      'MiB down/round',
      'note',
    ],
    out.map((r) => [
      r.label,
      r.partition,
      String(r.lr),
      String(r.paper),
      r.ours === undefined ? '-' : fmt(r.ours, 1),
      r.ratio === undefined ? '-' : fmt(r.ratio, 2),
      r.bestAccuracy === undefined ? '-' : (r.bestAccuracy * 100).toFixed(2),
      String(r.roundsRun),
      fmt(r.wallSeconds, 0),
      r.secondsPerRound === undefined ? '-' : fmt(r.secondsPerRound, 2),
      mib(r.bytesUpPerRound),
      mib(r.bytesDownPerRound),
      r.note ?? '',
    ]),
  );
  return {
    text: `Federated MNIST, 100 clients, C = 0.1 (McMahan et al. 2017, Tables 1-2; targets 97% 2NN, 99% CNN)\n${text}`,
    rows: out,
  };
}
