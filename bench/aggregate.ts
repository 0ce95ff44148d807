/**
 * Aggregation bench: TS reference vs native CPU vs native GPU (when present)
 * for each strategy, N in {10, 100} x P in {1e5, 1e6, 1e7}, plus Krum at
 * N = 50, P = 1e6. Effective GB/s counts the input bytes (N x P x 4).
 */
import { Aggregator } from '../src/core/federation/learning/aggregator.js';
import { fedavgRef, krumRef, medianRef, trimmedMeanRef } from '../src/core/federation/learning/reference.js';
import type { Strategy } from '../src/core/federation/learning/types.js';
import { engine } from '../src/native/engine.js';
import { fmt, table, timeRuns, type Timing } from './stats.js';
import { measureTriad, type TriadResult } from './triad.js';

export interface AggregateBenchOptions {
  runs: number;
  quick: boolean;
  /** Skip the TS reference when N x P exceeds this (it can take minutes). */
  referenceLimit: number;
}

interface Row {
  strategy: Strategy;
  clients: number;
  params: number;
  reference?: Timing;
  cpu: Timing;
  gpu?: Timing;
}

const STRATEGIES: Strategy[] = ['fedavg', 'median', 'trimmed-mean', 'krum'];

function makeRows(n: number, p: number): Float32Array[] {
  // Cheap deterministic fill (an LCG): data generation must not dominate the bench.
  let s = 12345;
  return Array.from({ length: n }, () => {
    const row = new Float32Array(p);
    for (let j = 0; j < p; j++) {
      s = (Math.imul(s, 1664525) + 1013904223) | 0;
      row[j] = s / 2147483648;
    }
    return row;
  });
}

function reference(strategy: Strategy, rows: Float32Array[], weights: number[], f: number): unknown {
  switch (strategy) {
    case 'fedavg': return fedavgRef(rows, weights);
    case 'median': return medianRef(rows);
    case 'trimmed-mean': return trimmedMeanRef(rows, 0.1);
    default: return krumRef(rows, weights, f, 1);
  }
}

export async function benchAggregate(opts: AggregateBenchOptions): Promise<{ triad: TriadResult; rows: Row[]; text: string }> {
  const triad = measureTriad();
  const gpu = engine.devices().devices.some((d) => d.kind === 'cuda');
  const cases: Array<[number, number, Strategy[]]> = [];
  const ns = [10, 100];
  const ps = opts.quick ? [1e5, 1e6] : [1e5, 1e6, 1e7];
  for (const n of ns) for (const p of ps) cases.push([n, p, STRATEGIES]);
  cases.push([50, 1e6, ['krum']]);

  const results: Row[] = [];
  for (const [n, p, strategies] of cases) {
    const rows = makeRows(n, p);
    const weights = Array.from({ length: n }, (_, i) => 1 + i);
    const f = Math.floor((n - 3) / 4);
    const big = n * p >= 1e8;
    const runs = big ? Math.min(opts.runs, 3) : opts.runs;
    for (const strategy of strategies) {
      const agg = (device: 'cpu' | 'cuda:0') => new Aggregator({ strategy, f, beta: 0.1, device, asyncThresholdBytes: 0 });
      const cpuAgg = agg('cpu');
      const row: Row = { strategy, clients: n, params: p, cpu: await timeRuns(runs, () => cpuAgg.aggregate(rows, weights)) };
      if (gpu) {
        const gpuAgg = agg('cuda:0');
        row.gpu = await timeRuns(runs, () => gpuAgg.aggregate(rows, weights));
      }
      if (strategy === 'fedavg' || n * p <= opts.referenceLimit) {
        const refRuns = n * p >= 1e7 ? 1 : Math.min(runs, 3);
        row.reference = await timeRuns(refRuns, () => reference(strategy, rows, weights, f), false);
      }
      results.push(row);
      process.stderr.write(`  ${strategy} N=${n} P=${p}: cpu ${fmt(row.cpu.medianMs)} ms\n`);
    }
  }
  return { triad, rows: results, text: render(triad, results, gpu) };
}

function render(triad: TriadResult, rows: Row[], gpu: boolean): string {
  const gbs = (r: Row, t?: Timing) => (t ? (r.clients * r.params * 4) / (t.medianMs / 1e3) / 1e9 : undefined);
  const header = ['strategy', 'N', 'P', 'ref ms', 'cpu ms', 'cpu GB/s', 'cpu/triad', 'ref/cpu'];
  if (gpu) header.push('gpu ms', 'gpu GB/s', 'cpu/gpu');
  const body = rows.map((r) => {
    const cpuGBs = gbs(r, r.cpu);
    const cells = [
      r.strategy,
      String(r.clients),
      r.params.toExponential(0),
      fmt(r.reference?.medianMs),
      fmt(r.cpu.medianMs),
      fmt(cpuGBs),
      fmt(cpuGBs !== undefined ? cpuGBs / triad.bestGBs : undefined),
      r.reference ? `${fmt(r.reference.medianMs / r.cpu.medianMs, 1)}x` : '—',
    ];
    if (gpu) cells.push(fmt(r.gpu?.medianMs), fmt(gbs(r, r.gpu)), r.gpu ? `${fmt(r.cpu.medianMs / r.gpu.medianMs, 1)}x` : '—');
    return cells;
  });
  return [
    `memory triad: best ${fmt(triad.bestGBs)} GB/s, median ${fmt(triad.medianGBs)} GB/s (${triad.elements} doubles x 3)`,
    '',
    table(header, body),
    '',
    'times are medians of the runs; GB/s = N x P x 4 bytes / median time; ref = plain-TS reference (— = not run at this size)',
  ].join('\n');
}
