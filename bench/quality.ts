/**
 * npm run bench -- routing: the router against round-robin, ε-greedy and the
 * oracle in a simulated environment: K models whose quality (Bernoulli
 * feedback) depends on the request's context (level × size) and whose latency
 * is fixed per model; reward = quality − 0.2·latency/(latency + 100 ms), the
 * router's own reward. Regret = Σ (best expected reward in the request's
 * context − expected reward of the chosen model). Also: decision cost
 * (chooseRoute alone, and with its two updates) per request.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname, join } from 'node:path';

import { SeededRandom } from '../src/core/base/random.js';
import { RouteOptimizer } from '../src/core/federation/routing/route-optimizer.js';
import type { RouteContext } from '../src/core/federation/routing/features.js';
import type { Level } from '../src/core/processing/processing-pipeline.js';
import { lineChartPng } from './quality-plot.js';

const LEVELS: Level[] = ['quick', 'normal', 'deep'];
const SIZES = [1, 4, 32, 128];
const K = 4;
const LAT_W = 0.2;
const LAT_SCALE = 100;

interface Env {
  quality: number[][]; // [cell][arm]
  latencyMs: number[];
  expected: number[][];
  best: number[];
}

function environment(seed: number): Env {
  const r = new SeededRandom(seed);
  const cells = LEVELS.length * SIZES.length;
  const quality = Array.from({ length: cells }, () => Array.from({ length: K }, () => 0.3 + 0.65 * r.next()));
  const latencyMs = Array.from({ length: K }, (_, k) => 5 + 60 * k * r.next());
  const expected = quality.map((row) => row.map((q, k) => q - LAT_W * (latencyMs[k]! / (latencyMs[k]! + LAT_SCALE))));
  return { quality, latencyMs, expected, best: expected.map((row) => Math.max(...row)) };
}

function contextAt(r: SeededRandom): { ctx: RouteContext; cell: number } {
  const l = r.int(LEVELS.length);
  const s = r.int(SIZES.length);
  return { ctx: { level: LEVELS[l]!, rows: SIZES[s]! }, cell: l * SIZES.length + s };
}

type Policy = {
  choose(ctx: RouteContext, cell: number): number;
  learn(arm: number, cell: number, quality: number, latencyMs: number): void;
};

function ours(seed: number, bandit: { alpha?: number; maxExploreShare?: number } = {}): Policy {
  const opt = new RouteOptimizer({
    tasks: { t: { arms: Array.from({ length: K }, (_, k) => ({ id: String(k), model: `m${k}` })) } },
    reward: { quality: 1, latency: LAT_W, latencyScaleMs: LAT_SCALE },
    bandit,
    seed,
  });
  let last = '';
  return {
    choose: (ctx) => {
      const d = opt.chooseRoute('t', ctx);
      last = d.requestId;
      return Number(d.arm.id);
    },
    learn: (_a, _c, q, lat) => {
      opt.recordOutcome(last, { latencyMs: lat });
      opt.recordQuality(last, q);
    },
  };
}

function roundRobin(): Policy {
  let i = 0;
  return { choose: () => i++ % K, learn: () => undefined };
}

function epsilonGreedy(eps: number, seed: number): Policy {
  const r = new SeededRandom(seed);
  const sum = Array.from({ length: 12 }, () => new Float64Array(K));
  const n = Array.from({ length: 12 }, () => new Float64Array(K));
  return {
    choose: (_ctx, cell) => {
      if (r.next() < eps) return r.int(K);
      let best = 0;
      for (let k = 0; k < K; k++) {
        const v = n[cell]![k]! === 0 ? Infinity : sum[cell]![k]! / n[cell]![k]!;
        const b = n[cell]![best]! === 0 ? Infinity : sum[cell]![best]! / n[cell]![best]!;
        if (v > b) best = k;
      }
      return best;
    },
    learn: (a, cell, q, lat) => {
      sum[cell]![a]! += q - LAT_W * (lat / (lat + LAT_SCALE));
      n[cell]![a]!++;
    },
  };
}

function oracle(env: Env): Policy {
  return { choose: (_c, cell) => env.expected[cell]!.indexOf(env.best[cell]!), learn: () => undefined };
}

function simulate(
  env: Env,
  policy: Policy,
  steps: number,
  seed: number,
  every: number,
): { regret: number[]; curve: [number, number][] } {
  const ctxRng = new SeededRandom(seed);
  const fb = new SeededRandom(seed + 1);
  let regret = 0;
  const marks: number[] = [];
  const curve: [number, number][] = [[0, 0]];
  for (let t = 1; t <= steps; t++) {
    const { ctx, cell } = contextAt(ctxRng);
    const a = policy.choose(ctx, cell);
    const q = fb.next() < env.quality[cell]![a]! ? 1 : 0;
    policy.learn(a, cell, q, env.latencyMs[a]! * (0.8 + 0.4 * fb.next()));
    regret += env.best[cell]! - env.expected[cell]![a]!;
    if (t === 1_000 || t === 10_000 || t === 100_000) marks.push(regret);
    if (t % every === 0) curve.push([t, regret]);
  }
  return { regret: marks, curve };
}

/** µs per request, wall clock and this process's CPU time (the machine may be shared: CPU time is what the router costs). */
function decisionCost(runs: number): {
  choose: number;
  withUpdates: number;
  chooseCpu: number;
  withUpdatesCpu: number;
} {
  const n = 50_000;
  const chooseUs: number[] = [];
  const fullUs: number[] = [];
  const chooseCpu: number[] = [];
  const fullCpu: number[] = [];
  const cpu = (c: NodeJS.CpuUsage) => c.user + c.system;
  for (let r = 0; r < runs; r++) {
    const opt = new RouteOptimizer({
      tasks: { t: { arms: Array.from({ length: K }, (_, k) => ({ id: String(k), model: `m${k}` })) } },
      seed: r + 1,
    });
    const rng = new SeededRandom(r + 7);
    const ctxs = Array.from({ length: 1024 }, () => contextAt(rng).ctx);
    let t0 = performance.now();
    let c0 = process.cpuUsage();
    const ids: string[] = new Array(n);
    for (let i = 0; i < n; i++) ids[i] = opt.chooseRoute('t', ctxs[i & 1023]!).requestId;
    chooseCpu.push(cpu(process.cpuUsage(c0)) / n);
    chooseUs.push(((performance.now() - t0) * 1000) / n);
    t0 = performance.now();
    c0 = process.cpuUsage();
    for (let i = 0; i < n; i++) {
      const id = opt.chooseRoute('t', ctxs[i & 1023]!).requestId;
      opt.recordOutcome(id, { latencyMs: 10 });
      opt.recordQuality(id, i & 1);
    }
    fullCpu.push(cpu(process.cpuUsage(c0)) / n);
    fullUs.push(((performance.now() - t0) * 1000) / n);
  }
  const med = (v: number[]) => v.sort((a, b) => a - b)[Math.floor(v.length / 2)]!;
  return { choose: med(chooseUs), withUpdates: med(fullUs), chooseCpu: med(chooseCpu), withUpdatesCpu: med(fullCpu) };
}

export { ours as routerPolicy, environment, simulate, roundRobin };

export async function benchRouting(o: {
  runs: number;
  quick: boolean;
  plot?: string;
}): Promise<{ text: string; json: unknown }> {
  const steps = o.quick ? 10_000 : 100_000;
  const seeds = Array.from({ length: o.quick ? 2 : Math.max(3, o.runs) }, (_, i) => 11 + i);
  const names = ['router (LinUCB)', 'round-robin', 'ε-greedy 0.1', 'oracle'] as const;
  const marks: Record<string, number[][]> = Object.fromEntries(names.map((n) => [n, []]));
  const curves: Record<string, [number, number][]> = {};
  for (const seed of seeds) {
    const env = environment(seed);
    const policies: Record<(typeof names)[number], Policy> = {
      'router (LinUCB)': ours(seed),
      'round-robin': roundRobin(),
      'ε-greedy 0.1': epsilonGreedy(0.1, seed),
      oracle: oracle(env),
    };
    for (const n of names) {
      const r = simulate(env, policies[n], steps, seed * 31, steps / 200);
      marks[n]!.push(r.regret);
      if (seed === seeds[0]) curves[n] = r.curve;
    }
  }
  const med = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)]!;
  const at = (n: string, i: number) => med(marks[n]!.map((m) => m[i] ?? NaN));
  const cols = steps >= 100_000 ? [0, 1, 2] : [0, 1];
  const header = `| policy | ${cols.map((i) => `regret @ ${['1k', '10k', '100k'][i]}`).join(' | ')} | vs round-robin @ 10k | same, per environment (min–max) |`;
  // The ratio of medians, and the spread of each environment's own ratio (a lock-in shows up in one environment, not in the median).
  const ratios = (n: string) => marks[n]!.map((m, e) => m[1]! / marks['round-robin']![e]![1]!);
  const range = (v: number[]) => `${(100 * Math.min(...v)).toFixed(1)}–${(100 * Math.max(...v)).toFixed(1)}%`;
  const rows = names.map(
    (n) =>
      `| ${n} | ${cols.map((i) => at(n, i).toFixed(1)).join(' | ')} | ${((100 * at(n, 1)) / at('round-robin', 1)).toFixed(1)}% | ${range(ratios(n))} |`,
  );
  const cost = decisionCost(o.quick ? 1 : 5);
  let text = `Routing, simulated: K=${K} models, 12 contexts (level × size), Bernoulli quality feedback, reward = quality − ${LAT_W}·lat/(lat+${LAT_SCALE} ms); median of ${seeds.length} environments\n\n${header}\n|---|${cols.map(() => '---|').join('')}---|---|\n${rows.join('\n')}\n\nDecision cost (median of runs, 50k requests, ${K} arms, 24 features): chooseRoute ${cost.choose.toFixed(2)} µs/request wall (${cost.chooseCpu.toFixed(2)} µs CPU); with its cost and quality updates ${cost.withUpdates.toFixed(2)} µs wall (${cost.withUpdatesCpu.toFixed(2)} µs CPU); load average ${loadavg()[0]!.toFixed(1)} on ${cpus().length} cores\n`;
  if (o.plot) {
    const colors: [number, number, number][] = [
      [220, 40, 40],
      [40, 90, 220],
      [30, 160, 60],
      [120, 120, 120],
    ];
    mkdirSync(dirname(o.plot), { recursive: true });
    writeFileSync(o.plot, lineChartPng(names.map((n, i) => ({ name: n, color: colors[i]!, points: curves[n]! }))));
    text += `\nRegret curve (first environment) written to ${o.plot}: red = router, blue = round-robin, green = ε-greedy, grey = oracle\n`;
  }
  return { text, json: { steps, seeds, marks, cost } };
}

export const ROUTING_PLOT = join('bench', 'routing-regret.png');
