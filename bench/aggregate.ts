/**
 * Aggregation bench: TS reference vs native CPU vs native GPU (when present)
 * for each strategy, N in {10, 100} x P in {1e5, 1e6, 1e7}, plus Krum at
 * N = 50, P = 1e6. Effective GB/s counts the input bytes (N x P x 4).
 */
import { Aggregator } from '../src/core/federation/learning/aggregator.js';
import { fedavgRef, krumRef, medianRef, trimmedMeanRef } from '../src/core/federation/learning/reference.js';
import type { Strategy } from '../src/core/federation/learning/types.js';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, openSync, readFileSync, rmSync, writeSync, closeSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { engine } from '../src/native/engine.js';
import { eventLoopTurn, fmt, settle, summarize, table, timeRuns, type Timing } from './stats.js';
import { measureTriad, type TriadResult } from './triad.js';

export interface AggregateBenchOptions {
  runs: number;
  quick: boolean;
  /** Skip the TS reference when N x P exceeds this (it can take minutes). */
  referenceLimit: number;
  /** Skip the numpy peer when N x P exceeds this (it reads a copy of the input from a file). */
  numpyLimit?: number;
}

interface Row {
  strategy: Strategy;
  clients: number;
  params: number;
  reference?: Timing;
  cpu: Timing;
  gpu?: Timing;
  numpy?: Timing;
  /** max |native - numpy| / max |numpy| over the result vector. */
  numpyDiff?: number;
  /** Clients close together (a shared vector plus 10% noise), as honest updates of one round are. */
  close?: boolean;
  /** Best triad GB/s measured just before this input's strategies (the machine's state of that moment). */
  triadGBs?: number;
}

const STRATEGIES: Strategy[] = ['fedavg', 'median', 'trimmed-mean', 'krum'];

function makeRows(n: number, p: number, close = false): Float32Array[] {
  // Cheap deterministic fill (an LCG): data generation must not dominate the bench.
  let s = 12345;
  const rows = Array.from({ length: n }, () => {
    const row = new Float32Array(p);
    for (let j = 0; j < p; j++) {
      s = (Math.imul(s, 1664525) + 1013904223) | 0;
      row[j] = s / 2147483648;
    }
    return row;
  });
  if (close) {
    const shared = makeRows(1, p)[0]!;
    for (const row of rows) for (let j = 0; j < p; j++) row[j] = shared[j]! + 0.1 * row[j]!;
  }
  return rows;
}

function reference(strategy: Strategy, rows: Float32Array[], weights: number[], f: number): unknown {
  switch (strategy) {
    case 'fedavg':
      return fedavgRef(rows, weights);
    case 'median':
      return medianRef(rows);
    case 'trimmed-mean':
      return trimmedMeanRef(rows, 0.1);
    default:
      return krumRef(rows, weights, f, 1);
  }
}

/** The numpy peer (bench/numpy_peer.py), or why it cannot run here. */
function numpyStatus(): { ok: true; version: string } | { ok: false; reason: string } {
  const r = spawnSync('python3', ['-c', 'import numpy; print(numpy.__version__)'], { encoding: 'utf8' });
  if (r.error) return { ok: false, reason: `python3 not found (${r.error.message})` };
  if (r.status !== 0) return { ok: false, reason: 'python3 has no numpy (Debian: apt-get install python3-numpy)' };
  return { ok: true, version: r.stdout.trim() };
}

const PEER = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'bench', 'numpy_peer.py');

/** Runs the numpy peer on the same rows; its timings and results per strategy. */
function runNumpy(rows: Float32Array[], weights: number[], f: number, strategies: Strategy[], runs: number) {
  const dir = mkdtempSync(join(tmpdir(), 'whale-numpy-'));
  try {
    const data = join(dir, 'data.f32');
    const fd = openSync(data, 'w');
    for (const r of rows) writeSync(fd, new Uint8Array(r.buffer, r.byteOffset, r.byteLength));
    closeSync(fd);
    const spec = {
      data,
      clients: rows.length,
      params: rows[0]!.length,
      weights,
      f,
      beta: 0.1,
      runs,
      strategies,
      out: dir,
    };
    writeFileSync(join(dir, 'spec.json'), JSON.stringify(spec));
    const r = spawnSync('python3', [PEER, join(dir, 'spec.json')], { encoding: 'utf8', maxBuffer: 1 << 20 });
    if (r.status !== 0) throw new Error(`numpy peer failed: ${r.stderr || r.error?.message}`);
    const times = (JSON.parse(r.stdout) as { times: Record<string, number[]> }).times;
    const out = new Map<Strategy, { timing: Timing; result: Float32Array }>();
    for (const s of strategies) {
      const bytes = readFileSync(join(dir, `${s}.f32`));
      out.set(s, {
        timing: summarize(times[s]!),
        result: new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4),
      });
    }
    return out;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function maxRelDiff(a: Float32Array, b: Float32Array): number {
  let diff = 0,
    scale = 0;
  for (let j = 0; j < b.length; j++) {
    diff = Math.max(diff, Math.abs(a[j]! - b[j]!));
    scale = Math.max(scale, Math.abs(b[j]!));
  }
  return scale > 0 ? diff / scale : diff;
}

export async function benchAggregate(
  opts: AggregateBenchOptions,
): Promise<{ triad: TriadResult; rows: Row[]; copies: CopyRow[]; numpy: string; text: string }> {
  const triad = measureTriad();
  const gpu = engine.devices().devices.some((d) => d.kind === 'cuda');
  const numpy = numpyStatus();
  const numpyLimit = opts.numpyLimit ?? 1e8;
  const cases: Array<[number, number, Strategy[], boolean?]> = [];
  const ns = [10, 100];
  const ps = opts.quick ? [1e5, 1e6] : [1e5, 1e6, 1e7];
  for (const n of ns) for (const p of ps) cases.push([n, p, STRATEGIES]);
  cases.push([50, 1e6, ['krum']], [50, 1e6, ['krum'], true]);

  const results: Row[] = [];
  for (const [n, p, strategies, close] of cases) {
    const rows = makeRows(n, p, close);
    const weights = Array.from({ length: n }, (_, i) => 1 + i);
    const f = Math.floor((n - 3) / 4);
    const big = n * p >= 1e8;
    const runs = big ? Math.min(opts.runs, 3) : opts.runs;
    const peer = numpy.ok && n * p <= numpyLimit ? runNumpy(rows, weights, f, strategies, runs) : undefined;
    // The limit the bandwidth-bound strategies are judged against, measured beside them (machines drift).
    const caseTriad = measureTriad(10_000_000, 5).bestGBs;
    for (const strategy of strategies) {
      // The kernels on the calling thread (in place); what the async path adds is measured below.
      const agg = (device: 'cpu' | 'cuda:0') => new Aggregator({ strategy, f, beta: 0.1, device });
      const cpuAgg = agg('cpu');
      settle();
      const cpu = await timeRuns(runs, () => cpuAgg.aggregateSync(rows, weights), true, eventLoopTurn);
      const row: Row = { strategy, clients: n, params: p, close, cpu, triadGBs: caseTriad };
      if (gpu) {
        const gpuAgg = agg('cuda:0');
        settle();
        row.gpu = await timeRuns(runs, () => gpuAgg.aggregateSync(rows, weights), true, eventLoopTurn);
      }
      const np = peer?.get(strategy);
      if (np) {
        row.numpy = np.timing;
        row.numpyDiff = maxRelDiff(cpuAgg.aggregateSync(rows, weights).params, np.result);
      }
      if (strategy === 'fedavg' || n * p <= opts.referenceLimit) {
        const refRuns = n * p >= 1e7 ? 1 : Math.min(runs, 3);
        row.reference = await timeRuns(refRuns, () => reference(strategy, rows, weights, f), false);
      }
      results.push(row);
      process.stderr.write(
        `  ${strategy} N=${n} P=${p}: cpu ${fmt(row.cpu.medianMs)} ms, numpy ${fmt(row.numpy?.medianMs)} ms\n`,
      );
    }
  }
  const copies = await benchAsyncCopy(opts);
  const numpyNote = numpy.ok
    ? `numpy ${numpy.version} (bench/numpy_peer.py, Flower's computations, one process, same data): np ms, np/cpu = its time / ours, np diff = max |ours - numpy| / max |numpy|; Krum's peer computes only the upper triangle of the pairwise norms (Flower computes both); (close) = clients a shared vector plus 10% noise, as honest updates of one round are`
    : `numpy column skipped: ${numpy.reason}`;
  return {
    triad,
    rows: results,
    copies,
    numpy: numpy.ok ? numpy.version : numpy.reason,
    text: `${render(triad, results, gpu, numpy.ok)}\n${numpyNote}\n\n${renderCopies(copies)}`,
  };
}

interface CopyRow {
  strategy: Strategy;
  clients: number;
  params: number;
  sync: Timing;
  async: Timing;
}

/**
 * What the async path's input copy costs: the same aggregation on the JS
 * thread (in place) and through the pool (inputs copied into native memory
 * first, on the JS thread). 24 x 2^21 is the size of the attack.
 */
async function benchAsyncCopy(opts: AggregateBenchOptions): Promise<CopyRow[]> {
  const cases: Array<[Strategy, number, number]> = [
    ['fedavg', 24, 1 << 21],
    ['median', 24, 1 << 21],
    ['fedavg', 100, 1e6],
    ['krum', 50, 1e6],
  ];
  const out: CopyRow[] = [];
  for (const [strategy, n, p] of opts.quick ? cases.slice(0, 2) : cases) {
    const rows = makeRows(n, p);
    const make = (asyncThresholdBytes: number) =>
      new Aggregator({ strategy, f: 2, device: 'cpu', asyncThresholdBytes });
    const sync = make(Infinity),
      async = make(0);
    const row: CopyRow = {
      strategy,
      clients: n,
      params: p,
      sync: await timeRuns(opts.runs, () => sync.aggregate(rows)),
      async: await timeRuns(opts.runs, () => async.aggregate(rows)),
    };
    out.push(row);
    process.stderr.write(
      `  copy ${strategy} N=${n} P=${p}: sync ${fmt(row.sync.medianMs)} ms, async ${fmt(row.async.medianMs)} ms\n`,
    );
  }
  return out;
}

function renderCopies(rows: CopyRow[]): string {
  const body = rows.map((r) => {
    const extra = r.async.medianMs - r.sync.medianMs;
    const bytes = r.clients * r.params * 4;
    return [
      r.strategy,
      String(r.clients),
      String(r.params),
      fmt(bytes / 2 ** 20),
      fmt(r.sync.medianMs),
      fmt(r.async.medianMs),
      fmt(extra),
      `${fmt(r.async.medianMs / r.sync.medianMs)}x`,
      extra > 0 ? fmt(bytes / (extra / 1e3) / 1e9) : '—',
    ];
  });
  return [
    'async input copy (aggregate() copies its inputs into native memory before an async job starts):',
    '',
    table(
      ['strategy', 'N', 'P', 'input MiB', 'sync ms', 'async ms', 'async - sync ms', 'async/sync', 'copy GB/s'],
      body,
    ),
    '',
    'sync = asyncThresholdBytes Infinity (JS thread, in place); async = asyncThresholdBytes 0; copy GB/s = input bytes / (async - sync)',
  ].join('\n');
}

function render(triad: TriadResult, rows: Row[], gpu: boolean, numpy: boolean): string {
  const gbs = (r: Row, t?: Timing) => (t ? (r.clients * r.params * 4) / (t.medianMs / 1e3) / 1e9 : undefined);
  const header = [
    'strategy',
    'N',
    'P',
    'ref ms',
    'cpu ms',
    'cpu GB/s',
    'triad GB/s',
    'cpu/triad',
    'cpu/fedavg',
    'ref/cpu',
  ];
  // Each strategy's time over FedAvg's on the same input (the robust strategies' goal is <= 3x).
  const fedavgMs = (r: Row) =>
    rows.find((f) => f.strategy === 'fedavg' && f.clients === r.clients && f.params === r.params && !f.close)?.cpu
      .medianMs;
  if (numpy) header.push('np ms', 'np/cpu', 'np diff');
  if (gpu) header.push('gpu ms', 'gpu GB/s', 'cpu/gpu');
  const body = rows.map((r) => {
    const cpuGBs = gbs(r, r.cpu);
    const triadGBs = r.triadGBs ?? triad.bestGBs;
    const fa = fedavgMs(r);
    const cells = [
      r.close ? `${r.strategy} (close)` : r.strategy,
      String(r.clients),
      r.params.toExponential(0),
      fmt(r.reference?.medianMs),
      fmt(r.cpu.medianMs),
      fmt(cpuGBs),
      fmt(triadGBs),
      fmt(cpuGBs !== undefined ? cpuGBs / triadGBs : undefined),
      fa !== undefined && !r.close ? `${fmt(r.cpu.medianMs / fa)}x` : '—',
      r.reference ? `${fmt(r.reference.medianMs / r.cpu.medianMs, 1)}x` : '—',
    ];
    if (numpy) {
      cells.push(
        fmt(r.numpy?.medianMs),
        r.numpy ? `${fmt(r.numpy.medianMs / r.cpu.medianMs, 1)}x` : '—',
        r.numpyDiff?.toExponential(1) ?? '—',
      );
    }
    if (gpu)
      cells.push(fmt(r.gpu?.medianMs), fmt(gbs(r, r.gpu)), r.gpu ? `${fmt(r.cpu.medianMs / r.gpu.medianMs, 1)}x` : '—');
    return cells;
  });
  return [
    `memory triad: best ${fmt(triad.bestGBs)} GB/s, median ${fmt(triad.medianGBs)} GB/s (${triad.elements} doubles x 3)`,
    '',
    table(header, body),
    '',
    "times are medians of the runs (one event-loop turn before each, as a service has between rounds; results are new arrays); GB/s = N x P x 4 bytes / median time; ref = plain-TS reference (— = not run at this size); triad GB/s = best of 5 triads measured just before each input's rows, cpu/triad against it; cpu/fedavg = time / FedAvg's on the same input",
  ].join('\n');
}
