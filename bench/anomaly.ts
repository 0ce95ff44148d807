/**
 * Anomaly detector: NAB scores on the dev files (the published detectors' scores on the same
 * files beside ours) and throughput, native batched vs the TS reference.
 * NAB data: $WHALE_NAB_DIR, else ../shared/data/nab-dev; scorer: ../shared/tools/nab-score.mjs.
 */
import { AnomalyDetector, AnomalyDetectorBank } from '../src/core/monitoring/health/anomaly-detector.js';
import { ReferenceAnomalyDetector } from '../src/core/monitoring/health/anomaly-detector-reference.js';
import { engine } from '../src/native/engine.js';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

import {
  ANOMALY_DEFAULTS,
  type AnomalyDetectorOptions,
} from '../src/core/monitoring/health/anomaly-detector-options.js';
import {
  chooseDefault,
  heldOutScores,
  label,
  leaveOneCategoryOut,
  METHOD_GRID,
  nabRoot,
  nabScore,
  perFile,
  PROFILES,
  readNab,
  scoreAll,
  type GridPoint,
  type NabFile,
  type Scored,
} from './anomaly-nab.js';
import { fmt, table, timeRuns } from './stats.js';

/** Published standard-profile scores on these 18 files (issue 11). */
const PUBLISHED_DEV: Array<[string, number]> = [
  ['ARTime', 67.1],
  ['Numenta HTM', 61.3],
  ['Windowed Gaussian', 12.1],
];

/** Median wall time and median process CPU time (user + system) of `runs` calls, after one warm-up call. */
async function timeBoth(runs: number, fn: () => unknown): Promise<{ wallMs: number; cpuMs: number }> {
  const cpu: number[] = [];
  const wall = await timeRuns(runs, () => {
    const c0 = process.cpuUsage();
    fn();
    const c = process.cpuUsage(c0);
    cpu.push((c.user + c.system) / 1e3);
  });
  cpu.shift(); // the warm-up call
  cpu.sort((a, b) => a - b);
  return { wallMs: wall.medianMs, cpuMs: cpu[Math.floor(cpu.length / 2)]! };
}

/** ARTime's published scores on the dev files: $WHALE_ARTIME_DIR = results/ARTime of a numenta/NAB checkout (dev categories only). */
function readArtime(files: NabFile[]): Scored | undefined {
  const dir = process.env.WHALE_ARTIME_DIR;
  if (dir === undefined || !existsSync(dir)) return undefined;
  const out: Scored = new Map();
  for (const f of files) {
    const [cat, name] = f.key.split('/');
    const rows = readFileSync(join(dir, cat!, `ARTime_${name}`), 'utf8')
      .trim()
      .split('\n');
    const si = rows[0]!.split(',').indexOf('anomaly_score');
    out.set(
      f.key,
      Float64Array.from(rows.slice(1), (r) => Number(r.split(',')[si])),
    );
  }
  return out;
}

const pct = (x: number | undefined) => (x === undefined ? '—' : x.toFixed(1));

/** Issue 24: every detector and grid point under the held-out rule, the per-method LOCO selection, the choice, the per-file table. */
function methodSelection(
  root: string,
  files: NabFile[],
): { text: string; chosen: AnomalyDetectorOptions; points: GridPoint[] } {
  const runs = METHOD_GRID.map((opts) => scoreAll(files, opts));
  const points = METHOD_GRID.map((opts, i) => heldOutScores(root, files, opts, runs[i]!));
  const cats = Object.keys(points[0]!.folds);
  const rows = points.map((p) => [
    label(p.options),
    p.pooled.toFixed(1),
    ...cats.map((c) => {
      const f = p.folds[c]!;
      return `${f.score === undefined ? `${f.falsePositives} FP` : f.score.toFixed(1)} @ ${f.threshold.toFixed(3)}`;
    }),
    p.meanHeldOut.toFixed(1),
  ]);
  const perPoint = table(
    [
      'detector and options',
      'all 18 files',
      ...cats.map((c) => `held out: ${c} @ threshold of the other two`),
      'mean held-out',
    ],
    rows,
  );
  const stability = (['whale', 'art', 'ensemble'] as const)
    .map((m) => {
      const idx = METHOD_GRID.flatMap((g, i) => (g.method === m ? [i] : []));
      return `${m}: ${leaveOneCategoryOut(
        root,
        files,
        idx.map((i) => METHOD_GRID[i]!),
        idx.map((i) => runs[i]!),
      )}`;
    })
    .join('\n\n');
  const chosen = chooseDefault(points);
  const incumbent = points.find(
    (p) =>
      p.options.method === 'whale' &&
      p.options.spread === ANOMALY_DEFAULTS.spread &&
      p.options.vigilance === ANOMALY_DEFAULTS.vigilance &&
      p.options.rateHorizon === ANOMALY_DEFAULTS.rateHorizon &&
      p.options.threshold === ANOMALY_DEFAULTS.threshold,
  )!;
  const byMethod = (['whale', 'art', 'ensemble'] as const).map((m) => {
    const best = chooseDefault(points.filter((p) => p.options.method === m));
    return `best ${m}: ${label(best.options)}: mean held-out ${best.meanHeldOut.toFixed(1)} (${cats.map((c) => pct(best.folds[c]!.score) + (best.folds[c]!.score === undefined ? ` ${best.folds[c]!.falsePositives} FP` : '')).join(' / ')}), all files ${best.pooled.toFixed(1)}`;
  });
  const text =
    `Every grid point (${METHOD_GRID.length}), each category held out at the NAB threshold best on the other two (standard profile)\n${perPoint}\n\n` +
    `${byMethod.join('\n')}\ncurrent default (${label(incumbent.options)}): mean held-out ${incumbent.meanHeldOut.toFixed(1)}\n` +
    `chosen by the rule: ${label(chosen.options)}: mean held-out ${chosen.meanHeldOut.toFixed(1)}, all files ${chosen.pooled.toFixed(1)}\n\n` +
    `Per method, the issue-11 procedure (grid point picked on two categories, the third scored)\n${stability}`;
  return { text, chosen: chosen.options, points };
}

/** Per-file standard figures of each detector at its own threshold on all 18 files. */
function perFileTable(root: string, files: NabFile[], detectors: Array<[string, Scored]>): string {
  const thr = detectors.map(([, sc]) => nabScore(root, files, sc).standard!);
  const rows = files.map((f) => [
    f.key,
    ...detectors.map(([, sc], d) => {
      const r = perFile(root, f, sc.get(f.key)!, thr[d]!.threshold);
      return r.score === undefined ? `${r.fp} FP` : `${r.score.toFixed(1)} (${r.detected}/${r.windows}, ${r.fp} FP)`;
    }),
  ]);
  rows.push([
    'all 18 (NAB standard score, threshold)',
    ...thr.map((t) => `${t.score.toFixed(1)} @ ${t.threshold.toFixed(3)}`),
  ]);
  return table(['file', ...detectors.map(([n]) => n)], rows);
}

export async function benchAnomaly(o: {
  runs: number;
  quick: boolean;
  parts?: string[];
}): Promise<{ text: string; nab: Record<string, number>; throughput: unknown[] }> {
  const part = (name: string) => o.parts === undefined || o.parts.includes(name);
  const root = nabRoot();
  const files = readNab(root);
  const scored = nabScore(root, files, scoreAll(files));
  const nab = Object.fromEntries(PROFILES.map((p) => [p, scored[p]!.score]));
  const nabTable = table(
    ['detector', 'standard', 'reward low FP', 'reward low FN'],
    [
      ['whale AnomalyDetector (defaults)', ...PROFILES.map((p) => fmt(nab[p], 1))],
      ...PUBLISHED_DEV.map(([name, s]) => [`${name} (published)`, fmt(s, 1), '—', '—']),
    ],
  );

  let loco = '';
  let chosen: AnomalyDetectorOptions = { method: 'whale' };
  if (!o.quick && part('loco')) {
    const sel = methodSelection(root, files);
    chosen = sel.chosen;
    loco += `${sel.text}\n\n`;
  }
  if (!o.quick && part('perfile')) {
    const artime = readArtime(files);
    const detectors: Array<[string, Scored]> = [
      ...(artime ? [['ARTime (published)', artime] as [string, Scored]] : []),
      ['whale (defaults)', scoreAll(files, { method: 'whale' })],
      ['art (defaults)', scoreAll(files, { method: 'art' })],
      ['ensemble (defaults)', scoreAll(files, { method: 'ensemble' })],
      ...(chosen.method === 'whale' && Object.keys(chosen).length === 1
        ? []
        : [[`chosen: ${label(chosen)}`, scoreAll(files, chosen)] as [string, Scored]]),
    ];
    loco += `Per file, standard profile, each detector at its threshold on all 18 files: score (windows found / windows, false positives)${artime ? '' : " (set WHALE_ARTIME_DIR for ARTime's column)"}\n${perFileTable(root, files, detectors)}\n\n`;
  }
  // Throughput on the NAB values, concatenated and repeated.
  const all = Float64Array.from(files.flatMap((f) => Array.from(f.values)));
  const reps = o.quick ? 2 : 8;
  const stream = new Float64Array(all.length * reps);
  for (let r = 0; r < reps; r++) stream.set(all, r * all.length);
  const rows: Array<{
    case: string;
    points: number;
    medianMs: number;
    pointsPerSec: number;
    perCore: number;
    perCpuSecond: number;
  }> = [];
  // Wall time per core, and points per CPU-second of this process (user + system, all threads): the
  // second is the per-core figure that stays meaningful when other work shares the cores.
  const add = (name: string, points: number, ms: number, cores: number, cpuMs: number) =>
    rows.push({
      case: name,
      points,
      medianMs: ms,
      pointsPerSec: points / (ms / 1e3),
      perCore: points / (ms / 1e3) / cores,
      perCpuSecond: points / (cpuMs / 1e3),
    });

  if (!part('throughput'))
    return {
      text: `NAB dev files (${files.length} series; best threshold ${fmt(scored.standard!.threshold, 3)})\n${nabTable}\n\n${loco}`,
      nab,
      throughput: [],
    };
  const single = await timeBoth(o.runs, () => new AnomalyDetector().updateBatch(stream));
  add('native, 1 series, updateBatch', stream.length, single.wallMs, 1, single.cpuMs);
  for (const method of ['art', 'ensemble'] as const) {
    const t = await timeBoth(o.runs, () => new AnomalyDetector({ method }).updateBatch(stream));
    add(`native, 1 series, updateBatch, method ${method}`, stream.length, t.wallMs, 1, t.cpuMs);
  }
  const one = new AnomalyDetector();
  const perPoint = await timeBoth(o.runs, () => {
    for (let i = 0; i < all.length; i++) one.update(all[i]!);
  });
  add('native, 1 series, update() per point', all.length, perPoint.wallMs, 1, perPoint.cpuMs);
  const refPoints = all.length;
  const ref = await timeBoth(Math.min(o.runs, 3), () => {
    const r = new ReferenceAnomalyDetector();
    for (let i = 0; i < refPoints; i++) r.update(all[i]!);
  });
  add('TS reference, 1 series', refPoints, ref.wallMs, 1, ref.cpuMs);

  const threads = engine.build().threads;
  const seriesCount = 256;
  const perSeries = o.quick ? 2000 : 8000;
  const names = Array.from({ length: seriesCount }, (_, s) => `s${s}`);
  const series: string[] = [];
  const values = new Float64Array(seriesCount * perSeries);
  for (let i = 0; i < perSeries; i++)
    for (let s = 0; s < seriesCount; s++) {
      series.push(names[s]!);
      values[i * seriesCount + s] = all[(s * 997 + i) % all.length]!;
    }
  const many = await timeBoth(o.runs, () => new AnomalyDetectorBank().updateMany(series, values));
  add(
    `native, ${seriesCount} series, updateMany (${threads} threads)`,
    values.length,
    many.wallMs,
    threads,
    many.cpuMs,
  );
  const manyArt = await timeBoth(o.runs, () => new AnomalyDetectorBank({ method: 'art' }).updateMany(series, values));
  add(
    `native, ${seriesCount} series, updateMany, method art (${threads} threads)`,
    values.length,
    manyArt.wallMs,
    threads,
    manyArt.cpuMs,
  );

  const tput = table(
    ['case', 'points', 'median ms', 'points/s', 'points/s per core', 'points per CPU-second'],
    rows.map((r) => [
      r.case,
      String(r.points),
      fmt(r.medianMs),
      (r.pointsPerSec / 1e6).toFixed(2) + ' M',
      (r.perCore / 1e6).toFixed(2) + ' M',
      (r.perCpuSecond / 1e6).toFixed(2) + ' M',
    ]),
  );
  const text =
    `NAB dev files (${files.length} series; scorer ${'../shared/tools/nab-score.mjs'}; best threshold ${fmt(scored.standard!.threshold, 3)})\n${nabTable}\n\n${loco}Throughput (median of ${o.runs} runs)\n${tput}\n` +
    `State per series: ${new AnomalyDetector().stateBytes()} bytes`;
  return { text, nab, throughput: rows };
}
