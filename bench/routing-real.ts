/**
 * npm run bench -- routing (after the simulated part; `--rows real` alone):
 * the router on real models. Three MNIST classifiers served side by side
 * (routing-real-models.ts); a seeded stream of requests of 1, 4, 32 or 128
 * test images (the request size is the context the router sees, as the
 * dispatcher passes it); every model answers every request and each answer is
 * timed, then each policy is scored on those same measured answers: the
 * router (RouteOptimizer, LinUCB, fed the measured latency of its arm plus its
 * own decision time, and the true labels as quality = share of the request's
 * images classified correctly), each model alone, round-robin, the best model
 * per request size in hindsight, and the per-request hindsight ceiling; plus
 * two router settings that show how much the result depends on exploration
 * (a tighter maxExploreShare, a small α). Also printed: each router's regret
 * against the best fixed model as a share of round-robin's, and the share of
 * its decisions that explored in successive windows of the stream.
 * Reward (the router's objective) = accuracy − W_L·latency/(latency + SCALE).
 */
import { cpus, loadavg } from 'node:os';

import { WhaleError } from '../src/common/errors.js';
import { RouteOptimizer } from '../src/core/federation/routing/route-optimizer.js';
import { sizeBucket } from '../src/core/federation/routing/features.js';
import { packageRoot } from '../src/native/loader.js';
import { readMnist } from '../src/models/mnist-idx.js';
import { benchRouting } from './quality.js';
import { median, percentile } from './stats.js';
import { SIZES, measureStream, serveModels, type MeasuredRequest, type ServedModel } from './routing-real-models.js';

const W_L = 0.2;
const SCALE_MS = 0.1;
const WINDOWS = [500, 2_000, 5_000, 10_000];
const ROUTER = 'router (LinUCB, defaults)';
/** A narrower optimism bonus (before the bonus was scaled to the feedback's spread, α 0.1 never left the first arm tried). */
const LOW_ALPHA = 0.1;
/** A tighter moving-average cap on exploration (before the per-context n^-1/3 share, the default cap 0.3 was spent for ever). */
const LOW_EXPLORE = 0.05;

interface Outcome {
  arms: number[];
  latencyMs: number[];
  correct: number;
  rows: number;
  reward: number;
  /** Router only: µs per request for chooseRoute + both updates. */
  decisionUs?: number[];
  /** Router only: per request, whether the decision was an exploration (reason 'explore'). */
  explored?: boolean[];
}

const reward = (correct: number, rows: number, ms: number) => correct / rows - (W_L * ms) / (ms + SCALE_MS);

/** Counts request r as answered by model k in ms. */
function add(o: Outcome, r: MeasuredRequest, k: number, ms: number): void {
  o.arms.push(k);
  o.latencyMs.push(ms);
  o.correct += r.correct[k]!;
  o.rows += r.rows;
  o.reward += reward(r.correct[k]!, r.rows, ms);
}

function score(table: MeasuredRequest[], pick: (i: number) => number): Outcome {
  const o: Outcome = { arms: [], latencyMs: [], correct: 0, rows: 0, reward: 0 };
  table.forEach((r, i) => {
    const k = pick(i);
    add(o, r, k, r.latencyMs[k]!);
  });
  return o;
}

function routed(
  table: MeasuredRequest[],
  models: ServedModel[],
  seed: number,
  bandit: { alpha?: number; maxExploreShare?: number } = {},
): Outcome {
  const opt = new RouteOptimizer({
    tasks: { mnist: { arms: models.map((m) => ({ id: m.id, model: m.id })) } },
    reward: { quality: 1, latency: W_L, latencyScaleMs: SCALE_MS },
    bandit,
    seed,
  });
  const index = new Map(models.map((m, k) => [m.id, k]));
  const o: Outcome = { arms: [], latencyMs: [], correct: 0, rows: 0, reward: 0, decisionUs: [], explored: [] };
  for (const r of table) {
    const t0 = performance.now();
    const d = opt.chooseRoute('mnist', { rows: r.rows });
    const chooseMs = performance.now() - t0;
    const k = index.get(d.arm.id)!;
    const t1 = performance.now();
    opt.recordOutcome(d.requestId, { latencyMs: r.latencyMs[k]! + chooseMs });
    opt.recordQuality(d.requestId, r.correct[k]! / r.rows);
    const routerMs = chooseMs + performance.now() - t1;
    o.decisionUs!.push(1000 * routerMs);
    o.explored!.push(d.reason === 'explore');
    add(o, r, k, r.latencyMs[k]! + routerMs);
  }
  return o;
}

/** The model with the best mean reward per request size over the whole table (known only afterwards). */
function bestPerSize(table: MeasuredRequest[], k: number): number[] {
  const sum = SIZES.map(() => new Float64Array(k));
  for (const r of table)
    for (let m = 0; m < k; m++) sum[sizeBucket(r.rows)]![m]! += reward(r.correct[m]!, r.rows, r.latencyMs[m]!);
  return sum.map((s) => s.indexOf(Math.max(...s)));
}

function policies(table: MeasuredRequest[], models: ServedModel[], seed: number): Record<string, Outcome> {
  const k = models.length;
  const out: Record<string, Outcome> = {
    [ROUTER]: routed(table, models, seed),
    [`router, maxExploreShare ${LOW_EXPLORE}`]: routed(table, models, seed, { maxExploreShare: LOW_EXPLORE }),
    [`router, α = ${LOW_ALPHA}`]: routed(table, models, seed, { alpha: LOW_ALPHA }),
  };
  models.forEach((m, j) => (out[`${m.id} alone`] = score(table, () => j)));
  out['round-robin'] = score(table, (i) => i % k);
  const best = bestPerSize(table, k);
  out['best model per size (hindsight)'] = score(table, (i) => best[sizeBucket(table[i]!.rows)]!);
  out['per-request hindsight (ceiling)'] = score(table, (i) => {
    const r = table[i]!;
    let b = 0;
    for (let m = 1; m < k; m++)
      if (reward(r.correct[m]!, r.rows, r.latencyMs[m]!) > reward(r.correct[b]!, r.rows, r.latencyMs[b]!)) b = m;
    return b;
  });
  return out;
}

function shares(
  arms: number[],
  from: number,
  to: number,
  k: number,
  filter: (i: number) => boolean = () => true,
): number[] {
  const n = new Array<number>(k).fill(0);
  let total = 0;
  for (let i = from; i < Math.min(to, arms.length); i++) {
    if (!filter(i)) continue;
    n[arms[i]!]!++;
    total++;
  }
  return n.map((c) => (total === 0 ? NaN : c / total));
}

const pct = (x: number) => (Number.isFinite(x) ? `${(100 * x).toFixed(1)}%` : '—');
const us = (ms: number) => (1000 * ms).toFixed(1);

export async function benchRoutingReal(o: { runs: number; quick: boolean }): Promise<{ text: string; json: unknown }> {
  const requests = o.quick ? 2_000 : 10_000;
  const seeds = Array.from({ length: o.quick ? 2 : Math.max(3, o.runs) }, (_, i) => 101 + i);
  const test = readMnist('test');
  const { models, lrSeconds } = await serveModels(packageRoot(), test);
  const k = models.length;
  try {
    await measureStream(models, test, 300, 1); // warm-up, discarded
    const per: Record<string, Outcome[]> = {};
    const tables: MeasuredRequest[][] = [];
    for (const seed of seeds) {
      const table = await measureStream(models, test, requests, seed);
      tables.push(table);
      for (const [name, out] of Object.entries(policies(table, models, seed))) (per[name] ??= []).push(out);
    }
    const names = Object.keys(per);
    const stat = (name: string, f: (x: Outcome) => number) => median(per[name]!.map(f));
    const lat = (x: Outcome, p: number) =>
      percentile(
        [...x.latencyMs].sort((a, b) => a - b),
        p,
      );
    const rows = names.map((n) => {
      const acc = stat(n, (x) => x.correct / x.rows);
      return `| ${n} | ${(100 * acc).toFixed(2)}% | ${us(stat(n, (x) => x.latencyMs.reduce((a, b) => a + b, 0) / x.latencyMs.length))} | ${us(stat(n, (x) => lat(x, 0.5)))} | ${us(stat(n, (x) => lat(x, 0.99)))} | ${stat(n, (x) => x.reward / x.arms.length).toFixed(4)} |`;
    });
    const modelRows = models.map((m, j) => {
      const bySize = SIZES.map((s) =>
        us(median(tables.map((t) => median(t.filter((r) => r.rows === s).map((r) => r.latencyMs[j]!))))),
      );
      return `| ${m.id} | ${(m.bytes / 1024).toFixed(0)} KiB | ${(100 * m.testAccuracy).toFixed(2)}% | ${bySize.join(' | ')} | ${m.note} |`;
    });
    const routers = names.filter((n) => n.startsWith('router'));
    const router = per[ROUTER]!;
    const bounds = [0, ...WINDOWS.filter((w) => w <= requests)];
    const windowRows = routers.flatMap((rn) =>
      bounds.slice(1).map((to, w) => {
        const s = models.map((_, j) => median(per[rn]!.map((x) => shares(x.arms, bounds[w]!, to, k)[j]!)));
        return `| ${rn} | ${bounds[w]! + 1}–${to} | ${s.map(pct).join(' | ')} |`;
      }),
    );
    const half = Math.floor(requests / 2);
    const bestBySeed = tables.map((t) => bestPerSize(t, k));
    const sizeRows = routers.flatMap((rn) =>
      SIZES.map((size, b) => {
        const s = models.map((_, j) =>
          median(per[rn]!.map((x, si) => shares(x.arms, half, requests, k, (i) => tables[si]![i]!.rows === size)[j]!)),
        );
        const best = bestBySeed.map((bs) => models[bs[b]!]!.id);
        return `| ${rn} | ${size} | ${s.map(pct).join(' | ')} | ${[...new Set(best)].join(', ')} |`;
      }),
    );
    const ids = models.map((m) => m.id);
    const exploreShare = (rn: string, from: number, to: number) =>
      pct(median(per[rn]!.map((x) => x.explored!.slice(from, to).filter(Boolean).length / (to - from))));
    const exploreRows = routers.map(
      (rn) =>
        `| ${rn} | ${bounds
          .slice(1)
          .map((to, w) => exploreShare(rn, bounds[w]!, to))
          .join(' | ')} |`,
    );
    // Regret against the best fixed model (the best model alone, in hindsight), as a share of round-robin's, per seed.
    const fixedNames = models.map((m) => `${m.id} alone`);
    const regretShare = (rn: string) =>
      per[rn]!.map((x, si) => {
        const best = Math.max(...fixedNames.map((f) => per[f]![si]!.reward));
        return (best - x.reward) / (best - per['round-robin']![si]!.reward);
      });
    const regretRows = routers.map((rn) => {
      const v = regretShare(rn);
      return `| ${rn} | ${pct(median(v))} | ${v.map(pct).join(', ')} |`;
    });
    const text = [
      `Routing, real models: MNIST, ${k} ONNX models served by OnnxModel (CPU provider, 1 intra-op thread); ${requests} requests of ${SIZES.join('/')} test images (uniform; seeded reshuffles of the 10,000 test images); every model answers every request, each call timed; median of ${seeds.length} seeds`,
      `reward = accuracy − ${W_L}·latency/(latency + ${1000 * SCALE_MS} µs); router = RouteOptimizer (LinUCB, defaults) fed its arm's measured latency + its own decision time and quality = share correct; logistic regression trained in ${lrSeconds.toFixed(1)} s`,
      '',
      '| model | size | test accuracy (10k) | ' + SIZES.map((s) => `µs @ ${s}`).join(' | ') + ' | what |',
      '|---|---|---|' + SIZES.map(() => '---|').join('') + '---|',
      ...modelRows,
      '',
      '| policy | accuracy | mean µs/request | p50 µs | p99 µs | reward/request |',
      '|---|---|---|---|---|---|',
      ...rows,
      '',
      `Routers' share of traffic over time (median of seeds):`,
      '',
      `| router | requests | ${ids.join(' | ')} |`,
      `|---|---|${ids.map(() => '---|').join('')}`,
      ...windowRows,
      '',
      `Routers' share per request size, requests ${half + 1}–${requests} (median of seeds), and the best model per size in hindsight (each seed):`,
      '',
      `| router | rows | ${ids.join(' | ')} | best |`,
      `|---|---|${ids.map(() => '---|').join('')}---|`,
      ...sizeRows,
      '',
      `Regret against the best fixed model in hindsight, as a share of round-robin's (median of seeds, then each seed):`,
      '',
      '| router | median | per seed |',
      '|---|---|---|',
      ...regretRows,
      '',
      `Decisions that explored (reason 'explore'), per window of the stream (median of seeds):`,
      '',
      `| router | ${bounds
        .slice(1)
        .map((to, w) => `${bounds[w]! + 1}–${to}`)
        .join(' | ')} |`,
      `|---|${bounds
        .slice(1)
        .map(() => '---|')
        .join('')}`,
      ...exploreRows,
      '',
      `Router decision + updates (included in its latency), µs/request: median ${median(router.map((x) => median(x.decisionUs!))).toFixed(2)}, mean ${median(router.map((x) => x.decisionUs!.reduce((a, b) => a + b, 0) / x.decisionUs!.length)).toFixed(2)}; load average ${loadavg()[0]!.toFixed(1)} on ${cpus().length} cores`,
    ].join('\n');
    const json = {
      requests,
      seeds,
      models: models.map((m) => ({ id: m.id, bytes: m.bytes, testAccuracy: m.testAccuracy })),
      policies: Object.fromEntries(
        names.map((n) => [
          n,
          per[n]!.map((x) => ({
            accuracy: x.correct / x.rows,
            reward: x.reward / x.arms.length,
            p50: lat(x, 0.5),
            p99: lat(x, 0.99),
          })),
        ]),
      ),
    };
    return { text, json };
  } finally {
    for (const m of models) await m.model.unload();
  }
}

const PARTS = ['sim', 'real'];

/** `npm run bench -- routing [--rows sim,real]`: the simulated environment, then the real models. */
export async function benchRoutingSuite(o: {
  runs: number;
  quick: boolean;
  plot?: string;
  parts?: string[];
}): Promise<{ text: string; json: unknown }> {
  const parts = o.parts ?? PARTS;
  const unknown = parts.filter((p) => !PARTS.includes(p));
  if (unknown.length)
    throw new WhaleError('ERR_INVALID_ARG', `rows: routing parts are ${PARTS.join(', ')}; got ${unknown.join(', ')}`, {
      field: 'rows',
    });
  const sim = parts.includes('sim') ? await benchRouting(o) : undefined;
  const real = parts.includes('real') ? await benchRoutingReal(o) : undefined;
  return {
    text: [sim?.text, real?.text].filter((t) => t !== undefined).join('\n\n'),
    json: { simulated: sim?.json, real: real?.json },
  };
}
